"""What the handshake settles between the two ends: the options both use, and our timestamp clock.

The SYN and SYN-ACK each offer options; what both offered holds for the rest of the connection
(RFC 2018 for SACK, RFC 7323 for timestamps, RFC 9293 3.7.1 for the MSS). The receive path, the
send path and loss recovery all read it, so it is one small object they share rather than
fields of the connection.
"""

from __future__ import annotations

from typing import Final

from udptcp.core.seqnum import SEQ_MASK, seq_diff

MIN_MSS: Final = 64
"""The smallest segment size we send or accept: a peer announcing less is taken at this, so
that no peer can make us send a flood of tiny segments."""
DEFAULT_PEER_MSS: Final = 536
"""RFC 9293 3.7.1: the send MSS when the peer's SYN carries no MSS option."""
TS_TICKS_PER_S: Final = 1_000_000
"""Our timestamp clock ticks in microseconds (RFC 7323 allows 1 ms to 1 s; finer is fine)."""


def peer_mss(peer_option: int | None) -> int:
    """The largest payload the peer accepts: its MSS option (536 without one), at least 64."""
    return max(peer_option if peer_option else DEFAULT_PEER_MSS, MIN_MSS)


def send_mss(ours: int, peer_option: int | None) -> int:
    """The largest payload we send: the smaller of ours and the peer's announced MSS (floored)."""
    return min(ours, peer_mss(peer_option))


class Negotiated:
    """The options in use on one connection, settled by the handshake."""

    __slots__ = ("mtu_probes", "peer_mss", "sack", "timestamps", "ts_offset")

    def __init__(self, ts_offset: int) -> None:
        self.sack = False
        """Both sides offered SACK: we send SACK blocks and use the peer's."""
        self.timestamps = False
        """Both sides offered timestamps: every segment carries them (PAWS, RTT samples)."""
        self.ts_offset = ts_offset
        """RFC 7323 5.4: a per-connection offset of our timestamp clock (here the ISN)."""
        self.peer_mss = DEFAULT_PEER_MSS
        """The largest segment payload the peer accepts (its MSS option)."""
        self.mtu_probes = False
        """We discover the path's MTU and the peer answers probes: we may send them."""

    def ts_clock(self, now: float) -> int:
        """Our timestamp clock at ``now``: microseconds plus the offset, modulo 2**32."""
        return (int(now * TS_TICKS_PER_S) + self.ts_offset) & SEQ_MASK

    def echo_age_s(self, tsecr: int, now: float) -> float | None:
        """How long ago we sent the timestamp the peer echoes; None if it lies in the future."""
        elapsed = seq_diff(self.ts_clock(now), tsecr)
        return elapsed / TS_TICKS_PER_S if elapsed >= 0 else None
