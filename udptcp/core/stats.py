"""Running counters of one connection, exposed as ``writer.get_extra_info("stats")``."""

from __future__ import annotations

from typing import Final

COUNTER_NAMES: Final = (
    "acks_rate_limited",
    "amplification_limited",
    "bytes_received",
    "bytes_sent",
    "challenge_acks",
    "dropped_malformed",
    "dropped_out_of_window",
    "dsacks_received",
    "duplicate_segments",
    "fast_retransmits",
    "keepalive_probes",
    "loss_episodes",
    "paws_rejected",
    "reordering_events",
    "resets_ignored",
    "retransmitted_segments",
    "segments_received",
    "segments_sent",
    "spurious_undos",
    "tail_loss_probes",
    "timeouts",
    "window_probes",
)
"""Every counter, by name (a compiled build's classes have no ``__slots__`` to list them)."""


class ConnectionStats:
    """Plain integer counters, bumped in place (never recomputed)."""

    __slots__ = COUNTER_NAMES

    def __init__(self) -> None:
        self.acks_rate_limited = 0
        """ACKs not sent in answer to segments that may be attacks or an ACK loop: challenge
        ACKs past RFC 5961's rate, answers to out-of-window pure ACKs within 0.5 s."""
        self.amplification_limited = 0
        """Datagrams not sent to a peer whose address is not proven yet (RFC 9000 8.1)."""
        self.bytes_received = 0
        self.bytes_sent = 0
        self.challenge_acks = 0
        self.dropped_malformed = 0
        self.dropped_out_of_window = 0
        self.fast_retransmits = 0
        self.keepalive_probes = 0
        self.dsacks_received = 0
        self.duplicate_segments = 0
        self.loss_episodes = 0
        self.paws_rejected = 0
        self.reordering_events = 0
        self.resets_ignored = 0
        self.retransmitted_segments = 0
        self.segments_received = 0
        self.segments_sent = 0
        self.spurious_undos = 0
        self.tail_loss_probes = 0
        self.timeouts = 0
        self.window_probes = 0

    def as_dict(self) -> dict[str, int]:
        """A snapshot, for logs and ``get_extra_info``."""
        return {name: getattr(self, name) for name in COUNTER_NAMES}
