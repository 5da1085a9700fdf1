"""One connection's protocol logic, sans I/O: RFC 9293 section 3.10 over udptcp segments.

Drive it like aioquic's ``QuicConnection``: feed ``receive_datagram(data, now)``, the
application's ``send``/``shutdown``/``close``/``abort``, and ``handle_timer(now)`` when
``get_timer()`` comes due; collect ``datagrams_to_send(now)`` and ``next_event()``.

Segment arrival follows RFC 9293 3.10.7 step by step: LISTEN and SYN_SENT have their own
handlers; the synchronized states check the sequence number (with PAWS), then RST, SYN, ACK,
data and FIN, each stage in its own method. Sending is in ``udptcp.core.output``.
"""

from __future__ import annotations

from collections import deque

from udptcp.config import Config
from udptcp.core import congestion
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
from udptcp.core.output import Output
from udptcp.core.pacing import Pacer
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import RateSample, Sender
from udptcp.core.seqnum import SEQ_MASK, unwrap
from udptcp.core.state import MAY_RECEIVE, MAY_SEND, OUR_FIN_SENT, TRANSITIONS, Cause, State
from udptcp.core.stats import ConnectionStats
from udptcp.wire import (
    MalformedSegment,
    Options,
    decode_datagram,
    encode_datagram,
    parse_options,
    parse_timestamps_fast,
)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
DEFAULT_PEER_MSS = 536
"""RFC 9293 3.7.1: the send MSS when the peer's SYN carries no MSS option."""
CHALLENGE_ACKS_PER_S = 10
"""RFC 5961 7: challenge ACKs are rate limited, per connection here."""
PAWS_IDLE_S = 1000.0
"""After this long without a segment, TS.Recent is too old to reject anything with (RFC 7323 5.5)."""

INCARNATION_GAP = (1 << 16) + 2
"""How far beyond the old incarnation's last sequence number a new one starts (as Linux)."""

S = State
KEEPALIVE_STATES = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_2})
"""States in which an idle connection is probed, if keepalive is on."""


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


class Connection:
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

    def successor_isn(self, syn_seq: int) -> int | None:
        """In TIME_WAIT, the ISN for a new incarnation that this SYN may open, else None.

        RFC 1122 4.2.2.13 and RFC 6191: a SYN whose sequence number lies beyond everything the
        old incarnation received may reopen the pair early, and the new one starts beyond
        everything the old one sent, so no old segment can fall inside either new window.
        """
        if self._state is not S.TIME_WAIT or unwrap(syn_seq, self.rx.rcv_nxt) <= self.rx.rcv_nxt:
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
        if limit is None or self._state not in KEEPALIVE_STATES | OUR_FIN_SENT:
            return None
        since = self.unacked_since
        if self.keepalive_probes and (since is None or self.last_heard < since):
            since = self.last_heard  # keepalive probes unanswered: silence counts too (as Linux)
        return None if since is None else since + limit

    def _on_keepalive_timer(self, now: float) -> None:
        """RFC 9293 3.8.4: after keepalive_s of silence, probe; unanswered probes fail."""
        config = self.config
        self.keepalive_at = None
        if self._state not in KEEPALIVE_STATES or config.keepalive_s is None:
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

    # -- segment arrival -------------------------------------------------------------------

    def receive_datagram(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Process one datagram from the peer. Invalid ones are dropped and counted."""
        self._now = now
        stats = self.stats
        stats.segments_received += 1
        try:
            flags, seq, ack, wnd, payload, raw = decode_datagram(data)
            ts: tuple[int, int] | None = None
            opts: Options | None = None
            if raw is not None:
                ts = parse_timestamps_fast(raw)
                if ts is None:
                    opts = parse_options(raw)
                    ts = opts.timestamps
        except MalformedSegment:
            stats.dropped_malformed += 1
            return
        state = self._state
        predictable = state is S.ESTABLISHED and opts is None
        if predictable and self._predicted(flags, seq, ack, wnd, payload, ts, now):
            return
        if state is S.LISTEN:
            self._on_listen(flags, seq, ack, wnd, opts, ts)
        elif state is S.SYN_SENT:
            self._on_syn_sent(flags, seq, ack, wnd, opts, ts, now)
        elif state is S.CLOSED:
            reply = reset_for_unknown(data)
            if reply is not None:
                self.out.queue_raw(reply)
        else:
            if self._state in KEEPALIVE_STATES:
                self._heard_from_peer(now)
            else:
                self.last_heard = now
            self._on_synchronized(flags, seq, ack, wnd, payload, opts, ts, now)

    def _predicted(
        self, flags: int, seq32: int, ack32: int, wnd: int, payload: memoryview,
        ts: tuple[int, int] | None, now: float,
    ) -> bool:
        """Header prediction (Linux's ``tcp_rcv_established`` fast path) for the two segments
        a bulk transfer is made of: the next in-order data with nothing else in it, and a pure
        ACK of new data. Anything unusual returns False and takes the full RFC 9293 path.
        """
        rx, tx = self.rx, self.tx
        rcv_nxt = rx.rcv_nxt
        if (
            flags & ~PSH != ACK
            or seq32 != rcv_nxt & SEQ_MASK
            or wnd != tx.wnd
            or rx.ooo_starts
            or rx.paused
            or rx.fin_seq is not None
        ):
            return False
        if ts is not None and self.ts_ok:
            recent = rx.ts_recent
            if recent is not None and ((ts[0] - recent) & SEQ_MASK) >= 0x80000000:
                return False  # PAWS has something to say: let the full path decide
        size = len(payload)
        if size:
            if ack32 != tx.una & SEQ_MASK or size > rx.adv_right - rcv_nxt or self._app_closed:
                return False
            if ts is not None and self.ts_ok:
                rx.update_ts_recent(ts[0], rcv_nxt, now)
            rx.rcv_nxt = rcv_nxt + size
            rx.count_for_ack(now, self.config.delayed_ack_s)
            self.stats.bytes_received += size
            self._events.append(DataReceived(payload))
        else:
            ack = unwrap(ack32, tx.una)
            if not tx.una < ack <= tx.nxt:
                return False
            if ts is not None and self.ts_ok:
                rx.update_ts_recent(ts[0], rcv_nxt, now)
            tx.wl1 = rcv_nxt
            tx.wl2 = ack
            self.probes_out = 0
            self._on_new_ack(ack, [], False, ts, now)
        if self.config.keepalive_s is not None:
            self._heard_from_peer(now)
        else:
            self.last_heard = now
        return True

    def _on_listen(
        self, flags: int, seq: int, ack: int, wnd: int, opts: Options | None,
        ts: tuple[int, int] | None,
    ) -> None:
        if flags & RST:
            return
        if flags & ACK:
            self.out.queue_raw(encode_datagram(RST, ack, 0, 0))
            return
        if not flags & SYN:
            return
        self._take_syn(seq, wnd, opts, ts)
        self.last_heard = self._now
        self._set_state(S.SYN_RCVD, Cause.RCV_SYN)
        self.syn_due = True

    def _take_syn(self, seq: int, wnd: int, opts: Options | None, ts: tuple[int, int] | None) -> None:
        """Learn the peer's ISN, window and options from its SYN (or SYN-ACK)."""
        config = self.config
        self.rx.start(seq)
        peer_mss = opts.mss if opts is not None and opts.mss else DEFAULT_PEER_MSS
        self.tx.max_seg = min(config.mss, peer_mss)
        self.cc.mss = self.tx.max_seg
        self.pacer = Pacer(self.tx.max_seg)
        self.sack_ok = config.sack and opts is not None and opts.sack_permitted
        self.recovery.sack = self.sack_ok
        self.ts_ok = config.timestamps and ts is not None
        if self.ts_ok and ts is not None:
            self.rx.ts_recent = ts[0]
            self.rx.ts_recent_at = self._now
        self.tx.wnd = self.tx.max_wnd = wnd
        self.tx.wl1 = self.rx.irs

    def _on_syn_sent(
        self, flags: int, seq: int, ack: int, wnd: int, opts: Options | None,
        ts: tuple[int, int] | None, now: float,
    ) -> None:
        tx = self.tx
        ack_ok = False
        if flags & ACK:
            ack_abs = unwrap(ack, tx.iss)
            if ack_abs <= tx.iss or ack_abs > tx.nxt:
                if not flags & RST:
                    self.out.queue_raw(encode_datagram(RST, ack, 0, 0))
                return
            ack_ok = True
        if flags & RST:
            if ack_ok:
                self._fail(CloseReason.REFUSED, Cause.RCV_RST, send_reset=False)
            return
        if not flags & SYN:
            return
        self._take_syn(seq, wnd, opts, ts)
        self.last_heard = now
        if not ack_ok:  # simultaneous open: both sent SYNs
            self._set_state(S.SYN_RCVD, Cause.RCV_SYN)
            self.syn_due = True
            return
        tx.una = tx.iss + 1
        tx.wl2 = tx.una
        self._handshake_rtt(now, ts)
        self._set_state(S.ESTABLISHED, Cause.RCV_SYN_ACK)
        self.rx.ack_now = True

    def _handshake_rtt(self, now: float, ts: tuple[int, int] | None) -> None:
        self.syn_at = None
        if self.syn_tries == 0:
            self.rtt.on_sample(now - self.syn_sent_at)
        else:
            self.rtt.on_handshake_retransmitted()

    def _on_synchronized(
        self, flags: int, seq32: int, ack32: int, wnd: int, payload: memoryview,
        opts: Options | None, ts: tuple[int, int] | None, now: float,
    ) -> None:
        rx = self.rx
        state = self._state
        seq = unwrap(seq32, rx.rcv_nxt)
        if state is S.SYN_RCVD and flags & SYN and not flags & RST and seq == rx.irs:
            if not flags & ACK:
                self.syn_due = True  # our SYN-ACK was lost: the peer repeated its SYN
                return
            flags &= ~SYN  # simultaneous open: the peer's SYN-ACK; its SYN is known, use the ACK
            seq += 1
        if state is S.TIME_WAIT and flags & FIN and not flags & RST:
            rx.ack_now = True  # the peer missed our last ACK: acknowledge again, wait anew
            self.close_at = now + self.config.time_wait_s
            self.stats.duplicate_segments += 1
            return
        if not self._paws_ok(flags, ts, now):
            return
        if not self._acceptable(flags, seq, len(payload)):
            if not flags & RST:
                rx.ack_now = True
                end = seq + len(payload)
                if payload and end <= rx.rcv_nxt:
                    rx.dsack = (seq, end)  # all of it arrived before: tell the sender (RFC 2883)
                    self.stats.duplicate_segments += 1
                else:
                    self.stats.dropped_out_of_window += 1
                if flags & ACK and rx.window == 0 and state is not S.SYN_RCVD:
                    self._on_ack_field(ack32, wnd, seq, opts, ts, now)
            return
        if flags & RST:
            self._on_rst(seq)
            return
        if flags & SYN:
            if state is S.SYN_RCVD and self._passive:
                self._set_state(S.LISTEN, Cause.RCV_SYN)
            else:
                self._challenge_ack(now)
            return
        if not flags & ACK:
            return
        if ts is not None and self.ts_ok:
            rx.update_ts_recent(ts[0], seq, now)
        if state is S.SYN_RCVD and not self._on_syn_rcvd_ack(ack32, wnd, seq, ts, now):
            return
        if not self._on_ack_field(ack32, wnd, seq, opts, ts, now, flags, len(payload)):
            return
        if payload:
            self._on_data(seq, payload, now)
        if flags & FIN:
            self._on_fin(seq + len(payload))
        elif rx.fin_seq is not None and rx.rcv_nxt == rx.fin_seq:
            self._on_fin(rx.fin_seq)

    def _paws_ok(self, flags: int, ts: tuple[int, int] | None, now: float) -> bool:
        """RFC 7323 5.3: drop a segment whose timestamp is older than one already seen."""
        rx = self.rx
        if ts is None or not self.ts_ok or flags & RST or rx.ts_recent is None:
            return True
        if ((ts[0] - rx.ts_recent) & SEQ_MASK) < 0x80000000:
            return True
        if now - rx.ts_recent_at > PAWS_IDLE_S:
            rx.ts_recent = None
            return True
        self.stats.paws_rejected += 1
        rx.ack_now = True
        return False

    def _acceptable(self, flags: int, seq: int, size: int) -> bool:
        """RFC 9293 3.10.7.4 first check: does the segment overlap the receive window?"""
        rx = self.rx
        rcv_nxt = rx.rcv_nxt
        window = rx.window
        seg_len = size + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if seg_len == 0:
            return seq == rcv_nxt if window == 0 else rcv_nxt <= seq < rcv_nxt + window
        if window == 0:
            return size == 0 and seq == rcv_nxt  # a bare FIN needs no buffer space
        last = seq + seg_len - 1
        return rcv_nxt <= seq < rcv_nxt + window or rcv_nxt <= last < rcv_nxt + window

    def _on_rst(self, seq: int) -> None:
        """RFC 5961 3.2: only a RST at exactly RCV.NXT resets; one inside the window is challenged."""
        if seq != self.rx.rcv_nxt:
            self._challenge_ack(self._now)
            return
        state = self._state
        if state is S.SYN_RCVD:
            if self._passive:
                self._set_state(S.LISTEN, Cause.RCV_RST)
            else:
                self._fail(CloseReason.REFUSED, Cause.RCV_RST, send_reset=False)
        elif state is S.TIME_WAIT:
            self._set_state(S.CLOSED, Cause.RCV_RST)
        else:
            self._fail(CloseReason.RESET, Cause.RCV_RST, send_reset=False)

    def _challenge_ack(self, now: float) -> None:
        second = int(now)
        if second != self._challenge_window:
            self._challenge_window = second
            self._challenges = 0
        if self._challenges < CHALLENGE_ACKS_PER_S:
            self._challenges += 1
            self.stats.challenge_acks += 1
            self.rx.ack_now = True

    def _on_syn_rcvd_ack(
        self, ack32: int, wnd: int, seq: int, ts: tuple[int, int] | None, now: float
    ) -> bool:
        tx = self.tx
        ack = unwrap(ack32, tx.una)
        if not tx.una < ack <= tx.nxt:
            self.out.queue_raw(encode_datagram(RST, ack32, 0, 0))
            return False
        tx.una = tx.iss + 1
        tx.wnd = tx.max_wnd = wnd
        tx.wl1 = seq
        tx.wl2 = tx.una
        self._handshake_rtt(now, ts)
        self._set_state(S.ESTABLISHED, Cause.RCV_ACK_OF_SYN)
        return True

    def _on_ack_field(
        self, ack32: int, wnd: int, seq: int, opts: Options | None,
        ts: tuple[int, int] | None, now: float, flags: int = ACK, data_len: int = 0,
    ) -> bool:
        """RFC 9293 3.10.7.4 fifth check; False when the segment must be dropped."""
        tx = self.tx
        ack = unwrap(ack32, tx.una)
        if ack > tx.nxt:
            self.rx.ack_now = True  # it acknowledges something not yet sent
            return False
        if ack < tx.una - tx.max_wnd:
            self._challenge_ack(now)  # RFC 5961 5.2: far too old to be real
            return False
        duplicate = (  # RFC 5681's duplicate ACK: nothing new, nothing else in it
            ack == tx.una and tx.una < tx.nxt and not data_len and wnd == tx.wnd and not flags & (SYN | FIN)
        )
        if tx.wl1 < seq or (tx.wl1 == seq and tx.wl2 <= ack):
            if wnd != tx.wnd:
                tx.wnd = wnd
                tx.max_wnd = max(tx.max_wnd, wnd)
            tx.wl1 = seq
            tx.wl2 = ack
        self.probes_out = 0
        if tx.wnd > 0:
            self.persist_at = None
            self.persist_backoff = 0
        blocks: list[tuple[int, int]] = []
        dsack = False
        if opts is not None and opts.sack and self.sack_ok:
            blocks, dsack = self._sack_blocks(opts.sack, ack)
        if ack > tx.una or blocks:
            self._on_new_ack(ack, blocks, dsack, ts, now)
        elif duplicate:
            self.recovery.on_duplicate_ack(now)
        return True

    def _sack_blocks(
        self, raw: tuple[tuple[int, int], ...], ack: int
    ) -> tuple[list[tuple[int, int]], bool]:
        una = self.tx.una
        blocks = [(unwrap(s, una), unwrap(e, una)) for s, e in raw]
        first_start, first_end = blocks[0]
        dsack = first_end <= ack or (
            len(blocks) > 1 and blocks[1][0] <= first_start and first_end <= blocks[1][1]
        )
        return (blocks[1:] if dsack else blocks), dsack

    def _on_new_ack(
        self, ack: int, blocks: list[tuple[int, int]], dsack: bool,
        ts: tuple[int, int] | None, now: float,
    ) -> None:
        tx, rec = self.tx, self.recovery
        out = tx.on_ack(ack, blocks, now)
        delivered = out.acked + out.sacked
        tsecr = ts[1] if ts is not None and self.ts_ok else None
        if delivered:
            latest = out.latest
            sample_s: float | None = None
            if tsecr is not None and tsecr:
                elapsed = (self.out.ts_clock(now) - tsecr) & SEQ_MASK
                if elapsed < 0x80000000:
                    sample_s = elapsed / 1e6
            elif latest is not None and not latest.retransmitted:
                sample_s = now - latest.sent_at
            if sample_s is not None:
                self.rtt.on_sample(sample_s, max(1, (tx.nxt - tx.una) // tx.max_seg))
            sample = None
            if latest is not None:
                sample = self.rate_sample
                sample.prior_inflight = tx.pipe + delivered
                tx.rate_sample(latest, now, sample)
            self.cc.on_ack(now, delivered, tx.pipe, self.rtt, sample, rec.in_recovery)
        rec.on_ack(out, now, tsecr, dsack)
        if out.acked:
            self.unacked_since = now if tx.in_flight else None
        if tx.fin_seq is not None and ack > tx.fin_seq:
            self._on_fin_acked()

    def _on_fin_acked(self) -> None:
        state = self._state
        if state is S.FIN_WAIT_1:
            self._set_state(S.FIN_WAIT_2, Cause.RCV_ACK_OF_FIN)
            if self._app_closed:
                self.close_at = self._now + self.config.fin_wait_2_timeout_s
        elif state is S.CLOSING:
            self._set_state(S.TIME_WAIT, Cause.RCV_ACK_OF_FIN)
        elif state is S.LAST_ACK:
            self._set_state(S.CLOSED, Cause.RCV_ACK_OF_FIN)
        if not self._send_complete:
            self._send_complete = True
            self._events.append(SendComplete())

    def _on_data(self, seq: int, payload: memoryview, now: float) -> None:
        rx = self.rx
        if self._state not in MAY_RECEIVE:
            return  # the peer's FIN came before: RFC 9293 says ignore the text
        end = seq + len(payload)
        if self._app_closed and end > rx.rcv_nxt:
            self.abort()  # nobody will read it; tell the peer rather than drop it silently
            self._events.append(ConnectionFailed(CloseReason.RESET_AFTER_CLOSE))
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
        if rx.held_bytes:
            self._eof_pending = True
        else:
            self._events.append(EofReceived())
        state = self._state
        if state is S.ESTABLISHED:
            self._set_state(S.CLOSE_WAIT, Cause.RCV_FIN)
        elif state is S.FIN_WAIT_1:
            self._set_state(S.CLOSING, Cause.RCV_FIN)
        elif state is S.FIN_WAIT_2:
            self._set_state(S.TIME_WAIT, Cause.RCV_FIN)

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
