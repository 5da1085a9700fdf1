"""aiohttp requests per second over udptcp beside aiohttp over kernel TCP.

    python -m benchmarks.aiohttp_rate [--requests 3000] [--concurrency 8]

A server process (an aiohttp.web app answering ``GET /`` with 13 octets) and this process as
the client (one ClientSession, ``--concurrency`` requests in flight on kept-alive
connections), each transport in turn; one JSON line per transport. Needs aiohttp (the test
extra) and examples/aiohttp_udptcp.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

import udptcp

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
from aiohttp_udptcp import UdptcpConnector, serve

START_TIMEOUT_S = 20.0
RUN_TIMEOUT_S = 300.0


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello, world!")


async def _serve(transport: str) -> None:
    app = web.Application()
    app.add_routes([web.get("/", _hello)])
    if transport == "udptcp":
        _, server = await serve(app, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    else:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until told to stop


async def _client(transport: str, port: int, requests: int, concurrency: int) -> dict[str, Any]:
    connector = UdptcpConnector() if transport == "udptcp" else aiohttp.TCPConnector()
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"http://127.0.0.1:{port}/"
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.get(url) as response:
                    await response.read()

        start = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), RUN_TIMEOUT_S)
        elapsed = time.perf_counter() - start
    return {"transport": transport, "requests": requests, "concurrency": concurrency,
            "seconds": round(elapsed, 3), "requests_per_s": round(requests / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve", choices=["udptcp", "tcp"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        udptcp.run(_serve(args.serve))
        return
    for transport in ("udptcp", "tcp"):
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.aiohttp_rate", "--serve", transport],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("listening on "):
                raise RuntimeError(f"the {transport} server did not start: {line!r}")
            port = int(line.rsplit(":", 1)[1])
            result = udptcp.run(_client(transport, port, args.requests, args.concurrency))
            print(json.dumps(result), flush=True)
        finally:
            server.communicate(timeout=START_TIMEOUT_S)  # closes its stdin: it stops


if __name__ == "__main__":
    main()
