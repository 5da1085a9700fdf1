"""One-byte round trips and connection set-ups, over raw UDP, kernel TCP and udptcp.

``--settings`` says which: ``{"transport": "udp"|"tcp"|"udptcp", "mode": "rtt"|"setups",
"count": N, "parallel": P}``.

- ``rtt``: the client sends one octet and waits for it to come back, ``count`` times over one
  connection (raw UDP: one socket); its result is the median round trip in microseconds. This
  is the cost of one pass each way through the transport, nothing else.
- ``setups``: the client opens ``count`` connections, ``parallel`` at a time; the server
  closes each as soon as it is accepted and the client closes in turn, so a set-up is the
  handshake, the accept and the close. Its result is connections per second. The server closes
  first, so TIME_WAIT stays with the server (udptcp's with a 1 s MSL, and the kernel's for TCP),
  and every client socket is gone when its connection is.

The server runs until the harness ends it; only the client's result is read.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import udptcp
from benchmarks.peers import PeerOptions, cpu_seconds, loop_name, peer_main
from benchmarks.procs import HOST, JsonDict, announce_listening

SERVER_MSL_S = 1.0
"""udptcp's server keeps TIME_WAIT 2 s, so that thousands of set-ups do not pile up for a minute."""
CLIENT_MSL_S = 0.5
"""The round-trip client closes first: its TIME_WAIT (1 s) must not hold the process for a minute."""


def _settings(opts: PeerOptions) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(opts.settings)
    return settings


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


async def server(opts: PeerOptions) -> JsonDict:
    """Echo (``rtt``) or accept-and-close (``setups``) until the harness stops us."""
    settings = _settings(opts)
    transport, mode = settings["transport"], settings["mode"]
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if mode == "rtt":
            while data := await reader.read(64):
                writer.write(data)
        writer.close()

    if transport == "udp":
        udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=(HOST, 0))
        port = udp.get_extra_info("sockname")[1]
    elif transport == "tcp":
        tcp = await asyncio.start_server(handle, HOST, 0)
        port = tcp.sockets[0].getsockname()[1]
    else:
        server = await udptcp.start_server(handle, HOST, 0, msl_s=SERVER_MSL_S, backlog=1024)
        port = server.sockets[0].getsockname()[1]
    announce_listening(port)
    await asyncio.Event().wait()  # until the harness ends the process
    return {"loop": loop_name()}


async def _open(transport: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if transport == "tcp":
        return await asyncio.open_connection(HOST, port)
    return await udptcp.open_connection(HOST, port, msl_s=CLIENT_MSL_S)


async def _udp_rtt(port: int, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            replies.put_nowait(data)

    udp, _ = await loop.create_datagram_endpoint(Client, remote_addr=(HOST, port))
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        udp.sendto(b"x")
        await replies.get()
        samples.append(time.perf_counter() - start)
    udp.close()
    return samples


async def _stream_rtt(transport: str, port: int, count: int) -> list[float]:
    reader, writer = await _open(transport, port)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        writer.write(b"x")
        await reader.readexactly(1)
        samples.append(time.perf_counter() - start)
    writer.close()
    await writer.wait_closed()
    return samples


async def _setups(transport: str, port: int, count: int, parallel: int) -> None:
    async def one() -> None:
        reader, writer = await _open(transport, port)
        await reader.read()  # the server closes at once
        writer.close()
        await writer.wait_closed()

    for start in range(0, count, parallel):
        await asyncio.gather(*(one() for _ in range(min(parallel, count - start))))


async def client(opts: PeerOptions) -> JsonDict:
    """Measure; the result's ``value`` is µs per round trip or set-ups per second."""
    settings = _settings(opts)
    transport, mode, count = settings["transport"], settings["mode"], settings["count"]
    start, cpu0 = time.perf_counter(), cpu_seconds()
    if mode == "rtt":
        if transport == "udp":
            samples = await _udp_rtt(opts.port, count)
        else:
            samples = await _stream_rtt(transport, opts.port, count)
        value = statistics.median(samples) * 1e6
    else:
        await _setups(transport, opts.port, count, settings["parallel"])
        value = count / (time.perf_counter() - start)
    seconds = time.perf_counter() - start
    return {"value": value, "seconds": seconds, "cpu_s": cpu_seconds() - cpu0, "loop": loop_name()}


if __name__ == "__main__":
    peer_main(server, client)
