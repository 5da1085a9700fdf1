"""The two ends of the tunnel benchmark, plain TCP programs as the tunnel would carry for users.

- ``--role target``: the TCP server at the far end. A connection that starts with ``B`` is a
  bulk upload: the server counts the bytes to EOF and replies with the count (one JSON line).
  One that starts with ``R`` is a run of requests: each ``--request-bytes`` request is answered
  with ``--response-bytes``, until EOF.
- ``--role bulk``: send ``--bytes`` in 64 KiB writes (each followed by ``drain()``), half-close,
  wait for the count; the clock covers exactly that.
- ``--role requests``: ``--parallel`` connections at once, each sending ``--count`` requests one
  after the other (the next once the answer is in): requests per second, as a key-value store
  or an RPC client would load the tunnel.
- ``--role connects``: ``--count`` connections, ``--parallel`` at a time, one request each:
  connections per second (every one a new udptcp connection through the tunnel).

Run as ``python -m benchmarks.peers.tunnel_load --role ... --port ...`` (started by
``benchmarks.tunnel``); every role prints its result as one JSON line at the end, the target
``listening on HOST:PORT`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import time

from benchmarks.peers import MB, blocks, check_count, cpu_seconds, loop_name
from benchmarks.procs import HOST, JsonDict, announce_listening, print_result

WRITE_BYTES = 64 * 1024
READ_BYTES = 1 << 20
BULK, REQUESTS = b"B", b"R"


async def target(opts: argparse.Namespace) -> JsonDict:
    """Serve bulk uploads and request runs until the harness stops us (the deadline ends it)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            kind = await reader.readexactly(1)
            if kind == BULK:
                counted = 0
                while data := await reader.read(READ_BYTES):
                    counted += len(data)
                writer.write(json.dumps({"bytes": counted}).encode() + b"\n")
            else:
                response = b"r" * opts.response_bytes
                while True:
                    try:
                        await reader.readexactly(opts.request_bytes)
                    except asyncio.IncompleteReadError:
                        break
                    writer.write(response)
                    await writer.drain()
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, HOST, 0, backlog=1024)
    announce_listening(srv.sockets[0].getsockname()[1])
    await asyncio.sleep(opts.deadline_s)  # the harness kills us once it has measured
    return {"loop": loop_name()}


async def bulk(opts: argparse.Namespace) -> JsonDict:
    """Upload ``--bytes`` through the tunnel and wait for the far end's count."""
    reader, writer = await asyncio.open_connection(HOST, opts.port)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    writer.write(BULK)
    for block in blocks(opts.total_bytes, WRITE_BYTES):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    reply = await reader.readline()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    writer.close()
    check_count(reply, opts.total_bytes)
    return {"bytes": opts.total_bytes, "seconds": seconds, "cpu_s": cpu, "loop": loop_name(),
            "value": opts.total_bytes / MB / seconds}


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                    response_bytes: int, count: int) -> None:
    for _ in range(count):
        writer.write(request)
        await reader.readexactly(response_bytes)


async def requests(opts: argparse.Namespace) -> JsonDict:
    """``--parallel`` connections, ``--count`` requests each, one at a time per connection."""
    request = b"q" * opts.request_bytes
    streams = [await asyncio.open_connection(HOST, opts.port) for _ in range(opts.parallel)]
    for _, writer in streams:
        writer.write(REQUESTS)
    start = time.perf_counter()
    await asyncio.gather(*(_exchange(r, w, request, opts.response_bytes, opts.count) for r, w in streams))
    seconds = time.perf_counter() - start
    for _, writer in streams:
        writer.close()
    total = opts.parallel * opts.count
    return {"requests": total, "seconds": seconds, "value": total / seconds, "loop": loop_name()}


async def connects(opts: argparse.Namespace) -> JsonDict:
    """``--count`` connections, ``--parallel`` at a time, each one request and a close."""
    request = b"q" * opts.request_bytes
    slots = asyncio.Semaphore(opts.parallel)

    async def one() -> None:
        async with slots:
            reader, writer = await asyncio.open_connection(HOST, opts.port)
            writer.write(REQUESTS)
            await _exchange(reader, writer, request, opts.response_bytes, 1)
            writer.write_eof()
            await reader.read()
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(opts.count)))
    seconds = time.perf_counter() - start
    return {"connections": opts.count, "seconds": seconds, "value": opts.count / seconds,
            "loop": loop_name()}


ROLES = {"target": target, "bulk": bulk, "requests": requests, "connects": connects}


def main() -> None:
    parser = argparse.ArgumentParser(description="an end of the tunnel benchmark (started by the harness)")
    parser.add_argument("--role", choices=sorted(ROLES), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bytes", type=int, default=100 * MB, dest="total_bytes")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--request-bytes", type=int, default=64)
    parser.add_argument("--response-bytes", type=int, default=256)
    parser.add_argument("--deadline", type=float, default=120.0, dest="deadline_s")
    opts = parser.parse_args()

    async def bounded() -> JsonDict:
        # The harness kills us anyway; this makes a stuck end exit cleanly first.
        return await asyncio.wait_for(ROLES[opts.role](opts), opts.deadline_s + 1.0)

    if importlib.util.find_spec("uvloop") is not None:
        import uvloop  # both ends on the faster loop: the tunnel, not they, is measured

        result: JsonDict = uvloop.run(bounded())
    else:
        result = asyncio.run(bounded())
    print_result(result)

if __name__ == "__main__":
    main()
