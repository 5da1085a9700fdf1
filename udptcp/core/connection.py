"""One connection's protocol logic, sans I/O: RFC 9293 section 3.10 over udptcp segments.

Drive it like aioquic's ``QuicConnection``: feed ``receive_datagram(data, now)``, the
application's ``send``/``shutdown``/``close``/``abort``, and ``handle_timer(now)`` when
``get_timer()`` comes due; collect ``datagrams_to_send(now)`` and ``next_event()``.

This class holds the application's calls, segment arrival (RFC 9293 3.10.7, each stage in its
own method, in RFC order), the timers' effects and the events. What it is made of lives in
modules of their own, each given only what it works on: the two halves of the byte stream
(``sender``, ``receiver``), loss recovery, the congestion controller, the send path
(``output``), the handshake, header prediction (``fastpath``), the acceptance checks
(``checks``), the ACK field (``acks``), the liveness probes (``liveness``), path-MTU discovery
(``pmtud``), the deadlines (``timers``), and the state machine (``state``), which alone decides
state changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from udptcp.core import congestion
from udptcp.core.acks import AckHandler
from udptcp.core.autotune import WindowTuner
from udptcp.core.checks import ChallengeAcks, in_window, may_reopen, paws_ok, reset_for_unknown
from udptcp.core.errors import LocalProtocolError
from udptcp.core.events import (
    CloseReason,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionTerminated,
    DataReceived,
    EofReceived,
    Event,
    SendComplete,
    StateChanged,
)
from udptcp.core.fastpath import FastPath
from udptcp.core.handshake import Handshake
from udptcp.core.liveness import Liveness, Verdict
from udptcp.core.negotiated import Negotiated
from udptcp.core.output import Output
from udptcp.core.pacing import Pacer
from udptcp.core.pmtud import BLACK_HOLE_TIMEOUTS, PathMtu
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import Sender
from udptcp.core.seqnum import SEQ_MASK, unwrap
from udptcp.core.state import (
    ABORT,
    ACTIVE_OPEN,
    AWAITING_PROOF,
    AWAITING_SYN,
    CLOSE,
    CLOSED,
    ESTABLISHED,
    FIN_WAIT_2,
    KEEPALIVE_STATES,
    LISTEN,
    MAY_RECEIVE,
    MAY_SEND,
    ON_CLOSE,
    ON_TIMEOUT,
    OPEN_FOR_DATA,
    OUR_FIN_SENT,
    PASSIVE_OPEN,
    RCV_ACK_OF_FIN,
    RCV_ACK_OF_SYN,
    RCV_DATA_AFTER_CLOSE,
    RCV_FIN,
    RCV_RST,
    RCV_SYN,
    RCV_SYN_ACK,
    RESET_ON_ABORT,
    RESET_ON_FAILURE,
    RETRIES_EXHAUSTED,
    SYN_RCVD,
    SYN_SENT,
    TIME_WAIT,
    USER_TIMEOUT,
    USER_TIMEOUT_STATES,
    Cause,
    State,
    leaves_peer_open,
    next_state,
)
from udptcp.core.stats import ConnectionStats
from udptcp.core.syncookies import CookieGrant
from udptcp.core.timers import Timer, Timers
from udptcp.wire import ACK, FIN, RST, SYN, MalformedSegment, Options, decode_segment

if TYPE_CHECKING:
    from udptcp.config import Config

INCARNATION_GAP: Final = (1 << 16) + 2
"""How far beyond the old incarnation's last sequence number a new one starts (as Linux)."""
AMPLIFICATION_FACTOR: Final = 3
"""Before the peer's address is proven, we send it at most this many times the octets it sent
us (RFC 9000 section 8.1): a forged SYN must not make us flood the address it names."""



class Connection:
    """A TCP-like connection: handshake, reliable ordered data, half-close, resets, timers."""

    def __init__(self, config: Config, *, isn: int) -> None:
        if not 0 <= isn <= SEQ_MASK:
            raise ValueError(f"isn must be a 32-bit unsigned int, got {isn}")
        self.config = config
        self.stats = ConnectionStats()
        self.timers = Timers()
        self.liveness = Liveness(config, self.timers, self.stats)
        self._state = CLOSED
        self._events: list[Event] = []
        """Taken from the front by ``next_event``: a list, as an empty deque costs 700 octets
        more and a pass rarely queues more than a few dozen."""
        self._now = 0.0
        self._passive = False
        self._app_closed = False
        self._eof_pending = False
        self._send_complete = False
        self._probe_due = False
        self._unproven_received = 0
        self._unproven_sent = 0
        self._receive_queue_bytes: int | None = None
        self.peer_may_be_open = False
        """The connection ended (CLOSED) in a way that may leave the peer believing it open
        (``state.leaves_peer_open``): its driver should answer what the peer sends next with a
        RST for a while, as a kernel answers a closed port."""
        self._start(isn)

    def _start(self, isn: int) -> None:
        """The parts that one incarnation of the connection is made of, from our ISN on."""
        config = self.config
        self.tx = Sender()
        self.tx.start(isn)
        mss = config.initial_mss
        self.tx.max_seg = mss
        self.rx = Receiver(config.recv_buffer_bytes, mss, self.timers, config.quick_acks)
        self.rtt = RttEstimator(config.rto_initial_s, config.rto_min_s, config.rto_max_s)
        self.tuner = WindowTuner(self.rx, self.rtt, config.recv_buffer_bytes)
        if self._receive_queue_bytes is not None:
            self.tuner.set_receive_queue(self._receive_queue_bytes)
        self.cc = congestion.create(config.congestion_control, mss, config.initial_window_segments)
        self.recovery = LossRecovery(
            self.tx, self.rtt, self.cc, self.stats, self.timers, config.delayed_ack_s
        )
        self.pacer = Pacer(mss)
        self.neg = Negotiated(ts_offset=isn)
        self.pmtu = PathMtu(self.timers, self.tx, self.cc, self.pacer, self.neg)
        self.out = Output(config, self.neg, self.tx, self.rx, self.recovery, self.cc, self.pacer,
                          self.rtt, self.stats)
        self._challenges = ChallengeAcks(self.rx, self.stats)
        self.acks = AckHandler(self.tx, self.rx, self.neg, self.recovery, self.liveness, self._challenges)
        self.fast = FastPath(config, self.tx, self.rx, self.acks, self.liveness, self.stats, self._events)
        self.handshake = Handshake(config, self.timers, self.neg, self.tx, self.rx, self.rtt, self.cc,
                                   self.pacer, self.recovery, self.out)

    # -- what the driver reads -------------------------------------------------------------

    @property
    def state(self) -> State:
        """The RFC 9293 state the connection is in."""
        return self._state

    @property
    def send_buffered(self) -> int:
        """Octets the application queued that the peer has not acknowledged yet."""
        return self.tx.buffered

    @property
    def buffered_bytes(self) -> int:
        """Octets this connection keeps: its send buffer, out-of-order data, data held for a
        paused reader (what an endpoint's ``memory_limit_bytes`` counts)."""
        rx = self.rx
        return self.tx.buf.size + rx.ooo_bytes + rx.held_bytes

    @property
    def sack_ok(self) -> bool:
        """Both sides use SACK."""
        return self.neg.sack

    @property
    def ts_ok(self) -> bool:
        """Both sides use timestamps."""
        return self.neg.timestamps

    @property
    def time_wait_ends_at(self) -> float | None:
        """In TIME_WAIT, when it ends (a retransmitted FIN of the peer pushes it back)."""
        return self.timers.deadline(Timer.CLOSE) if self._state is TIME_WAIT else None

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.pop(0) if self._events else None

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or None if nothing is pending."""
        return self.timers.earliest()

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Every datagram that is due now (the congestion window and pacing permitting)."""
        self._now = now
        if self._state in MAY_RECEIVE:
            self.tuner.update(now)
        out = self.out
        may_probe = self.neg.mtu_probes and self._state in OPEN_FOR_DATA and not self.recovery.in_recovery
        mtu_probe = self.pmtu.probe_to_send(now, self.rtt.rto_s, may_probe)
        datagrams = out.collect(now, self._state, self.handshake.due, self._probe_due, mtu_probe)
        if datagrams and self._passive and self._state in AWAITING_PROOF:
            datagrams = self._within_amplification_limit(datagrams)
        if out.syn_sent:
            self.handshake.sent(now)
        if out.probe_done:
            self._probe_due = False
        if out.new_data_sent:
            if self.handshake.unconfirmed:
                self.handshake.confirmed()  # our data completes the server's handshake now
            self.recovery.on_sent(now)
            self.liveness.data_sent(now)
            self.rx.quick_acks = 0  # our data carries the ACKs now (Linux's pingpong mode)
        if out.window_closed:
            self.liveness.window_closed(now, self.rtt.rto_s)
        if out.pace_at is not None:
            self.timers.arm(Timer.PACING, out.pace_at)
        return datagrams

    def _within_amplification_limit(self, datagrams: list[bytes]) -> list[bytes]:
        """The datagrams that fit the amplification limit, in order; the rest are not sent
        (and counted). Retransmissions count like the rest: a SYN-ACK withheld is a try spent,
        and the peer's own retransmitted SYN earns room for another."""
        room = AMPLIFICATION_FACTOR * self._unproven_received - self._unproven_sent
        sent: list[bytes] = []
        for datagram in datagrams:
            if len(datagram) > room:
                self.stats.amplification_limited += len(datagrams) - len(sent)
                break
            room -= len(datagram)
            sent.append(datagram)
        self._unproven_sent += sum(len(d) for d in sent)
        return sent

    # -- what the application does ---------------------------------------------------------

    def connect(self, now: float) -> None:
        """Active open: send a SYN (CLOSED -> SYN_SENT)."""
        self._need(CLOSED, "connect")
        self._now = now
        self.liveness.last_heard = now
        self._apply(ACTIVE_OPEN)
        self.handshake.due = True

    def listen(self) -> None:
        """Passive open: wait for a SYN (CLOSED -> LISTEN)."""
        self._need(CLOSED, "listen")
        self._passive = True
        self._apply(PASSIVE_OPEN)

    def accept_cookie(self, grant: CookieGrant, now: float) -> None:
        """Passive open from a SYN cookie (LISTEN -> SYN_RCVD, as if the SYN had just been
        answered): create the connection with ``isn=grant.isn``, call ``listen()``, this, then
        feed it the ACK that returned the cookie."""
        self._need(LISTEN, "accept_cookie")
        self._now = now
        self.liveness.last_heard = now
        self.handshake.on_cookie(grant, now)
        self._apply(RCV_SYN)

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue data; it goes out as the windows allow, once the connection is established."""
        if self._state not in MAY_SEND or self.tx.fin_seq is not None:
            raise LocalProtocolError(
                f"cannot send in state {self._state.name}: this side is "
                + ("closed for sending" if self.tx.fin_seq is not None else "not open")
            )
        if data:
            self.tx.queue(data)

    def shutdown(self) -> None:
        """RFC 9293 CLOSE: no more data from us; a FIN follows what is queued (half-close)."""
        state = self._state
        if state in ON_CLOSE:
            if ON_CLOSE[state] in OUR_FIN_SENT:
                self.tx.fin_seq = self.tx.data_end  # our FIN follows what is queued
            self._apply(CLOSE)
        elif state is not CLOSED and self.tx.fin_seq is None:
            raise LocalProtocolError(f"cannot shut down in state {state.name}")

    def close(self) -> None:
        """Full close: shut down, and take no more data (new data from the peer resets).

        Data still held for the application (reading paused) would be lost silently, so
        closing then aborts instead, as TCP does (RFC 2525 2.17).
        """
        self._app_closed = True
        if self.rx.held_bytes:
            self.abort()
            return
        if self._state in ON_CLOSE:
            self.shutdown()
        elif self._state is FIN_WAIT_2:
            self.timers.arm_if_idle(Timer.CLOSE, self._now + self.config.fin_wait_2_timeout_s)

    def abort(self) -> None:
        """Drop the connection at once; the peer gets a RST if it knows of us."""
        if self._state in RESET_ON_ABORT:
            self.out.queue_control(RST | ACK, self.tx.nxt)
        if self._state is not CLOSED:
            self._apply(ABORT)

    def successor_isn(self, syn_seq: int, syn_tsval: int | None = None) -> int | None:
        """In TIME_WAIT, the ISN for a new incarnation that this SYN may open (``may_reopen``),
        else None. It starts beyond everything the old incarnation sent, so PAWS or the sequence
        numbers keep any old segment out of the new windows (RFC 6191)."""
        if self._state is not TIME_WAIT or not may_reopen(self.rx, self.neg, syn_seq, syn_tsval):
            return None
        return (self.tx.nxt + INCARNATION_GAP) & SEQ_MASK

    def end_time_wait(self) -> None:
        """A new incarnation takes over the pair of addresses (after ``successor_isn``)."""
        self._need(TIME_WAIT, "end_time_wait")
        self._apply(RCV_SYN)

    def destination_unreachable(self) -> None:
        """The network reported the peer's port unreachable (an ICMP error on the socket).

        RFC 1122 4.2.3.9: while opening, the open fails as refused. Afterwards it is ignored,
        as Linux does: a forged ICMP message must not be able to kill a connection.
        """
        if self._state is SYN_SENT:
            self._fail(CloseReason.REFUSED, RCV_RST, send_reset=False)

    def datagram_too_big(self, size: int, now: float) -> None:
        """The local interface refused to send a datagram of ``size`` octets (EMSGSIZE): a
        probe that size fails at once, and data segments that large shrink."""
        self._now = now
        if self.neg.mtu_probes and self.pmtu.on_too_big(size, now):
            self.pmtu.resize(resend=True)

    def set_receive_queue(self, queue_bytes: int) -> None:
        """The driver's receive queue (its socket's) holds ``queue_bytes`` octets: the window
        starts there and grows only as the path shows it needs to (``autotune``). Call it
        before the first segment is sent or received."""
        self._receive_queue_bytes = queue_bytes
        self.tuner.set_receive_queue(queue_bytes)

    def set_memory_pressure(self, pressure: bool) -> None:
        """The endpoint is (or is no longer) short of memory. Under pressure the receive window
        reopens only within ``PRESSURE_FLOOR_BYTES`` and data that would be kept is refused
        (``Receiver.pressure``); once it ends, the peer hears of the window that reopens."""
        rx = self.rx
        rx.pressure = pressure
        if not pressure and self._state in MAY_RECEIVE and rx.window_update_due():
            rx.ack_now = True

    def pause_reading(self) -> None:
        """Hold in-order data instead of delivering it; the advertised window shrinks."""
        self.rx.paused = True

    def resume_reading(self) -> None:
        """Deliver what was held and reopen the window (telling the peer if it matters)."""
        rx = self.rx
        if not rx.paused:
            return
        rx.paused = False
        for chunk in rx.take_held():
            self._events.append(DataReceived(chunk))
        if self._eof_pending:
            self._eof_pending = False
            self._events.append(EofReceived())
        if self._state in MAY_RECEIVE and rx.window_update_due():
            rx.ack_now = True

    # -- timers ----------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Run every timer that is due at ``now``."""
        self._now = now
        timers = self.timers
        if timers.fire(Timer.CLOSE, now):
            cause = ON_TIMEOUT.get(self._state)
            if cause is not None:
                self._apply(cause)
            return
        if timers.fire(Timer.HANDSHAKE, now):
            if self.handshake.unconfirmed:
                self.handshake.confirm_again(now)
                return
            if self.handshake.retry():
                return
            if self._passive:  # a half-open connection no application waits for: back to LISTEN
                self._apply(RETRIES_EXHAUSTED)
            else:
                self._fail(CloseReason.TIMED_OUT, RETRIES_EXHAUSTED, send_reset=False)
            return
        if timers.due(Timer.RTO, now):
            if not self._on_rto(now):
                return
        elif timers.fire(Timer.PROBE, now):
            self._probe_due = True
        if timers.fire(Timer.REORDER, now):
            self.recovery.on_reorder_timer(now)
        if timers.fire(Timer.DELAYED_ACK, now):
            self.rx.ack_now = True
        if timers.fire(Timer.PERSIST, now):
            self._act(self.liveness.on_persist_timer(now, self.rtt.rto_s))
        timers.fire(Timer.PACING, now)  # the send path is about to run, which is all it asks
        if timers.fire(Timer.KEEPALIVE, now):
            tx = self.tx
            busy = tx.in_flight or bool(tx.buffered)
            self._act(self.liveness.on_keepalive_timer(now, self._state in KEEPALIVE_STATES, busy))
        if timers.fire(Timer.PATH_MTU, now):
            self.pmtu.on_timer(now)
        if timers.fire(Timer.USER_TIMEOUT, now) and self._state in USER_TIMEOUT_STATES:
            self._fail(CloseReason.TIMED_OUT, USER_TIMEOUT, send_reset=True)

    def _on_rto(self, now: float) -> bool:
        """The retransmission timer ran out: back off and resend, or give up (False)."""
        rec = self.recovery
        if self.tx.wnd == 0 and now - self.liveness.last_heard < self.config.rto_max_s:
            rec.timeouts = 0  # the peer shrank its window but answers: these are probes
        if rec.timeouts >= self.config.retries:
            self._fail(CloseReason.TIMED_OUT, RETRIES_EXHAUSTED, send_reset=True)
            return False
        rec.on_rto(now)
        if self.neg.mtu_probes and rec.timeouts >= BLACK_HOLE_TIMEOUTS and self.pmtu.on_black_hole(now):
            self.pmtu.resize(resend=False)  # on_rto marked everything lost already
        return True

    def _act(self, verdict: Verdict | None) -> None:
        """Do what a liveness timer asks: probe the peer, or give up on it."""
        if verdict is Verdict.PROBE:
            self.out.queue_probe()
        elif verdict is Verdict.GIVE_UP:
            self._fail(CloseReason.TIMED_OUT, RETRIES_EXHAUSTED, send_reset=True)

    # -- segment arrival (RFC 9293 3.10.7) ---------------------------------------------------

    def receive_datagram(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Process one datagram from the peer. Invalid ones are dropped and counted."""
        self._now = now
        stats = self.stats
        stats.segments_received += 1
        try:
            flags, seq, ack, wnd, payload, ts, opts = decode_segment(data)
        except MalformedSegment:
            stats.dropped_malformed += 1
            return
        if ts is not None and not self.neg.timestamps and self._state not in AWAITING_SYN:
            ts = None  # not agreed: the option means nothing here (RFC 7323 3.2)
        state = self._state
        if self.handshake.unconfirmed and not flags & (SYN | RST):
            self.handshake.confirmed()  # the server is established: it speaks
        if state is ESTABLISHED and opts is None and (
            self.fast.take(flags, seq, ack, wnd, payload, ts, now, self._app_closed)
        ):
            return
        if state in AWAITING_PROOF:
            self._unproven_received += len(data)
        if state is LISTEN:
            if self.handshake.on_listen(flags, seq, ack, wnd, opts, ts, now) is not None:
                self.liveness.last_heard = now
                self._apply(RCV_SYN)
        elif state is SYN_SENT:
            self._on_syn_sent(flags, seq, ack, wnd, payload, opts, ts, now)
        elif state is CLOSED:
            reply = reset_for_unknown(data)
            if reply is not None:
                self.out.queue_raw(reply)
        else:
            self.liveness.heard(now, state in KEEPALIVE_STATES)
            self._on_synchronized(flags, seq, ack, wnd, payload, opts, ts, now)

    def _on_syn_sent(
        self, flags: int, seq: int, ack: int, wnd: int, payload: memoryview,
        opts: Options | None, ts: tuple[int, int] | None, now: float,
    ) -> None:
        cause = self.handshake.on_syn_sent(flags, seq, ack, wnd, opts, ts, now)
        if cause is RCV_RST:
            self._fail(CloseReason.REFUSED, RCV_RST, send_reset=False)
            return
        if cause is None:
            return
        self.liveness.last_heard = now
        self._apply(cause)
        if cause is RCV_SYN_ACK:
            # RFC 9293 3.10.7.3: text and FIN in the SYN-ACK are processed as in ESTABLISHED.
            start = self.rx.rcv_nxt
            if payload:
                self._on_data(start, payload, now)
            if flags & FIN:
                self._on_fin(start + len(payload))

    def _on_synchronized(
        self, flags: int, seq32: int, ack32: int, wnd: int, payload: memoryview,
        opts: Options | None, ts: tuple[int, int] | None, now: float,
    ) -> None:
        rx, stats = self.rx, self.stats
        state = self._state
        seq = unwrap(seq32, rx.rcv_nxt)
        if state is SYN_RCVD and flags & SYN and not flags & RST and seq == rx.irs:
            if not flags & ACK:
                self.handshake.due = True  # our SYN-ACK was lost: the peer repeated its SYN
                return
            flags &= ~SYN  # simultaneous open: the peer's SYN-ACK; its SYN is known, use the ACK
            seq += 1
        if ts is not None and not flags & RST and not paws_ok(rx, ts[0], now):
            stats.paws_rejected += 1
            rx.ack_now = True
            return
        if opts is not None and opts.mtu_probe is not None:
            # Its payload is padding, not data: answer, and drop.
            if in_window(rx, ACK, seq, 0):
                self.out.queue_mtu_probe_ack(opts.mtu_probe)
            return
        if state is TIME_WAIT and flags & FIN and not flags & (RST | SYN) and (
            seq + len(payload) + 1 == rx.rcv_nxt
        ):
            rx.ack_now = True  # the peer missed our last ACK: acknowledge again, wait anew
            self.timers.arm(Timer.CLOSE, now + self.config.time_wait_s)
            stats.duplicate_segments += 1
            return
        if not in_window(rx, flags, seq, len(payload)):
            if not flags & RST:
                if payload or flags & FIN or seq == rx.rcv_nxt - 1:
                    rx.ack_now = True  # data, a FIN, or a probe (keepalive, zero window)
                elif flags & SYN:
                    self._challenges.send(now)  # RFC 5961 4.2
                else:
                    self._challenges.answer_out_of_window(now)
                end = seq + len(payload)
                if payload and end <= rx.rcv_nxt:
                    rx.dsack = (seq, end)  # all of it arrived before: tell the sender (RFC 2883)
                    stats.duplicate_segments += 1
                else:
                    stats.dropped_out_of_window += 1
                if flags & ACK and rx.window == 0 and state is not SYN_RCVD:
                    self._on_ack(ack32, wnd, seq, opts, ts, now, ACK, 0)  # a window probe's ACK
            return
        if flags & RST:
            self._on_rst(seq)
            return
        if opts is not None and opts.mtu_probe_ack is not None and self.neg.mtu_probes and (
            self.pmtu.on_probe_acked(opts.mtu_probe_ack, now)  # only once in the window
        ):
            self.pmtu.resize(resend=False)
        if flags & SYN:
            if state is SYN_RCVD and self._passive:
                self._apply(RCV_SYN)
            else:
                self._challenges.send(now)
            return
        if not flags & ACK:
            return
        if ts is not None:
            rx.update_ts_recent(ts[0], seq, now)
        if state is SYN_RCVD:
            if not self.handshake.on_ack_of_syn(ack32, wnd, seq, now):
                return
            self._apply(RCV_ACK_OF_SYN)
        if not self._on_ack(ack32, wnd, seq, opts, ts, now, flags, len(payload)):
            return
        if payload:
            self._on_data(seq, payload, now)
        if flags & FIN:
            self._on_fin(seq + len(payload))
        elif rx.fin_seq is not None and rx.rcv_nxt == rx.fin_seq:
            self._on_fin(rx.fin_seq)

    def _on_rst(self, seq: int) -> None:
        """RFC 5961 3.2: only a RST at exactly RCV.NXT resets; one inside the window is challenged."""
        if seq != self.rx.rcv_nxt:
            self._challenges.send(self._now)
        elif self._state is TIME_WAIT:
            # RFC 1337 (Linux's tcp_rfc1337=1): a RST must not cut TIME_WAIT short, or an old
            # segment could reach the next connection between these addresses after all.
            self.stats.resets_ignored += 1
        elif self._state is SYN_RCVD and self._passive:
            self._apply(RCV_RST)
        else:
            reason = CloseReason.REFUSED if self._state is SYN_RCVD else CloseReason.RESET
            self._fail(reason, RCV_RST, send_reset=False)

    def _on_ack(
        self, ack32: int, wnd: int, seq: int, opts: Options | None, ts: tuple[int, int] | None,
        now: float, flags: int, data_len: int,
    ) -> bool:
        """RFC 9293 3.10.7.4 fifth check (``acks``); False when the segment must be dropped."""
        if not self.acks.on_ack_field(ack32, wnd, seq, opts, ts, now, flags, data_len):
            return False
        self._check_fin_acked()
        return True

    def _check_fin_acked(self) -> None:
        """Our FIN is acknowledged: the state machine moves on, and the sending is complete."""
        tx = self.tx
        if tx.fin_seq is None or tx.una <= tx.fin_seq:
            return
        if self._apply(RCV_ACK_OF_FIN) and self._state is FIN_WAIT_2 and self._app_closed:
            self.timers.arm(Timer.CLOSE, self._now + self.config.fin_wait_2_timeout_s)
        if not self._send_complete:
            self._send_complete = True
            self._events.append(SendComplete())

    def _on_data(self, seq: int, payload: memoryview, now: float) -> None:
        rx = self.rx
        if self._state not in MAY_RECEIVE:
            return  # the peer's FIN came before: RFC 9293 says ignore the text
        end = seq + len(payload)
        if self._app_closed and end > rx.rcv_nxt:
            # Nobody will read it: tell the peer with a RST rather than drop it silently.
            self.out.queue_control(RST | ACK, self.tx.nxt)
            self._events.append(ConnectionFailed(CloseReason.RESET_AFTER_CLOSE))
            self._apply(RCV_DATA_AFTER_CLOSE)
            return
        before = rx.rcv_nxt
        ready = rx.accept(seq, payload, now, self.config.delayed_ack_s)
        if rx.rcv_nxt == before:
            self.stats.duplicate_segments += 1
        self.stats.bytes_received += rx.rcv_nxt - before
        events = self._events
        for chunk in ready:
            events.append(DataReceived(chunk))

    def _on_fin(self, fin_seq: int) -> None:
        rx = self.rx
        if self._state not in MAY_RECEIVE:
            return
        if fin_seq != rx.rcv_nxt:
            if fin_seq > rx.rcv_nxt:
                rx.fin_seq = fin_seq  # data before it is missing: take the FIN once it is here
            return
        rx.rcv_nxt += 1
        rx.fin_seq = None
        rx.ack_now = True
        if rx.held_bytes or rx.paused:  # the EOF comes after what is held, when reading resumes
            self._eof_pending = True
        else:
            self._events.append(EofReceived())
        self._apply(RCV_FIN)

    # -- state changes ---------------------------------------------------------------------

    def _need(self, state: State, action: str) -> None:
        if self._state is not state:
            raise LocalProtocolError(
                f"{action}() needs a {state.name} connection; this one is {self._state.name}"
            )

    def _fail(self, reason: CloseReason, cause: Cause, *, send_reset: bool) -> None:
        if send_reset and self._state in RESET_ON_FAILURE:
            self.out.queue_control(RST | ACK, self.tx.nxt)
        self._events.append(ConnectionFailed(reason))
        self._apply(cause)

    def _apply(self, cause: Cause) -> bool:
        """Take the edge the state machine has for ``cause`` here, if any; True if one was taken.

        ``state.next_state`` decides; this method only carries out what entering the new state
        means for the connection's timers and events.
        """
        old = self._state
        new = next_state(old, cause, passive=self._passive)
        if new is None:
            return False
        self._state = new
        self._events.append(StateChanged(old, new, cause))
        if new is ESTABLISHED:
            self._events.append(ConnectionEstablished())
            self.liveness.start_keepalive(self._now)
            if self.neg.mtu_probes:
                self.pmtu.start(self._now)
        elif new is TIME_WAIT:
            self._stop_timers()
            self.timers.arm(Timer.CLOSE, self._now + self.config.time_wait_s)
        elif new is CLOSED or (new is LISTEN and old is SYN_RCVD):
            self._stop_timers()
            self.peer_may_be_open = new is CLOSED and leaves_peer_open(old, cause)
            self._events.append(ConnectionTerminated())
            if new is LISTEN:
                # Back in LISTEN: start over as a fresh listener, with a new ISN further along.
                self._start((self.tx.iss + INCARNATION_GAP) & SEQ_MASK)
                self._unproven_received = self._unproven_sent = 0
            else:
                # Nothing will be sent or delivered any more: let the buffers go now, not when
                # the last reference to the connection does (an application's exception that
                # ended it may keep it, in a reference cycle, until the next full collection).
                self.tx.release()
                self.rx.release()
        return True

    def _stop_timers(self) -> None:
        self.timers.cancel_all()
        self._probe_due = False
        self.liveness.unacked_since = None
