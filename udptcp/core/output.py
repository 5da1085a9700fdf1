"""What a connection sends: handshake segments, data, retransmissions, probes and ACKs.

``Output.collect(now, ...)`` is the whole send path (Linux's ``tcp_write_xmit`` in spirit):
queued control segments first, then the SYN or SYN-ACK, then retransmissions of lost segments,
new data and the FIN as the congestion window, the peer's window and pacing allow, and last a
pure ACK if no data segment carried one. Payload is a view of the send buffer's chunks, copied
once, into the datagram.

The send path is given the parts it works on (the two halves, loss recovery, the congestion
controller, the pacer) and writes no connection fields: after each ``collect`` its report
attributes (``syn_sent``, ``new_data_sent``, ``window_closed``, ``probe_done``, ``pace_at``)
say what happened, and the connection arms its timers from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from udptcp.core.congestion.base import CongestionControl
from udptcp.core.negotiated import Negotiated
from udptcp.core.pacing import PACING_SLACK_BYTES, Pacer
from udptcp.core.receiver import Receiver
from udptcp.core.recovery import LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import Sender
from udptcp.core.seqnum import SEQ_MASK
from udptcp.core.state import HANDSHAKING, SENDING, SYNCHRONIZED, State
from udptcp.core.stats import ConnectionStats
from udptcp.wire import (
    ACK,
    FIN,
    HEADER_LEN,
    MAX_SACK_BLOCKS,
    SYN,
    encode_datagram,
    encode_options,
    encode_sack_option,
    encode_timestamps_option,
)

if TYPE_CHECKING:
    from udptcp.config import Config

S = State


class Output:
    """Builds every datagram one connection sends."""

    __slots__ = (
        "_budget",
        "_cc",
        "_config",
        "_fields",
        "_mtu_probe_ack",
        "_neg",
        "_pacer",
        "_pending",
        "_recovery",
        "_rtt",
        "_rx",
        "_spent",
        "_stats",
        "_tx",
        "_window_probe",
        "new_data_sent",
        "pace_at",
        "probe_done",
        "syn_sent",
        "window_closed",
    )

    def __init__(
        self, config: Config, neg: Negotiated, tx: Sender, rx: Receiver, recovery: LossRecovery,
        cc: CongestionControl, pacer: Pacer, rtt: RttEstimator, stats: ConnectionStats,
    ) -> None:
        self._config = config
        self._neg = neg
        self._tx = tx
        self._rx = rx
        self._recovery = recovery
        self._cc = cc
        self._pacer = pacer
        self._rtt = rtt
        self._stats = stats
        self._pending: list[bytes] | None = None
        """Ready-made datagrams for the next ``collect`` (made on first use: an idle connection
        keeps no list)."""
        self._window_probe = False
        self._mtu_probe_ack: int | None = None
        self._fields: tuple[int, int, bytes] | None = None
        self._budget = 0.0
        """Octets the pacer lets go in the ``collect`` under way."""
        self._spent = 0
        self.syn_sent = False
        """The last ``collect`` sent our SYN or SYN-ACK."""
        self.new_data_sent = False
        """The last ``collect`` sent new sequence space (data or FIN)."""
        self.window_closed = False
        """The last ``collect`` found data waiting for a zero window, nothing in flight."""
        self.probe_done = False
        """The last ``collect`` dealt with the tail loss probe it was asked for."""
        self.pace_at: float | None = None
        """When the pacer lets the next segment go, if it held one back in the last ``collect``."""

    def queue_raw(self, datagram: bytes) -> None:
        """Send this ready-made datagram (a RST built by the input path) with the next batch."""
        if self._pending is None:
            self._pending = []
        self._pending.append(datagram)

    def queue_control(self, flags: int, seq: int) -> None:
        """A bare control segment (RST on abort) with our sequence number and current ACK."""
        self.queue_raw(encode_datagram(flags, seq & SEQ_MASK, self._rx.rcv_nxt & SEQ_MASK, 0))

    def queue_mtu_probe_ack(self, probe_id: int) -> None:
        """Answer a path-MTU probe of the peer with the next datagrams (an ACK echoing its id)."""
        self._mtu_probe_ack = probe_id

    def queue_probe(self) -> None:
        """Probe a zero window or an idle peer: an ACK with an old sequence number, which
        the peer must answer with an ACK of its own (RFC 9293 3.8.4, 3.8.6.1)."""
        self._window_probe = True

    def collect(
        self, now: float, state: State, send_syn: bool, send_probe: bool,
        mtu_probe: tuple[int, int] | None = None,
    ) -> list[bytes]:
        """Every datagram due now in ``state``; ``send_syn`` asks for our SYN (or SYN-ACK),
        ``send_probe`` for a tail loss probe and ``mtu_probe`` for a path-MTU probe of that
        ``(identifier, datagram size)``."""
        out = self._pending if self._pending is not None else []
        self._pending = None
        self._fields = None
        self.syn_sent = self.new_data_sent = self.window_closed = self.probe_done = False
        self.pace_at = None
        rx = self._rx
        if send_syn and state in HANDSHAKING:
            out.append(self._syn(now, with_ack=state is S.SYN_RCVD))
            self.syn_sent = True
        elif state in SENDING:
            if mtu_probe is not None:
                out.append(self._mtu_probe(now, *mtu_probe))
            self._send_data(now, out, send_probe)
        if state in SYNCHRONIZED:
            if self._mtu_probe_ack is not None:
                out.append(self._mtu_probe_ack_segment(now, self._mtu_probe_ack))
                self._mtu_probe_ack = None
            elif self._window_probe:
                self._window_probe = False
                out.append(self._segment(ACK, self._tx.una - 1, b"", now))
            elif rx.ack_now:
                out.append(self._segment(ACK, self._tx.nxt, b"", now))
        elif rx.ack_now and state is S.SYN_RCVD:
            out.append(self._segment(ACK, self._tx.nxt, b"", now))
        self._fields = None  # nothing of this burst is kept while the connection idles
        return out

    # -- segments --------------------------------------------------------------------------

    def _syn(self, now: float, with_ack: bool) -> bytes:
        config, neg, rx = self._config, self._neg, self._rx
        timestamps = None
        if config.timestamps and (not with_ack or neg.timestamps):
            timestamps = (neg.ts_clock(now), rx.ts_recent or 0 if with_ack else 0)
        options = encode_options(
            mss=config.announced_mss,
            sack_permitted=config.sack and (not with_ack or neg.sack),
            timestamps=timestamps,
            mtu_probe_permitted=True,  # we answer probes, whether or not we send any
        )
        self._stats.segments_sent += 1
        iss = self._tx.iss & SEQ_MASK
        if with_ack:
            rx.on_ack_sent()
            return encode_datagram(SYN | ACK, iss, rx.rcv_nxt & SEQ_MASK, rx.advertise(), b"", options)
        return encode_datagram(SYN, iss, 0, rx.buffer_bytes, b"", options)

    def _mtu_probe(self, now: float, probe_id: int, size: int) -> bytes:
        """A path-MTU probe: a datagram of exactly ``size`` octets, padded, in no sequence space."""
        rx, neg = self._rx, self._neg
        options = encode_options(
            timestamps=(neg.ts_clock(now), rx.ts_recent or 0) if neg.timestamps else None,
            mtu_probe=probe_id,
        )
        padding = bytes(size - HEADER_LEN - len(options))
        self._stats.segments_sent += 1
        return encode_datagram(
            ACK, self._tx.nxt & SEQ_MASK, rx.rcv_nxt & SEQ_MASK, rx.window, padding, options
        )

    def _mtu_probe_ack_segment(self, now: float, probe_id: int) -> bytes:
        """The ACK that answers a path-MTU probe: our current ACK, with the probe's id echoed."""
        rx, neg = self._rx, self._neg
        options = encode_options(
            timestamps=(neg.ts_clock(now), rx.ts_recent or 0) if neg.timestamps else None,
            mtu_probe_ack=probe_id,
        )
        window = rx.advertise()
        rx.on_ack_sent()
        self._stats.segments_sent += 1
        return encode_datagram(ACK, self._tx.nxt & SEQ_MASK, rx.rcv_nxt & SEQ_MASK, window, b"", options)

    def _segment(self, flags: int, seq: int, payload: bytes | memoryview, now: float) -> bytes:
        """A segment carrying our current ACK, window and options.

        Those are the same for every segment of one burst (nothing arrives in between), so
        they are worked out once per ``collect`` unless SACK blocks make the first one special.
        """
        self._stats.segments_sent += 1
        fields = self._fields
        if fields is not None:
            return encode_datagram(flags, seq & SEQ_MASK, fields[0], fields[1], payload, fields[2])
        rx, neg = self._rx, self._neg
        options = b""
        if neg.timestamps:
            options = encode_timestamps_option(neg.ts_clock(now), rx.ts_recent or 0)
        sack = neg.sack and (rx.ooo is not None or rx.dsack is not None)
        if sack:
            blocks = rx.sack_blocks(MAX_SACK_BLOCKS - 1 if neg.timestamps else MAX_SACK_BLOCKS)
            if blocks:
                options += encode_sack_option([(start & SEQ_MASK, end & SEQ_MASK) for start, end in blocks])
        window = rx.advertise()
        rx.on_ack_sent()
        ack = rx.rcv_nxt & SEQ_MASK
        if not sack:
            self._fields = (ack, window, options)
        return encode_datagram(flags, seq & SEQ_MASK, ack, window, payload, options)

    # -- data ------------------------------------------------------------------------------

    def _send_data(self, now: float, out: list[bytes], send_probe: bool) -> None:
        tx, cc, rec, neg, pacer = self._tx, self._cc, self._recovery, self._neg, self._pacer
        if self._config.pacing:
            pacer.rate = cc.pacing_rate(self._rtt)
        self._budget = pacer.tokens(now)  # ``now`` holds for the whole burst: one reading
        self._spent = 0
        ts = neg.ts_clock(now) if neg.timestamps else None
        try:
            if send_probe:
                self.probe_done = True
                self._tail_loss_probe(now, ts, out)
            cwnd = cc.cwnd
            if not neg.sack and rec.dupacks and not rec.in_recovery:
                cwnd += min(rec.dupacks, 2) * tx.max_seg  # limited transmit (RFC 3042)
            while (lost := tx.next_lost()) is not None:
                size = lost.end - lost.start
                # The segment at SND.UNA holds everything up: resend it at once (RFC 5681 3.2).
                if tx.pipe and tx.pipe + size > cwnd and lost.start > tx.una:
                    return
                if not self._paced(now, size):
                    return
                fin = tx.fin_seq is not None and lost.end > tx.fin_seq
                out.append(self._segment(
                    ACK | FIN if fin else ACK, lost.start, tx.payload(lost.start, lost.end), now
                ))
                tx.on_retransmit(lost, now)
                rec.on_retransmit(lost.end, ts, now)
            self._send_new(now, out, cwnd)
        finally:
            if self._spent:
                pacer.on_sent(now, self._spent)

    def _send_new(self, now: float, out: list[bytes], cwnd: int) -> None:
        tx = self._tx
        buf = tx.buf
        mss = tx.max_seg
        fin_seq = tx.fin_seq
        stats = self._stats
        while True:
            nxt = tx.nxt
            unsent = buf.start + buf.size - nxt
            fin = fin_seq is not None and nxt <= fin_seq
            if unsent <= 0 and not fin:
                if tx.pipe < cwnd:
                    tx.mark_app_limited()
                break
            size = 0
            if unsent > 0:
                size = min(mss, unsent, tx.una + tx.wnd - nxt, cwnd - tx.pipe)
                if size <= 0:
                    if tx.una + tx.wnd <= nxt and not tx.in_flight:
                        self.window_closed = True  # zero window: the connection starts probing
                    break
                if size < mss and size < unsent and tx.in_flight and size < tx.max_wnd // 2:
                    break  # sender-side silly window avoidance: wait for a useful window
            with_fin = fin and nxt + size == fin_seq
            if not self._paced(now, size or 1):
                break
            payload = buf.take(nxt, nxt + size) if size else b""
            out.append(self._segment(ACK | FIN if with_fin else ACK, nxt, payload, now))
            tx.on_send_new(nxt + size + (1 if with_fin else 0), now)
            stats.bytes_sent += size
            self.new_data_sent = True
            if with_fin:
                break

    def _paced(self, now: float, size: int) -> bool:
        """Spend pacing tokens for ``size`` octets, or note when to try again."""
        budget = self._budget
        if size <= budget + PACING_SLACK_BYTES:
            self._budget = budget - size
            self._spent += size
            return True
        rate = self._pacer.rate
        assert rate is not None  # the budget is finite only while pacing
        self.pace_at = now + (size - budget) / rate
        return False

    def _tail_loss_probe(self, now: float, ts: int | None, out: list[bytes]) -> None:
        """RFC 8985 7.3: send one new segment if the peer's window allows, else resend the last."""
        tx, rec = self._tx, self._recovery
        nxt = tx.nxt
        size = min(tx.max_seg, tx.data_end - nxt, tx.una + tx.wnd - nxt)
        if size > 0:
            out.append(self._segment(ACK, nxt, tx.payload(nxt, nxt + size), now))
            tx.on_send_new(nxt + size, now)
            self._stats.bytes_sent += size
            rec.on_probe_sent(now, retransmitted=False, tsval=ts)
            return
        last = tx.last_unsacked()
        if last is None:
            return
        fin = tx.fin_seq is not None and last.end > tx.fin_seq
        out.append(self._segment(
            ACK | FIN if fin else ACK, last.start, tx.payload(last.start, last.end), now
        ))
        tx.on_retransmit(last, now)
        self._stats.retransmitted_segments += 1
        rec.on_probe_sent(now, retransmitted=True, tsval=ts)
