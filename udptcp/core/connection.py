"""One connection's protocol logic, sans I/O: RFC 9293 section 3.10 over udptcp segments.

Drive it like aioquic's ``QuicConnection``: feed ``receive_datagram(data, now)``, the
application's ``send``/``shutdown``/``close``/``abort``, and ``handle_timer(now)`` when
``get_timer()`` comes due; collect ``datagrams_to_send(now)`` and ``next_event()``.

This module holds the application's calls, the timers and the state changes; segment arrival
(RFC 9293 3.10.7) is in ``udptcp.core.arrival`` and sending in ``udptcp.core.output``.
"""

from __future__ import annotations

from collections import deque

from udptcp.config import Config
from udptcp.core import congestion
from udptcp.core.arrival import SegmentArrival
from udptcp.core.errors import LocalProtocolError
from udptcp.core.events import (
    CloseReason,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionTerminated,
    DataReceived,
    EofReceived,
    Event,
    StateChanged,
)
from udptcp.core.output import Output
from udptcp.core.pacing import Pacer
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import RateSample, Sender
from udptcp.core.seqnum import SEQ_MASK, unwrap
from udptcp.core.state import KEEPALIVE_STATES, MAY_RECEIVE, MAY_SEND, OUR_FIN_SENT, TRANSITIONS, Cause, State
from udptcp.core.stats import ConnectionStats

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

INCARNATION_GAP = (1 << 16) + 2
"""How far beyond the old incarnation's last sequence number a new one starts (as Linux)."""

S = State
USER_TIMEOUT_STATES = (KEEPALIVE_STATES | OUR_FIN_SENT) - {S.TIME_WAIT}
"""States in which unacknowledged data or a silent peer can time out the connection."""


class Connection(SegmentArrival):
    """A TCP-like connection: handshake, reliable ordered data, half-close, resets, timers."""

    def __init__(self, config: Config, *, isn: int) -> None:
        if not 0 <= isn <= SEQ_MASK:
            raise ValueError(f"isn must be a 32-bit unsigned int, got {isn}")
        self.config = config
        self.stats = ConnectionStats()
        self._state = S.CLOSED
        self._events: deque[Event] = deque()
        self._now = 0.0
        self._passive = False
        self._app_closed = False
        self._eof_pending = False
        self._send_complete = False
        self.tx = Sender()
        self.tx.start(isn)
        self.tx.max_seg = config.mss
        self.rx = Receiver(config.recv_buffer_bytes, config.mss)
        self.rtt = RttEstimator(config.rto_initial_s, config.rto_min_s, config.rto_max_s)
        self.cc = congestion.create(
            config.congestion_control, config.mss, config.initial_window_segments
        )
        self.recovery = LossRecovery(self.tx, self.rtt, self.cc, self.stats, config.delayed_ack_s)
        self.pacer = Pacer(config.mss)
        self.rate_sample = RateSample()
        self.out = Output(self)
        self.sack_ok = False
        self.ts_ok = False
        self.syn_tries = 0
        self.syn_at: float | None = None
        self.syn_sent_at = 0.0
        self.syn_due = False
        self.close_at: float | None = None
        self.persist_at: float | None = None
        self.probes_out = 0
        self.persist_backoff = 0
        self.probe_due = False
        self.last_heard = 0.0
        self.keepalive_at: float | None = None
        self.keepalive_probes = 0
        self.unacked_since: float | None = None
        self._challenge_window = -1
        self._challenges = 0

    # -- what the driver reads -------------------------------------------------------------

    @property
    def state(self) -> State:
        """The RFC 9293 state the connection is in."""
        return self._state

    @property
    def send_buffered(self) -> int:
        """Octets the application queued that the peer has not acknowledged yet."""
        return self.tx.buffered

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or None if nothing is pending."""
        best = self.recovery.deadline()
        for t in (self.syn_at, self.rx.delack_at, self.persist_at, self.close_at,
                  self.out.pace_at, self.keepalive_at, self._user_timeout_at()):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Every datagram that is due now (the congestion window and pacing permitting)."""
        self._now = now
        return self.out.collect(now)

    # -- what the application does ---------------------------------------------------------

    def connect(self, now: float) -> None:
        """Active open: send a SYN (CLOSED -> SYN_SENT)."""
        self._need(S.CLOSED, "connect")
        self._now = now
        self.last_heard = now
        self._set_state(S.SYN_SENT, Cause.ACTIVE_OPEN)
        self.syn_due = True

    def listen(self) -> None:
        """Passive open: wait for a SYN (CLOSED -> LISTEN)."""
        self._need(S.CLOSED, "listen")
        self._passive = True
        self._set_state(S.LISTEN, Cause.PASSIVE_OPEN)

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
        if state in (S.LISTEN, S.SYN_SENT):
            self._set_state(S.CLOSED, Cause.CLOSE)
        elif state in (S.SYN_RCVD, S.ESTABLISHED):
            self.tx.fin_seq = self.tx.data_end
            self._set_state(S.FIN_WAIT_1, Cause.CLOSE)
        elif state is S.CLOSE_WAIT:
            self.tx.fin_seq = self.tx.data_end
            self._set_state(S.LAST_ACK, Cause.CLOSE)
        elif state is not S.CLOSED and self.tx.fin_seq is None:
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
        if self._state in (S.LISTEN, S.SYN_SENT, S.SYN_RCVD, S.ESTABLISHED, S.CLOSE_WAIT):
            self.shutdown()
        elif self._state is S.FIN_WAIT_2 and self.close_at is None:
            self.close_at = self._now + self.config.fin_wait_2_timeout_s

    def abort(self) -> None:
        """Drop the connection at once; the peer gets a RST if it knows of us."""
        if self._state in (S.SYN_RCVD, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT):
            self.out.queue_control(RST | ACK, self.tx.nxt)
        if self._state is not S.CLOSED:
            self._set_state(S.CLOSED, Cause.ABORT)

    def successor_isn(self, syn_seq: int, syn_tsval: int | None = None) -> int | None:
        """In TIME_WAIT, the ISN for a new incarnation that this SYN may open, else None.

        RFC 1122 4.2.2.13 and RFC 6191: a SYN may reopen the pair early if its timestamp is
        newer than any the old incarnation saw (both used timestamps) or, without them, if its
        sequence number lies beyond everything the old incarnation received. The new
        incarnation starts beyond everything the old one sent, and PAWS or the sequence
        numbers keep any old segment out of the new windows.
        """
        if self._state is not S.TIME_WAIT:
            return None
        recent = self.rx.ts_recent
        if self.ts_ok and recent is not None and syn_tsval is not None:
            if not 0 < (syn_tsval - recent) & SEQ_MASK < 0x80000000:
                return None
        elif unwrap(syn_seq, self.rx.rcv_nxt) <= self.rx.rcv_nxt:
            return None
        return (self.tx.nxt + INCARNATION_GAP) & SEQ_MASK

    def end_time_wait(self) -> None:
        """A new incarnation takes over the pair of addresses (after ``successor_isn``)."""
        self._need(S.TIME_WAIT, "end_time_wait")
        self._set_state(S.CLOSED, Cause.RCV_SYN)

    def destination_unreachable(self) -> None:
        """The network reported the peer's port unreachable (an ICMP error on the socket).

        RFC 1122 4.2.3.9 makes that a hard error: while opening, the open fails as refused
        (nothing listens there). Afterwards it is ignored, as Linux does: a forged ICMP
        message must not be able to kill a connection, and a restarted peer answers RST.
        """
        if self._state is S.SYN_SENT:
            self._fail(CloseReason.REFUSED, Cause.RCV_RST, send_reset=False)

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
        if self.close_at is not None and now >= self.close_at:
            self.close_at = None
            if self._state is S.TIME_WAIT:
                self._set_state(S.CLOSED, Cause.TIME_WAIT_TIMEOUT)
            elif self._state is S.FIN_WAIT_2:
                self._set_state(S.CLOSED, Cause.FIN_WAIT_2_TIMEOUT)
            return
        if self.syn_at is not None and now >= self.syn_at:
            self._on_handshake_timeout()
            return
        rec = self.recovery
        if rec.rto_at is not None and now >= rec.rto_at:
            if self.tx.wnd == 0 and now - self.last_heard < self.config.rto_max_s:
                rec.timeouts = 0  # the peer shrank its window but answers: these are probes
            if rec.timeouts >= self.config.retries:
                self._fail(CloseReason.TIMED_OUT, Cause.RETRIES_EXHAUSTED, send_reset=True)
                return
            rec.on_rto(now)
        elif rec.pto_at is not None and now >= rec.pto_at:
            rec.pto_at = None
            self.probe_due = True
        if rec.reo_at is not None and now >= rec.reo_at:
            rec.on_reorder_timer(now)
        if self.rx.delack_at is not None and now >= self.rx.delack_at:
            self.rx.delack_at = None
            self.rx.ack_now = True
        if self.persist_at is not None and now >= self.persist_at:
            self._on_persist_timeout(now)
        if self.out.pace_at is not None and now >= self.out.pace_at:
            self.out.pace_at = None
        if self.keepalive_at is not None and now >= self.keepalive_at:
            self._on_keepalive_timer(now)
        user_timeout_at = self._user_timeout_at()
        if user_timeout_at is not None and now >= user_timeout_at:
            self._fail(CloseReason.TIMED_OUT, Cause.USER_TIMEOUT, send_reset=True)

    def _on_handshake_timeout(self) -> None:
        self.syn_at = None
        if self.syn_tries >= self.config.syn_retries:
            if self._state is S.SYN_RCVD and self._passive:
                self._set_state(S.LISTEN, Cause.RETRIES_EXHAUSTED)
            else:
                self._fail(CloseReason.TIMED_OUT, Cause.RETRIES_EXHAUSTED, send_reset=False)
            return
        self.syn_tries += 1
        self.rtt.on_timeout()
        self.syn_due = True

    def _user_timeout_at(self) -> float | None:
        """When the user timeout (RFC 5482) fails the connection, if it is running."""
        limit = self.config.user_timeout_s
        if limit is None or self._state not in USER_TIMEOUT_STATES:
            return None
        since = self.unacked_since
        if self.keepalive_probes and (since is None or self.last_heard < since):
            since = self.last_heard  # keepalive probes unanswered: silence counts too (as Linux)
        return None if since is None else since + limit

    def _on_keepalive_timer(self, now: float) -> None:
        """RFC 9293 3.8.4: after keepalive_s of silence with nothing outstanding, probe;
        unanswered probes fail the connection."""
        config = self.config
        self.keepalive_at = None
        if self._state not in KEEPALIVE_STATES or config.keepalive_s is None:
            return
        if self.tx.in_flight or self.tx.buffered:
            # Data is outstanding or queued: the retransmission and persist timers watch the
            # peer, with their larger budget (as Linux's keepalive timer does).
            self.keepalive_probes = 0
            self.keepalive_at = now + config.keepalive_s
            return
        idle_until = self.last_heard + config.keepalive_s  # one expression, so no float gap
        if now < idle_until and not self.keepalive_probes:
            self.keepalive_at = idle_until
            return
        if self.keepalive_probes >= config.keepalive_probes and config.user_timeout_s is None:
            self._fail(CloseReason.TIMED_OUT, Cause.RETRIES_EXHAUSTED, send_reset=True)
            return
        self.keepalive_probes += 1
        self.stats.keepalive_probes += 1
        self.out.queue_probe()
        self.keepalive_at = now + config.keepalive_interval_s

    def _heard_from_peer(self, now: float) -> None:
        self.last_heard = now
        if self.keepalive_probes:
            self.keepalive_probes = 0
            self.keepalive_at = None
        if self.keepalive_at is None and self.config.keepalive_s is not None:
            self.keepalive_at = now + self.config.keepalive_s

    def _on_persist_timeout(self, now: float) -> None:
        self.persist_at = None
        if self.probes_out >= self.config.retries:
            self._fail(CloseReason.TIMED_OUT, Cause.RETRIES_EXHAUSTED, send_reset=True)
            return
        self.probes_out += 1
        self.persist_backoff += 1
        self.stats.window_probes += 1
        self.out.queue_probe()
        interval = self.rtt.rto_s * (1 << min(self.persist_backoff, 16))
        self.persist_at = now + min(interval, self.config.rto_max_s)

    # -- state changes ---------------------------------------------------------------------

    def _need(self, state: State, action: str) -> None:
        if self._state is not state:
            raise LocalProtocolError(
                f"{action}() needs a {state.name} connection; this one is {self._state.name}"
            )

    def _fail(self, reason: CloseReason, cause: Cause, *, send_reset: bool) -> None:
        if send_reset and self._state not in (S.SYN_SENT, S.LISTEN, S.CLOSED):
            self.out.queue_control(RST | ACK, self.tx.nxt)
        self._events.append(ConnectionFailed(reason))
        self._set_state(S.CLOSED, cause)

    def _set_state(self, new: State, cause: Cause) -> None:
        old = self._state
        allowed = TRANSITIONS.get((old, cause))
        if allowed is None or new not in allowed:
            raise AssertionError(f"illegal transition {old.name} --{cause.value}--> {new.name}")
        self._state = new
        self._events.append(StateChanged(old, new, cause))
        if new is S.ESTABLISHED:
            self._events.append(ConnectionEstablished())
            if self.config.keepalive_s is not None:
                self.keepalive_at = self._now + self.config.keepalive_s
        elif new is S.TIME_WAIT:
            self._stop_timers()
            self.close_at = self._now + self.config.time_wait_s
        elif new is S.CLOSED or (new is S.LISTEN and old is S.SYN_RCVD):
            self._stop_timers()
            self.close_at = None
            self._events.append(ConnectionTerminated())
            if new is S.LISTEN:
                self._forget_half_open()

    def _forget_half_open(self) -> None:
        """Back in LISTEN: start over as a fresh listener, with a new ISN further along."""
        isn = (self.tx.iss + INCARNATION_GAP) & SEQ_MASK
        config = self.config
        self.tx = Sender()
        self.tx.start(isn)
        self.tx.max_seg = config.mss
        self.rx = Receiver(config.recv_buffer_bytes, config.mss)
        self.rtt = RttEstimator(config.rto_initial_s, config.rto_min_s, config.rto_max_s)
        self.cc = congestion.create(config.congestion_control, config.mss, config.initial_window_segments)
        self.recovery = LossRecovery(self.tx, self.rtt, self.cc, self.stats, config.delayed_ack_s)
        self.out = Output(self)
        self.syn_tries = 0
        self.syn_due = False

    def _stop_timers(self) -> None:
        rec = self.recovery
        rec.rto_at = rec.pto_at = rec.reo_at = None
        self.syn_at = None
        self.persist_at = None
        self.out.pace_at = None
        self.probe_due = False
        self.keepalive_at = None
        self.unacked_since = None
