"""What a connection sends: handshake segments, data, retransmissions, probes and ACKs.

``Output.collect(now)`` is the whole send path (Linux's ``tcp_write_xmit`` in spirit): queued
control segments first, then the SYN or SYN-ACK, then retransmissions of lost segments, new
data and the FIN as the congestion window, the peer's window and pacing allow, and last a pure
ACK if no data segment carried one. Payload is cut from one memoryview of the send buffer per
call and copied once, into the datagram.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from udptcp.core.seqnum import SEQ_MASK
from udptcp.core.state import SYNCHRONIZED, State
from udptcp.wire import (
    MAX_SACK_BLOCKS,
    OPT_NOP,
    OPT_SACK,
    encode_datagram,
    encode_options,
)

if TYPE_CHECKING:
    from udptcp.core.connection import Connection

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
_TS_OPTION = struct.Struct("!BBBBII")
_SACK_EDGE = struct.Struct("!II")
S = State
SENDING = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.CLOSING, S.LAST_ACK})
"""States in which data or our FIN may still be (re)transmitted."""


class Output:
    """Builds every datagram one connection sends."""

    __slots__ = ("_conn", "_fields", "_pending", "_ts_offset", "_window_probe", "pace_at")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pending: list[bytes] = []
        self._window_probe = False
        self._fields: tuple[int, int, bytes] | None = None
        self._ts_offset = conn.tx.iss  # RFC 7323 5.4: a per-connection offset, here the ISN
        self.pace_at: float | None = None

    def ts_clock(self, now: float) -> int:
        """Our timestamp clock: microseconds, offset per connection, modulo 2**32."""
        return (int(now * 1_000_000) + self._ts_offset) & SEQ_MASK

    def queue_raw(self, datagram: bytes) -> None:
        """Send this ready-made datagram (a RST built by the input path) with the next batch."""
        self._pending.append(datagram)

    def queue_control(self, flags: int, seq: int) -> None:
        """A bare control segment (RST on abort) with our sequence number and current ACK."""
        rx = self._conn.rx
        self._pending.append(encode_datagram(flags, seq & SEQ_MASK, rx.rcv_nxt & SEQ_MASK, 0))

    def queue_probe(self) -> None:
        """Probe a zero window or an idle peer: an ACK with an old sequence number, which
        the peer must answer with an ACK of its own (RFC 9293 3.8.4, 3.8.6.1)."""
        self._window_probe = True

    def collect(self, now: float) -> list[bytes]:
        """Every datagram due now."""
        conn = self._conn
        out = self._pending
        self._pending = []
        self._fields = None
        state = conn.state
        if conn.syn_due and state in (S.SYN_SENT, S.SYN_RCVD):
            out.append(self._syn(now, with_ack=state is S.SYN_RCVD))
        elif state in SENDING:
            self._send_data(now, out)
        if state in SYNCHRONIZED:
            if self._window_probe:
                self._window_probe = False
                out.append(self._segment(ACK, conn.tx.una - 1, b"", now))
            elif conn.rx.ack_now:
                out.append(self._segment(ACK, conn.tx.nxt, b"", now))
        elif conn.rx.ack_now and state is S.SYN_RCVD:
            out.append(self._segment(ACK, conn.tx.nxt, b"", now))
        return out

    # -- segments --------------------------------------------------------------------------

    def _syn(self, now: float, with_ack: bool) -> bytes:
        conn = self._conn
        config = conn.config
        rx = conn.rx
        conn.syn_due = False
        if conn.syn_tries == 0:
            conn.syn_sent_at = now
        conn.syn_at = now + conn.rtt.rto_s
        timestamps = None
        if config.timestamps and (not with_ack or conn.ts_ok):
            timestamps = (self.ts_clock(now), rx.ts_recent or 0 if with_ack else 0)
        options = encode_options(
            mss=config.mss,
            sack_permitted=config.sack and (not with_ack or conn.sack_ok),
            timestamps=timestamps,
        )
        conn.stats.segments_sent += 1
        if with_ack:
            rx.on_ack_sent()
            return encode_datagram(
                SYN | ACK, conn.tx.iss & SEQ_MASK, rx.rcv_nxt & SEQ_MASK, rx.advertise(), b"",
                options,
            )
        return encode_datagram(SYN, conn.tx.iss & SEQ_MASK, 0, config.recv_buffer_bytes, b"", options)

    def _segment(self, flags: int, seq: int, payload: bytes | memoryview, now: float) -> bytes:
        """A segment carrying our current ACK, window and options.

        Those are the same for every segment of one burst (nothing arrives in between), so
        they are worked out once per ``collect`` unless SACK blocks make the first one special.
        """
        conn = self._conn
        conn.stats.segments_sent += 1
        fields = self._fields
        if fields is not None:
            return encode_datagram(flags, seq & SEQ_MASK, fields[0], fields[1], payload, fields[2])
        rx = conn.rx
        options = b""
        if conn.ts_ok:
            options = _TS_OPTION.pack(OPT_NOP, OPT_NOP, 8, 10, self.ts_clock(now), rx.ts_recent or 0)
        sack = conn.sack_ok and (rx.ooo_starts or rx.dsack is not None)
        if sack:
            blocks = rx.sack_blocks(MAX_SACK_BLOCKS - 1 if conn.ts_ok else MAX_SACK_BLOCKS)
            if blocks:
                options += bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(blocks))) + b"".join(
                    _SACK_EDGE.pack(start & SEQ_MASK, end & SEQ_MASK) for start, end in blocks
                )
        window = rx.advertise()
        rx.on_ack_sent()
        ack = rx.rcv_nxt & SEQ_MASK
        if not sack:
            self._fields = (ack, window, options)
        return encode_datagram(flags, seq & SEQ_MASK, ack, window, payload, options)

    # -- data ------------------------------------------------------------------------------

    def _send_data(self, now: float, out: list[bytes]) -> None:
        conn = self._conn
        tx, cc, rec, pacer = conn.tx, conn.cc, conn.recovery, conn.pacer
        if conn.config.pacing:
            pacer.rate = cc.pacing_rate(conn.rtt)
        ts = self.ts_clock(now) if conn.ts_ok else 0
        view = memoryview(tx.buf)
        try:
            if conn.probe_due:
                conn.probe_due = False
                self._tail_loss_probe(now, ts, view, out)
            cwnd = cc.cwnd
            if not conn.sack_ok and rec.dupacks and not rec.in_recovery:
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
                    ACK | FIN if fin else ACK, lost.start, tx.payload(view, lost.start, lost.end), now
                ))
                tx.on_retransmit(lost, now)
                rec.on_retransmit(lost.end, ts if conn.ts_ok else None)
                if rec.rto_at is None:
                    rec.rto_at = now + conn.rtt.rto_s
            self._send_new(now, ts, view, out, cwnd)
        finally:
            view.release()

    def _send_new(self, now: float, ts: int, view: memoryview, out: list[bytes], cwnd: int) -> None:
        conn = self._conn
        tx, rec = conn.tx, conn.recovery
        mss = tx.max_seg
        fin_seq = tx.fin_seq
        sent_any = False
        while True:
            nxt = tx.nxt
            unsent = tx.buf_seq + len(tx.buf) - nxt
            fin = fin_seq is not None and nxt <= fin_seq
            if unsent <= 0 and not fin:
                if tx.pipe < cwnd:
                    tx.mark_app_limited()
                break
            size = 0
            if unsent > 0:
                size = min(mss, unsent, tx.una + tx.wnd - nxt, cwnd - tx.pipe)
                if size <= 0:
                    if tx.una + tx.wnd <= nxt and not tx.in_flight and conn.persist_at is None:
                        conn.persist_at = now + conn.rtt.rto_s  # zero window: start probing
                    break
                if size < mss and size < unsent and tx.in_flight and size < tx.max_wnd // 2:
                    break  # sender-side silly window avoidance: wait for a useful window
            with_fin = fin and nxt + size == fin_seq
            if not self._paced(now, size or 1):
                break
            base = tx.buf_seq
            payload = view[nxt - base : nxt - base + size] if size else b""
            out.append(self._segment(ACK | FIN if with_fin else ACK, nxt, payload, now))
            tx.on_send_new(nxt + size + (1 if with_fin else 0), now)
            conn.stats.bytes_sent += size
            sent_any = True
            if with_fin:
                break
        if sent_any:
            rec.on_sent(now)
            if conn.unacked_since is None:
                conn.unacked_since = now

    def _paced(self, now: float, size: int) -> bool:
        """Spend pacing tokens for ``size`` octets, or note when to try again."""
        pacer = self._conn.pacer
        release = pacer.release_time(now, size)
        if release > now:
            self.pace_at = release
            return False
        pacer.on_sent(now, size)
        return True

    def _tail_loss_probe(self, now: float, ts: int, view: memoryview, out: list[bytes]) -> None:
        """RFC 8985 7.3: send one new segment if the peer's window allows, else resend the last."""
        conn = self._conn
        tx, rec = conn.tx, conn.recovery
        nxt = tx.nxt
        size = min(tx.max_seg, tx.buf_seq + len(tx.buf) - nxt, tx.una + tx.wnd - nxt)
        if size > 0:
            base = tx.buf_seq
            out.append(self._segment(ACK, nxt, view[nxt - base : nxt - base + size], now))
            tx.on_send_new(nxt + size, now)
            conn.stats.bytes_sent += size
            rec.on_probe_sent(now, retransmitted=False, tsval=ts if conn.ts_ok else None)
            return
        last = tx.last_unsacked()
        if last is None:
            return
        fin = tx.fin_seq is not None and last.end > tx.fin_seq
        out.append(self._segment(
            ACK | FIN if fin else ACK, last.start, tx.payload(view, last.start, last.end), now
        ))
        tx.on_retransmit(last, now)
        conn.stats.retransmitted_segments += 1
        rec.on_probe_sent(now, retransmitted=True, tsval=ts if conn.ts_ok else None)
