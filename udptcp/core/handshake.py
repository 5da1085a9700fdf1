"""The three-way handshake: our SYN (or SYN-ACK), its retransmission, and what the peer's SYN settles.

RFC 9293 3.5 and 3.10.7.2-3: a segment that reaches a connection in LISTEN or SYN_SENT, and the
ACK that completes a passive open, are judged here. The handshake owns its own counters and
timer (``Timer.HANDSHAKE``, backed off per retransmission, RFC 6298 5.7) and learns the peer's
ISN, window, MSS and options into the parts of the connection it was given. It never changes
the connection's state: each method returns the input it recognised (a :class:`Cause`), and
the connection asks the state machine what that means.

An active open is not over when our side is established. Only our bare ACK of the SYN-ACK
tells the server so, and the server may not resend its SYN-ACK to ask again: until the
handshake proves our address it sends at most three times what it received from us (the
anti-amplification limit, ``Connection._within_amplification_limit``), which a SYN buys for
two retransmissions. Should our ACK be lost that often, a server that waits for us and a
client that waits for the server (a protocol where the server speaks first) would each wait
for ever, and the server would give up on a connection its client believes established. So,
as a QUIC client keeps sending until its address is validated (RFC 9002 6.2.2.1), we repeat
the ACK on the handshake timer (from the server's initial RTO on, doubling) until the server
shows it is established (any segment of it but a SYN or RST), or our own data or FIN takes
over (they are retransmitted until acknowledged, and each carries the ACK), or
``syn_retries`` repetitions are spent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from udptcp.core.congestion.base import CongestionControl
from udptcp.core.negotiated import Negotiated, peer_mss
from udptcp.core.output import Output
from udptcp.core.pacing import Pacer
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import Sender
from udptcp.core.seqnum import unwrap
from udptcp.core.state import RCV_RST, RCV_SYN, RCV_SYN_ACK, Cause
from udptcp.core.syncookies import CookieGrant
from udptcp.core.timers import Timer, Timers
from udptcp.wire import ACK, RST, SYN, Options, encode_datagram

if TYPE_CHECKING:
    from udptcp.config import Config


class Handshake:
    """One connection's opening: what to send, when to resend it, and what the answer says."""

    __slots__ = ("_cc", "_config", "_neg", "_out", "_pacer", "_recovery", "_rtt", "_rx",
                 "_timers", "_tx", "due", "sent_at", "tries", "unconfirmed")

    def __init__(
        self, config: Config, timers: Timers, neg: Negotiated, tx: Sender, rx: Receiver,
        rtt: RttEstimator, cc: CongestionControl, pacer: Pacer, recovery: LossRecovery, out: Output,
    ) -> None:
        self._config = config
        self._timers = timers
        self._neg = neg
        self._tx = tx
        self._rx = rx
        self._rtt = rtt
        self._cc = cc
        self._pacer = pacer
        self._recovery = recovery
        self._out = out
        self.due = False
        """Our SYN (or SYN-ACK) should go out with the next datagrams."""
        self.tries = 0
        """Retransmissions of it so far."""
        self.sent_at: float | None = 0.0
        """When it first went out (the handshake's RTT sample, if it needed no retransmission);
        None when nobody knows (a SYN cookie's SYN-ACK, without timestamps)."""
        self.unconfirmed = False
        """Our active open is established, but the server has not shown that it is: our ACK of
        its SYN-ACK is repeated on ``Timer.HANDSHAKE`` (see the module's docstring)."""

    def sent(self, now: float) -> None:
        """Our SYN or SYN-ACK went out: wait one RTO for its answer."""
        self.due = False
        if self.tries == 0:
            self.sent_at = now
        self._timers.arm(Timer.HANDSHAKE, now + self._rtt.rto_s)

    def retry(self) -> bool:
        """The handshake timer ran out: resend (backing off), or False when retries are spent."""
        if self.tries >= self._config.syn_retries:
            return False
        self.tries += 1
        self._rtt.on_timeout()
        self.due = True
        return True

    def confirm_again(self, now: float) -> None:
        """The handshake timer ran out on an unconfirmed active open: acknowledge the SYN-ACK
        again, and wait twice as long for the next time, unless our data or FIN has gone out
        (it completes the server's handshake itself) or the repetitions are spent."""
        if self._tx.nxt != self._tx.iss + 1 or self.tries >= self._config.syn_retries:
            self.unconfirmed = False
            return
        self.tries += 1
        self._rx.ack_now = True
        self._timers.arm(Timer.HANDSHAKE, now + self._config.rto_initial_s * (1 << self.tries))

    def confirmed(self) -> None:
        """The server showed that it is established, or our data took over: stop repeating."""
        self.unconfirmed = False
        self._timers.cancel(Timer.HANDSHAKE)

    # -- segments ---------------------------------------------------------------------------

    def on_listen(
        self, flags: int, seq: int, ack: int, wnd: int, opts: Options | None,
        ts: tuple[int, int] | None, now: float,
    ) -> Cause | None:
        """RFC 9293 3.10.7.2: a SYN opens (answered by our SYN-ACK); an ACK gets a RST."""
        if flags & RST:
            return None
        if flags & ACK:
            self._out.queue_raw(encode_datagram(RST, ack, 0, 0))
            return None
        if not flags & SYN:
            return None
        self._learn(seq, wnd, opts, ts, now)
        self.due = True
        return RCV_SYN

    def on_syn_sent(
        self, flags: int, seq: int, ack: int, wnd: int, opts: Options | None,
        ts: tuple[int, int] | None, now: float,
    ) -> Cause | None:
        """RFC 9293 3.10.7.3: RCV_SYN_ACK (established), RCV_SYN (a simultaneous open),
        RCV_RST (refused), or None (dropped, perhaps answered by a RST)."""
        tx = self._tx
        ack_ok = False
        if flags & ACK:
            ack_abs = unwrap(ack, tx.iss)
            if ack_abs <= tx.iss or ack_abs > tx.nxt:
                if not flags & RST:
                    self._out.queue_raw(encode_datagram(RST, ack, 0, 0))
                return None
            ack_ok = True
        if flags & RST:
            return RCV_RST if ack_ok else None
        if not flags & SYN:
            return None
        self._learn(seq, wnd, opts, ts, now)
        if not ack_ok:  # simultaneous open: both sent SYNs; ours is answered by a SYN-ACK
            self.due = True
            return RCV_SYN
        tx.una = tx.iss + 1
        tx.wl2 = tx.una
        self._completed(now)
        self._rx.ack_now = True
        self.unconfirmed = True
        self.tries = 0
        # The server resends its SYN-ACK after its initial RTO, and we answer that: a
        # repetition sooner would only duplicate the answer.
        self._timers.arm(Timer.HANDSHAKE, now + self._config.rto_initial_s)
        return RCV_SYN_ACK

    def on_cookie(self, grant: CookieGrant, now: float) -> None:
        """A passive open from a SYN cookie: what the SYN settled comes back in ``grant``; our
        SYN-ACK went out without state. Its ACK comes next; should that not complete the
        handshake, the SYN-ACK is resent as for any half-open connection."""
        rx = self._rx
        rx.start(grant.peer_isn)
        self._settle(grant.peer_mss, grant.mtu_probes, grant.sack, grant.timestamps)
        self._tx.wl1 = rx.irs
        self.sent_at = grant.sent_at
        self._timers.arm(Timer.HANDSHAKE, now + self._rtt.rto_s)

    def on_ack_of_syn(self, ack32: int, wnd: int, seq: int, now: float) -> bool:
        """In SYN_RCVD, the ACK that completes the handshake; False (answered by RST) if it
        acknowledges something we did not send."""
        tx = self._tx
        ack = unwrap(ack32, tx.una)
        if not tx.una < ack <= tx.nxt:
            self._out.queue_raw(encode_datagram(RST, ack32, 0, 0))
            return False
        tx.una = tx.iss + 1
        tx.wnd = tx.max_wnd = wnd
        tx.wl1 = seq
        tx.wl2 = tx.una
        self._completed(now)
        return True

    def _completed(self, now: float) -> None:
        """Our SYN is acknowledged: time it, unless it needed a retransmission (Karn)."""
        self._timers.cancel(Timer.HANDSHAKE)
        if self.tries:
            self._rtt.on_handshake_retransmitted()
        elif self.sent_at is not None:
            self._rtt.on_sample(now - self.sent_at)

    def _learn(
        self, seq: int, wnd: int, opts: Options | None, ts: tuple[int, int] | None, now: float
    ) -> None:
        """Take the peer's ISN, window, MSS and options from its SYN (or SYN-ACK)."""
        tx, rx = self._tx, self._rx
        rx.start(seq)
        self._settle(
            peer_mss(opts.mss if opts is not None else None),
            opts is not None and opts.mtu_probe_permitted,
            opts is not None and opts.sack_permitted,
            ts is not None,
        )
        if self._neg.timestamps and ts is not None:
            rx.ts_recent = ts[0]
            rx.ts_recent_at = now
        tx.wnd = tx.max_wnd = wnd
        tx.wl1 = rx.irs

    def _settle(self, mss: int, mtu_probes: bool, sack: bool, timestamps: bool) -> None:
        """What the peer offered, and so what both use: the segment size (and the initial
        window that follows from it), MTU probes, SACK, timestamps."""
        config, tx, neg = self._config, self._tx, self._neg
        neg.peer_mss = mss
        tx.max_seg = min(config.initial_mss, mss)
        self._cc.start_window(tx.max_seg, config.initial_window_segments)
        self._pacer.set_segment_size(tx.max_seg)
        neg.mtu_probes = config.discovers_mss and mtu_probes
        neg.sack = self._recovery.sack = config.sack and sack
        neg.timestamps = config.timestamps and timestamps
