"""The acceptance checks of segment arrival, as plain functions over the send and receive halves.

RFC 9293 3.10.7.4 runs every segment of a synchronized connection through a fixed series of
checks before its contents count: is it in the window, is its timestamp not older than one
already seen (PAWS, RFC 7323 5.3), is its RST exactly at RCV.NXT (RFC 5961), which of its SACK
blocks is a DSACK (RFC 2883), what round-trip time does its ACK measure. Each takes what it
reads explicitly, so it can be tested alone and the connection only strings them together.
"""

from __future__ import annotations

from typing import Final

from udptcp.core.negotiated import Negotiated
from udptcp.core.receiver import Receiver
from udptcp.core.sender import AckOutcome
from udptcp.core.seqnum import SEQ_MASK, seq_ge, seq_gt, unwrap
from udptcp.core.stats import ConnectionStats
from udptcp.wire import ACK, FIN, RST, SYN, MalformedSegment, decode_datagram, encode_datagram

PAWS_IDLE_S: Final = 1000.0
"""After this long without a segment, TS.Recent is too old to reject anything with (RFC 7323 5.5)."""
TS_TICK_S: Final = 1e-6
"""Our timestamp clock's resolution."""
CHALLENGE_ACKS_PER_S: Final = 10
"""RFC 5961 7: challenge ACKs are rate limited, per connection here."""
OUT_OF_WINDOW_ACK_INTERVAL_S: Final = 0.5
"""At most one ACK per this interval answers pure ACKs outside the window (Linux's
``tcp_invalid_ratelimit``): two sides that disagree on the sequence numbers (a segment forged
at exactly RCV.NXT, say) would otherwise answer each other's ACKs without end."""


def reset_for_unknown(data: bytes | bytearray | memoryview) -> bytes | None:
    """The RST that answers a datagram matching no connection (RFC 9293 3.10.7.1), if any.

    Malformed datagrams and RSTs get no answer (never a RST for a RST).
    """
    try:
        flags, seq, ack, _wnd, payload, _opts = decode_datagram(data)
    except MalformedSegment:
        return None
    if flags & RST:
        return None
    if flags & ACK:
        return encode_datagram(RST, ack, 0, 0)
    seg_len = len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    return encode_datagram(RST | ACK, 0, (seq + seg_len) & SEQ_MASK, 0)


def in_window(rx: Receiver, flags: int, seq: int, size: int) -> bool:
    """RFC 9293 3.10.7.4 first check: does the segment overlap the receive window?

    ``seq`` is unwrapped; ``size`` counts payload octets (SYN and FIN are added here).
    """
    rcv_nxt = rx.rcv_nxt
    window = rx.window
    seg_len = size + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    if seg_len == 0:
        return seq == rcv_nxt if window == 0 else rcv_nxt <= seq < rcv_nxt + window
    if window == 0:
        return size == 0 and seq == rcv_nxt  # a bare FIN needs no buffer space
    last = seq + seg_len - 1
    return rcv_nxt <= seq < rcv_nxt + window or rcv_nxt <= last < rcv_nxt + window


def paws_ok(rx: Receiver, tsval: int, now: float) -> bool:
    """RFC 7323 5.3: False for a segment whose timestamp is older than TS.Recent.

    A TS.Recent not refreshed for ``PAWS_IDLE_S`` is forgotten instead (5.5): after a long
    idle time the peer's clock may have wrapped, and the segment is let through.
    """
    recent = rx.ts_recent
    if recent is None or seq_ge(tsval, recent):
        return True
    if now - rx.ts_recent_at > PAWS_IDLE_S:
        rx.ts_recent = None
        return True
    return False


def may_reopen(rx: Receiver, neg: Negotiated, syn_seq: int, syn_tsval: int | None) -> bool:
    """RFC 1122 4.2.2.13 and RFC 6191: may this SYN reopen a pair of addresses in TIME_WAIT?

    Yes if its timestamp is newer than any the old incarnation saw (both used timestamps) or,
    without them, if its sequence number lies beyond everything the old incarnation received.
    """
    recent = rx.ts_recent
    if neg.timestamps and recent is not None and syn_tsval is not None:
        return seq_gt(syn_tsval, recent)
    return unwrap(syn_seq, rx.rcv_nxt) > rx.rcv_nxt


def split_sack(
    raw: tuple[tuple[int, int], ...], una: int, ack: int
) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """The SACK blocks unwrapped near SND.UNA, and apart from them the DSACK block, if the
    first block is one (RFC 2883 4: below the cumulative ACK, or inside the second block)."""
    blocks = [(unwrap(s, una), unwrap(e, una)) for s, e in raw]
    first = blocks[0]
    if first[1] <= ack or (len(blocks) > 1 and blocks[1][0] <= first[0] and first[1] <= blocks[1][1]):
        return blocks[1:], first
    return blocks, None


def rtt_sample(out: AckOutcome, echo_age_s: float | None, now: float) -> float | None:
    """The round-trip time this ACK measures, or None if it measures none reliably.

    Both clocks overstate at times: a segment's send time when the ACKs for it were lost
    (its ACK comes late), the echoed timestamp (``echo_age_s``) while a hole is open (the peer
    echoes the segment before the hole, RFC 7323 4.3). Each is an upper bound of a real round
    trip, so the smaller is taken. When only retransmitted segments are acknowledged (Karn),
    the echo measures only if it echoes the retransmission itself: an older echo means the
    original arrived and its ACK was lost, which times nothing.
    """
    if out.rtt_sent_at is not None:
        sent_s = now - out.rtt_sent_at
        return sent_s if echo_age_s is None or echo_age_s > sent_s else echo_age_s
    latest = out.latest
    if (
        echo_age_s is not None and out.acked and latest is not None
        and now - echo_age_s >= latest.sent_at - TS_TICK_S
    ):
        return echo_age_s
    return None


class ChallengeAcks:
    """RFC 5961's challenge ACKs, at most ``CHALLENGE_ACKS_PER_S`` in each second of ``now``,
    and the answers to out-of-window pure ACKs, at most one per ``OUT_OF_WINDOW_ACK_INTERVAL_S``.

    A segment that could be a blind attack (a RST or SYN inside the window, an ACK far too
    old, an ACK of data never sent) is answered by an ACK rather than acted on; the peer, if
    real, corrects itself. The rates bound what a forged segment can set off.
    """

    __slots__ = ("_out_of_window_at", "_rx", "_second", "_sent", "_stats")

    def __init__(self, rx: Receiver, stats: ConnectionStats) -> None:
        self._rx = rx
        self._stats = stats
        self._second = -1
        self._sent = 0
        self._out_of_window_at = -OUT_OF_WINDOW_ACK_INTERVAL_S

    def answer_out_of_window(self, now: float) -> None:
        """A pure ACK arrived outside the window: acknowledge, at most once per
        ``OUT_OF_WINDOW_ACK_INTERVAL_S`` (a segment with data or a FIN is answered always: its
        sender retransmits until it hears, as Linux's ``tcp_oow_rate_limited`` has it)."""
        if now - self._out_of_window_at >= OUT_OF_WINDOW_ACK_INTERVAL_S:
            self._out_of_window_at = now
            self._rx.ack_now = True
        else:
            self._stats.acks_rate_limited += 1

    def send(self, now: float) -> None:
        """Acknowledge now, unless this second's challenge ACKs are spent."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._sent = 0
        if self._sent < CHALLENGE_ACKS_PER_S:
            self._sent += 1
            self._stats.challenge_acks += 1
            self._rx.ack_now = True
        else:
            self._stats.acks_rate_limited += 1
