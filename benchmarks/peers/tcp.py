"""Kernel TCP through asyncio streams: the bar a user-space transport is compared against.

The client writes ``--bytes`` in 64 KiB writes, each followed by ``await drain()`` (the same
back-pressure discipline an application would use with udptcp's streams), half-closes, and
stops the clock when the server's byte-count reply arrives, exactly as ``udptcp bench`` does.
Run as ``python -m benchmarks.peers.tcp --role server|client ...`` (started by ``benchmarks.compare``).
"""

from __future__ import annotations

import asyncio
import json
import time

from benchmarks.peers import PeerOptions, Receipt, blocks, check_count, cpu_seconds, loop_name, peer_main
from benchmarks.procs import HOST, JsonDict, announce_listening

WRITE_BYTES = 64 * 1024
READ_BYTES = 1 << 20


async def server(opts: PeerOptions) -> JsonDict:
    """Accept one connection, count its bytes to EOF, reply with the count, report our CPU."""
    done: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        receipt = Receipt()
        while data := await reader.read(READ_BYTES):
            receipt.add(len(data))
        result = receipt.result()
        writer.write(json.dumps({"bytes": receipt.received}).encode() + b"\n")
        await writer.drain()
        writer.close()
        if not done.done():
            done.set_result({**result, "loop": loop_name()})

    srv = await asyncio.start_server(handle, HOST, 0)
    announce_listening(srv.sockets[0].getsockname()[1])
    result = await done
    srv.close()
    return result


async def client(opts: PeerOptions) -> JsonDict:
    """Send the bytes, half-close, wait for the reply; time and CPU cover exactly that."""
    reader, writer = await asyncio.open_connection(HOST, opts.port)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    for block in blocks(opts.total_bytes, WRITE_BYTES):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    reply = await reader.readline()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    writer.close()
    check_count(reply, opts.total_bytes)
    return {"bytes": opts.total_bytes, "seconds": seconds, "cpu_s": cpu, "loop": loop_name()}


if __name__ == "__main__":
    peer_main(server, client)
