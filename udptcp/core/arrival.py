"""Segment arrival: RFC 9293 section 3.10.7, step by step, for ``Connection``.

LISTEN and SYN_SENT have their own handlers; the synchronized states check the sequence number
(with PAWS), then RST, SYN, ACK, data and FIN, each stage in its own method, in RFC order. In
ESTABLISHED a fast path (header prediction) first takes the two segments bulk transfer is made
of. This is a mixin: ``Connection`` supplies the state it works on and the state changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque

from udptcp.config import MIN_MSS, Config
from udptcp.core.congestion.base import CongestionControl
from udptcp.core.events import (
    CloseReason,
    ConnectionFailed,
    DataReceived,
    EofReceived,
    Event,
    SendComplete,
)
from udptcp.core.output import Output
from udptcp.core.pacing import Pacer
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import AckOutcome, RateSample, Sender
from udptcp.core.seqnum import SEQ_MASK, unwrap
from udptcp.core.state import KEEPALIVE_STATES, MAY_RECEIVE, Cause, State
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
TS_TICK_S = 1e-6
"""Our timestamp clock's resolution."""
PAWS_IDLE_S = 1000.0
"""After this long without a segment, TS.Recent is too old to reject anything with (RFC 7323 5.5)."""

S = State


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


class SegmentArrival(ABC):
    """How a connection takes a segment from its peer."""

    config: Config
    stats: ConnectionStats
    tx: Sender
    rx: Receiver
    rtt: RttEstimator
    cc: CongestionControl
    recovery: LossRecovery
    pacer: Pacer
    out: Output
    rate_sample: RateSample
    sack_ok: bool
    ts_ok: bool
    syn_tries: int
    syn_at: float | None
    syn_sent_at: float
    syn_due: bool
    close_at: float | None
    persist_at: float | None
    persist_backoff: int
    probes_out: int
    last_heard: float
    unacked_since: float | None
    _state: State
    _events: deque[Event]
    _now: float
    _passive: bool
    _app_closed: bool
    _eof_pending: bool
    _send_complete: bool
    _challenge_window: int
    _challenges: int

    @abstractmethod
    def _set_state(self, new: State, cause: Cause) -> None:
        """Move along one edge of the transition table."""

    @abstractmethod
    def _fail(self, reason: CloseReason, cause: Cause, *, send_reset: bool) -> None:
        """End the connection abnormally."""

    @abstractmethod
    def _heard_from_peer(self, now: float) -> None:
        """The peer is alive (keepalive bookkeeping)."""

    @abstractmethod
    def abort(self) -> None:
        """Drop the connection at once, with a RST."""

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
            self._on_syn_sent(flags, seq, ack, wnd, payload, opts, ts, now)
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
            self._on_new_ack(ack, [], None, ts, now)
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
        self.tx.max_seg = min(config.mss, max(peer_mss, MIN_MSS))
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
        self, flags: int, seq: int, ack: int, wnd: int, payload: memoryview,
        opts: Options | None, ts: tuple[int, int] | None, now: float,
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
        # RFC 9293 3.10.7.3: text and FIN in the SYN-ACK are processed as in ESTABLISHED.
        start = self.rx.rcv_nxt
        if payload:
            self._on_data(start, payload, now)
        if flags & FIN:
            self._on_fin(start + len(payload))

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
        if not self._paws_ok(flags, ts, now):
            return
        if state is S.TIME_WAIT and flags & FIN and not flags & (RST | SYN) and (
            seq + len(payload) + 1 == rx.rcv_nxt
        ):
            rx.ack_now = True  # the peer missed our last ACK: acknowledge again, wait anew
            self.close_at = now + self.config.time_wait_s
            self.stats.duplicate_segments += 1
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
            # RFC 1337 (Linux's tcp_rfc1337=1): a RST must not cut TIME_WAIT short, or an old
            # segment could reach the next connection between these addresses after all.
            self.stats.resets_ignored += 1
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
        dsack: tuple[int, int] | None = None
        if opts is not None and opts.sack and self.sack_ok:
            blocks, dsack = self._sack_blocks(opts.sack, ack)
        if ack > tx.una or blocks or dsack is not None:
            self._on_new_ack(ack, blocks, dsack, ts, now)
        elif duplicate:
            self.recovery.on_duplicate_ack(now)
        return True

    def _sack_blocks(
        self, raw: tuple[tuple[int, int], ...], ack: int
    ) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """The SACK blocks, and apart from them the DSACK block (RFC 2883 4) if the first is one."""
        una = self.tx.una
        blocks = [(unwrap(s, una), unwrap(e, una)) for s, e in raw]
        first = blocks[0]
        if first[1] <= ack or (len(blocks) > 1 and blocks[1][0] <= first[0] and first[1] <= blocks[1][1]):
            return blocks[1:], first
        return blocks, None

    def _on_new_ack(
        self, ack: int, blocks: list[tuple[int, int]], dsack: tuple[int, int] | None,
        ts: tuple[int, int] | None, now: float,
    ) -> None:
        tx, rec = self.tx, self.recovery
        out = tx.on_ack(ack, blocks, now)
        delivered = out.acked + out.sacked
        tsecr = ts[1] if ts is not None and self.ts_ok else None
        if delivered:
            latest = out.latest
            sample_s = self._rtt_sample(out, tsecr, now)
            if sample_s is not None:
                self.rtt.on_sample(sample_s, max(1, (tx.nxt - tx.una) // tx.max_seg))
            sample = None
            if latest is not None:
                sample = self.rate_sample
                sample.prior_inflight = tx.pipe + delivered
                tx.rate_sample(latest, now, sample)
            self.cc.on_ack(now, delivered, tx.pipe, self.rtt, sample, rec.in_fast_recovery)
        rec.on_ack(out, now, tsecr, dsack)
        if out.acked:
            self.unacked_since = now if tx.in_flight else None
        if tx.fin_seq is not None and ack > tx.fin_seq:
            self._on_fin_acked()

    def _rtt_sample(self, out: AckOutcome, tsecr: int | None, now: float) -> float | None:
        """The round-trip time this ACK measures, or None if it measures none reliably.

        Both clocks overstate at times: a segment's send time when the ACKs for it were lost
        (its ACK comes late), the echoed timestamp while a hole is open (the peer echoes the
        segment before the hole, RFC 7323 4.3). Each is an upper bound of a real round trip,
        so the smaller is taken. When only retransmitted segments are acknowledged (Karn),
        the echo measures only if it echoes the retransmission itself: an older echo means
        the original arrived and its ACK was lost, which times nothing.
        """
        ts_s: float | None = None
        if tsecr:
            elapsed = (self.out.ts_clock(now) - tsecr) & SEQ_MASK
            if elapsed < 0x80000000:
                ts_s = elapsed / 1e6
        if out.rtt_sent_at is not None:
            sent_s = now - out.rtt_sent_at
            return sent_s if ts_s is None or ts_s > sent_s else ts_s
        latest = out.latest
        if ts_s is not None and out.acked and latest is not None and now - ts_s >= latest.sent_at - TS_TICK_S:
            return ts_s
        return None

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
            # Nobody will read it: tell the peer with a RST rather than drop it silently.
            self.out.queue_control(RST | ACK, self.tx.nxt)
            self._events.append(ConnectionFailed(CloseReason.RESET_AFTER_CLOSE))
            self._set_state(S.CLOSED, Cause.RCV_DATA_AFTER_CLOSE)
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
