"""The listening side: :class:`Server` (asyncio.Server's interface) and its sockets.

A server hands each connection it accepts to a protocol made by its factory: asyncio's
``StreamReaderProtocol`` for ``start_server``, the application's own for ``create_server``,
with asyncio's SSL layer in between when it serves TLS (``udptcp.tls``).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from udptcp import tls
from udptcp.addresses import check_hosts, check_port, format_address
from udptcp.config import Config
from udptcp.core import State
from udptcp.endpoint import Endpoint, make_socket
from udptcp.listener import Listener
from udptcp.transport import Address, StreamTransport

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


async def resolve_passive(
    loop: asyncio.AbstractEventLoop, host: str | Sequence[str] | None, port: int | str | None
) -> list[tuple[int, Address]]:
    """(family, address) to listen on for each address ``host`` names (all, for None or ``''``).

    ``host`` and ``port`` are checked first (:func:`check_hosts`, :func:`check_port`), so that a
    wrong one is named in the error.
    """
    hosts = check_hosts(host)
    number = 0 if port is None else check_port(port)
    addresses: list[tuple[int, Address]] = []
    for one in hosts:
        infos = await loop.getaddrinfo(one, number, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
        for info in infos:
            entry = (int(info[0]), info[4])
            if entry not in addresses:
                addresses.append(entry)
    return addresses


def listening_socket(family: int, addr: Address, cfg: Config, *, reuse_port: bool) -> socket.socket:
    """A socket bound to ``addr`` to listen on; the OSError of a failed bind names the address."""
    sock = make_socket(family, cfg, reuse_port=reuse_port)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        hint = ""
        if reuse_port and exc.errno == errno.EADDRINUSE:
            hint = (
                "; sockets can share a port only if every one of them has SO_REUSEPORT "
                "(reuse_port=True) and they belong to the same user"
            )
        raise OSError(exc.errno, f"cannot listen on {format_address(addr)}: {exc.strerror}{hint}") from exc
    return sock


def adopt(sock: socket.socket, reuse_port: bool) -> socket.socket:
    """The application's own listening socket, checked: UDP, bound, SO_REUSEPORT if asked for."""
    if not isinstance(sock, socket.socket):
        raise TypeError(f"sock must be a socket.socket, got {type(sock).__name__}")
    if sock.type != socket.SOCK_DGRAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"sock must be a UDP socket (AF_INET or AF_INET6, SOCK_DGRAM), got {sock!r}")
    if sock.getsockname()[1] == 0:
        raise ValueError("sock must be bound to its address and port before start_server()")
    if reuse_port and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        raise ValueError(
            "reuse_port=True: sock has no SO_REUSEPORT; set it before binding "
            "(sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1))"
        )
    sock.setblocking(False)
    return sock


class Server:
    """A listening udptcp server, with the interface of ``asyncio.Server``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol_factory: ProtocolFactory, *,
        ssl: ssl.SSLContext | None = None, ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._ssl = ssl
        self._ssl_timeouts = (ssl_handshake_timeout, ssl_shutdown_timeout)
        self._endpoints: list[Endpoint] = []
        self._serving = False
        self._closed = False
        self._serving_forever: asyncio.Future[None] | None = None

    def add_endpoint(self, endpoint: Endpoint) -> None:
        endpoint.listener = Listener(endpoint, endpoint.config.backlog, self._acceptor(endpoint))
        self._endpoints.append(endpoint)

    def _acceptor(self, endpoint: Endpoint) -> Callable[[StreamTransport], None]:
        return lambda transport: self._accept(endpoint, transport)

    def _accept(self, endpoint: Endpoint, transport: StreamTransport) -> None:
        """A connection established: its protocol (under TLS, asyncio's SSL layer over it,
        which starts the handshake and calls the protocol's ``connection_made`` once done)."""
        try:
            protocol = self._factory()
        except Exception as exc:
            transport.abort()
            self._loop.call_exception_handler(
                {"message": "the protocol factory of a udptcp server failed", "exception": exc}
            )
            return
        if self._ssl is not None:
            handshake, shutdown = self._ssl_timeouts
            protocol, _ = tls.wrap(
                self._loop, protocol, self._ssl, None, server_side=True,
                ssl_handshake_timeout=handshake, ssl_shutdown_timeout=shutdown,
            )
        transport.set_protocol(protocol)
        endpoint.attach(transport)
        protocol.connection_made(transport)

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The UDP sockets the server listens on."""
        return tuple(ep.socket for ep in self._endpoints if ep.socket is not None)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints (one per socket), with their counters."""
        return tuple(self._endpoints)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        """Start handing connections to the callback (those queued meanwhile first)."""
        if self._closed:
            raise RuntimeError("the server is closed")
        self._serving = True
        for endpoint in self._endpoints:
            if endpoint.listener is not None:
                endpoint.listener.start_serving()

    async def serve_forever(self) -> None:
        """Serve until cancelled; cancelling closes the server and waits for it."""
        if self._serving_forever is not None:
            raise RuntimeError("serve_forever() is already running")
        if self._closed:
            raise RuntimeError("the server is closed")
        await self.start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    def close(self) -> None:
        """Stop listening. Open connections go on; new SYNs are answered with RST.

        With ``reuse_port`` the listening sockets close at once (the connections have sockets
        of their own), so that the kernel gives new peers to the group's other servers.
        """
        if self._closed:
            return
        self._closed = True
        self._serving = False
        for endpoint in self._endpoints:
            if endpoint.listener is not None:
                endpoint.listener.close()
            endpoint.auto_close = True
            if not endpoint.connections:
                endpoint.close()
            elif endpoint.reuse_port:
                endpoint.leave_group()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()

    def close_clients(self) -> None:
        """Close every connection the application holds (FIN after queued data)."""
        for endpoint in self._endpoints:
            for transport in endpoint.connections:
                transport.close()

    def abort_clients(self) -> None:
        """Reset every connection now; those in TIME_WAIT are done and stay to their timers
        (as ``lifetime.abort_all``), so that a late FIN of the peer's is still answered."""
        for endpoint in self._endpoints:
            for transport in endpoint.connections:
                if transport.conn.state is not State.TIME_WAIT:
                    transport.abort()

    async def wait_closed(self) -> None:
        """Wait until closed and every connection is done, TIME_WAIT included (bounded).

        TIME_WAIT connections are waited for at most ``Config.shutdown_linger_s`` (by
        default the whole 2*MSL), as a kernel would keep them after the process exits.
        """
        for endpoint in self._endpoints:
            await endpoint.wait_until(self._drained(endpoint), None)
        await asyncio.gather(*(endpoint.linger() for endpoint in self._endpoints))

    def _drained(self, endpoint: Endpoint) -> Callable[[], bool]:
        return lambda: self._closed and endpoint.attached == 0

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()
