"""``open_connection`` and ``start_server``, shaped exactly like asyncio's.

The reader, writer and protocol are asyncio's own ``StreamReader``, ``StreamWriter`` and
``StreamReaderProtocol``; udptcp supplies the transport underneath. Switching an application
from TCP is a change of import. Options beyond asyncio's (MSL, RTO bounds, segment size, ...)
are keyword arguments validated by :class:`udptcp.Config`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from udptcp import lifetime, loops
from udptcp.addresses import format_address
from udptcp.config import Config
from udptcp.endpoint import Endpoint, Listener, bind, make_socket
from udptcp.transport import Address, StreamTransport

DEFAULT_LIMIT = 2**16
"""The StreamReader buffer limit asyncio uses (64 KiB)."""

T = TypeVar("T")

ClientConnectedCallback = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
]


async def open_connection(
    host: str | None = None,
    port: int | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    local_addr: tuple[str, int] | None = None,
    family: int = 0,
    config: Config | None = None,
    **options: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a udptcp server; return a (reader, writer) pair once the handshake is done.

    Raises ``ConnectionRefusedError`` if nothing listens there (the SYN is answered by RST),
    ``TimeoutError`` when ``syn_retries`` SYNs go unanswered, ``ValueError``/``TypeError``
    for bad arguments. Keyword ``options`` are :class:`udptcp.Config` fields.
    """
    cfg = Config.from_options(config, **options)
    _check_limit(limit)
    if host is None or port is None:
        raise ValueError("open_connection() needs both host and port")
    loop = asyncio.get_running_loop()
    infos = _numeric_address(host, _check_port(port), family) or await loop.getaddrinfo(
        host, _check_port(port), family=family, type=socket.SOCK_DGRAM
    )
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    sock_family, _, _, _, peer = infos[0]
    sock = make_socket(sock_family, cfg)
    try:
        if local_addr is not None:
            sock.bind(local_addr)
        sock.connect(peer)
        peer = sock.getpeername()
        endpoint = Endpoint(cfg, loop)
        await bind(endpoint, sock)
    except OSError as exc:
        sock.close()
        if local_addr is not None and exc.errno == errno.EADDRINUSE:
            raise OSError(
                exc.errno, f"local address {format_address(local_addr)} is in use (perhaps by a "
                "connection in TIME_WAIT); wait 2*MSL or bind another port"
            ) from exc
        raise
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    established: asyncio.Future[None] = loop.create_future()
    transport = endpoint.connect(peer, established, protocol)
    try:
        await established
    except BaseException:
        if not transport.is_closing():
            transport.abort()
        endpoint.close()
        raise
    lifetime.track(endpoint)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    backlog: int | None = None,
    reuse_port: bool | None = None,
    sock: socket.socket | None = None,
    start_serving: bool = True,
    config: Config | None = None,
    **options: Any,
) -> Server:
    """Listen for udptcp connections; call ``client_connected_cb(reader, writer)`` for each.

    As with asyncio, a coroutine callback runs as a task. ``port=0`` picks a free port
    (``server.sockets[0].getsockname()`` tells which). ``host=None`` listens on all interfaces.
    ``sock``, instead of ``host`` and ``port``: a bound UDP socket to listen on (the server
    owns it from then on).

    ``reuse_port=True`` sets SO_REUSEPORT on the listening sockets (``sock`` must have it), so
    that several servers, in one process or several, listen on the same address and port,
    the kernel spreading new peers across them. Each connection then gets a UDP socket of its
    own, connected to its peer, so that it stays with the server that accepted it whatever
    servers join or leave; ``close()`` closes the listening sockets at once, handing new peers
    to the others. A ValueError says when the platform has no SO_REUSEPORT.
    """
    if not callable(client_connected_cb):
        raise TypeError("client_connected_cb must be callable (a function or coroutine function)")
    cfg = Config.from_options(config, **options)
    if backlog is not None:
        cfg = cfg.replace(backlog=backlog)
    _check_limit(limit)
    reuse = bool(reuse_port)
    if reuse and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError(
            "reuse_port=True needs SO_REUSEPORT, which this platform lacks (Linux, the BSDs and "
            "macOS have it); run one server per port instead"
        )
    loop = asyncio.get_running_loop()
    sockets: Iterable[socket.socket]
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("give start_server() either host and port or sock, not both")
        sockets = [_adopt(sock, reuse)]
    else:
        addresses = await resolve_passive(loop, host, port)
        # Made one at a time, so that a failing bind leaves no socket outside an endpoint.
        sockets = (listening_socket(family, addr, cfg, reuse_port=reuse) for family, addr in addresses)
    server = Server(loop, client_connected_cb, limit)
    try:
        for listening in sockets:
            endpoint = Endpoint(cfg, loop, reuse_port=reuse)
            endpoint.auto_close = False
            await bind(endpoint, listening)
            server.add_endpoint(endpoint)
    except BaseException:
        server.close()
        raise
    if start_serving:
        await server.start_serving()
    return server


async def resolve_passive(
    loop: asyncio.AbstractEventLoop, host: str | Sequence[str] | None, port: int | str | None
) -> list[tuple[int, Address]]:
    """(family, address) to listen on for each address ``host`` names (all, for None)."""
    hosts: Sequence[str | None] = [host] if host is None or isinstance(host, str) else list(host)
    addresses: list[tuple[int, Address]] = []
    for one in hosts:
        infos = await loop.getaddrinfo(
            one, _check_port(port or 0), type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )
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


def _adopt(sock: socket.socket, reuse_port: bool) -> socket.socket:
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
        self, loop: asyncio.AbstractEventLoop, client_connected_cb: ClientConnectedCallback,
        limit: int,
    ) -> None:
        self._loop = loop
        self._callback = client_connected_cb
        self._limit = limit
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
        reader = asyncio.StreamReader(limit=self._limit, loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, self._callback, loop=self._loop)
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
        """Reset every connection now."""
        for endpoint in self._endpoints:
            for transport in endpoint.connections:
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


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True, debug: bool | None = None) -> T:
    """Run ``main`` like ``asyncio.run``, on uvloop when it is installed (unless told not to)."""
    return loops.run(lambda: main, "auto" if use_uvloop else "asyncio", debug=debug)


def _numeric_address(host: str, port: int, family: int) -> list[Any]:
    """The address of a numeric ``host`` without the resolver's thread (asyncio's own
    ``create_connection`` skips it likewise); empty for a name, which must be resolved."""
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        return []


def _check_port(port: int | str) -> int:
    if isinstance(port, str):
        if not port.isdigit():
            raise ValueError(f"port must be a number in [0, 65535], got {port!r}")
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in [0, 65535], got {port}")
    return port


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {type(limit).__name__}")
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
