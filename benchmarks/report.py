"""Turning runs into the comparison report: per-cell statistics, the table, ratios, machine facts.

The report is Markdown so that the same text serves the terminal, ``--markdown`` and a results
page. Medians are used because this 2-core VM is noisy (single runs vary by tens of percent);
min-max is shown next to every median so that a reader can tell a real gap from noise.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measurements import LARGE_MSS, Measurement, Sample

PACKAGES = ("udptcp", "uvloop", "aioquic", "pylsqpack", "kcp", "cryptography")
ERROR_CHARS = 160


@dataclass
class Run:
    """One attempt at one cell: a sample, or the reason there is none."""

    measurement: str
    loop: str
    rep: int
    sample: Sample | None
    error: str | None
    wall_s: float


@dataclass
class Cell:
    """All runs of one measurement on one loop."""

    runs: list[Run]

    @property
    def samples(self) -> list[Sample]:
        return [r.sample for r in self.runs if r.sample is not None]

    @property
    def median(self) -> float | None:
        values = [s.mb_per_s for s in self.samples]
        return statistics.median(values) if values else None

    def spread(self, pick: Any) -> tuple[float, float, float] | None:
        """(median, min, max) of ``pick(sample)`` over the successful runs, or None."""
        values = [float(pick(s)) for s in self.samples]
        values = [v for v in values if not math.isnan(v)]
        if not values:
            return None
        return statistics.median(values), min(values), max(values)


Cells = dict[tuple[str, str], Cell]


def cells_of(runs: list[Run]) -> Cells:
    """Group runs by (measurement, loop)."""
    cells: Cells = {}
    for run in runs:
        cells.setdefault((run.measurement, run.loop), Cell([])).runs.append(run)
    return cells


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 1000 else f"{value:.1f}"


def _cpu(cell: Cell) -> str:
    client = cell.spread(lambda s: s.cpu_client)
    server = cell.spread(lambda s: s.cpu_server)
    if client is None or server is None:
        return "-"
    return f"{client[0]:.0%} / {server[0]:.0%}"


def _notes(m: Measurement, cell: Cell) -> str:
    notes: list[str] = []
    samples = cell.samples
    if samples and m.group == "udptcp":
        notes.append(f"mss {samples[0].extra.get('mss', 0):.0f}")
        retx = sum(s.extra.get("retransmitted", 0) for s in samples)
        rto = sum(s.extra.get("timeouts", 0) for s in samples)
        if retx or rto:
            notes.append(f"{retx:.0f} retransmitted, {rto:.0f} timeouts over {len(samples)} runs")
    if samples and m.group == "udp":
        loss = cell.spread(lambda s: 100 * s.extra.get("loss", 0.0))
        stalls = cell.spread(lambda s: s.extra.get("stalls", 0.0))
        if loss is not None:
            notes.append(f"loss {loss[0]:.1f}% [{loss[1]:.1f}-{loss[2]:.1f}]")
        if stalls is not None and stalls[2] > 0:
            notes.append(f"stalls {stalls[0]:.0f} [{stalls[1]:.0f}-{stalls[2]:.0f}]")
    if samples and m.group == "aioquic":
        client = cell.spread(lambda s: s.extra.get("client_timer_fires", float("nan")))
        server = cell.spread(lambda s: s.extra.get("server_timer_fires", float("nan")))
        if client is not None and server is not None:
            notes.append(f"timer wake-ups client {client[0]:,.0f} [{client[1]:,.0f}-{client[2]:,.0f}], "
                         f"server {server[0]:,.0f}")
    failed = [r for r in cell.runs if r.error is not None]
    if failed:
        first = (failed[0].error or "").replace("|", "/").replace("\n", " ")[:ERROR_CHARS]
        notes.append(f"**{len(failed)} of {len(cell.runs)} failed**: {first}")
    return "; ".join(notes)


def results_table(measurements: list[Measurement], loops: list[str], cells: Cells) -> str:
    """One row per measurement and loop."""
    lines = ["| measurement | data | loop | MB/s median [min-max] | ok | CPU client / server "
             "| x aioquic | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for m in measurements:
        for loop in loops:
            cell = cells.get((m.name, loop))
            if cell is None:
                continue
            stats = cell.spread(lambda s: s.mb_per_s)
            rate = f"**{_num(stats[0])}** [{_num(stats[1])}-{_num(stats[2])}]" if stats else "FAILED"
            quic = cells.get(("aioquic", loop))
            quic_median = quic.median if quic is not None else None
            versus = f"{stats[0] / quic_median:.2f}x" if stats and quic_median else "-"
            ok = f"{len(cell.samples)}/{len(cell.runs)}"
            lines.append(f"| {m.title} (`{m.name}`) | {m.data} | {loop} | {rate} | {ok} | {_cpu(cell)} "
                         f"| {versus} | {_notes(m, cell)} |")
    return "\n".join(lines)


def ratios_table(measurements: list[Measurement], loops: list[str], cells: Cells) -> str:
    """The comparisons the benchmark exists for, as ratios of medians on the same loop."""
    names = {m.name for m in measurements}
    large = f"udptcp_mss{LARGE_MSS}"
    # (label, numerator, denominator, compare with the denominator's best loop instead of the same loop)
    wanted = [
        ("udptcp default MSS / aioquic", "udptcp", "aioquic", False),
        ("udptcp default MSS / aioquic on its faster loop", "udptcp", "aioquic", True),
        (f"udptcp MSS {LARGE_MSS} / aioquic", large, "aioquic", False),
        (f"udptcp MSS {LARGE_MSS} / aioquic on its faster loop", large, "aioquic", True),
        ("udptcp default MSS / KCP", "udptcp", "kcp", False),
        ("udptcp default MSS / kernel TCP (asyncio streams)", "udptcp", "tcp", False),
        (f"udptcp MSS {LARGE_MSS} / kernel TCP (asyncio streams)", large, "tcp", False),
    ]
    for m in measurements:
        if m.ceiling:
            wanted.append((f"{m.title} / raw UDP ceiling at the same datagram size (`{m.ceiling}`)",
                           m.name, m.ceiling, False))
    lines = ["| ratio (median MB/s over median MB/s, same loop unless said) | " + " | ".join(loops) + " |",
             "|---|" + "---|" * len(loops)]
    for label, top, bottom, best in wanted:
        if top not in names or bottom not in names:
            continue
        bottoms = {loop: c.median for loop in loops if (c := cells.get((bottom, loop))) and c.median}
        fastest = max(bottoms, key=lambda loop: bottoms[loop]) if bottoms else None
        row = []
        for loop in loops:
            a = cells.get((top, loop))
            ma = a.median if a else None
            mb = bottoms.get(fastest) if best and fastest else bottoms.get(loop)
            where = f" on {fastest}" if best else ""
            row.append(f"**{ma / mb:.2f}x** ({_num(ma)} / {_num(mb)}{where})" if ma and mb else "n/a")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines) if len(lines) > 2 else "(no pair of measurements to compare was selected)"


def environment() -> dict[str, str]:
    """Facts about the machine and software that the numbers depend on."""
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {"nproc": str(len(os.sched_getaffinity(0))), "cpu": cpu_model,
             "kernel": platform.release(), "python": platform.python_version()}
    for knob in ("rmem_max", "wmem_max", "rmem_default"):
        try:
            facts[f"net.core.{knob}"] = Path(f"/proc/sys/net/core/{knob}").read_text().strip()
        except OSError:
            facts[f"net.core.{knob}"] = "unknown"
    for package in PACKAGES:
        try:
            facts[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            facts[package] = "not installed"
    return facts


METHOD = """\
- Every transfer runs between two OS processes (server and client) on 127.0.0.1; they share the
  machine's cores. MB = 1e6 bytes. Each cell is the median of the repetitions [min-max]; the order of
  the loops alternates between repetitions. `ok` = successful runs / runs.
- udptcp: `python -m udptcp bench --json` (client writes 1 MiB blocks with `drain()`; time from first
  write to the server's reply). Its server CPU is over the server's first-to-last byte.
- kernel TCP: asyncio streams, 64 KiB writes each followed by `await drain()`, timed until the
  server's byte-count reply.
- raw UDP ceiling: asyncio DatagramProtocol, at most 64 datagrams unacknowledged, cumulative ack every
  32, SO_RCVBUF/SO_SNDBUF 4 MiB, 20 ms stall watchdog; goodput = bytes the receiver counted / its
  first-to-last receive time; runs for a fixed time. No protocol work at all: the most any
  UDP-based transport in Python can reach on that loop and datagram size.
- aioquic: one bidirectional stream, self-signed P-256 cert, client verification off, library
  defaults otherwise (1200-byte datagrams, 1 MiB flow-control windows, Reno); the client keeps at most
  2 MiB unacknowledged in the stream's send buffer (aioquic has no write back-pressure).
  "timer wake-ups" counts aioquic's connection-timer callbacks: on uvloop, whose clock ticks in whole
  milliseconds, sub-millisecond pacing deadlines can make them spin (client CPU near 100%).
- KCP: the `kcp` package's `KCP` (C core) driven by an asyncio DatagramProtocol on both sides, fast mode
  (nodelay, 10 ms interval, resend 2, no congestion control, windows 1024, MTU 1400), 16 KiB messages,
  SO_RCVBUF/SO_SNDBUF 4 MiB, output flushed once per loop turn after input.
- CPU client / server = process CPU seconds / that side's transfer seconds (100% = one core)."""


def render(measurements: list[Measurement], loops: list[str], runs: list[Run], meta: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    cells = cells_of(runs)
    env: dict[str, str] = meta["environment"]
    packages = ", ".join(f"{p} {env[p]}" for p in PACKAGES)
    lines = [
        "# udptcp compared with its peers on loopback",
        "",
        f"- Command: `{meta['command']}`",
        f"- Date: {meta['date']} (UTC); wall time {meta['wall_s']:.0f} s; repetitions {meta['reps']}",
        f"- Machine: nproc {env['nproc']}, {env['cpu']}, kernel {env['kernel']}, Python {env['python']}; "
        f"net.core.rmem_max {env['net.core.rmem_max']}, wmem_max {env['net.core.wmem_max']}",
        f"- Packages: {packages}",
        f"- Sizes: {meta['sizes']}",
        "",
        "## Results",
        "",
        results_table(measurements, loops, cells),
        "",
        "`x aioquic` = the row's median MB/s over aioquic's median on the same loop. "
        "CPU = process CPU seconds / transfer seconds of each side (100% = one core).",
        "",
        "## Key ratios",
        "",
        ratios_table(measurements, loops, cells),
        "",
    ]
    if meta["skipped"]:
        lines += ["## Skipped", "", *[f"- {why}" for why in meta["skipped"]], ""]
    lines += ["## Method", "", METHOD, ""]
    return "\n".join(lines)


def raw_json(runs: list[Run], meta: dict[str, Any]) -> str:
    """Every run, successful or not, plus the metadata, for later analysis."""
    return json.dumps({"meta": meta, "runs": [dataclasses.asdict(r) for r in runs]}, indent=2)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
