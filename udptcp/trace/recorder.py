"""The trace of one connection, recorded from its transport: the core is only read, never hooked.

The transport calls :class:`ConnectionTracer` where the connection meets the world: each
datagram received (``received``) and sent (``sent``), each event of the core (``on_event``),
each application call (``app``), and once after each pass over the core (``after_pump``), where
the tracer compares what it last saw of the core's counters, timers, RTT estimator and
congestion window with what is there now. So segments, state changes and application calls are
recorded exactly, and losses, timers and metrics at the granularity of one pass (one batch of
datagrams, one timer, one write). A connection without a tracer pays one ``is not None`` test
per batch.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from udptcp.core.events import ConnectionFailed, ConnectionTerminated, StateChanged
from udptcp.core.seqnum import SEQ_MASK, unwrap
from udptcp.core.timers import Timer
from udptcp.trace.schema import FORMAT, SCHEMA_VERSION
from udptcp.wire import ACK, FIN, PSH, RST, SYN, MalformedSegment, decode_datagram, parse_options

if TYPE_CHECKING:
    from udptcp.core import Connection
    from udptcp.trace.pcap import PcapWriter
    from udptcp.trace.sink import TraceSink

FLAG_NAMES = (("SYN", SYN), ("ACK", ACK), ("FIN", FIN), ("RST", RST), ("PSH", PSH))
"""Flag names in the order a trace writes them (``SYN|ACK``)."""
WATCHED_COUNTERS = (
    "timeouts", "tail_loss_probes", "fast_retransmits", "loss_episodes", "spurious_undos",
    "retransmitted_segments", "dsacks_received", "reordering_events",
)
"""Counters of ``ConnectionStats`` whose every change the trace reports as an event."""
_CRC = struct.Struct("!I")
_CRC_OFFSET = 16


def flag_text(flags: int) -> str:
    """``SYN|ACK``; ``-`` for none."""
    return "|".join(name for name, bit in FLAG_NAMES if flags & bit) or "-"


def segment_fields(data: bytes | memoryview) -> dict[str, Any]:
    """The header and options of one datagram, as a trace's segment event has them."""
    flags, seq, ack, wnd, payload, raw = decode_datagram(data)
    fields: dict[str, Any] = {
        "flags": flag_text(flags), "seq": seq, "ack": ack, "win": wnd, "len": len(payload),
        "crc": _CRC.unpack_from(data, _CRC_OFFSET)[0],
    }
    if raw is not None:
        opts = parse_options(raw)
        if opts.sack:
            fields["sack"] = [list(block) for block in opts.sack]
        if opts.timestamps is not None:
            fields["ts"] = list(opts.timestamps)
        if opts.mss is not None:
            fields["mss"] = opts.mss
        if opts.sack_permitted:
            fields["sack_permitted"] = True
        if opts.mtu_probe_permitted:
            fields["mtu_probe_permitted"] = True
        if opts.mtu_probe is not None:
            fields["mtu_probe"] = opts.mtu_probe
        if opts.mtu_probe_ack is not None:
            fields["mtu_probe_ack"] = opts.mtu_probe_ack
    return fields


def sender_limit(conn: Connection, socket_full: bool) -> str:
    """What holds the sender back right now: ``application`` (nothing to send), ``cwnd``,
    ``rwnd`` (the peer's window), ``pacing``, ``socket`` (the send buffer is full) or ``cpu``
    (it could send, and is about to)."""
    tx = conn.tx
    if socket_full:
        return "socket"
    if tx.unsent <= 0:
        return "application"
    mss = tx.max_seg
    if tx.pipe + mss > conn.cc.cwnd:
        return "cwnd"
    if tx.nxt - tx.una + mss > tx.wnd:
        return "rwnd"
    if conn.timers.is_armed(Timer.PACING):
        return "pacing"
    return "cpu"


def state_name(state_name: str) -> str:
    """RFC 9293's spelling of a state (``SYN-SENT``), as traces and diagrams write it."""
    return state_name.replace("_", "-")


class ConnectionTracer:
    """Records one connection into a trace sink and/or a pcap file."""

    def __init__(
        self, conn: Connection, *, cid: str, role: str, local: tuple[Any, ...], peer: tuple[Any, ...],
        sink: TraceSink | None, pcap: PcapWriter | None, now: float,
    ) -> None:
        self.conn = conn
        self.cid = cid
        self.local = local
        self.peer = peer
        self.sink = sink
        self.pcap = pcap
        self._seen = {name: 0 for name in WATCHED_COUNTERS}
        self._loss_cause: str | None = None
        self._snd_max: int | None = None
        self._syn_sent = False
        self._metrics: tuple[Any, ...] | None = None
        self._timers: dict[str, float] = {}
        self._rtt_sample: float | None = None
        self._windows: dict[str, int] = {}
        self._probe_pending = False
        self._closed = False
        self.datagrams_sent = self.datagrams_received = 0
        self.octets_sent = self.octets_received = 0
        """Datagrams and their octets (udptcp header and payload), for ``udptcp bench``."""
        if sink is not None:
            config = conn.config
            self._emit(now, "connection", format=FORMAT, version=SCHEMA_VERSION, role=role,
                       local=_address(local), peer=_address(peer), iss=conn.tx.iss,
                       clock="time.monotonic", congestion_control=config.congestion_control,
                       mss=config.mss, sack=config.sack, timestamps=config.timestamps,
                       msl_s=config.msl_s)

    def _emit(self, t: float, kind: str, **fields: Any) -> None:
        assert self.sink is not None
        self.sink.write({"t": round(t, 6), "cid": self.cid, "type": kind, **fields})

    # -- what the transport reports --------------------------------------------------------

    def app(self, call: str, now: float, **fields: Any) -> None:
        """The application called ``call`` (connect, listen, accept, shutdown, close, abort)."""
        if self.sink is not None:
            self._emit(now, "app", call=call, **fields)

    def received(self, data: bytes | memoryview, now: float) -> None:
        """A datagram from the peer, before the core takes it."""
        self.datagrams_received += 1
        self.octets_received += len(data)
        if self.pcap is not None:
            self.pcap.record(self.peer, self.local, data)
        if self.sink is None:
            return
        try:
            fields = segment_fields(data)
        except MalformedSegment as exc:
            self._emit(now, "segment", dir="received", malformed=str(exc), size=len(data))
            return
        self._emit(now, "segment", dir="received", **fields)
        self._window("peer", fields["win"], now)

    def sent(self, datagrams: list[bytes], now: float) -> None:
        """Datagrams the core just handed out, in order."""
        self.datagrams_sent += len(datagrams)
        self.octets_sent += sum(map(len, datagrams))
        if self.pcap is not None:
            for datagram in datagrams:
                self.pcap.record(self.local, self.peer, datagram)
        if self.sink is None:
            return
        self._check_counters(now)
        for datagram in datagrams:
            fields = segment_fields(datagram)
            cause = self._retransmission(fields)
            if cause is not None:
                fields["retransmission"] = cause
            self._emit(now, "segment", dir="sent", **fields)
            self._window("local", fields["win"], now)
        if self._probe_pending:
            self._probe_pending = False

    def _retransmission(self, fields: dict[str, Any]) -> str | None:
        """Why this segment repeats sequence space already sent, or None if it is new."""
        flags: str = fields["flags"]
        if "SYN" in flags:
            if self._syn_sent:
                return "handshake"
            self._syn_sent = True
            return None
        if "RST" in flags or "mtu_probe" in fields:
            return None  # a probe's payload is padding: it takes no sequence space
        length = fields["len"] + (1 if "FIN" in flags else 0)
        if not length:
            return None
        iss = self.conn.tx.iss
        start = unwrap((fields["seq"] - iss) & SEQ_MASK, self._snd_max or 0)
        end = start + length
        snd_max = self._snd_max
        if snd_max is None or end > snd_max:
            self._snd_max = end
            return None
        if self._probe_pending:
            return "tlp"
        return self._loss_cause or "unknown"

    def _window(self, side: str, window: int, now: float) -> None:
        if self._windows.get(side) != window:
            self._windows[side] = window
            self._emit(now, "window", side=side, bytes=window)

    def on_event(self, event: object, now: float) -> None:
        """An event of the core (``DataReceived`` is never passed: it is the data path)."""
        if self.sink is None:
            return
        if isinstance(event, StateChanged):
            self._emit(now, "state", old=state_name(event.old.name), new=state_name(event.new.name),
                       cause=event.cause.value)
            self.sink.flush()
        elif isinstance(event, ConnectionFailed):
            self._emit(now, "reset", reason=event.reason.value)
        elif isinstance(event, ConnectionTerminated):
            self._check_timers(now)  # the timer that ended it (TIME_WAIT's), and the rest cancelled
            self.close(now)

    def after_pump(self, now: float, socket_full: bool) -> None:
        """After a pass over the core: what changed in its counters, timers, RTT and window."""
        if self.sink is None or self._closed:
            return
        self._check_counters(now)
        conn = self.conn
        rtt = conn.rtt
        if rtt.latest_s is not None and rtt.latest_s != self._rtt_sample:
            self._rtt_sample = rtt.latest_s
            self._emit(now, "rtt", latest_s=rtt.latest_s, srtt_s=rtt.srtt_s, rttvar_s=rtt.rttvar_s,
                       min_rtt_s=rtt.min_rtt_s, rto_s=rtt.rto_s)
        tx, cc = conn.tx, conn.cc
        metrics = (cc.cwnd, cc.ssthresh, conn.pacer.rate, tx.pipe, tx.wnd,
                   sender_limit(conn, socket_full))
        if metrics != self._metrics:
            self._metrics = metrics
            self._emit(now, "metrics", cwnd=cc.cwnd, ssthresh=min(cc.ssthresh, SEQ_MASK),
                       pacing_rate=conn.pacer.rate, in_flight=tx.pipe, peer_window=tx.wnd,
                       unsent=tx.unsent, limit=metrics[5])
        self._check_timers(now)

    def _check_timers(self, now: float) -> None:
        """Timers armed (or moved), fired (gone, or moved, once their deadline passed) and
        cancelled (gone before it) since the last look."""
        timers = self.conn.timers.pending()
        before = self._timers
        if timers == before:
            return
        for name, at in before.items():
            if timers.get(name) != at:
                action = "fired" if at <= now else "cancelled"
                if action == "fired" or name not in timers:
                    self._emit(now, "timer", timer=name.lower(), action=action, at=round(at, 6))
        for name, at in timers.items():
            if before.get(name) != at:
                self._emit(now, "timer", timer=name.lower(), action="armed", at=round(at, 6))
        self._timers = timers

    def _check_counters(self, now: float) -> None:
        """Report every change of the loss counters since the last look, with its cause."""
        stats = self.conn.stats
        seen = self._seen
        changed = [name for name in WATCHED_COUNTERS if getattr(stats, name) != seen[name]]
        if not changed:
            return
        delta = {name: getattr(stats, name) - seen[name] for name in changed}
        for name in changed:
            seen[name] = getattr(stats, name)
        if "timeouts" in delta:
            self._loss_cause = "rto"
            self._emit(now, "loss", cause="rto", count=delta["timeouts"])
        if "tail_loss_probes" in delta:
            self._probe_pending = True
            self._emit(now, "loss", cause="tlp", count=delta["tail_loss_probes"])
        if "fast_retransmits" in delta:
            self._loss_cause = "fast_retransmit"
            self._emit(now, "loss", cause="fast_retransmit", count=delta["fast_retransmits"])
        elif "loss_episodes" in delta and "timeouts" not in delta:
            self._loss_cause = "rack" if self.conn.sack_ok else "fast_retransmit"
            self._emit(now, "loss", cause=self._loss_cause, count=delta["loss_episodes"])
        if "spurious_undos" in delta:
            self._emit(now, "loss", cause="spurious_undone", count=delta["spurious_undos"])
        if "reordering_events" in delta:
            self._emit(now, "loss", cause="reordering_seen", count=delta["reordering_events"])

    def close(self, now: float) -> None:
        """The connection is over (or its endpoint is): its counters, then the file let go."""
        if self._closed:
            return
        self._closed = True
        if self.sink is not None:
            self._emit(now, "stats", **self.conn.stats.as_dict())
            self.sink.forget(self.cid)
            self.sink.flush()
            self.sink.release()
        if self.pcap is not None:
            self.pcap.release()


def _address(addr: tuple[Any, ...]) -> list[Any]:
    return [str(addr[0]), int(addr[1])]
