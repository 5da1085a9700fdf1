"""Memory per idle connection on a server: ``python -m benchmarks.idle_memory``.

A ``udptcp echo-server`` runs in a process of its own; this process opens N connections to it,
200 at a time, each echoing one octet (so that both ends are established and have exchanged
data once), and leaves them idle. The server's resident set size (VmRSS, from /proc) is read
after a first batch has warmed it up and again with all N open; the difference over the
connections added is the figure: what one idle connection costs the server, everything
included (the core's objects, the transport, the asyncio stream objects of the echo handler,
the dictionaries that route it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import resource
import sys
import time
from pathlib import Path

import udptcp
from benchmarks.procs import HOST, LISTENING, Group, print_result

DEFAULT_CONNECTIONS = 10_000
BATCH = 200
"""Connections opened at once (as the burst of the issue that motivated SYN cookies)."""
WARMUP_CONNECTIONS = 200
SETTLE_S = 1.0
"""Pause before each RSS reading, so that the server has finished with the last batch."""
RUN_TIMEOUT_S = 600.0
KIB = 1024


def rss_bytes(pid: int) -> int:
    """The process's resident set size, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmRSS for process {pid}")


async def open_idle(port: int, count: int, held: list[asyncio.StreamWriter]) -> None:
    """Open ``count`` connections, ``BATCH`` at a time, each echoing one octet, and keep them."""

    async def one() -> None:
        reader, writer = await udptcp.open_connection(HOST, port, msl_s=1.0)
        writer.write(b"x")
        if await reader.readexactly(1) != b"x":
            raise RuntimeError("the echo server answered something else")
        held.append(writer)

    for start in range(0, count, BATCH):
        await asyncio.gather(*(one() for _ in range(min(BATCH, count - start))))


async def measure(connections: int) -> dict[str, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = connections + WARMUP_CONNECTIONS + 100  # a client socket per connection
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    held: list[asyncio.StreamWriter] = []
    with Group() as group:
        server = group.start("server", [
            sys.executable, "-m", "udptcp", "echo-server", "--host", HOST, "--port", "0",
            "-o", f"backlog={BATCH}",
        ])
        port = server.port(LISTENING, time.monotonic() + RUN_TIMEOUT_S)
        await open_idle(port, WARMUP_CONNECTIONS, held)
        await asyncio.sleep(SETTLE_S)
        before = rss_bytes(server.proc.pid)
        started = time.monotonic()
        await open_idle(port, connections, held)
        opened_s = time.monotonic() - started
        gc.collect()
        await asyncio.sleep(SETTLE_S)
        after = rss_bytes(server.proc.pid)
        for writer in held:
            with contextlib.suppress(Exception):
                writer.transport.abort()
    per_connection = (after - before) / connections
    return {
        "connections": connections,
        "server_rss_before_bytes": before,
        "server_rss_after_bytes": after,
        "bytes_per_idle_connection": round(per_connection),
        "kib_per_idle_connection": round(per_connection / KIB, 2),
        "open_s": round(opened_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS,
                        help=f"idle connections to hold (default {DEFAULT_CONNECTIONS})")
    args = parser.parse_args(argv)
    result = asyncio.run(asyncio.wait_for(measure(args.connections), RUN_TIMEOUT_S))
    print(f"{result['kib_per_idle_connection']} KiB per idle connection on the server "
          f"({args.connections} connections)", file=sys.stderr)
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
