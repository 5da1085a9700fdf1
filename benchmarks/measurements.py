"""The measurements ``compare.py`` can run, each a function of (event loop, time limit) -> Sample.

Every measurement turns its peers' raw results into the same few numbers (MB/s, seconds, CPU of
each side) so that rows are comparable; what each number means per peer is said here once:

- udptcp, TCP, aioquic, KCP: MB/s = bytes sent / the client's time from its first write to the
  server's byte-count reply (a reliable transfer is done when the receiver says so).
- raw UDP: MB/s = bytes the receiver counted / its first-to-last receive time (there is no
  reply to wait for, and datagrams lost are not goodput).
- CPU of a side = its process CPU seconds / its own active seconds (the client's transfer time;
  the server's first-to-last byte), so 100% is one core busy for the whole transfer.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import MB, JsonDict, RunError, run_command, run_pair

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LARGE_MSS = 65000
UDP_SIZES = (1400, 8192, 65000)
UDP_WINDOW = 64
UNBOUNDED_BYTES = 1 << 62
"""Raw UDP runs stop on time, not on bytes: at 4+ GB/s a byte budget would end them too soon."""


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


@dataclass(frozen=True)
class Plan:
    """Sizes for one invocation (``--quick`` shrinks them all)."""

    size_mb: float
    slow_size_mb: float
    udp_seconds: float


def _check_loop(result: JsonDict, loop: str, who: str) -> None:
    if result.get("loop") != loop:
        raise RunError(f"{who} ran on {result.get('loop')!r}, not {loop!r}")


def _ratio(cpu_s: float, seconds: float) -> float:
    return cpu_s / seconds if seconds > 0 else float("nan")


def _udptcp(size_mb: float, mss: int | None) -> Runner:
    def run(loop: str, timeout_s: float) -> Sample:
        argv = [sys.executable, "-m", "udptcp", "bench", "--json", "--no-progress",
                "--size-mb", f"{size_mb:g}", "--loop", loop]
        if mss is not None:
            argv += ["--mss", str(mss)]
        out = run_command(argv, timeout_s, cwd=ROOT)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RunError(f"udptcp bench printed no JSON: {out[-300:]!r}")
        r = json.loads(lines[-1])
        _check_loop(r, loop, "udptcp bench")
        return Sample(mb_per_s=r["mb_per_s"], seconds=r["seconds"], mb=r["mb"], cpu_client=r["cpu_client"],
                      cpu_server=r["cpu_server"],
                      extra={"mss": r["mss"], "retransmitted": r["retransmitted"], "timeouts": r["timeouts"],
                             "segments_per_s": r["segments_per_s"]})
    return run


def _reliable_pair(script: str, total_bytes: int, extra_keys: tuple[str, ...] = ()) -> Runner:
    """TCP, aioquic, KCP: the client's clock runs until the server's byte-count reply."""
    def run(loop: str, timeout_s: float) -> Sample:
        args = ["--bytes", str(total_bytes)]
        client, server = run_pair(HERE / script, loop, args, args, timeout_s)
        _check_loop(client, loop, "client")
        _check_loop(server, loop, "server")
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
    def run(loop: str, timeout_s: float) -> Sample:
        args = ["--datagram-size", str(datagram), "--window", str(UDP_WINDOW), "--seconds", f"{seconds:g}",
                "--bytes", str(UNBOUNDED_BYTES)]
        client, server = run_pair(HERE / "peer_udp.py", loop, args, args, timeout_s)
        _check_loop(client, loop, "sender")
        _check_loop(server, loop, "receiver")
        if server["datagrams"] < 2 or server["seconds"] <= 0:
            raise RunError(f"the receiver got {server['datagrams']} datagrams")
        loss = 1.0 - server["datagrams"] / max(1, client["datagrams"])
        return Sample(mb_per_s=server["bytes"] / MB / server["seconds"], seconds=server["seconds"],
                      mb=server["bytes"] / MB, cpu_client=_ratio(client["cpu_s"], client["seconds"]),
                      cpu_server=_ratio(server["cpu_s"], server["seconds"]),
                      extra={"loss": loss, "stalls": client["stalls"], "rcvbuf": server["rcvbuf"]})
    return run


def optional_peers() -> dict[str, str]:
    """Optional peers whose packages are missing -> why they will be skipped."""
    missing: dict[str, str] = {}
    needs = {"aioquic": ("aioquic", "cryptography"), "kcp": ("kcp",)}
    for group, modules in needs.items():
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            missing[group] = (f"{group} skipped: {', '.join(absent)} not importable "
                              "(install the optional extra: pip install 'udptcp[bench]')")
    return missing


def build(plan: Plan) -> list[Measurement]:
    """Every measurement, in report order (optional peers included; the caller filters)."""
    size = f"{plan.size_mb:g} MB"
    slow = f"{plan.slow_size_mb:g} MB"
    slow_bytes = int(plan.slow_size_mb * MB)
    found = [
        Measurement("udptcp", "udptcp", "udptcp, default MSS", size, _udptcp(plan.size_mb, None),
                    ceiling="udp_1400"),  # default MSS 1380 + 20-byte header
        Measurement(f"udptcp_mss{LARGE_MSS}", "udptcp", f"udptcp, MSS {LARGE_MSS}", size,
                    _udptcp(plan.size_mb, LARGE_MSS), ceiling=f"udp_{LARGE_MSS}"),
        Measurement("tcp", "tcp", "asyncio streams over kernel TCP", size,
                    _reliable_pair("peer_tcp.py", int(plan.size_mb * MB))),
    ]
    for datagram in UDP_SIZES:
        found.append(Measurement(f"udp_{datagram}", "udp", f"raw UDP ceiling, {datagram} B datagrams",
                                 f"{plan.udp_seconds:g} s", _raw_udp(datagram, plan.udp_seconds)))
    found += [
        Measurement("aioquic", "aioquic", "aioquic, one stream", slow,
                    _reliable_pair("peer_quic.py", slow_bytes, ("timer_fires",))),
        Measurement("kcp", "kcp", "KCP (C core), fast mode", slow, _reliable_pair("peer_kcp.py", slow_bytes)),
    ]
    return found
