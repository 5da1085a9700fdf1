"""Kernel TCP through asyncio streams: the bar a user-space transport is compared against.

The client writes ``--bytes`` in 64 KiB writes, each followed by ``await drain()`` (the same
back-pressure discipline an application would use with udptcp's streams), half-closes, and
stops the clock when the server's byte-count reply arrives, exactly as ``udptcp bench`` does.
Run as ``python peer_tcp.py --role server|client ...`` (started by ``compare.py``).
"""

from __future__ import annotations

import asyncio
import json
import time

from harness import HOST, JsonDict, PeerOptions, announce_port, cpu_seconds, loop_name, peer_main

WRITE_BYTES = 64 * 1024
READ_BYTES = 1 << 20


async def server(opts: PeerOptions) -> JsonDict:
    """Accept one connection, count its bytes to EOF, reply with the count, report our CPU."""
    done: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = 0
        first = cpu0 = 0.0
        while data := await reader.read(READ_BYTES):
            if not received:
                first, cpu0 = time.perf_counter(), cpu_seconds()
            received += len(data)
        seconds = time.perf_counter() - first
        cpu = cpu_seconds() - cpu0
        writer.write(json.dumps({"bytes": received}).encode() + b"\n")
        await writer.drain()
        writer.close()
        if not done.done():
            done.set_result({"bytes": received, "seconds": seconds, "cpu_s": cpu, "loop": loop_name()})

    srv = await asyncio.start_server(handle, HOST, 0)
    announce_port(srv.sockets[0].getsockname()[1])
    result = await done
    srv.close()
    return result


async def client(opts: PeerOptions) -> JsonDict:
    """Send the bytes, half-close, wait for the reply; time and CPU cover exactly that."""
    reader, writer = await asyncio.open_connection(HOST, opts.port)
    chunk = b"\x5a" * WRITE_BYTES
    start, cpu0 = time.perf_counter(), cpu_seconds()
    sent = 0
    while sent < opts.total_bytes:
        piece = chunk if opts.total_bytes - sent >= WRITE_BYTES else chunk[: opts.total_bytes - sent]
        writer.write(piece)
        sent += len(piece)
        await writer.drain()
    writer.write_eof()
    reply = await reader.readline()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    writer.close()
    counted = json.loads(reply)["bytes"]
    if counted != sent:
        raise RuntimeError(f"the server counted {counted} of {sent} bytes")
    return {"bytes": sent, "seconds": seconds, "cpu_s": cpu, "loop": loop_name()}


if __name__ == "__main__":
    peer_main(server, client)
