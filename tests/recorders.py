"""What the tests of asyncio's protocol API over udptcp share: a protocol that records its
callbacks, a server on a free port, and waits that are bounded."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest

import udptcp
from udptcp.server import Server

QUICK: dict[str, Any] = {"msl_s": 0.05, "rto_min_s": 0.05}
WAIT_S = 20.0
"""Bound on every wait for something the code under test must do; reached only on failure."""
STILL_BLOCKED_S = 1.0
"""How long something must keep not happening, as evidence that it is held back."""


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")),
]


class Recorder(asyncio.Protocol):
    """Records every callback, in order; ``keep_open`` is what ``eof_received`` returns."""

    def __init__(self, keep_open: bool = False) -> None:
        self.keep_open = keep_open
        self.events: list[str] = []
        self.data = bytearray()
        self.types: set[type] = set()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.eof = asyncio.Event()
        self.made = asyncio.Event()
        self.received = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.events.append("made")
        self.made.set()

    def data_received(self, data: bytes) -> None:
        if self.events[-1] != "data":
            self.events.append("data")
        self.types.add(type(data))
        self.data += data
        self.received.set()

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set()
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


P = TypeVar("P", bound=asyncio.BaseProtocol)


def recording(make: Callable[[], P]) -> tuple[list[P], Callable[[], P]]:
    """A protocol factory that keeps every protocol it makes, in order, for the test to inspect."""
    made: list[P] = []

    def factory() -> P:
        made.append(make())
        return made[-1]

    return made, factory


async def serve(factory: Callable[[], asyncio.BaseProtocol], host: str, **options: Any) -> tuple[Server, int]:
    server = await udptcp.create_server(factory, host, 0, **{**QUICK, **options})
    return server, server.sockets[0].getsockname()[1]


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, WAIT_S)


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (callers bound the wait)."""
    while not condition():
        await asyncio.sleep(0)
