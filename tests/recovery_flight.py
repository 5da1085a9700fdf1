"""A sender past its handshake with ``LossRecovery`` over it, for the recovery tests.

No connection and no segments: the tests put segments in the scoreboard by hand
(``Sender.on_send_new``), report them to recovery as the send path would (``on_sent``,
``on_retransmit``, ``on_probe_sent``), feed ACKs as plain numbers (``on_ack``,
``on_duplicate_ack``) and fire timers by calling their handlers at a chosen ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence

from udptcp.core import congestion
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import AckOutcome, Sender, SentSegment
from udptcp.core.stats import ConnectionStats
from udptcp.core.timers import Timers

MSS_BYTES = 1000
ISS = 10_000
INITIAL_WINDOW_SEGMENTS = 10
RTT_S = 0.1
"""The one RTT sample taken before each test (the handshake's): SRTT 0.1 s, RTTVAR 0.05 s."""
RTO_MIN_S = 0.2
RTO_S = RTT_S + max(RTO_MIN_S, 4 * RTT_S / 2)
"""0.3 s: RFC 6298's SRTT + max(G, 4 * RTTVAR) after that sample, with rto_min_s as G."""
DELAYED_ACK_S = 0.04
REO_WND_S = RTT_S / 4
"""RACK's initial reordering window: min_RTT / 4 (RFC 8985 6.2)."""
TSVAL_ORIGINAL = 1_000
TSVAL_RETRANSMISSION = 500_000


def edge(i: int) -> int:
    """The sequence number where data segment ``i`` (counting from 0) starts."""
    return ISS + 1 + i * MSS_BYTES


class Flight:
    """A sender past its handshake, with loss recovery and the parts it drives."""

    def __init__(self, *, sack: bool = True, rtt_sample_s: float | None = RTT_S, cc: str = "newreno") -> None:
        self.tx = Sender()
        self.tx.start(ISS)
        self.tx.una = ISS + 1  # the SYN is acknowledged
        self.tx.max_seg = MSS_BYTES
        self.tx.wnd = self.tx.max_wnd = 1 << 20
        self.rtt = RttEstimator(1.0, RTO_MIN_S, 60.0)
        if rtt_sample_s is not None:
            self.rtt.on_sample(rtt_sample_s)
        self.cc = congestion.create(cc, MSS_BYTES, INITIAL_WINDOW_SEGMENTS)
        self.stats = ConnectionStats()
        self.timers = Timers()
        self.rec = LossRecovery(self.tx, self.rtt, self.cc, self.stats, self.timers, DELAYED_ACK_S)
        self.rec.sack = sack
        self.segs: list[SentSegment] = []

    def send(self, count: int, now: float) -> list[SentSegment]:
        """``count`` new full segments go out at ``now``."""
        tx = self.tx
        tx.queue(bytes(count * MSS_BYTES))
        sent = []
        for _ in range(count):
            sent.append(tx.on_send_new(tx.nxt + MSS_BYTES, now))
            self.rec.on_sent(now)
        self.segs.extend(sent)
        return sent

    def retransmit(self, i: int, now: float, tsval: int | None = None) -> None:
        """Segment ``i`` goes out again, as the send path resends a lost one."""
        seg = self.segs[i]
        self.tx.on_retransmit(seg, now)
        self.rec.on_retransmit(seg.end, tsval, now)

    def ack(
        self, upto: int, now: float, *, sacked: Sequence[tuple[int, int]] = (),
        dsack: tuple[int, int] | None = None, tsecr: int | None = None, echo_age_s: float | None = None,
    ) -> AckOutcome:
        """An ACK of segments ``0..upto-1``, SACKing segments ``[a, b)`` for each ``(a, b)``,
        with an optional DSACK of segments ``[a, b)``."""
        blocks = [(edge(a), edge(b)) for a, b in sacked]
        dup = (edge(dsack[0]), edge(dsack[1])) if dsack is not None else None
        return self.rec.on_ack(edge(upto), blocks, dup, tsecr, echo_age_s, now)

    def lost(self) -> list[int]:
        """Indices of the segments judged lost and not yet resent."""
        return [i for i, seg in enumerate(self.segs) if seg.lost]


def reordered_flight() -> Flight:
    """Segment 0 sent at 0 s, segments 1 and 2 at 0.01 s; at 0.11 s segment 2 is SACKed."""
    f = Flight()
    f.send(1, 0.0)
    f.send(2, 0.01)
    f.ack(0, 0.11, sacked=[(2, 3)])
    return f
