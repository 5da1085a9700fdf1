"""One UDP socket and every udptcp connection that lives on it.

The endpoint is an ``asyncio.DatagramProtocol``. It routes each datagram by the peer's address
to that connection's :class:`~udptcp.transport.StreamTransport`; a datagram from a stranger
is a new connection (a valid SYN, if a listener is accepting and its backlog has room) or gets
a RST, as RFC 9293 has it for segments that match no connection. Connections stay here after
the application is done with them (FIN_WAIT_2, TIME_WAIT) until the core says they are over,
as the kernel keeps TCP's.

A listening endpoint with ``reuse_port`` shares its address and port with other sockets (other
processes) in a SO_REUSEPORT group, and gives each connection it accepts a socket of its own
(:class:`ConnectionSocket`), connected to the peer, so that the kernel keeps sending that
peer's datagrams here whatever sockets join or leave the group. Datagrams from every socket
of the endpoint are routed alike, by the sender's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from udptcp.addresses import format_address
from udptcp.config import Config
from udptcp.core import Connection, State, reset_for_unknown
from udptcp.core.isn import isn_for
from udptcp.core.syncookies import CookieGrant
from udptcp.heap import TRIMMER, tune_process_allocator
from udptcp.hostkey import isn_key
from udptcp.log import get_logger
from udptcp.trace.attach import destinations, tracer_for
from udptcp.trace.recorder import ConnectionTracer
from udptcp.transport import Address, StreamTransport, clock
from udptcp.udpsocket import UdpSocket, open_udp_socket, receive_capacity_bytes, set_dont_fragment
from udptcp.wire import (
    ACK,
    RST,
    SYN,
    MalformedSegment,
    decode_datagram,
    parse_options,
)

if TYPE_CHECKING:
    from udptcp.listener import Listener

MAX_LINGER_TIME_WAITS = 4
"""Shutting down waits at most this many TIME_WAIT periods, however often FINs restart one."""
MIN_WINDOW_BYTES = 65535
"""The smallest window a small socket buffer starts connections at: TCP's unscaled maximum."""
LIVE: weakref.WeakSet[Endpoint] = weakref.WeakSet()
"""Every endpoint whose socket is open, so a dying program can reset its connections."""
_TIME_WAIT = State.TIME_WAIT
_SYN_RCVD = State.SYN_RCVD
"""States the routing of every datagram tests, as module constants (one lookup, not two)."""
_LOG = get_logger()
"""The endpoints' logger, shared: an endpoint binds no context of its own."""


class EndpointCounters:
    """What the endpoint dropped or answered on its own."""

    __slots__ = (
        "acks_dropped_accept_queue", "cookies_invalid", "dropped_malformed", "memory_pressure_events",
        "resets_sent", "syn_cookies_accepted", "syn_cookies_sent", "syns_dropped_backlog",
        "syns_dropped_no_socket",
    )

    def __init__(self) -> None:
        self.acks_dropped_accept_queue = 0  # the handshake's last ACK, while the queue was full
        self.cookies_invalid = 0  # an ACK from a stranger that held no valid cookie (dropped)
        self.dropped_malformed = 0
        self.memory_pressure_events = 0  # times the connections' buffers reached memory_limit_bytes
        self.resets_sent = 0
        self.syn_cookies_accepted = 0  # connections opened by the ACK of a cookie
        self.syn_cookies_sent = 0  # SYN-ACKs with a cookie: the half-open connections were full
        self.syns_dropped_backlog = 0  # the accept queue was full
        self.syns_dropped_no_socket = 0  # reuse_port: the connection's own socket could not be opened


class Endpoint(asyncio.DatagramProtocol):
    """The owner of one UDP socket and the connections on it.

    With ``reuse_port`` (a server's endpoint only), each accepted connection has a socket of its
    own as well, and the shared socket may close before the connections do (``leave_group``).
    """

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, *, reuse_port: bool = False) -> None:
        tune_process_allocator()
        self.config = config
        self.loop = loop
        self.reuse_port = reuse_port
        self.counters = EndpointCounters()
        self.local_addr: Address | None = None
        self.socket: Any = None
        self.listener: Listener | None = None
        self.writing_paused = False
        self.auto_close = True
        self.buffered_bytes = 0
        """Octets the connections keep (``Connection.buffered_bytes``), as they last reported."""
        self.memory_pressure = False
        """``buffered_bytes`` reached ``memory_limit_bytes`` and has not yet fallen to three
        quarters of it."""
        self._udp: asyncio.DatagramTransport | UdpSocket | None = None
        self._own_socket: UdpSocket | None = None
        self._io_path = "the loop's datagram transport"
        """``io_path`` once the socket udptcp drove itself is closed (or when there is none)."""
        self._connected = False
        self.receive_queue_bytes: int | None = None
        """What the socket's receive queue holds: each connection's window starts there, so
        that a burst of the peer's does not overflow it (``core.autotune``)."""
        self._by_peer: dict[Address, StreamTransport] = {}
        self._own: dict[StreamTransport, ConnectionSocket] = {}
        self._attached: set[StreamTransport] = set()
        self._waiting_writable: set[StreamTransport] = set()
        self._changed: asyncio.Event | None = None
        """Set on every change ``wait_until`` re-checks after; made by the first waiter (most
        endpoints, a client's for each connection, never have one)."""
        self._closed = loop.create_future()
        self._log = _LOG
        self._trace_to, self._pcap_to = destinations(config)

    # -- asyncio.DatagramProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport | UdpSocket) -> None:
        LIVE.add(self)
        if isinstance(transport, UdpSocket):
            self._udp = self._own_socket = transport
        else:
            self._udp = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass
        self.socket = transport.get_extra_info("socket")
        self.local_addr = transport.get_extra_info("sockname")
        self._connected = transport.get_extra_info("peername") is not None
        with contextlib.suppress(OSError):
            self.receive_queue_bytes = max(receive_capacity_bytes(self.socket), MIN_WINDOW_BYTES)

    @property
    def io_path(self) -> str:
        """How this endpoint's datagrams move (for ``udptcp bench`` and ``--version``)."""
        if self._own_socket is not None:
            return self._own_socket.io_path
        return self._io_path

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """One datagram, from the loop's datagram transport (the fallback path)."""
        self.datagrams_received([(data, addr)])

    def datagrams_received(self, batch: list[tuple[bytes | memoryview, Address]]) -> None:
        """The datagrams of one wake-up: each goes through its connection's core, then every
        connection that received something runs its output once (one ACK for the batch, one
        delivery to the application, one timer re-arm)."""
        by_peer = self._by_peer
        touched: dict[StreamTransport, None] = {}
        now = clock()
        listener = self.listener
        for data, addr in batch:
            conn_transport = by_peer.get(addr)
            if conn_transport is None or (
                conn_transport.conn.state is _TIME_WAIT and self._reopens(conn_transport, data)
            ):
                self._from_stranger(data, addr)
            elif (
                conn_transport.conn.state is _SYN_RCVD and listener is not None
                and listener.queue_full and _is_ack(data)
            ):
                # The accept queue is full: drop the handshake's last ACK, as Linux does with
                # tcp_abort_on_overflow=0; the SYN-ACK is resent and the client ACKs it again.
                self.counters.acks_dropped_accept_queue += 1
            else:
                conn_transport.feed(data, now)
                touched[conn_transport] = None
        for conn_transport in touched:
            conn_transport.pump()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors reach only connected (client) sockets. Port unreachable fails an open
        # that is still in SYN_SENT (the core decides); otherwise errors are hints only.
        self._log.debug("socket error", error=str(exc))
        if isinstance(exc, ConnectionRefusedError):
            for transport in list(self._by_peer.values()):
                transport.on_unreachable()

    def datagram_too_big(self, peer: Address | None, size: int) -> None:
        """The interface refused a datagram of ``size`` octets: its connection shrinks them."""
        for transport in self._by_peer.values() if peer is None else [self._by_peer.get(peer)]:
            if transport is not None:
                transport.datagram_too_big(size)

    def connection_lost(self, exc: Exception | None) -> None:
        """The shared socket is closed: the endpoint with it, unless connections on sockets of
        their own go on (``leave_group``); ``close`` ends those."""
        self._udp = None
        own_socket = self._own_socket
        if own_socket is not None:
            # It refers back to us: dropped, the endpoint of a client's connection goes as
            # soon as the connection does, not at the next full run of the cycle collector.
            self._io_path = own_socket.io_path
            self._own_socket = None
        if not self._own:
            self._end(exc)

    def _end(self, exc: Exception | None) -> None:
        LIVE.discard(self)
        for transport in list(self._by_peer.values()):
            transport.fail_now(exc or ConnectionAbortedError("the udptcp endpoint was closed"))
        self._by_peer.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        self._notify()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiting = self._waiting_writable
        self._waiting_writable = set()
        for transport in waiting:
            transport.pump_soon()

    # -- for the connections ---------------------------------------------------------------

    def send_all(self, datagrams: list[bytes], peer: Address) -> None:
        """Send a batch to one peer (no address on a connected socket: uvloop skips a check)."""
        udp = self._udp
        if udp is None:
            return
        if udp is self._own_socket:
            udp.send_batch(datagrams, peer)  # nothing once it is closing
        elif udp.is_closing():
            return
        elif self._connected:
            for datagram in datagrams:
                udp.sendto(datagram)
        else:
            for datagram in datagrams:
                udp.sendto(datagram, peer)

    def wait_writable(self, transport: StreamTransport) -> None:
        """The socket buffer is full: pump ``transport`` again once it drains."""
        self._waiting_writable.add(transport)

    def on_established(self, transport: StreamTransport) -> None:
        """A passively opened connection completed its handshake."""
        if self.listener is not None:
            self.listener.on_established(transport)
        else:
            transport.abort()

    def charge(self, delta_bytes: int) -> None:
        """A connection keeps ``delta_bytes`` more (or fewer): enter or leave memory pressure.

        As Linux's tcp_mem, with hysteresis so that pressure does not flap: it starts at the
        limit and ends at three quarters of it. What the connections give back is reported to
        the process's heap trimmer (``udptcp.heap``), which returns it to the system.
        """
        if delta_bytes < 0:
            TRIMMER.released(-delta_bytes)
        used = self.buffered_bytes = self.buffered_bytes + delta_bytes
        limit = self.config.memory_limit_bytes
        if self.memory_pressure:
            if used <= limit * 3 // 4:
                self._set_memory_pressure(False)
        elif used >= limit:
            self.counters.memory_pressure_events += 1
            self._log.warning(
                "connections' buffers reached memory_limit_bytes: windows stop growing and "
                "writers pause until they fall to three quarters", limit_bytes=limit,
            )
            self._set_memory_pressure(True)

    def _set_memory_pressure(self, pressure: bool) -> None:
        self.memory_pressure = pressure
        for transport in list(self._by_peer.values()):
            transport.conn.set_memory_pressure(pressure)
            if not pressure:
                transport.pump_soon()  # window updates, and writers paused by the pressure

    def attach(self, transport: StreamTransport) -> None:
        """The application has ``transport`` (so a server's ``wait_closed`` waits for it)."""
        self._attached.add(transport)

    def close_attached(self) -> None:
        """The program is ending: close the connections the application left open (a FIN after
        what it wrote), as the kernel closes a dying process's sockets, rather than leave
        their peers to find out by timeouts."""
        for transport in list(self._attached):
            if not transport.is_closing():
                transport.close()

    def detach(self, transport: StreamTransport) -> None:
        """The application is done with ``transport``; its connection may live on (TIME_WAIT)."""
        self._attached.discard(transport)
        self._notify()

    def forget(self, transport: StreamTransport) -> None:
        """The core reached CLOSED (or went back to LISTEN): drop it from the routing table, and
        close its own socket, if it has one, once its last segment has left."""
        if self._by_peer.get(transport.peer) is transport:
            del self._by_peer[transport.peer]
        self.charge(-transport.release_charge())
        own = self._own.pop(transport, None)
        if own is not None:
            transport.send_due()
            own.close()
        if self.listener is not None:
            self.listener.on_forget(transport)
        self._notify()
        listener = self.listener
        if self.auto_close and not self._by_peer and (listener is None or not listener.accepting):
            transport.send_due()  # its last segment (a RST after exhausted retries, say)
            if listener is None and transport.conn.peer_may_be_open:
                # A client's endpoint, whose peer may not have taken that RST (RFC 5961
                # accepts one only at exactly its RCV.NXT) or may not know yet (a FIN_WAIT_2
                # timeout). As a kernel answers a closed port, what the peer sends next (its
                # challenge ACK, say) is answered with a RST (``_from_stranger``), for as long
                # as TIME_WAIT would hold the port; a program that ends does not wait for it.
                self.loop.call_later(self.config.time_wait_s, self.close)
            else:
                self.close()

    # -- opening connections ---------------------------------------------------------------

    def connect(
        self, peer: Address, established: asyncio.Future[None], protocol: asyncio.BaseProtocol
    ) -> StreamTransport:
        """Actively open a connection to ``peer``; ``protocol`` gets it once established."""
        now = clock()
        conn = self._new_connection(isn_for(isn_key(), self.local_addr, peer, now))
        if self.memory_pressure:
            conn.set_memory_pressure(True)
        transport = StreamTransport(self, conn, peer, established=established)
        transport.set_protocol(protocol)
        self._by_peer[peer] = transport
        if self._trace_to is not None or self._pcap_to is not None:
            self._observe(transport, "client", now).app("connect", now)
        conn.connect(now)
        transport.start()
        return transport

    def _new_connection(self, isn: int) -> Connection:
        conn = Connection(self.config, isn=isn)
        if self.receive_queue_bytes is not None:
            conn.set_receive_queue(self.receive_queue_bytes)
        return conn

    def open_passive(
        self, peer: Address, first: bytes | memoryview, isn: int | None = None,
        cookie: CookieGrant | None = None,
    ) -> StreamTransport | None:
        """A connection in LISTEN, fed the SYN that created it (or, with a ``cookie``, in
        SYN_RCVD, fed the ACK that returned the cookie); with ``reuse_port``, on a socket of its
        own (None, the segment dropped and counted, when that cannot be opened)."""
        sock = None
        if self.reuse_port:
            try:
                sock = self._socket_to(peer)
            except OSError as exc:
                self.counters.syns_dropped_no_socket += 1
                self._log.warning(
                    "cannot open a socket for a new connection; its SYN is dropped (the peer will "
                    "retry). If the error is 'Too many open files', raise the limit (ulimit -n): "
                    "with reuse_port every connection has a socket of its own",
                    peer=format_address(peer), error=str(exc),
                )
                return None
        now = clock()
        if cookie is not None:
            isn = cookie.isn
        elif isn is None:
            isn = isn_for(isn_key(), self.local_addr, peer, now)
        conn = self._new_connection(isn)
        if self.memory_pressure:
            conn.set_memory_pressure(True)
        conn.listen()
        peer = _sharing_host(peer)
        if cookie is not None:
            conn.accept_cookie(cookie, now)
        transport = StreamTransport(self, conn, peer)
        if sock is not None:
            own = self._own[transport] = ConnectionSocket(self, transport, sock)
            transport.outlet = own
        self._by_peer[peer] = transport
        if self._trace_to is not None or self._pcap_to is not None:
            listening_since = self.listener.opened_at if self.listener is not None else now
            self._observe(transport, "server", now).app("listen", listening_since)
        # Nobody reads it until it is accepted: what arrives before is held in the core (and
        # counted against its window), then delivered on ``Listener._accept``.
        transport.hold_until_accepted()
        transport.datagram_received(first)
        return transport

    def _observe(self, transport: StreamTransport, role: str, now: float) -> ConnectionTracer:
        """Trace ``transport`` (``trace=``, ``pcap=`` or their environment variables)."""
        tracer = transport.tracer = tracer_for(
            transport.conn, cid=transport.cid, role=role,
            local=transport.outlet.local_addr or self.local_addr, peer=transport.peer,
            trace=self._trace_to, pcap=self._pcap_to, now=now,
        )
        return tracer

    def _socket_to(self, peer: Address) -> socket.socket:
        """A socket on our address and port (joining our SO_REUSEPORT group), connected to ``peer``."""
        assert self.local_addr is not None  # only a bound endpoint hears a SYN
        sock = make_socket(self.socket.family, self.config, reuse_port=True)
        try:
            sock.bind(self.local_addr)
            sock.connect(peer)
        except OSError:
            sock.close()
            raise
        return sock

    def _from_stranger(self, data: bytes | memoryview, addr: Address) -> None:
        try:
            flags = decode_datagram(data)[0]
        except MalformedSegment:
            self.counters.dropped_malformed += 1
            return
        listener = self.listener
        if listener is not None and listener.accepting:
            control = flags & (SYN | ACK | RST)
            if control == SYN:
                listener.on_syn(data, addr)
                return
            if control == ACK and listener.on_ack(data, addr):
                return
        reply = reset_for_unknown(data)
        if reply is not None:
            self.counters.resets_sent += 1
            self.send_raw(reply, addr)

    def send_raw(self, datagram: bytes, addr: Address) -> None:
        """A datagram of no connection (a RST for a stranger, a SYN-ACK with a cookie)."""
        if self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(datagram, None if self._connected else addr)

    def _reopens(self, old: StreamTransport, data: bytes | memoryview) -> bool:
        """A SYN that may take over a pair of addresses still in TIME_WAIT (RFC 6191)."""
        listener = self.listener
        if listener is None or not listener.accepting:
            return False
        try:
            flags, seq, _ack, _wnd, _payload, raw = decode_datagram(data)
            timestamps = parse_options(raw).timestamps if raw is not None else None
        except MalformedSegment:
            return False
        if flags & (SYN | ACK | RST) != SYN:
            return False
        isn = old.conn.successor_isn(seq, timestamps[0] if timestamps is not None else None)
        if isn is None:
            return False
        old.conn.end_time_wait()
        old.start()
        listener.next_isn = isn
        return True

    # -- closing ---------------------------------------------------------------------------

    @property
    def connections(self) -> list[StreamTransport]:
        """Every connection the endpoint still keeps."""
        return list(self._by_peer.values())

    @property
    def attached(self) -> int:
        """Connections the application still holds."""
        return len(self._attached)

    def close(self) -> None:
        """Close the sockets now; connections still here fail."""
        owned = list(self._own.values())
        self._own.clear()
        for own in owned:
            own.close()
        if self._udp is None:
            if not self._closed.done():
                self._end(None)  # never opened, or it left the group before
        elif not self._udp.is_closing():
            self._udp.close()  # connection_lost ends the endpoint

    def leave_group(self) -> None:
        """Close the shared socket, not the connections' own ones (``reuse_port``): the kernel
        hands its share of new peers to the group's other sockets at once, instead of to a
        listener that would refuse them, while these connections go on to their end."""
        if self._udp is not None and not self._udp.is_closing():
            self._udp.close()

    async def wait_until(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        """Wait (at most ``timeout_s``) until ``done()`` holds; re-checked on every change."""
        deadline = None if timeout_s is None else self.loop.time() + timeout_s
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        while not done():
            changed.clear()
            remaining = None if deadline is None else deadline - self.loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return done()
        return True

    async def linger(self) -> None:
        """Wait for connections the application left (TIME_WAIT and the like), then close.

        With ``shutdown_linger_s`` unset, the wait follows the TIME_WAIT timers themselves, so
        a retransmitted FIN that restarts one is still answered; it lasts 2*MSL when nothing
        arrives, and never more than ``MAX_LINGER_TIME_WAITS`` times that.
        """
        config = self.config
        if config.shutdown_linger_s is not None:
            await self.wait_until(lambda: not self._by_peer, config.shutdown_linger_s)
        else:
            start = clock()
            cap = start + MAX_LINGER_TIME_WAITS * config.time_wait_s
            while self._by_peer:
                ends = [
                    end for t in self._by_peer.values() if (end := t.conn.time_wait_ends_at) is not None
                ]
                until = min(cap, max([start + config.time_wait_s, *ends]))
                if until <= clock() or await self.wait_until(lambda: not self._by_peer, until - clock()):
                    break
        self.close()
        await self._closed

    @property
    def closed(self) -> asyncio.Future[None]:
        """Done once the socket is closed."""
        return self._closed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()


class ConnectionSocket:
    """A connection's own UDP socket (``reuse_port``): the listener's address and port,
    connected to the peer.

    Linux gives a datagram to a connected socket whose four addresses match it before it
    consults the SO_REUSEPORT group, whereas the group's hash moves about half of the other
    flows whenever a socket joins or leaves it. The connection's datagrams leave from here too.
    What arrives is routed by the endpoint like everything else, by the sender's address: a
    datagram of another peer that lands here (queued while the socket was not yet connected)
    still finds its connection, or the listener.
    """

    def __init__(self, endpoint: Endpoint, transport: StreamTransport, sock: socket.socket) -> None:
        self._endpoint = endpoint
        self._transport = transport
        self.socket = sock
        self.local_addr: Address | None = sock.getsockname()
        self.writing_paused = False
        self._waiting = False
        config = endpoint.config
        self._udp = UdpSocket(endpoint.loop, sock, self, gso=config.gso, gro=config.gro)

    def datagrams_received(self, batch: list[tuple[bytes | memoryview, Address]]) -> None:
        self._endpoint.datagrams_received(batch)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error, as a connected socket reports them. Port unreachable fails only an
        # open in SYN_SENT, which an accepted connection never is: all are hints here.
        self._endpoint._log.debug("socket error", peer=format_address(self._transport.peer), error=str(exc))

    def datagram_too_big(self, peer: Address | None, size: int) -> None:
        self._transport.datagram_too_big(size)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self._waiting:
            self._waiting = False
            self._transport.pump_soon()

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed by ``close``, once the endpoint has forgotten the connection: nothing to do."""

    def send_all(self, datagrams: list[bytes], peer: Address) -> None:
        self._udp.send_batch(datagrams, None)

    def wait_writable(self, transport: StreamTransport) -> None:
        self._waiting = True

    def close(self) -> None:
        self._udp.close()


def _sharing_host(peer: Address) -> Address:
    """``peer`` with its host string shared by every connection from that host (interned):
    the address a datagram arrived from carries a string of its own, some 60 octets that each
    of thousands of connections from one host (a proxy, a NAT, a tunnel) would keep."""
    host = peer[0]
    return (sys.intern(host), *peer[1:]) if isinstance(host, str) else peer


def _is_ack(data: bytes | memoryview) -> bool:
    """The datagram is a valid segment with ACK and neither SYN nor RST."""
    try:
        return decode_datagram(data)[0] & (SYN | ACK | RST) == ACK
    except MalformedSegment:
        return False


async def bind(endpoint: Endpoint, sock: socket.socket) -> None:
    """Put ``endpoint`` on ``sock``: driven by udptcp itself where the loop lets it watch a
    socket (batches, GSO, GRO), else through the loop's own datagram transport."""
    config = endpoint.config
    udp = open_udp_socket(endpoint.loop, sock, endpoint, gso=config.gso, gro=config.gro)
    if udp is not None:
        endpoint.connection_made(udp)
    else:
        await endpoint.loop.create_datagram_endpoint(lambda: endpoint, sock=sock)


def make_socket(family: int, config: Config, *, reuse_port: bool = False) -> socket.socket:
    """A non-blocking UDP socket with buffers sized for the window; with ``reuse_port``, one that
    may share its address and port with other such sockets of the same user (SO_REUSEPORT)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        # The kernel caps the size (net.core.rmem_max); smaller buffers still work.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, config.socket_buffer_bytes)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if config.discovers_mss:
        set_dont_fragment(sock, family)  # a probe must arrive whole or not at all
    if reuse_port:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"the kernel refuses SO_REUSEPORT ({exc.strerror}); serve "
                          "without reuse_port, one process per port") from exc
    return sock
