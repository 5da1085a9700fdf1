"""The peers udptcp is measured against, one module each, and what their programs share.

- ``udp``: windowed raw UDP, no protocol at all (the ceiling of any UDP transport in Python);
- ``tcp``: kernel TCP through asyncio streams (the bar of any stream transport);
- ``quic``: aioquic, the pure-Python reliable transport over UDP;
- ``kcp``: KCP, a reliability core in C (the ``kcp`` package) driven from asyncio.

Each module is one program with two roles, run by the harness as two processes:
``python -m benchmarks.peers.<name> --role server|client --loop asyncio|uvloop ...``. The server
prints ``listening on HOST:PORT`` first, and both print their result as one JSON line at the end
(``benchmarks.procs``). This module holds what they share: their options, the entry point that
runs a role on the chosen loop within its deadline, CPU and loop facts, socket buffers, and the
receivers' byte count with its optional time limit (on an impaired path a run is capped: the
receiver reports what arrived in the first ``--time-limit`` seconds after its first byte).

``quic`` and ``kcp`` take their settings as one JSON object (``--settings``); the harness always
passes a named profile's full settings, so a report can say exactly what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from benchmarks.procs import JsonDict, print_result

MB = 1_000_000
SOCKET_BUFFER_BYTES = 4 << 20
"""SO_RCVBUF/SO_SNDBUF for the UDP-based peers we drive ourselves (raw UDP, KCP): a full window
must fit in the receive queue, or the stock loop, which reads one datagram per turn, drops."""
TIME_LIMIT_POLL_S = 0.05
"""How often a capped receiver looks at the clock (a 30 s run overshoots by at most this)."""
OPTIONAL_PACKAGES = {"aioquic": ("aioquic", "cryptography"), "kcp": ("kcp",)}
"""The optional peers (as the reports name them) and the packages each needs."""

PeerRole = Callable[["PeerOptions"], Coroutine[Any, Any, JsonDict]]
SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True)
class PeerOptions:
    """What one peer process was asked to do; each peer reads only the fields it needs."""

    role: str
    loop: str
    port: int
    total_bytes: int
    datagram_size: int
    window: int
    seconds: float
    time_limit_s: float | None
    deadline_s: float
    settings: str

    def settings_as(self, kind: type[SettingsT]) -> SettingsT:
        """The ``--settings`` JSON as the peer's settings class (``benchmarks.peers.settings``)."""
        return kind(**json.loads(self.settings))


def missing_peers() -> dict[str, str]:
    """Optional peers whose packages are not installed -> why they will be skipped."""
    missing: dict[str, str] = {}
    for peer, modules in OPTIONAL_PACKAGES.items():
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            missing[peer] = (f"{peer} skipped: {', '.join(absent)} not importable "
                             "(install the optional extra: pip install 'udptcp[bench]')")
    return missing


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process: what 'CPU of each side' is made of."""
    return time.process_time()


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: recorded in every result to prove which loop really ran."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def set_socket_buffers(transport: asyncio.BaseTransport, size: int = SOCKET_BUFFER_BYTES) -> tuple[int, int]:
    """Ask for ``size`` bytes of SO_RCVBUF and SO_SNDBUF; return what the kernel granted.

    Linux doubles the request for bookkeeping and caps it at net.core.[rw]mem_max, so the
    granted values are reported rather than assumed.
    """
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


def blocks(total_bytes: int, block_bytes: int) -> Iterator[bytes]:
    """What a sender writes: ``total_bytes`` in blocks of ``block_bytes`` (the last one shorter)."""
    block = b"\x5a" * block_bytes
    for offset in range(0, total_bytes, block_bytes):
        yield block if total_bytes - offset >= block_bytes else block[: total_bytes - offset]


def check_count(reply: bytes, sent: int) -> None:
    """The receiver's byte-count reply must match what was sent."""
    counted = json.loads(reply)["bytes"]
    if counted != sent:
        raise RuntimeError(f"the server counted {counted} of {sent} bytes")


class Receipt:
    """A receiver's count: bytes so far, and when (and at what CPU) the first one arrived."""

    def __init__(self) -> None:
        self.received = 0
        self.first = 0.0
        self.cpu0 = 0.0

    def add(self, size: int) -> None:
        if not self.received:
            self.first, self.cpu0 = time.perf_counter(), cpu_seconds()
        self.received += size

    def result(self) -> JsonDict:
        """Bytes, first-to-now seconds and CPU seconds since the first byte."""
        if not self.received:
            return {"bytes": 0, "seconds": 0.0, "cpu_s": 0.0}
        return {"bytes": self.received, "seconds": time.perf_counter() - self.first,
                "cpu_s": cpu_seconds() - self.cpu0}


async def received_or_capped(done: asyncio.Future[JsonDict], receipt: Receipt,
                             time_limit_s: float | None) -> JsonDict:
    """The receiver's full result (``done``), or, ``time_limit_s`` after its first byte, what it
    has so far; ``time_limited`` says which."""
    if time_limit_s is None:
        return {**await done, "time_limited": False}
    while True:
        await asyncio.wait({done}, timeout=TIME_LIMIT_POLL_S)
        if done.done():
            return {**done.result(), "time_limited": False}
        if receipt.received and time.perf_counter() - receipt.first >= time_limit_s:
            return {**receipt.result(), "time_limited": True}


def peer_main(server: PeerRole, client: PeerRole) -> None:
    """Entry point of a peer program: parse the options, run one role on the chosen loop."""
    parser = argparse.ArgumentParser(description="one side of a benchmark transfer (started by the harness)")
    parser.add_argument("--role", choices=["server", "client"], required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bytes", type=int, default=10 * MB, dest="total_bytes")
    parser.add_argument("--datagram-size", type=int, default=1400)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the raw UDP sender sends")
    parser.add_argument("--time-limit", type=float, default=None, dest="time_limit_s",
                        help="a receiver reports what it got this long after its first byte")
    parser.add_argument("--deadline", type=float, default=60.0, dest="deadline_s")
    parser.add_argument("--settings", default="{}", help="the peer's settings as a JSON object")
    opts = PeerOptions(**vars(parser.parse_args()))
    role = server if opts.role == "server" else client

    async def bounded() -> JsonDict:
        # The harness kills us anyway; this makes a stuck peer exit cleanly first.
        return await asyncio.wait_for(role(opts), opts.deadline_s)

    if opts.loop == "uvloop":
        import uvloop

        result: JsonDict = uvloop.run(bounded())
    else:
        result = asyncio.run(bounded())
    print_result(result)
