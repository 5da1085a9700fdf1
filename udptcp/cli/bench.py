"""``udptcp bench``: bulk throughput of one connection between two processes over loopback.

The command runs the client itself and starts the server as a child process
(``udptcp bench --role server``). The client sends N MB, half-closes, and waits for the
server's reply: one JSON line with what the server measured (bytes, its CPU seconds,
segments). The transfer time runs from the first write to that reply, as for the TCP anchor.

To measure several connections over several cores, run ``--role server --workers N
--connections C`` and C clients (``--role client``) side by side.

With ``--up``/``--down``/``--both`` a ``udptcp netem`` relay stands between the two, to
measure goodput on an impaired path; ``--time-limit`` caps a slow run, goodput then being
what arrived in that time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import udptcp
from udptcp.addresses import parse_address
from udptcp.cli import workers
from udptcp.cli.common import EXIT_OK, build_config, client_tls, listening_line, say
from udptcp.corebuild import core_build
from udptcp.trace.explain import LimitSampler, explain
from udptcp.transport import StreamTransport

MB = 1_000_000
BLOCK_BYTES = 1 << 20

PROGRESS_INTERVAL_S = 0.5
SERVER_START_TIMEOUT_S = 20.0
SERVED_LINE = "served"
"""What a worker of ``--workers`` prints to the first process when it has served a connection:
the first process counts the group's connections for ``--connections``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``udptcp bench``."""
    parser.add_argument("--size-mb", type=float, default=100.0, help="megabytes to send (default 100)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    parser.add_argument("--up", metavar="SPEC", help="put a netem relay in the path: client -> server")
    parser.add_argument("--down", metavar="SPEC", help="netem impairments server -> client")
    parser.add_argument("--both", metavar="SPEC", help="netem impairments in both directions")
    parser.add_argument("--seed", type=int, default=1, help="the relay's random seed (default 1)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="stop after this long: goodput is what the receiver acknowledged by then")
    parser.add_argument(
        "--role", choices=["both", "server", "client"], default="both",
        help="both (default): run the whole benchmark; server: only serve (prints 'listening on "
        "H:P'); client: only send to --host/--port (to compose flows through one relay)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="server address: where --role server listens, --role client connects (default 127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=int, default=0,
        help="server port: --role server listens on it (default 0: a free one, printed); "
        "--role client needs the port the server printed",
    )
    parser.add_argument("--connections", type=int, default=1,
                        help="with --role server: serve this many connections, then exit; with --workers, "
                        "this many in all (default 1)")


async def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or, with --role server, its server side)."""
    if args.size_mb <= 0:
        raise ValueError(f"--size-mb must be positive, got {args.size_mb}")
    if args.workers is not None and args.role != "server":
        raise ValueError("--workers applies to --role server only (run the clients with --role client)")
    if args.role == "server":
        return await _serve(args)
    if args.role == "client":
        _report(args, await _client(args, args.port))
        return EXIT_OK
    server = _start_server_process(args)
    relay: subprocess.Popen[bytes] | None = None
    try:
        port = await _read_port(server, "listening on ")
        if args.up or args.down or args.both:
            relay = _start_relay_process(args, port)
            port = await _read_port(relay, "relaying ")
        _report(args, await _client(args, port))
    finally:
        for child in (server, relay):
            if child is not None and child.poll() is None:
                if child is relay:
                    child.terminate()
                try:
                    await asyncio.wait_for(asyncio.to_thread(child.wait), 10.0)
                except TimeoutError:
                    child.kill()
    return EXIT_OK


def _report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        say(json.dumps(result))
    else:
        _print_result(result)


def _start_server_process(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "udptcp", "bench", "--role", "server", "--loop", args.loop,
            "--size-mb", str(args.size_mb), "--log-level", args.log_level]
    if args.mss is not None:
        argv += ["--mss", str(args.mss)]
    if args.msl is not None:
        argv += ["--msl", str(args.msl)]
    for option in args.option:
        argv += ["-o", option]
    if args.trace is not None:
        argv += ["--trace", _server_side(args.trace)]
    if args.pcap is not None:
        argv += ["--pcap", _server_side(args.pcap)]
    if args.tls_cert is not None:
        argv += ["--tls-cert", args.tls_cert]
    if args.tls_key is not None:
        argv += ["--tls-key", args.tls_key]
    return subprocess.Popen(argv, stdout=subprocess.PIPE)


def _server_side(path: str) -> str:
    """Where the server process traces (or captures): the same directory, or a file of its own
    beside the client's (two processes appending to one file would interleave their lines)."""
    if path.endswith(os.sep) or os.path.isdir(path):
        return path
    stem, suffix = os.path.splitext(path)
    return f"{stem}-server{suffix}"


def _start_relay_process(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "udptcp", "netem", "--target", f"127.0.0.1:{port}",
            "--seed", str(args.seed)]
    for name in ("up", "down", "both"):
        if getattr(args, name):
            argv += [f"--{name}", getattr(args, name)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


async def _read_port(child: subprocess.Popen[bytes], prefix: str) -> int:
    """The port in a child's first line ("listening on H:P", "relaying H:P -> ...")."""
    assert child.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), SERVER_START_TIMEOUT_S)
    text = line.decode().strip()
    if not text.startswith(prefix):
        raise RuntimeError(f"a benchmark process did not start (it said {text!r})")
    return parse_address(text.removeprefix(prefix).split()[0])[1]


async def _serve(args: argparse.Namespace) -> int:
    """Count each connection's bytes and reply with what was measured; exit after N of them.

    With ``--workers`` the first process counts for the group: each worker tells it of every
    connection it has served, and serves on until it is stopped.
    """
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    remaining = args.connections
    worker = workers.is_worker(args)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = 0
        first = cpu0 = 0.0
        try:
            # Over TLS the client cannot half-close (asyncio's TLS has no write_eof): the
            # server stops at the size both were given.
            expected = int(args.size_mb * MB) if writer.get_extra_info("sslcontext") else None
            while (expected is None or received < expected) and (data := await reader.read(BLOCK_BYTES)):
                if not received:
                    first, cpu0 = time.perf_counter(), time.process_time()
                received += len(data)
        except ConnectionError:  # a time-limited client resets when its time is up
            writer.close()
            _count_one()
            return
        elapsed = time.perf_counter() - first
        stats = writer.get_extra_info("stats")
        report = {"bytes": received, "seconds": elapsed, "cpu_s": time.process_time() - cpu0,
                  "segments_received": stats["segments_received"],
                  "segments_sent": stats["segments_sent"]}
        writer.write(json.dumps(report).encode() + b"\n")
        writer.close()
        await writer.wait_closed()
        _count_one()

    def _count_one() -> None:
        nonlocal remaining
        if worker:
            say(SERVED_LINE)
            return
        remaining -= 1
        if remaining <= 0 and not done.done():
            done.set_result(None)

    def on_line(line: str) -> None:
        if line == SERVED_LINE:
            _count_one()

    server, group = await workers.listen(args, handle, build_config(args), on_line)
    say(listening_line(server))
    if worker:
        stopped = asyncio.Event()
        workers.stop_when_parent_gone(stopped)
        await stopped.wait()
    else:
        await done
    server.close()
    if group is None:
        await server.wait_closed()
        return EXIT_OK
    _, code = await asyncio.gather(server.wait_closed(), group.stop())
    return code


async def _client(args: argparse.Namespace, port: int) -> dict[str, Any]:
    total = int(args.size_mb * MB)
    block = memoryview(os.urandom(BLOCK_BYTES))
    reader, writer = await udptcp.open_connection(
        args.host, port, ssl=client_tls(args), config=build_config(args)
    )
    sampler = LimitSampler(_udptcp_transport(writer))
    progress = None if args.no_progress else asyncio.create_task(_progress(writer, total))
    start, cpu0 = time.perf_counter(), time.process_time()
    sent = 0
    try:
        async with asyncio.timeout(args.time_limit):
            while sent < total:
                chunk = block[: min(BLOCK_BYTES, total - sent)]
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
            if writer.can_write_eof():  # not over TLS: the server counts to --size-mb instead
                writer.write_eof()
            reply = await reader.readline()
    except TimeoutError:
        # Time is up: what the receiver has acknowledged is what it got. The connection is
        # reset rather than drained, so that a slow path does not stretch the run.
        sampler.stop()
        result = _capped_result(writer, time.perf_counter() - start, time.process_time() - cpu0, progress)
        result["explanation"] = explain(sampler, writer.get_extra_info("stats"), int(result["mb"] * MB))
        return result
    sampler.stop()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    _stop_progress(progress)
    stats = writer.get_extra_info("stats")
    io_path = writer.get_extra_info("io_path")  # before the close: a TLS transport forgets it
    cipher = writer.get_extra_info("cipher")
    writer.close()
    await writer.wait_closed()
    server = json.loads(reply)
    if server["bytes"] != total:
        raise RuntimeError(f"the server received {server['bytes']} of {total} bytes")
    return {
        "implementation": "udptcp", "loop": _loop_name(), "mss": stats["mss"], "mb": total / MB,
        "seconds": elapsed, "mb_per_s": total / MB / elapsed,
        "goodput_mbit_s": server["bytes"] * 8 / 1e6 / max(server["seconds"], 1e-9),
        "segments_per_s": stats["segments_sent"] / elapsed,
        "cpu_client": cpu / elapsed, "cpu_server": server["cpu_s"] / max(server["seconds"], 1e-9),
        "retransmitted": stats["retransmitted_segments"], "timeouts": stats["timeouts"],
        "core": core_build(), "io_path": io_path, "tls": cipher[0] if cipher else None,
        "explanation": explain(sampler, stats, total),
    }


def _capped_result(
    writer: asyncio.StreamWriter, elapsed: float, cpu: float, progress: asyncio.Task[None] | None
) -> dict[str, Any]:
    _stop_progress(progress)
    stats = writer.get_extra_info("stats")
    writer.transport.abort()
    delivered = stats["bytes_acked"]
    return {
        "implementation": "udptcp", "loop": _loop_name(), "mss": stats["mss"], "mb": delivered / MB,
        "seconds": elapsed, "mb_per_s": delivered / MB / elapsed,
        "goodput_mbit_s": delivered * 8 / 1e6 / elapsed, "time_limited": True,
        "segments_per_s": stats["segments_sent"] / elapsed,
        "cpu_client": cpu / elapsed, "cpu_server": None,
        "retransmitted": stats["retransmitted_segments"], "timeouts": stats["timeouts"],
        "core": core_build(), "io_path": writer.get_extra_info("io_path"),
    }


async def _progress(writer: asyncio.StreamWriter, total: int) -> None:
    """Rewrite the progress line on stderr every PROGRESS_INTERVAL_S until cancelled."""
    start = time.perf_counter()
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        line = progress_line(writer.get_extra_info("stats"), total, time.perf_counter() - start)
        print(f"\r{line}", end="", file=sys.stderr, flush=True)


def progress_line(stats: Mapping[str, Any], total_bytes: int, elapsed_s: float) -> str:
    """MB the receiver has acknowledged, of the total, and the rate so far.

    Acknowledged, not "sent minus in flight": segments marked lost leave the in-flight count
    until resent, so under loss that difference counts them as arrived and runs ahead.
    """
    acked = stats["bytes_acked"]
    rate = acked / MB / elapsed_s
    return f"  {acked / MB:8.1f} / {total_bytes / MB:.0f} MB  {rate:7.1f} MB/s"


def _stop_progress(progress: asyncio.Task[None] | None) -> None:
    """Stop the progress line and end it, so that what follows starts on a line of its own."""
    if progress is not None:
        progress.cancel()
        print(file=sys.stderr, flush=True)


def _udptcp_transport(writer: asyncio.StreamWriter) -> StreamTransport:
    """The connection under ``writer``: its transport, or under TLS the one asyncio's SSL
    layer writes to (its ``_ssl_protocol._transport``, asyncio's own name)."""
    transport: Any = writer.transport
    if not isinstance(transport, StreamTransport):
        transport = transport._ssl_protocol._transport
    assert isinstance(transport, StreamTransport)
    return transport


def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def _print_result(r: dict[str, Any]) -> None:
    say(f"udptcp bench: {r['mb']:.0f} MB in {r['seconds']:.2f} s on {r['loop']}, mss {r['mss']}")
    say(f"  throughput   {r['mb_per_s']:.1f} MB/s, {r['segments_per_s']:.0f} segments/s "
        f"(goodput at the receiver {r['goodput_mbit_s']:.1f} Mbit/s)")
    server_cpu = "?" if r["cpu_server"] is None else f"{r['cpu_server']:.0%}"
    say(f"  cpu          client {r['cpu_client']:.0%}, server {server_cpu} of one core")
    say(f"  recovery     {r['retransmitted']} segments retransmitted, {r['timeouts']} timeouts")
    say(f"  build        {r['core']} core; I/O by {r['io_path']}"
        + (f"; TLS {r['tls']}" if r.get("tls") else ""))
    for line in r.get("explanation", []):
        say(line)
