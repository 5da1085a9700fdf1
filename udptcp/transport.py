"""The asyncio driver of one connection core, presented as an ``asyncio.Transport``.

Any asyncio protocol sits on top of it as it would on a TCP transport: a ``Protocol``
(``data_received``) or a ``BufferedProtocol`` (``get_buffer``/``buffer_updated``), asyncio's own
``StreamReaderProtocol`` for the streams, asyncio's ``SSLProtocol`` for TLS (``udptcp.tls``).
Every entry point (a datagram, the timer, an application call) ends in ``pump``: drain the
core's events, send its datagrams, re-arm the one timer. Writes in one loop turn are coalesced
into one pump with ``call_soon``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol, cast

from structlog.stdlib import BoundLogger

from udptcp.addresses import format_address
from udptcp.core import (
    PRESSURE_FLOOR_BYTES,
    PRESSURE_LOW_WATER_BYTES,
    CloseReason,
    Connection,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionTerminated,
    DataReceived,
    EofReceived,
    SendComplete,
    State,
    StateChanged,
)
from udptcp.core.state import ENDED, WRITABLE
from udptcp.failures import failure
from udptcp.log import TRACE_LOGGER_NAME, debug_enabled, get_logger
from udptcp.wire import MalformedSegment, Segment

if TYPE_CHECKING:
    from udptcp.endpoint import Endpoint
    from udptcp.trace.recorder import ConnectionTracer

Address = tuple[Any, ...]
clock = time.monotonic
"""The core's clock. Not ``loop.time()``: uvloop's ticks in milliseconds, too coarse for RTTs."""

LOG_WRITES_AFTER_LOSS = 5
MAX_DELIVERY_BYTES = 256 * 1024
"""Most octets handed to the protocol in one call (asyncio's TCP transports read at most as
much per ``data_received``). In-order data released at once (all a paused reader's window
held, when it resumes) goes up in pieces, and what follows a piece after which the protocol
paused reading again waits here: a reader keeps its own limit (asyncio's StreamReader pauses
at twice its ``limit``) plus at most one piece (and asyncio's own, one wake-up's read: see
``_deliver``)."""
_BYTES_LIKE = (bytes, bytearray, memoryview)
"""What ``write`` takes (a tuple: ``isinstance`` checks one faster than a union)."""
VIEWS_FROM_BYTES = 16 * 1024
"""Chunks of at least this size on average go to asyncio's own ``StreamReaderProtocol`` as
views, one call each: it copies what it is given into its reader's buffer at once, so joining
them first would copy every octet once more. Smaller ones are joined: a call costs more than
copying them."""
_NO_EXTRA: dict[str, Any] = {}
"""``BaseTransport``'s ``_extra``, shared: ``get_extra_info`` answers from the connection, and
an empty dictionary per connection would cost 64 octets."""


class DatagramOutlet(Protocol):
    """Where a connection's datagrams leave: its endpoint's one socket, or (a server with
    ``reuse_port``) a socket of the connection's own (``endpoint.ConnectionSocket``)."""

    @property
    def writing_paused(self) -> bool:
        """The socket's send buffer is full: wait (``wait_writable``) before sending more."""

    @property
    def socket(self) -> Any:
        """The socket itself, for ``get_extra_info("socket")``."""

    @property
    def local_addr(self) -> Address | None:
        """The socket's address, for ``get_extra_info("sockname")``."""

    def send_all(self, datagrams: list[bytes], peer: Address) -> None:
        """Send a batch to ``peer``."""

    def wait_writable(self, transport: StreamTransport) -> None:
        """Pump ``transport`` again once the send buffer has drained."""


class StreamTransport(asyncio.Transport):
    """One udptcp connection, with the semantics of asyncio's TCP transports."""

    _start_tls_compatible = True
    """The stock loop's ``loop.start_tls`` accepts this transport (uvloop's accepts only its
    own: ``udptcp.tls.start_tls`` works with both)."""

    __slots__ = (
        "__weakref__", "_buffered", "_charged_bytes", "_cid", "_closing", "_debug", "_endpoint",
        "_eof_received", "_eof_written", "_error", "_established", "_forgotten", "_held",
        "_held_bytes", "_high_water", "_logger", "_loop", "_lost", "_low_water", "_now",
        "_paused_protocol", "_protocol", "_pump_scheduled", "_pumping", "_reading", "_takes_views",
        "_timer", "_timer_at", "_trace", "_unaccepted", "_writes_after_loss", "conn", "outlet",
        "peer", "tracer",
    )
    """No instance dictionary: with more than 30 attributes it would be a table of its own,
    some 1.5 KiB on each of a server's thousands of idle connections."""

    def __init__(
        self, endpoint: Endpoint, conn: Connection, peer: Address, *, cid: str | None = None,
        established: asyncio.Future[None] | None = None,
    ) -> None:
        super().__init__(_NO_EXTRA)
        self._endpoint = endpoint
        self.outlet: DatagramOutlet = endpoint
        self._loop = endpoint.loop
        self.conn = conn
        self.peer = peer
        self._cid = cid
        self._established = established
        self._protocol: asyncio.BaseProtocol | None = None
        self._logger: BoundLogger | None = None  # made on first use: most connections never log
        self._buffered = False
        self._takes_views = False
        self._held: list[bytes | None] | None = None
        """Delivered by the core but not yet to the protocol, which paused reading meanwhile
        (None: the EOF); made on first use."""
        self._held_bytes = 0
        self._debug = debug_enabled()
        self._trace = (
            get_logger(TRACE_LOGGER_NAME, cid=self.cid) if debug_enabled(TRACE_LOGGER_NAME) else None
        )
        self.tracer: ConnectionTracer | None = None
        """Set by the endpoint when the connection is traced (``trace=``, ``pcap=``)."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._now = 0.0
        self._pump_scheduled = False
        self._pumping = False
        self._closing = False
        self._eof_written = False
        self._eof_received = False
        self._lost = False
        self._writes_after_loss = 0
        self._error: BaseException | None = None
        self._reading = True
        self._unaccepted = False
        self._charged_bytes = 0
        self._forgotten = False
        self._paused_protocol = False
        self._high_water = conn.config.send_buffer_bytes
        # Writing resumes once half the buffer is free (asyncio's own transports wait for
        # three quarters): this buffer also holds what is in flight, and waiting longer
        # leaves the window empty while the application refills it.
        self._low_water = self._high_water // 2

    @property
    def cid(self) -> str:
        """The connection's id in logs and traces (six hex digits), drawn when first asked for:
        most connections are never logged or traced, and the string costs 55 octets."""
        if self._cid is None:
            self._cid = secrets.token_hex(3)
        return self._cid

    @property
    def _log(self) -> BoundLogger:
        """This connection's logger, bound to its id and addresses when first used: most
        connections log nothing, and a bound logger costs some 500 octets per connection."""
        if self._logger is None:
            self._logger = get_logger(
                cid=self.cid, local=format_address(self._endpoint.local_addr),
                peer=format_address(self.peer),
            )
        return self._logger

    # -- the driver ------------------------------------------------------------------------

    def datagram_received(self, data: bytes | memoryview) -> None:
        """A datagram from our peer, on its own: take it and answer at once."""
        self.feed(data, clock())
        self.pump()

    def feed(self, data: bytes | memoryview, now: float) -> None:
        """A datagram from our peer, one of a batch that arrived at ``now``: the endpoint calls
        ``pump`` after the last."""
        if self._trace is not None:
            self._trace_segment("received", data)
        if self.tracer is not None:
            self.tracer.received(data, now)
        if now < self._now:
            now = self._now  # a timer ran early (see _on_timer): the core's time never goes back
        else:
            self._now = now
        self.conn.receive_datagram(data, now)

    def _clock(self, at_least: float = 0.0) -> float:
        """The core's time: monotonic even when a timer fired early and was treated as due."""
        now = clock()
        if now < self._now or now < at_least:  # rare: no call to max() on every pass
            now = max(self._now, at_least)
        self._now = now
        return now

    def _trace_segment(self, direction: str, data: bytes | memoryview) -> None:
        assert self._trace is not None
        try:
            seg = Segment.decode(data)
        except MalformedSegment as exc:
            self._trace.debug(f"segment {direction}", malformed=str(exc), size=len(data))
            return
        self._trace.debug(
            f"segment {direction}", segment=seg.describe(), state=self.conn.state.name,
            sack=list(seg.sack) or None, mss=seg.mss,
        )

    def datagram_too_big(self, size: int) -> None:
        """The interface refused one of our datagrams as too big: the core resizes and resends."""
        self.conn.datagram_too_big(size, self._clock())
        self.pump_soon()

    def on_unreachable(self) -> None:
        """The socket reported the peer unreachable (ICMP); the core decides what it means."""
        self.conn.destination_unreachable()
        self.pump()

    def start(self) -> None:
        """Run the core once, after an open (connect, or the SYN a listener fed it)."""
        self.pump()

    def pump(self) -> None:
        """Act on everything the core did since the last pump: deliver, send, re-arm.

        The protocol's callbacks (data_received, resume_writing, ...) all run before the
        send: whatever they write goes out in this pass. (One method, not a pass inside a
        guard: it runs twice per request and reply on each side.)
        """
        self._pump_scheduled = False
        self._pumping = True
        try:
            conn = self.conn
            if self._held is not None and self._reading:
                self._release_held()
            chunks: list[bytes | memoryview] | None = None  # made only when data arrived
            state_changed = False
            while (event := conn.next_event()) is not None:
                if type(event) is DataReceived:
                    if chunks is None:
                        chunks = [event.data]
                    else:
                        chunks.append(event.data)
                    continue
                if chunks:
                    self._deliver(chunks)
                    chunks = None
                if type(event) is StateChanged:
                    state_changed = True
                self._on_event(event)
            if chunks:
                self._deliver(chunks)
            if not self._forgotten and conn.buffered_bytes + self._held_bytes != self._charged_bytes:
                self._account()
            if (  # under memory pressure, at the floor's low-water mark (PRESSURE_FLOOR_BYTES)
                self._paused_protocol and conn.send_buffered <= self._low_water
                and (not self._endpoint.memory_pressure
                     or conn.send_buffered <= PRESSURE_LOW_WATER_BYTES)
            ):
                self._paused_protocol = False
                protocol = self._protocol
                if protocol is not None and not self._lost:
                    protocol.resume_writing()
            outlet = self.outlet
            if not outlet.writing_paused:
                self.send_due()
            else:
                outlet.wait_writable(self)
            if self.tracer is not None:
                self.tracer.after_pump(self._now, outlet.writing_paused)
            deadline = conn.get_timer()
            timer_at = self._timer_at
            if deadline != timer_at and (
                deadline is None or timer_at is None or deadline < timer_at or state_changed
            ):
                self._arm_timer(deadline, exact=state_changed)
            # else the timer armed fires first, finds nothing due and re-arms: cheaper than a
            # re-arm for every ACK that moves the RTO on. A new state is different: its timers
            # replace the old ones for good (TIME_WAIT's 2*MSL after the FIN's RTO, say).
        finally:
            self._pumping = False

    def _account(self) -> None:
        """Tell the endpoint how much more (or less) the connection keeps since last time."""
        if self._forgotten:
            return
        used = self.conn.buffered_bytes + self._held_bytes
        delta = used - self._charged_bytes
        if delta:
            self._charged_bytes = used
            self._endpoint.charge(delta)

    def release_charge(self) -> int:
        """The connection is forgotten: what it was charged, to give back (once)."""
        charged, self._charged_bytes = self._charged_bytes, 0
        self._forgotten = True
        return charged

    def send_due(self) -> None:
        """Send every datagram the core has due now."""
        now = clock()  # self._clock(), inline: this runs on every pass
        if now >= self._now:
            self._now = now
        else:
            now = self._now
        datagrams = self.conn.datagrams_to_send(now)
        if datagrams:
            if self._trace is not None:
                for datagram in datagrams:
                    self._trace_segment("sent", datagram)
            if self.tracer is not None:
                self.tracer.sent(datagrams, self._now)
            self.outlet.send_all(datagrams, self.peer)

    def pump_soon(self) -> None:
        """Coalesce this loop turn's writes into one pass over the core."""
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self._loop.call_soon(self.pump)

    def _arm_timer(self, deadline: float | None, exact: bool = False) -> None:
        """Have ``_on_timer`` run at ``deadline`` (None: never). Unless ``exact``, an earlier
        timer already armed is kept: the core tells us when it fires what it really needs."""
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_at = None
            return
        if not exact and self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        loop = self._loop
        self._timer = loop.call_at(loop.time() + max(0.0, deadline - clock()), self._on_timer)

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = self._timer_at = None
        if due is None:
            return
        # uvloop's timers tick in milliseconds and may fire a little early: treat the timer as
        # due, and keep that time for the sends it allows, or pacing would spin until it is.
        self.conn.handle_timer(self._clock(due))
        self.pump()

    def _deliver(self, chunks: list[bytes | memoryview]) -> None:
        """In-order data of one pass, handed to the protocol in as few calls as
        ``MAX_DELIVERY_BYTES`` allows; what comes after the protocol paused reading is held (it
        asked for no more until it resumes).

        Except for asyncio's own ``StreamReaderProtocol``, which still gets the views of this
        wake-up's datagrams that follow its pause: its reader only appends to its buffer, so
        the excess is bounded by one wake-up's read (``RECEIVE_BUFFER_BYTES``; asyncio's
        transports likewise hand over a whole ``recv`` past the reader's limit), and a hold
        would copy them once more just to hand them over a moment later. ``bytes`` chunks
        (what the core held or reassembled, up to a whole window) are held: that costs no
        copy, and the reader's buffer stays bounded."""
        start, count = 0, len(chunks)
        was_reading = self._reading
        while start < count:
            protocol = self._protocol
            if protocol is None or self._closing:
                return
            past_pause = not self._reading
            if past_pause and not (
                was_reading and self._takes_views and type(chunks[start]) is memoryview
            ):
                for chunk in chunks[start:]:
                    self._hold(bytes(chunk))  # a copy: the datagram's buffer may be reused
                return
            if self._buffered:  # copied into the protocol's own buffer: nothing to join
                _feed_buffered(cast(asyncio.BufferedProtocol, protocol), chunks[start])
                start += 1
                continue
            end, size = start + 1, len(chunks[start])
            while end < count and size + len(chunks[end]) <= MAX_DELIVERY_BYTES and (
                not past_pause or type(chunks[end]) is memoryview  # past it: views only
            ):
                size += len(chunks[end])
                end += 1
            if self._takes_views and size >= VIEWS_FROM_BYTES * (end - start):
                for chunk in chunks[start:end]:  # one piece for the reader, as if joined
                    cast(asyncio.Protocol, protocol).data_received(chunk)  # type: ignore[arg-type]
                start = end
                continue
            # bytes, as asyncio's contract has it: a chunk is a view of its datagram
            data = bytes(chunks[start]) if end == start + 1 else b"".join(chunks[start:end])
            start = end
            cast(asyncio.Protocol, protocol).data_received(data)

    def _hold(self, data: bytes | None) -> None:
        """Keep ``data`` (None: the EOF) until the protocol resumes reading; it counts against
        the endpoint's ``memory_limit_bytes`` as what the core holds does."""
        if self._held is None:
            self._held = []
        self._held.append(data)
        if data is not None:
            self._held_bytes += len(data)

    def _drop_held(self) -> None:
        """Nobody will read what is held (the transport is closing): let it go."""
        self._held = None
        self._held_bytes = 0

    def _on_event(self, event: object) -> None:
        if self.tracer is not None:
            self.tracer.on_event(event, self._clock())
        if isinstance(event, StateChanged):
            if self._debug:
                self._log.debug(
                    "state change", old=event.old.name, new=event.new.name, cause=event.cause.value
                )
        elif isinstance(event, EofReceived):
            self._on_eof()
        elif isinstance(event, SendComplete):
            if self._closing:
                self._connection_lost(None)
        elif isinstance(event, ConnectionEstablished):
            self._on_established()
        elif isinstance(event, ConnectionFailed):
            self._on_failed(event.reason)
        elif isinstance(event, ConnectionTerminated):
            self._connection_lost(self._error)
            self._cancel_timer()
            self._endpoint.forget(self)

    def _on_established(self) -> None:
        if self._debug:
            self._log.debug("established", mss=self.conn.tx.max_seg, sack=self.conn.sack_ok,
                            timestamps=self.conn.ts_ok)
        waiter = self._established
        if waiter is None:
            self._endpoint.on_established(self)
            return
        self._established = None
        if waiter.done():  # the opener gave up (cancelled) just now
            self.abort()
            return
        self._endpoint.attach(self)
        if self._protocol is not None:
            self._protocol.connection_made(self)
        waiter.set_result(None)

    def _on_eof(self) -> None:
        self._eof_received = True
        protocol = self._protocol
        if protocol is None or self._closing:
            return
        if not self._reading:
            self._hold(None)
            return
        keep_open = cast(asyncio.Protocol, protocol).eof_received()
        if not keep_open:
            self.close()  # as asyncio's TCP transports: a protocol that returns falsy is done

    def _on_failed(self, reason: CloseReason) -> None:
        exc = failure(self.conn, reason, self.peer, connecting=self._established is not None,
                      eof_received=self._eof_received)
        self._log.info("connection failed", reason=reason.value, state=self.conn.state.name)
        waiter = self._established
        if waiter is not None:
            self._established = None
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if reason is CloseReason.RESET_AFTER_CLOSE:
            return  # we closed; the peer learns by our RST, the application lost nothing it wanted
        self._error = exc
        self._connection_lost(exc)

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._drop_held()
        protocol = self._protocol
        if protocol is not None:
            self._loop.call_soon(protocol.connection_lost, exc)  # type: ignore[arg-type]
        self._endpoint.detach(self)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def fail_now(self, exc: BaseException) -> None:
        """The endpoint's socket is gone: end this connection with ``exc``."""
        waiter = self._established
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._established = None
        self._cancel_timer()
        self._error = exc
        self._connection_lost(exc)
        if self.tracer is not None:
            self.tracer.close(self._clock())

    # -- asyncio.BaseTransport -------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        conn = self.conn
        if name == "peername":
            return self.peer
        if name == "sockname":
            return self.outlet.local_addr
        if name == "socket":
            return self.outlet.socket
        if name == "state":
            return conn.state
        if name == "stats":
            stats: dict[str, Any] = conn.stats.as_dict()
            stats.update(
                srtt_s=conn.rtt.srtt_s, rttvar_s=conn.rtt.rttvar_s, min_rtt_s=conn.rtt.min_rtt_s,
                rto_s=conn.rtt.rto_s, cwnd_bytes=conn.cc.cwnd, ssthresh_bytes=conn.cc.ssthresh,
                congestion_control=conn.cc.name, mss=conn.tx.max_seg, sack=conn.sack_ok,
                timestamps=conn.ts_ok, peer_window_bytes=conn.tx.wnd,
                bytes_in_flight=conn.tx.pipe, send_buffered_bytes=conn.send_buffered,
                unsent_bytes=conn.tx.unsent, out_of_order_dropped=conn.rx.ooo_dropped,
                bytes_acked=max(0, min(conn.tx.una, conn.tx.data_end) - conn.tx.iss - 1),
            )
            return stats
        if name == "rtt":
            return conn.rtt.srtt_s
        if name == "cwnd":
            return conn.cc.cwnd
        if name == "cid":
            return self.cid
        if name == "io_path":
            return self._endpoint.io_path
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close both ways: a FIN after what is queued; ``connection_lost`` once it is acked.

        If our FIN is acknowledged already (``write_eof`` earlier: FIN_WAIT_2), the application
        is done at once, as with a kernel socket closed after ``shutdown(SHUT_WR)``: the
        endpoint keeps the orphaned connection until the peer's FIN or
        ``fin_wait_2_timeout_s``, and answers data that still arrives with RST.
        """
        if self._closing:
            return
        if self.tracer is not None:
            self.tracer.app("close", self._clock())
        self._closing = True
        self._eof_written = True
        self._drop_held()
        self.conn.close()
        if self.conn.state in ENDED or self.conn.state is State.FIN_WAIT_2:
            self._connection_lost(self._error)
        self.pump_soon()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        self._takes_views = type(protocol) is asyncio.StreamReaderProtocol  # not a subclass's

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    # -- asyncio.ReadTransport -------------------------------------------------------------

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def hold_until_accepted(self) -> None:
        """A passive connection nobody has accepted: what arrives is held in the core (and
        counts against its window) until ``accepted``. Apart from ``pause_reading``, so that
        the application's own pause outlives the accept."""
        self._unaccepted = True
        self.conn.pause_reading()

    def accepted(self) -> None:
        """The application has the connection: deliver what was held, unless it paused."""
        self._unaccepted = False
        if self._reading:
            self.conn.resume_reading()
            self.pump_soon()

    def pause_reading(self) -> None:
        """Hold data in the core; the advertised window closes as it fills."""
        if self._reading:
            self._reading = False
            self.conn.pause_reading()

    def resume_reading(self) -> None:
        """Deliver what was held, and reopen the window: in a pass of its own, as asyncio's
        transports do, never from within this call (asyncio's StreamReader resumes reading
        and only then waits for the data: delivered now, it would pause again before waiting,
        and wait for ever)."""
        if self._reading:
            return
        self._reading = True
        if self._held is None and not self._unaccepted:
            self.conn.resume_reading()
        self.pump_soon()

    def _release_held(self) -> None:
        """Reading resumed: what the transport held goes first, then (once it has all gone,
        so that nothing is held twice) what the core held."""
        held = self._held
        if held is not None:
            self._held, self._held_bytes = None, 0
            data: list[bytes | memoryview] = [chunk for chunk in held if chunk is not None]
            self._deliver(data)  # what a new pause leaves is held again
            if held[-1] is None:
                self._on_eof()  # held again too if the protocol paused meanwhile
        if self._reading and self._held is None and not self._unaccepted:
            self.conn.resume_reading()

    # -- asyncio.WriteTransport ------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(_not_bytes(data))
        if self._eof_written and not self._lost:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._lost or self.conn.state not in WRITABLE:
            self._writes_after_loss += 1
            if self._writes_after_loss == LOG_WRITES_AFTER_LOSS:
                self._log.warning("writes to a closed udptcp connection are being dropped")
            return
        if not data:
            return
        conn = self.conn
        idle = conn.send_buffered == 0
        conn.send(data)
        if self._pumping:
            self._account()  # written from a protocol callback: this pass sends it
        elif idle and not self._pump_scheduled:
            self.pump()  # nothing waits or is in flight: send at once, as asyncio's transports do
        else:
            self.pump_soon()  # more in this loop turn joins it in one burst
            self._account()
        buffered = conn.send_buffered
        if buffered > self._high_water or (
            self._endpoint.memory_pressure and buffered > PRESSURE_FLOOR_BYTES
        ):
            self._check_high_water()

    def _check_high_water(self) -> None:
        """Pause the protocol's writing past the high-water mark, or, while the endpoint is
        under memory pressure, past the floor every connection keeps (``PRESSURE_FLOOR_BYTES``,
        as Linux's ``tcp_wmem[0]``): a few peers that never read cannot stop the others."""
        buffered = self.conn.send_buffered
        if not self._paused_protocol and (
            buffered > self._high_water
            or (self._endpoint.memory_pressure and buffered > PRESSURE_FLOOR_BYTES)
        ):
            protocol = self._protocol
            if protocol is not None:
                self._paused_protocol = True
                protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        """Half-close: send a FIN after the queued data; reading goes on."""
        if self._eof_written or self._lost:
            return
        if self.tracer is not None:
            self.tracer.app("shutdown", self._clock())
        self._eof_written = True
        if self.conn.state in WRITABLE:
            self.conn.shutdown()
            self.pump_soon()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Reset the connection now; queued data is discarded."""
        if self.tracer is not None:
            self.tracer.app("abort", self._clock())
        self._closing = True
        self._drop_held()
        self.conn.abort()
        self.pump()
        self._connection_lost(self._error)

    def _force_close(self, exc: BaseException | None) -> None:
        """Abort, handing ``exc`` to ``connection_lost`` (asyncio's SSL layer calls this on a
        fatal TLS error or a handshake timeout, as on asyncio's own transports)."""
        if self._error is None:
            self._error = exc
        self.abort()

    def get_write_buffer_size(self) -> int:
        return self.conn.send_buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low_water, self._high_water

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = self.conn.config.send_buffer_bytes if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low
        self._check_high_water()


def _not_bytes(data: object) -> str:
    """What ``write`` says of data it does not take: what it takes (asyncio's transports take
    the same three types; an array, bytes-like though it is, neither) and how to get there."""
    fix = (
        "encode it first (data.encode())" if isinstance(data, str)
        else "pass another buffer (an array...) as memoryview(data).cast('B')"
    )
    return f"data must be bytes, bytearray or memoryview, not {type(data).__name__}: {fix}"


def _feed_buffered(protocol: asyncio.BufferedProtocol, data: bytes | memoryview) -> None:
    """Copy ``data`` into the protocol's own buffers, as many as it takes."""
    view = memoryview(data)
    while view:
        buf = memoryview(protocol.get_buffer(len(view)))
        size = min(len(buf), len(view))
        if not size:
            raise RuntimeError(f"{type(protocol).__name__}.get_buffer() returned an empty buffer")
        buf[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]
