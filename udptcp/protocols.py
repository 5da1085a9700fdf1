"""``create_connection`` and ``create_server``: asyncio's Protocol/Transport API over udptcp.

They behave as the event loop's methods of the same names do with TCP, so that a library
built on ``loop.create_connection(protocol_factory, ...)`` runs over udptcp when handed these
instead: the protocol gets ``connection_made``, ``data_received`` (or ``get_buffer`` and
``buffer_updated`` for a ``BufferedProtocol``), ``eof_received`` (returning True keeps the
connection half-open), ``pause_writing``/``resume_writing`` at the transport's write-buffer
limits and ``connection_lost``; the transport is a :class:`~udptcp.transport.StreamTransport`,
or, with ``ssl=``, asyncio's own TLS transport over it (``udptcp.tls``).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl as ssl_module
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from udptcp import lifetime, tls
from udptcp.addresses import check_peer, format_address, numeric_address
from udptcp.config import Config
from udptcp.endpoint import Endpoint, bind, make_socket
from udptcp.server import Server, adopt, listening_socket, resolve_passive
from udptcp.transport import Address

P = TypeVar("P", bound=asyncio.BaseProtocol)

FAMILIES = (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)
"""The address families a client may ask for: udptcp runs over UDP on IPv4 or IPv6."""


async def create_connection(
    protocol_factory: Callable[[], P],
    host: str | None = None,
    port: int | str | None = None,
    *,
    ssl: ssl_module.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    local_addr: tuple[str, int] | None = None,
    family: int = 0,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    config: Config | None = None,
    **options: Any,
) -> tuple[asyncio.Transport, P]:
    """Connect to a udptcp server; return ``(transport, protocol)`` once the connection (and
    with ``ssl``, the TLS handshake) is complete, as ``loop.create_connection`` does.

    ``ssl``: an ``ssl.SSLContext``, or True for :func:`udptcp.tls.client_context` (TLS 1.3,
    the certificate and ``server_hostname``, by default ``host``, verified). Raises
    ``ConnectionRefusedError`` if nothing listens there, ``TimeoutError`` when ``syn_retries``
    SYNs go unanswered, ``ssl.SSLError`` (``SSLCertVerificationError``...) or
    ``ConnectionResetError`` when the handshake fails, ``ValueError``/``TypeError`` for bad
    arguments. Keyword ``options`` are :class:`udptcp.Config` fields.
    """
    peer_host, peer_port = check_peer(host, port)
    _check_local(family, local_addr)
    cfg = Config.from_options(config, **options)
    context, hostname = tls.client_ssl(ssl, peer_host, server_hostname, ssl_handshake_timeout)
    loop = asyncio.get_running_loop()
    endpoint, peer = await _client_endpoint(loop, peer_host, peer_port, family, local_addr, cfg)
    protocol = protocol_factory()
    lower: asyncio.BaseProtocol = protocol
    handshake: asyncio.Future[None] | None = None
    app_transport: asyncio.Transport | None = None
    if context is not None:
        handshake = loop.create_future()
        lower, app_transport = tls.wrap(
            loop, protocol, context, handshake, server_side=False, server_hostname=hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
    established: asyncio.Future[None] = loop.create_future()
    transport = endpoint.connect(peer, established, lower)
    try:
        await established
        if handshake is not None:
            await handshake
    except BaseException:
        if not transport.is_closing():
            transport.abort()
        endpoint.close()
        raise
    lifetime.track(endpoint)
    return (app_transport or transport), protocol


async def _client_endpoint(
    loop: asyncio.AbstractEventLoop, host: str, port: int, family: int,
    local_addr: tuple[str, int] | None, cfg: Config,
) -> tuple[Endpoint, Address]:
    """A client's endpoint on a socket of its own, connected to ``host``'s first address."""
    infos = numeric_address(host, port, family) or await loop.getaddrinfo(
        host, port, family=family, type=socket.SOCK_DGRAM
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
    return endpoint, peer


def _check_local(family: object, local_addr: object) -> None:
    """``family`` and ``local_addr`` of a client, checked here so that the error names them
    (getaddrinfo's and bind's do not)."""
    if family not in FAMILIES or isinstance(family, bool):
        kind = ValueError if isinstance(family, int) and not isinstance(family, bool) else TypeError
        raise kind(f"family must be 0 (either), socket.AF_INET or socket.AF_INET6, got {family!r}")
    if local_addr is not None and not isinstance(local_addr, tuple):
        raise TypeError(
            f"local_addr must be a (host, port) tuple to bind to, e.g. ('127.0.0.1', 0), got {local_addr!r}"
        )


async def create_server(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    ssl: ssl_module.SSLContext | None = None,
    backlog: int | None = None,
    reuse_port: bool | None = None,
    sock: socket.socket | None = None,
    start_serving: bool = True,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    config: Config | None = None,
    **options: Any,
) -> Server:
    """Listen for udptcp connections; each gets a protocol from ``protocol_factory``, as with
    ``loop.create_server``.

    ``port=0`` picks a free port (``server.sockets[0].getsockname()`` tells which);
    ``host=None`` listens on all interfaces. ``ssl``: an ``ssl.SSLContext`` with the server's
    certificate (:func:`udptcp.tls.server_context`); the protocol's ``connection_made`` comes
    after the handshake. ``sock``, instead of ``host`` and ``port``: a bound UDP socket to
    listen on (the server owns it from then on).

    ``reuse_port=True`` sets SO_REUSEPORT on the listening sockets (``sock`` must have it), so
    that several servers, in one process or several, listen on the same address and port,
    the kernel spreading new peers across them. Each connection then gets a UDP socket of its
    own, connected to its peer, so that it stays with the server that accepted it whatever
    servers join or leave; ``close()`` closes the listening sockets at once, handing new peers
    to the others. A ValueError says when the platform has no SO_REUSEPORT.
    """
    if not callable(protocol_factory):
        raise TypeError("protocol_factory must be callable (a protocol class, or a function)")
    cfg = Config.from_options(config, **options)
    if backlog is not None:
        cfg = cfg.replace(backlog=backlog)
    context = tls.server_ssl(ssl, ssl_handshake_timeout)
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
            raise ValueError("give create_server() either host and port or sock, not both")
        sockets = [adopt(sock, reuse)]
    else:
        addresses = await resolve_passive(loop, host, port)
        # Made one at a time, so that a failing bind leaves no socket outside an endpoint.
        sockets = (listening_socket(family, addr, cfg, reuse_port=reuse) for family, addr in addresses)
    server = Server(
        loop, protocol_factory, ssl=context, ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
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


class Network:
    """udptcp for a library that takes "something with ``create_connection``" (and
    ``create_server``) where it would otherwise use the event loop: asyncssh's ``tunnel=``,
    for one. Options given here (``Config`` fields, ``ssl``...) apply to every call, under
    those of the call itself."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    async def create_connection(
        self, protocol_factory: Callable[[], P], host: str | None = None, port: int | str | None = None,
        **options: Any,
    ) -> tuple[asyncio.Transport, P]:
        """:func:`create_connection` with this network's options."""
        return await create_connection(protocol_factory, host, port, **{**self.options, **options})

    async def create_server(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Sequence[str] | None = None, port: int | str | None = None, **options: Any,
    ) -> Server:
        """:func:`create_server` with this network's options."""
        return await create_server(protocol_factory, host, port, **{**self.options, **options})
