"""What the ACK field of an acceptable segment does to the sending side (Linux's ``tcp_ack``).

RFC 9293 3.10.7.4's fifth step: an ACK of something never sent is answered and dropped, one
far older than the window is challenged (RFC 5961 5.2), the peer's window is taken if the
segment is newer than the last one that set it, and an ACK that acknowledges new data or
carries SACK blocks goes to loss recovery; a duplicate ACK counts towards fast retransmit.
"""

from __future__ import annotations

from udptcp.core.checks import ChallengeAcks, split_sack
from udptcp.core.liveness import Liveness
from udptcp.core.negotiated import Negotiated
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.sender import Sender
from udptcp.core.seqnum import unwrap
from udptcp.wire import Options


class AckHandler:
    """Applies the ACK field, window and SACK option of arriving segments."""

    __slots__ = ("_challenges", "_liveness", "_neg", "_recovery", "_rx", "_tx")

    def __init__(
        self, tx: Sender, rx: Receiver, neg: Negotiated, recovery: LossRecovery,
        liveness: Liveness, challenges: ChallengeAcks,
    ) -> None:
        self._tx = tx
        self._rx = rx
        self._neg = neg
        self._recovery = recovery
        self._liveness = liveness
        self._challenges = challenges

    def on_ack_field(
        self, ack32: int, wnd: int, seq: int, opts: Options | None, ts: tuple[int, int] | None,
        now: float, flags: int, data_len: int,
    ) -> bool:
        """Process the ACK of a segment already found in the window; False when the segment
        must be dropped (the peer is answered with an ACK or a challenge ACK)."""
        tx = self._tx
        ack = unwrap(ack32, tx.una)
        if ack > tx.nxt:
            # It acknowledges something never sent: RFC 5961 5.2's challenge ACK, rate limited
            # (a peer whose RCV.NXT a forged segment moved would loop with us otherwise).
            self._challenges.send(now)
            return False
        if ack < tx.una - tx.max_wnd:
            self._challenges.send(now)  # RFC 5961 5.2: far too old to be real
            return False
        duplicate = tx.is_duplicate_ack(ack, wnd, data_len, flags)
        tx.update_window(seq, ack, wnd)
        self._liveness.ack_received(tx.wnd > 0)
        blocks: list[tuple[int, int]] = []
        dsack: tuple[int, int] | None = None
        if opts is not None and opts.sack and self._neg.sack:
            blocks, dsack = split_sack(opts.sack, tx.una, ack)
        if ack > tx.una or blocks or dsack is not None:
            self.on_new_ack(ack, blocks, dsack, ts, now)
        elif duplicate:
            self._recovery.on_duplicate_ack(now)
        return True

    def on_new_ack(
        self, ack: int, blocks: list[tuple[int, int]], dsack: tuple[int, int] | None,
        ts: tuple[int, int] | None, now: float,
    ) -> None:
        """An ACK that moves SND.UNA to ``ack`` (unwrapped) or carries SACK blocks."""
        tsecr = ts[1] if ts is not None else None
        echo_age_s = self._neg.echo_age_s(tsecr, now) if tsecr else None
        out = self._recovery.on_ack(ack, blocks, dsack, tsecr, echo_age_s, now)
        if out.acked:
            self._liveness.data_acked(now, self._tx.in_flight)
