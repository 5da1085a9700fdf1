"""The tunnel: every accepted connection relayed to one target over a connection of its own.

``udptcp tunnel server`` accepts udptcp and dials TCP; ``udptcp tunnel client`` accepts TCP and
dials udptcp. Both are a :class:`Tunnel` between two :class:`Carrier` s, and each accepted
connection is one :func:`relay` between two stream pairs, so that what TCP means by its
stream is carried unchanged:

- data both ways, with back-pressure: a copy awaits ``drain()`` after every write, so it stops
  reading (and the reader's window closes) while the far side is slower; what is held in
  between is bounded by the reader's limit and the writer's buffer limit;
- a half-close both ways: the end of one side's data (EOF) becomes ``write_eof()`` on the
  other, and the other direction goes on until it ends too;
- a reset both ways: a side that fails (reset, timed out, broken) has the other one reset,
  never closed gracefully, since a FIN would tell the far peer that the data was complete.
  A TCP socket is reset by closing it with SO_LINGER 0; a udptcp connection by ``abort()``.

Carrying the hops over TLS is a matter of the carriers: :func:`udptcp_carrier` and
:func:`tcp_carrier` forward an ``ssl`` context to the calls that open and accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import udptcp
from udptcp.addresses import check_peer, format_address
from udptcp.config import Config
from udptcp.log import get_logger

RELAY_CHUNK_BYTES = 256 * 1024
"""How much one copy reads at a time; also each reader's limit, so the bytes a relay holds
between its two sides stay bounded by a few of these plus the writers' buffers."""
LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: closing the socket then sends RST and discards unsent data."""
STOP_GRACE_S = 2.0
"""How long a stopping tunnel lets its relays finish by themselves before resetting them."""
CLOSE_WAIT_S = 30.0
"""Longest wait, after both directions ended, for a side's graceful close to complete."""

_log = get_logger()

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Listening(Protocol):
    """What the tunnel needs of a server: asyncio's ``Server`` and udptcp's both are one."""

    @property
    def sockets(self) -> Any: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


@dataclass(frozen=True)
class Carrier:
    """How one hop is carried: the call that dials it and the one that listens on it."""

    name: str
    open_connection: Callable[[str, int], Awaitable[Streams]]
    start_server: Callable[[Handler, str, int], Awaitable[Listening]]


def udptcp_carrier(config: Config, ssl: Any = None) -> Carrier:
    """udptcp, with ``config``; ``ssl`` (a context) is forwarded when given."""
    extra: dict[str, Any] = {} if ssl is None else {"ssl": ssl}

    async def dial(host: str, port: int) -> Streams:
        return await udptcp.open_connection(
            host, port, limit=RELAY_CHUNK_BYTES, config=config, **extra
        )

    async def listen(handler: Handler, host: str, port: int) -> Listening:
        return await udptcp.start_server(
            handler, host, port, limit=RELAY_CHUNK_BYTES, config=config, **extra
        )

    return Carrier("udptcp", dial, listen)


def tcp_carrier(ssl: Any = None) -> Carrier:
    """Kernel TCP through asyncio's streams; ``ssl`` (a context) is forwarded when given."""
    extra: dict[str, Any] = {} if ssl is None else {"ssl": ssl}

    async def dial(host: str, port: int) -> Streams:
        return await asyncio.open_connection(host, port, limit=RELAY_CHUNK_BYTES, **extra)

    async def listen(handler: Handler, host: str, port: int) -> Listening:
        return await asyncio.start_server(handler, host, port, limit=RELAY_CHUNK_BYTES, **extra)

    return Carrier("tcp", dial, listen)


@dataclass
class TunnelStats:
    """What a tunnel carried: connections, how they ended, and bytes each way."""

    connections: int = 0
    """Connections accepted."""
    failed: int = 0
    """Accepted connections whose target could not be reached (they were reset)."""
    resets: int = 0
    """Relays that ended in a reset (a side was reset, timed out, or the tunnel stopped)."""
    bytes_to_target: int = 0
    bytes_from_target: int = 0

    def summary(self) -> str:
        """One line for the end of a run."""
        return (
            f"{self.connections} connections ({self.failed} failed to reach the target, "
            f"{self.resets} reset); {self.bytes_to_target} bytes to the target, "
            f"{self.bytes_from_target} bytes back"
        )


def reset(writer: asyncio.StreamWriter) -> None:
    """End one side with a reset: SO_LINGER 0 first on a TCP socket, then ``abort()``."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.type == socket.SOCK_STREAM:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    writer.transport.abort()


async def copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]
) -> None:
    """Copy until ``reader``'s EOF, then half-close ``writer``; raises if either side fails.

    Over TLS the hop cannot half-close (asyncio's TLS layer has no ``write_eof``): the EOF is
    not carried, and the connection closes once the other direction has ended too.
    """
    while data := await reader.read(RELAY_CHUNK_BYTES):
        writer.write(data)
        count(len(data))
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
        await writer.drain()


async def relay(near: Streams, far: Streams, stats: TunnelStats) -> None:
    """Carry one connection both ways until both directions ended; reset both if one fails.

    ``near`` is the accepted side, ``far`` the one dialled to the target. Cancelling resets
    both sides (a stopped tunnel must not pass a truncated stream off as complete).
    """

    def forward(size: int) -> None:
        stats.bytes_to_target += size

    def back(size: int) -> None:
        stats.bytes_from_target += size

    copies = {
        asyncio.create_task(copy(near[0], far[1], forward)),
        asyncio.create_task(copy(far[0], near[1], back)),
    }
    try:
        pending = copies
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a side failed: raises here
    except BaseException as exc:
        stats.resets += 1
        for task in copies:
            task.cancel()
        reset(near[1])
        reset(far[1])
        if not any(task.done() and not task.cancelled() and task.exception() is not None
                   for task in copies):
            raise  # not a side's failure: we were cancelled (the tunnel stops)
        peer = format_address(near[1].get_extra_info("peername"))
        if isinstance(exc, OSError):  # reset, timed out, broken: what networks do
            _log.info("relay reset", peer=peer, error=str(exc) or type(exc).__name__)
        else:
            _log.warning("relay failed; both sides reset", peer=peer, exc_info=exc)
        return
    for _, writer in (near, far):
        writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(near[1].wait_closed(), far[1].wait_closed()), CLOSE_WAIT_S
        )


class Tunnel:
    """Accept on one carrier, relay each connection to ``target`` over the other."""

    def __init__(self, inbound: Carrier, outbound: Carrier, target: tuple[str, int]) -> None:
        """``target`` is checked now (:func:`check_peer`): a wrong one would otherwise fail
        each connection accepted, with an error that names neither it nor the fix."""
        if not isinstance(target, tuple) or len(target) != 2:
            raise TypeError(f"target must be a (host, port) tuple, e.g. ('127.0.0.1', 9000), got {target!r}")
        self.inbound = inbound
        self.outbound = outbound
        self.target = check_peer(*target)
        self.stats = TunnelStats()
        self._relays: set[asyncio.Task[Any]] = set()
        self._server: Listening | None = None

    async def listen(self, host: str, port: int) -> Listening:
        """Start accepting on ``host``:``port``; returns the server (its sockets say where)."""
        self._server = await self.inbound.start_server(self._accepted, host, port)
        return self._server

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One accepted connection: dial the target, then relay (reset ours if it cannot)."""
        self.stats.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            try:
                far = await self.outbound.open_connection(*self.target)
            except OSError as exc:  # refused, timed out, unresolvable
                self.stats.failed += 1
                _log.warning(
                    "tunnel cannot reach its target; the connection is reset",
                    target=format_address(self.target), carrier=self.outbound.name, error=str(exc),
                )
                reset(writer)
                return
            except BaseException:
                reset(writer)
                raise
            await relay((reader, writer), far, self.stats)
        finally:
            self._relays.discard(task)

    @property
    def active(self) -> int:
        """Connections being relayed now."""
        return len(self._relays)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop accepting; give the relays ``grace_s`` to end, then reset the rest."""
        if self._server is not None:
            self._server.close()
        if self._relays:
            await asyncio.wait(set(self._relays), timeout=grace_s)
        for task in list(self._relays):
            task.cancel()
        if self._relays:
            await asyncio.wait(set(self._relays))
        if self._server is not None:
            await self._server.wait_closed()
