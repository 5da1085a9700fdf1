"""The measurements of ``benchmarks.compare``, each a function of (event loop, time limit) -> Sample.

Every measurement turns its processes' results into the same few numbers (MB/s, seconds, CPU of
each side) so that rows are comparable; what each number means per peer is said here once:

- udptcp, TCP, aioquic, KCP: MB/s = bytes sent / the client's time from its first write to the
  server's byte-count reply (a reliable transfer is done when the receiver says so).
- raw UDP: MB/s = bytes the receiver counted / its first-to-last receive time (there is no
  reply to wait for, and datagrams lost are not goodput).
- CPU of a side = its process CPU seconds / its own active seconds (the client's transfer time;
  the server's first-to-last byte), so 100% is one core busy for the whole transfer.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.peers import MB
from benchmarks.peers.settings import (
    KCP_LOOPBACK,
    KCP_LOOPBACK_LARGE,
    QUIC_LOOPBACK,
    QUIC_LOOPBACK_LARGE,
    Settings,
    encode,
)
from benchmarks.procs import LISTENING, Group, JsonDict, RunError

PATH_MSS_BYTES = 1380
"""The segment size a 1500-octet path carries: what users meet off loopback."""
PURE_PYTHON = {"UDPTCP_PURE_PYTHON": "1"}
RTT_COUNT = 5000
SETUPS_COUNT = 3000
SETUPS_PARALLEL = 64
WORKER_CONNECTIONS = 2
UDP_DATAGRAM_BYTES = (1400, 8192, 65000)
UDP_WINDOW_DATAGRAMS = 64
UNBOUNDED_BYTES = 1 << 62
"""Raw UDP runs stop on time, not on bytes: at 4+ GB/s a byte budget would end them too soon."""
SERVER_GRACE_S = 3.0
"""After the client is done, how long the server may take to print its own result."""


@dataclass
class Sample:
    """One successful run, reduced to what the report compares."""

    mb_per_s: float
    seconds: float
    mb: float
    cpu_client: float
    cpu_server: float
    extra: dict[str, float] = field(default_factory=dict)


Runner = Callable[[str, float], Sample]


@dataclass(frozen=True)
class Measurement:
    """A row family of the report: one peer and setting, run once per loop and repetition."""

    name: str
    group: str
    title: str
    data: str
    run: Runner
    ceiling: str | None = None
    """The raw UDP measurement with this row's datagram size on the wire (udptcp rows only)."""
    unit: str = "MB/s"
    """MB/s for transfers; ``us`` (a median round trip) or ``/s`` (set-ups): the value is then
    the sample's ``extra["value"]``."""


@dataclass(frozen=True)
class Plan:
    """Sizes for one invocation (``--quick`` shrinks them all)."""

    size_mb: float
    slow_size_mb: float
    udp_seconds: float


def run_pair(peer: str, loop: str, args: list[str], timeout_s: float) -> tuple[JsonDict, JsonDict]:
    """One transfer between ``python -m benchmarks.peers.<peer>`` processes: (client, server) results.

    The whole run, server start-up included, must end within ``timeout_s``; after the client is
    done the server gets a short grace period to print its own result and exit."""
    deadline = time.monotonic() + timeout_s
    base = [sys.executable, "-m", f"benchmarks.peers.{peer}", "--loop", loop,
            "--deadline", f"{timeout_s:.1f}", *args]
    with Group() as group:
        server = group.start("server", [*base, "--role", "server"])
        port = server.port(LISTENING, deadline)
        client = group.start("client", [*base, "--role", "client", "--port", str(port)])
        client_result = client.result(deadline)
        server_result = server.result(max(deadline, time.monotonic() + SERVER_GRACE_S))
    _check_loop(client_result, loop, "client")
    _check_loop(server_result, loop, "server")
    return client_result, server_result


def _check_loop(result: JsonDict, loop: str, who: str) -> None:
    if result.get("loop") != loop:
        raise RunError(f"{who} ran on {result.get('loop')!r}, not {loop!r}")


def _ratio(cpu_s: float, seconds: float) -> float:
    return cpu_s / seconds if seconds > 0 else float("nan")


def _udptcp(size_mb: float, mss: int | None, pure: bool = False) -> Runner:
    """``udptcp bench``: the compiled core, or the pure-Python one (``pure``)."""
    def run(loop: str, timeout_s: float) -> Sample:
        argv = [sys.executable, "-m", "udptcp", "bench", "--json", "--no-progress",
                "--size-mb", f"{size_mb:g}", "--loop", loop]
        if mss is not None:
            argv += ["--mss", str(mss)]
        with Group() as group:
            bench = group.start("udptcp bench", argv, PURE_PYTHON if pure else None)
            r = bench.result(time.monotonic() + timeout_s)
        expected = "pure Python" if pure else "compiled (mypyc)"
        if r.get("core") != expected:
            raise RunError(f"udptcp bench ran the {r.get('core')} core, not the {expected} one")
        _check_loop(r, loop, "udptcp bench")
        return Sample(mb_per_s=r["mb_per_s"], seconds=r["seconds"], mb=r["mb"], cpu_client=r["cpu_client"],
                      cpu_server=r["cpu_server"],
                      extra={"mss": r["mss"], "retransmitted": r["retransmitted"], "timeouts": r["timeouts"],
                             "segments_per_s": r["segments_per_s"]})
    return run


def _reliable_pair(peer: str, total_bytes: int, settings: Settings | None = None,
                   extra_keys: tuple[str, ...] = ()) -> Runner:
    """TCP, aioquic, KCP: the client's clock runs until the server's byte-count reply."""
    args = ["--bytes", str(total_bytes)]
    if settings is not None:
        args += ["--settings", encode(settings)]

    def run(loop: str, timeout_s: float) -> Sample:
        client, server = run_pair(peer, loop, args, timeout_s)
        if client["bytes"] != total_bytes or server["bytes"] != total_bytes:
            raise RunError(f"sent {client['bytes']}, received {server['bytes']} of {total_bytes} bytes")
        extra: dict[str, float] = {}
        for key in extra_keys:
            if key in client:
                extra[f"client_{key}"] = float(client[key])
            if key in server:
                extra[f"server_{key}"] = float(server[key])
        return Sample(mb_per_s=total_bytes / MB / client["seconds"], seconds=client["seconds"],
                      mb=total_bytes / MB, cpu_client=_ratio(client["cpu_s"], client["seconds"]),
                      cpu_server=_ratio(server["cpu_s"], server["seconds"]), extra=extra)
    return run


def _raw_udp(datagram: int, seconds: float) -> Runner:
    """Windowed UDP: receiver goodput over its first-to-last receive time."""
    args = ["--datagram-size", str(datagram), "--window", str(UDP_WINDOW_DATAGRAMS),
            "--seconds", f"{seconds:g}", "--bytes", str(UNBOUNDED_BYTES)]

    def run(loop: str, timeout_s: float) -> Sample:
        client, server = run_pair("udp", loop, args, timeout_s)
        if server["datagrams"] < 2 or server["seconds"] <= 0:
            raise RunError(f"the receiver got {server['datagrams']} datagrams")
        loss = 1.0 - server["datagrams"] / max(1, client["datagrams"])
        return Sample(mb_per_s=server["bytes"] / MB / server["seconds"], seconds=server["seconds"],
                      mb=server["bytes"] / MB, cpu_client=_ratio(client["cpu_s"], client["seconds"]),
                      cpu_server=_ratio(server["cpu_s"], server["seconds"]),
                      extra={"loss": loss, "stalls": client["stalls"], "rcvbuf": server["rcvbuf"]})
    return run


def _latency(transport: str, mode: str, count: int, parallel: int = 1) -> Runner:
    """``benchmarks.peers.latency``: a median 1-octet round trip (µs) or set-ups per second."""
    settings = json.dumps({"transport": transport, "mode": mode, "count": count, "parallel": parallel})

    def run(loop: str, timeout_s: float) -> Sample:
        deadline = time.monotonic() + timeout_s
        base = [sys.executable, "-m", "benchmarks.peers.latency", "--loop", loop,
                "--deadline", f"{timeout_s:.1f}", "--settings", settings]
        with Group() as group:
            port = group.start("server", [*base, "--role", "server"]).port(LISTENING, deadline)
            r = group.start("client", [*base, "--role", "client", "--port", str(port)]).result(deadline)
        _check_loop(r, loop, "client")
        return Sample(mb_per_s=0.0, seconds=r["seconds"], mb=0.0,
                      cpu_client=_ratio(r["cpu_s"], r["seconds"]), cpu_server=float("nan"),
                      extra={"value": r["value"]})
    return run


def _udptcp_workers(size_mb: float, connections: int, workers: int) -> Runner:
    """``connections`` transfers at once to ``udptcp bench --role server --workers W``; MB/s is
    their sum over the longest one (they start together)."""
    def run(loop: str, timeout_s: float) -> Sample:
        deadline = time.monotonic() + timeout_s
        mss = ["--mss", str(PATH_MSS_BYTES)]
        server = [sys.executable, "-m", "udptcp", "bench", "--role", "server", "--loop", loop,
                  "--connections", str(connections), "--size-mb", f"{size_mb:g}", *mss]
        if workers > 1:
            server += ["--workers", str(workers)]
        with Group() as group:
            port = group.start("server", server).port(LISTENING, deadline)
            clients = [
                group.start(f"client {i}", [sys.executable, "-m", "udptcp", "bench", "--role", "client",
                                             "--port", str(port), "--json", "--no-progress", "--loop", loop,
                                             "--size-mb", f"{size_mb:g}", *mss])
                for i in range(connections)
            ]
            results = [c.result(deadline) for c in clients]
        longest = max(r["seconds"] for r in results)
        total = sum(r["mb"] for r in results)
        return Sample(mb_per_s=total / longest, seconds=longest, mb=total,
                      cpu_client=sum(r["cpu_client"] for r in results) / len(results),
                      cpu_server=float("nan"), extra={"mss": PATH_MSS_BYTES})
    return run


def build(plan: Plan) -> list[Measurement]:
    """Every measurement, in report order (optional peers included; the caller filters)."""
    size = f"{plan.size_mb:g} MB"
    slow = f"{plan.slow_size_mb:g} MB"
    slow_bytes = int(plan.slow_size_mb * MB)
    mss = PATH_MSS_BYTES
    found = [
        Measurement(f"udptcp_mss{mss}", "udptcp", f"udptcp, MSS {mss} (a 1500-octet path), compiled core",
                    size, _udptcp(plan.size_mb, mss), ceiling="udp_1400"),  # 1380 + 20-byte header
        Measurement(f"udptcp_mss{mss}_pure", "udptcp", f"udptcp, MSS {mss}, pure-Python core", size,
                    _udptcp(plan.size_mb, mss, pure=True), ceiling="udp_1400"),
        Measurement("udptcp", "udptcp", "udptcp, segment size discovered (65447 on loopback), compiled",
                    size, _udptcp(plan.size_mb, None), ceiling="udp_65000"),
        Measurement("udptcp_pure", "udptcp", "udptcp, segment size discovered, pure-Python core", size,
                    _udptcp(plan.size_mb, None, pure=True), ceiling="udp_65000"),
        Measurement("tcp", "tcp", "asyncio streams over kernel TCP", size,
                    _reliable_pair("tcp", int(plan.size_mb * MB))),
        Measurement(f"udptcp_{WORKER_CONNECTIONS}conns_1worker", "workers",
                    f"udptcp, {WORKER_CONNECTIONS} connections to one server process (MSS {mss})", size,
                    _udptcp_workers(plan.size_mb, WORKER_CONNECTIONS, 1)),
        Measurement(f"udptcp_{WORKER_CONNECTIONS}conns_{WORKER_CONNECTIONS}workers", "workers",
                    f"udptcp, {WORKER_CONNECTIONS} connections to --workers {WORKER_CONNECTIONS} (MSS {mss})",
                    size, _udptcp_workers(plan.size_mb, WORKER_CONNECTIONS, WORKER_CONNECTIONS)),
    ]
    for transport in ("udp", "tcp", "udptcp"):
        found.append(Measurement(f"rtt_{transport}", "latency", f"1-octet round trip, {transport}",
                                 f"{RTT_COUNT} round trips", _latency(transport, "rtt", RTT_COUNT),
                                 unit="us"))
    for transport in ("tcp", "udptcp"):
        for parallel in (1, SETUPS_PARALLEL):
            found.append(Measurement(
                f"setups_{transport}_{parallel}", "latency",
                f"connection set-ups, {transport}, {parallel} at a time", f"{SETUPS_COUNT} connections",
                _latency(transport, "setups", SETUPS_COUNT, parallel), unit="/s"))
    for datagram in UDP_DATAGRAM_BYTES:
        found.append(Measurement(f"udp_{datagram}", "udp", f"raw UDP ceiling, {datagram} B datagrams",
                                 f"{plan.udp_seconds:g} s", _raw_udp(datagram, plan.udp_seconds)))
    found += [
        Measurement("aioquic", "aioquic",
                    f"aioquic, one stream, {QUIC_LOOPBACK.max_datagram_bytes} B datagrams", slow,
                    _reliable_pair("quic", slow_bytes, QUIC_LOOPBACK, ("timer_fires",))),
        Measurement(f"aioquic_{QUIC_LOOPBACK_LARGE.max_datagram_bytes}", "aioquic",
                    f"aioquic, one stream, {QUIC_LOOPBACK_LARGE.max_datagram_bytes} B datagrams", slow,
                    _reliable_pair("quic", slow_bytes, QUIC_LOOPBACK_LARGE, ("timer_fires",))),
        Measurement("kcp", "kcp", "KCP (C core), fast mode", size,
                    _reliable_pair("kcp", int(plan.size_mb * MB), KCP_LOOPBACK)),
        Measurement(f"kcp_mtu{KCP_LOOPBACK_LARGE.mtu_bytes}", "kcp",
                    f"KCP (C core), fast mode, MTU {KCP_LOOPBACK_LARGE.mtu_bytes}", size,
                    _reliable_pair("kcp", int(plan.size_mb * MB), KCP_LOOPBACK_LARGE)),
    ]
    return found
