"""A soak: one server under a mix of load for a fixed time: ``python -m benchmarks.soak``.

The server is a udptcp echo server in a process of its own (``--serve``: the same handler as
``udptcp echo-server``, which also prints its connection count and buffered octets once a
second). For ``--seconds`` (600 by default) it gets, at once:

- short connections: 100-octet echoes, one after another, directly and through a lossy
  relay (``udptcp netem``, 2 % loss and 5 ms delay each way);
- bulk transfers: 2 MB echoed and checked, one after another;
- clients killed mid-transfer: every 10 s a client process streams data and is killed
  (SIGKILL) 2 s later, leaving the server a connection whose peer is gone;
- a SYN flood: every 60 s, 10 s of 5,000 forged SYNs a second from 200 loopback addresses.

Every ``--sample-s`` it reads the server's resident set size and open descriptors (/proc)
and its last status line. After the load stops, it waits for the connections to end and
samples once more. It reports each series, the load's counts and failures, and growth: the
median RSS of the load's last minute against that of the minute after a minute's warm-up
(killed clients' buffers come and go within seconds: medians, not single samples), and what
remains once the connections have ended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import udptcp
from benchmarks.procs import HOST, LISTENING, RELAYING, Group, announce_listening, print_result
from udptcp.cli.echo import echo
from udptcp.wire import Flags, Segment

DEFAULT_SECONDS = 600.0
DEFAULT_SAMPLE_S = 5.0
WARMUP_S = 60.0
SERVER_MSL_S = 2.0
"""The server's MSL: its TIME_WAITs end within 4 s, so that what remains after the load shows."""
CLIENT_MSL_S = 0.2
DRAIN_WAIT_S = 150.0
"""Longest wait after the load for the server's connections to end (killed clients' ones time
out by the user timeout or keepalive, the flood's half-open ones after their SYN-ACK retries)."""
KEEPALIVE_S = 5.0
"""The server probes a silent peer after this long, 3 probes 2 s apart: a killed client's
connection is gone within about 11 s."""
USER_TIMEOUT_S = 10.0
"""A killed client leaves the server data it cannot deliver: the connection gives up after this
long (as a server would set TCP_USER_TIMEOUT), instead of retrying for minutes."""
SHORT_MESSAGE_BYTES = 100
BULK_BYTES = 2_000_000
VICTIM_EVERY_S = 10.0
VICTIM_LIFE_S = 2.0
FLOOD_EVERY_S = 60.0
FLOOD_S = 10.0
FLOOD_SYNS_PER_S = 5000
FLOOD_ADDRESSES = 200
LOSSY_PATH = "loss=2%,delay=5ms"
OP_TIMEOUT_S = 60.0
KIB = 1024
STATUS_EVERY_S = 1.0


# -- the server ------------------------------------------------------------------------------

async def serve() -> None:
    """The soaked server: echo, and a status line a second, until it is killed."""
    server = await udptcp.start_server(
        echo, HOST, 0, msl_s=SERVER_MSL_S, keepalive_s=KEEPALIVE_S, keepalive_interval_s=2.0,
        keepalive_probes=3, user_timeout_s=USER_TIMEOUT_S,
    )
    announce_listening(server.sockets[0].getsockname()[1])
    endpoint = server.endpoints[0]
    while True:
        counters = endpoint.counters
        print(json.dumps({
            "connections": len(endpoint.connections), "buffered_bytes": endpoint.buffered_bytes,
            "syn_cookies_sent": counters.syn_cookies_sent, "resets_sent": counters.resets_sent,
        }), flush=True)
        await asyncio.sleep(STATUS_EVERY_S)


# -- the load --------------------------------------------------------------------------------

def flood(port: int, seconds: float) -> None:
    """SYNs never completed, from many loopback addresses (the issue's flood, smaller)."""
    rng = random.Random(7)
    socks = []
    for i in range(FLOOD_ADDRESSES):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.2.{1 + i // 250}.{1 + i % 250}", 0))
        sock.setblocking(False)
        socks.append(sock)
    syn = [Segment(flags=Flags.SYN, seq=rng.getrandbits(32), ack=0, window=65535, mss=1380,
                   sack_permitted=True, timestamps=(rng.getrandbits(32), 0)).encode()
           for _ in range(256)]
    tick_s, per_tick = 0.01, FLOOD_SYNS_PER_S // 100
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        for _ in range(per_tick):
            with contextlib.suppress(BlockingIOError):
                socks[sent % len(socks)].sendto(syn[sent % len(syn)], (HOST, port))
            sent += 1
        time.sleep(tick_s)  # pacing the flood


async def victim(port: int) -> None:
    """A client that streams until it is killed."""
    _reader, writer = await udptcp.open_connection(HOST, port, msl_s=CLIENT_MSL_S)
    chunk = bytes(65536)
    while True:
        writer.write(chunk)
        await writer.drain()


@dataclass
class Load:
    """What the load did: operations done and failed, by kind."""

    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, kind: str, ok: bool, error: BaseException | None = None) -> None:
        table = self.done if ok else self.failed
        table[kind] = table.get(kind, 0) + 1
        if error is not None and len(self.errors) < 20:
            self.errors.append(f"{kind}: {error!r}")


async def echo_once(port: int, payload: bytes) -> None:
    reader, writer = await udptcp.open_connection(HOST, port, msl_s=CLIENT_MSL_S)
    try:
        writer.write(payload)
        writer.write_eof()
        back = await reader.read()
        if back != payload:
            raise ValueError(f"echoed {len(back)} octets of {len(payload)}, or other ones")
    finally:
        writer.close()


async def repeat(load: Load, kind: str, until: float, action: Any, pause_s: float) -> None:
    while time.monotonic() < until:
        try:
            await asyncio.wait_for(action(), OP_TIMEOUT_S)
            load.count(kind, True)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            load.count(kind, False, exc)
        await asyncio.sleep(pause_s)  # pacing the load


async def periodic(load: Load, kind: str, until: float, every_s: float, argv: list[str],
                   life_s: float) -> None:
    """Start ``argv`` every ``every_s`` and kill it (SIGKILL) after ``life_s``."""
    while time.monotonic() + life_s < until:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(life_s)
        proc.kill()
        proc.wait()
        load.count(kind, True)
        await asyncio.sleep(max(0.0, every_s - life_s))


class StatusReader:
    """The server's status lines, read by a thread (a full pipe would stop the server)."""

    def __init__(self, stream: Any) -> None:
        self.last: dict[str, Any] = {}
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                self.last = json.loads(line)


def sample(pid: int, status: StatusReader, started: float) -> dict[str, Any]:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * KIB
    return {"t_s": round(time.monotonic() - started, 1), "rss_bytes": rss,
            "fds": len(os.listdir(f"/proc/{pid}/fd")), **status.last}


async def soak(seconds: float, sample_s: float) -> dict[str, Any]:
    me = [sys.executable, "-m", "benchmarks.soak"]
    load = Load()
    samples: list[dict[str, Any]] = []
    with Group() as group:
        server = group.start("server", [*me, "--serve"])
        deadline = time.monotonic() + 30
        port = server.port(LISTENING, deadline)
        assert server.proc.stdout is not None
        status = StatusReader(server.proc.stdout)
        relay = group.start("relay", [sys.executable, "-m", "udptcp", "netem", "--listen", f"{HOST}:0",
                                      "--target", f"{HOST}:{port}", "--both", LOSSY_PATH])
        lossy_port = relay.port(RELAYING, deadline)
        started = time.monotonic()
        until = started + seconds
        short = bytes(SHORT_MESSAGE_BYTES)
        bulk = os.urandom(BULK_BYTES)
        tasks = [
            repeat(load, "short", until, lambda: echo_once(port, short), 0.05),
            repeat(load, "short_lossy", until, lambda: echo_once(lossy_port, short), 0.2),
            repeat(load, "bulk", until, lambda: echo_once(port, bulk), 0.5),
            periodic(load, "killed_client", until, VICTIM_EVERY_S, [*me, "--victim", str(port)],
                     VICTIM_LIFE_S),
            periodic(load, "syn_flood", until, FLOOD_EVERY_S,
                     [*me, "--flood", str(port), str(FLOOD_S)], FLOOD_S),
        ]

        async def sampler() -> None:
            while time.monotonic() < until:
                samples.append(sample(server.proc.pid, status, started))
                await asyncio.sleep(sample_s)

        await asyncio.gather(sampler(), *tasks)
        end_of_load = sample(server.proc.pid, status, started)
        drain_until = time.monotonic() + DRAIN_WAIT_S
        while time.monotonic() < drain_until and status.last.get("connections", 0) > 0:
            await asyncio.sleep(1.0)  # waiting for timers of the server's own (TIME_WAIT, keepalive)
        after = sample(server.proc.pid, status, started)
    warm_from = min(WARMUP_S, seconds / 2)
    warm = next((s for s in samples if s["t_s"] >= warm_from), samples[0])
    first = [s["rss_bytes"] for s in samples if warm_from <= s["t_s"] < 2 * warm_from] or [warm["rss_bytes"]]
    last = [s["rss_bytes"] for s in samples if s["t_s"] >= seconds - warm_from] or [end_of_load["rss_bytes"]]
    return {
        "seconds": seconds,
        "load_done": load.done,
        "load_failed": load.failed,
        "errors": load.errors,
        "rss_after_warmup_bytes": warm["rss_bytes"],
        "rss_end_of_load_bytes": end_of_load["rss_bytes"],
        "rss_max_bytes": max(s["rss_bytes"] for s in samples),
        "rss_median_first_minute_bytes": statistics.median(first),
        "rss_median_last_minute_bytes": statistics.median(last),
        "rss_growth_bytes": statistics.median(last) - statistics.median(first),
        "rss_after_bytes": after["rss_bytes"],
        "fds_after_warmup": warm["fds"],
        "fds_end_of_load": end_of_load["fds"],
        "fds_after": after["fds"],
        "connections_max": max(s.get("connections", 0) for s in samples),
        "connections_after": after.get("connections"),
        "buffered_bytes_after": after.get("buffered_bytes"),
        "samples": samples,
    }


def summary(result: dict[str, Any]) -> str:
    mib = 1024 * 1024
    return "\n".join([
        f"soak of {result['seconds']:.0f} s: done {result['load_done']}, failed {result['load_failed']}",
        f"server RSS: median {result['rss_median_first_minute_bytes'] / mib:.1f} MiB in the minute "
        f"after warm-up, {result['rss_median_last_minute_bytes'] / mib:.1f} MiB in the last minute "
        f"(growth {result['rss_growth_bytes'] / mib:+.1f} MiB), max {result['rss_max_bytes'] / mib:.1f} "
        f"MiB, {result['rss_after_bytes'] / mib:.1f} MiB once the connections ended",
        f"descriptors: {result['fds_after_warmup']} after warm-up, {result['fds_end_of_load']} at the "
        f"end, {result['fds_after']} after; connections: max {result['connections_max']}, "
        f"{result['connections_after']} after (buffered {result['buffered_bytes_after']} octets)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--sample-s", type=float, default=DEFAULT_SAMPLE_S)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--victim", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--flood", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve())
        return 0
    if args.victim is not None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        asyncio.run(victim(args.victim))
        return 0
    if args.flood is not None:
        flood(int(args.flood[0]), float(args.flood[1]))
        return 0
    result = asyncio.run(soak(args.seconds, args.sample_s))
    print(summary(result), file=sys.stderr)
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
