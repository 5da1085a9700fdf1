"""``open_connection`` and ``start_server``, shaped exactly like asyncio's.

The reader, writer and protocol are asyncio's own ``StreamReader``, ``StreamWriter`` (with a
``start_tls`` that works on every loop) and ``StreamReaderProtocol``, over the transport of
:func:`udptcp.create_connection` and :func:`udptcp.create_server`. Switching an application
from TCP is a change of import. Options beyond asyncio's (MSL, RTO bounds, segment size, ...)
are keyword arguments validated by :class:`udptcp.Config`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

from udptcp import loops, tls
from udptcp.config import Config
from udptcp.protocols import create_connection, create_server
from udptcp.server import Server

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
    ssl: ssl_module.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    local_addr: tuple[str, int] | None = None,
    family: int = 0,
    config: Config | None = None,
    **options: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a udptcp server; return a (reader, writer) pair once the handshake is done.

    ``ssl``: an ``ssl.SSLContext``, or True for TLS 1.3 with the server's certificate verified
    (see :func:`udptcp.create_connection`). Raises ``ConnectionRefusedError`` if nothing
    listens there (the SYN is answered by RST), ``TimeoutError`` when ``syn_retries`` SYNs go
    unanswered, ``ssl.SSLError`` when the TLS handshake fails, ``ValueError``/``TypeError``
    for bad arguments. Keyword ``options`` are :class:`udptcp.Config` fields.
    """
    _check_limit(limit)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = _stream_protocol(reader, None, loop)
    transport, _ = await create_connection(
        lambda: protocol, host, port, ssl=ssl, server_hostname=server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout, local_addr=local_addr, family=family,
        config=config, **options,
    )
    return reader, StreamWriter(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    ssl: ssl_module.SSLContext | None = None,
    ssl_handshake_timeout: float | None = None,
    backlog: int | None = None,
    reuse_port: bool | None = None,
    sock: socket.socket | None = None,
    start_serving: bool = True,
    config: Config | None = None,
    **options: Any,
) -> Server:
    """Listen for udptcp connections; call ``client_connected_cb(reader, writer)`` for each.

    As with asyncio, a coroutine callback runs as a task. ``ssl``: the server's
    ``ssl.SSLContext`` (the callback runs once the TLS handshake is done). The other
    arguments are :func:`udptcp.create_server`'s (``port=0``, ``sock``, ``reuse_port``...).
    """
    if not callable(client_connected_cb):
        raise TypeError("client_connected_cb must be callable (a function or coroutine function)")
    _check_limit(limit)
    loop = asyncio.get_running_loop()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None] | None:
        return client_connected_cb(reader, _with_start_tls(writer))

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return _stream_protocol(reader, connected, loop)

    return await create_server(
        factory, host, port, ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout, backlog=backlog,
        reuse_port=reuse_port, sock=sock, start_serving=start_serving, config=config, **options,
    )


class StreamWriter(asyncio.StreamWriter):
    """asyncio's StreamWriter, whose ``start_tls`` (a STARTTLS upgrade of the open
    connection) works on every loop: asyncio's calls ``loop.start_tls``, which uvloop refuses
    for transports that are not its own; this one goes through :func:`udptcp.tls.start_tls`."""

    async def start_tls(
        self, sslcontext: ssl_module.SSLContext, *, server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
    ) -> None:
        """Upgrade the connection to TLS; the reader and writer go on over it."""
        protocol = cast(asyncio.StreamReaderProtocol, self._protocol)  # type: ignore[attr-defined]
        server_side = protocol._client_connected_cb is not None  # type: ignore[attr-defined]
        await self.drain()
        self._transport = await tls.start_tls(
            cast(asyncio.Transport, self.transport), protocol, sslcontext, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        protocol._replace_writer(self)  # type: ignore[attr-defined]


def _stream_protocol(
    reader: asyncio.StreamReader,
    connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None] | None,
    loop: asyncio.AbstractEventLoop,
) -> asyncio.StreamReaderProtocol:
    """asyncio's StreamReaderProtocol, with its queue of ``drain()`` waiters in a list.

    asyncio makes that queue a ``collections.deque``, which costs 760 octets even empty (a
    block of 64 slots comes with it), and only appends to it, removes from it and iterates
    over it (3.11 to 3.13), as a list does in 56: some 700 octets less on each of a server's
    idle connections. Where a version keeps something else there, it is left alone.
    """
    protocol = asyncio.StreamReaderProtocol(reader, connected, loop=loop)
    waiters = getattr(protocol, "_drain_waiters", None)
    if type(waiters) is deque and not waiters:
        protocol._drain_waiters = []  # type: ignore[attr-defined]
    return protocol


def _with_start_tls(writer: asyncio.StreamWriter) -> StreamWriter:
    """The writer asyncio's StreamReaderProtocol made for an accepted connection, as a
    :class:`StreamWriter` (the same object, so that the protocol's reference stays the one
    the application holds: a second writer, collected, would close the connection)."""
    writer.__class__ = StreamWriter
    return cast(StreamWriter, writer)


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True, debug: bool | None = None) -> T:
    """Run ``main`` like ``asyncio.run``, on uvloop when it is installed (unless told not to)."""
    return loops.run(lambda: main, "auto" if use_uvloop else "asyncio", debug=debug)


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {type(limit).__name__}")
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
