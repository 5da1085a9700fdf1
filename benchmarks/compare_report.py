"""The report of ``benchmarks.compare``: one row per measurement and loop, the key ratios, the method.

Each cell is the median of its repetitions with the min-max range (``benchmarks.report``); the
ratios divide medians of the same run, never figures of different runs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from benchmarks.compare_runs import PATH_MSS_BYTES, SETUPS_PARALLEL, WORKER_CONNECTIONS, Measurement, Sample
from benchmarks.peers.settings import KCP_LOOPBACK, KCP_LOOPBACK_LARGE, QUIC_LOOPBACK, QUIC_LOOPBACK_LARGE
from benchmarks.report import Spread, error_cell, facts_lines, markdown_table, number, spread


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

    def of(self, key: str) -> Spread | None:
        """Median, min and max of one number of the samples (a field, or a key of ``extra``)."""
        return spread(s.extra.get(key) if key in s.extra else getattr(s, key, None) for s in self.samples)

    @property
    def median(self) -> float | None:
        rate = self.of("mb_per_s")
        return rate.median if rate else None

    @property
    def value(self) -> float | None:
        """The median of a round-trip or set-up row (``Measurement.unit`` other than MB/s)."""
        found = self.of("value")
        return found.median if found else None


Cells = dict[tuple[str, str], Cell]


def cells_of(runs: list[Run]) -> Cells:
    """Group runs by (measurement, loop)."""
    cells: Cells = {}
    for run in runs:
        cells.setdefault((run.measurement, run.loop), Cell([])).runs.append(run)
    return cells


def _cpu(cell: Cell) -> str:
    client, server = cell.of("cpu_client"), cell.of("cpu_server")
    if client is None or server is None:
        return "-"
    return f"{client.median:.0%} / {server.median:.0%}"


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
        loss = spread(100 * s.extra.get("loss", 0.0) for s in samples)
        stalls = cell.of("stalls")
        if loss is not None:
            notes.append(f"loss {loss.median:.1f}% [{loss.low:.1f}-{loss.high:.1f}]")
        if stalls is not None and stalls.high > 0:
            notes.append(f"stalls {stalls.median:.0f} [{stalls.low:.0f}-{stalls.high:.0f}]")
    if samples and m.group == "aioquic":
        client, server = cell.of("client_timer_fires"), cell.of("server_timer_fires")
        if client is not None and server is not None:
            notes.append(f"timer wake-ups client {client.median:,.0f} "
                         f"[{client.low:,.0f}-{client.high:,.0f}], server {server.median:,.0f}")
    failed = [r for r in cell.runs if r.error is not None]
    if failed:
        notes.append(f"**{len(failed)} of {len(cell.runs)} failed**: {error_cell(failed[0].error or '')}")
    return "; ".join(notes)


def results_table(measurements: list[Measurement], loops: list[str], cells: Cells) -> str:
    """One row per measurement and loop."""
    rows = []
    for m in measurements:
        if m.unit != "MB/s":
            continue
        for loop in loops:
            cell = cells.get((m.name, loop))
            if cell is None:
                continue
            stats = cell.of("mb_per_s")
            rate = (f"**{number(stats.median)}** [{number(stats.low)}-{number(stats.high)}]" if stats
                    else "FAILED")
            quic = cells.get(("aioquic", loop))
            quic_median = quic.median if quic is not None else None
            versus = f"{stats.median / quic_median:.2f}x" if stats and quic_median else "-"
            ok = f"{len(cell.samples)}/{len(cell.runs)}"
            rows.append([f"{m.title} (`{m.name}`)", m.data, loop, rate, ok, _cpu(cell), versus,
                         _notes(m, cell)])
    return markdown_table(["measurement", "data", "loop", "MB/s median [min-max]", "ok",
                           "CPU client / server", "x aioquic", "notes"], rows)


def latency_table(measurements: list[Measurement], loops: list[str], cells: Cells) -> str:
    """Round trips (µs, lower is better) and set-ups per second."""
    rows = []
    for m in measurements:
        if m.unit == "MB/s":
            continue
        for loop in loops:
            cell = cells.get((m.name, loop))
            if cell is None:
                continue
            stats = cell.of("value")
            value = (f"**{number(stats.median)}** [{number(stats.low)}-{number(stats.high)}]" if stats
                     else "FAILED")
            failed = [r for r in cell.runs if r.error is not None]
            note = f"**{len(failed)} failed**: {error_cell(failed[0].error or '')}" if failed else ""
            rows.append([f"{m.title} (`{m.name}`)", m.data, loop, value, m.unit,
                         f"{len(cell.samples)}/{len(cell.runs)}", note])
    return markdown_table(["measurement", "data", "loop", "median [min-max]", "unit", "ok", "notes"], rows)


def ratios_table(measurements: list[Measurement], loops: list[str], cells: Cells) -> str:
    """The comparisons the benchmark exists for, as ratios of medians on the same loop."""
    names = {m.name for m in measurements}
    path = f"udptcp_mss{PATH_MSS_BYTES}"
    quic_large = f"aioquic_{QUIC_LOOPBACK_LARGE.max_datagram_bytes}"
    kcp_large = f"kcp_mtu{KCP_LOOPBACK_LARGE.mtu_bytes}"
    many = f"udptcp_{WORKER_CONNECTIONS}conns_{WORKER_CONNECTIONS}workers"
    one = f"udptcp_{WORKER_CONNECTIONS}conns_1worker"
    # (label, numerator, denominator, compare with the denominator's best loop instead of the same loop)
    wanted = [
        (f"udptcp MSS {PATH_MSS_BYTES}, compiled / pure-Python core", path, f"{path}_pure", False),
        ("udptcp discovered, compiled / pure-Python core", "udptcp", "udptcp_pure", False),
        (f"udptcp MSS {PATH_MSS_BYTES} / KCP (C core, 1400-octet datagrams)", path, "kcp", False),
        (f"udptcp MSS {PATH_MSS_BYTES} / aioquic (1400-octet datagrams)", path, "aioquic", False),
        ("udptcp discovered / kernel TCP (asyncio streams)", "udptcp", "tcp", False),
        (f"udptcp discovered / aioquic with large datagrams (`{quic_large}`)", "udptcp", quic_large, False),
        (f"udptcp discovered / KCP with large datagrams (`{kcp_large}`)", "udptcp", kcp_large, False),
        (f"{WORKER_CONNECTIONS} connections: {WORKER_CONNECTIONS} workers / one process", many, one, False),
    ]
    for m in measurements:
        if m.ceiling:
            wanted.append((f"{m.title} / raw UDP ceiling at the same datagram size (`{m.ceiling}`)",
                           m.name, m.ceiling, False))
    rows = []
    for label, top, bottom, best in wanted:
        if top not in names or bottom not in names:
            continue
        bottoms = {loop: c.median for loop in loops if (c := cells.get((bottom, loop))) and c.median}
        fastest = max(bottoms, key=lambda loop: bottoms[loop]) if bottoms else None
        row = [label]
        for loop in loops:
            a = cells.get((top, loop))
            ma = a.median if a else None
            mb = bottoms.get(fastest) if best and fastest else bottoms.get(loop)
            where = f" on {fastest}" if best else ""
            row.append(f"**{ma / mb:.2f}x** ({number(ma)} / {number(mb)}{where})" if ma and mb else "n/a")
        rows.append(row)
    for label, top, bottom in [
        ("1-octet round trip: udptcp / raw UDP (µs over µs)", "rtt_udptcp", "rtt_udp"),
        ("1-octet round trip: udptcp / kernel TCP (µs over µs)", "rtt_udptcp", "rtt_tcp"),
        (f"set-ups {SETUPS_PARALLEL} at a time: udptcp / kernel TCP (per s over per s)",
         f"setups_udptcp_{SETUPS_PARALLEL}", f"setups_tcp_{SETUPS_PARALLEL}"),
    ]:
        if top not in names or bottom not in names:
            continue
        row = [label]
        for loop in loops:
            a, b = cells.get((top, loop)), cells.get((bottom, loop))
            va, vb = (a.value if a else None), (b.value if b else None)
            row.append(f"**{va / vb:.2f}x** ({number(va)} / {number(vb)})" if va and vb else "n/a")
        rows.append(row)
    if not rows:
        return "(no pair of measurements to compare was selected)"
    return markdown_table(["ratio (median MB/s over median MB/s, same loop unless said)", *loops], rows)


METHOD = f"""\
- Every transfer runs between two OS processes (server and client) on 127.0.0.1; they share the
  machine's cores. MB = 1e6 bytes. Each cell is the median of the repetitions [min-max]; the order of
  the loops alternates between repetitions. `ok` = successful runs / runs.
- udptcp: `python -m udptcp bench --json` (client writes 1 MiB blocks with `drain()`; time from first
  write to the server's reply). Its server CPU is over the server's first-to-last byte. `MSS 1380`
  rows fix the segment size a 1500-octet path carries; the others leave it to path-MTU discovery
  (65447 octets on loopback). `compiled` rows run the core built with mypyc, `pure-Python` ones the
  same modules interpreted (`UDPTCP_PURE_PYTHON=1`); each run checks which one `udptcp bench` used.
- workers: that many clients at once against `udptcp bench --role server` alone or with
  `--workers N` (one process per core, SO_REUSEPORT); MB/s = the bytes of all over the longest.
- round trips (`benchmarks.peers.latency`): one connection (raw UDP: one socket), 1 octet sent and
  echoed, 5000 times; median µs. Set-ups: open, the server closes at once, the client closes;
  3000 connections, 1 or 64 at a time; per second. The server closes first, so TIME_WAIT stays
  with it (udptcp's server uses a 1 s MSL for this).
- kernel TCP: asyncio streams, 64 KiB writes each followed by `await drain()`, timed until the
  server's byte-count reply.
- raw UDP ceiling: asyncio DatagramProtocol, at most 64 datagrams unacknowledged, cumulative ack every
  32, SO_RCVBUF/SO_SNDBUF 4 MiB, 20 ms stall watchdog; goodput = bytes the receiver counted / its
  first-to-last receive time; runs for a fixed time. No protocol work at all: the most any
  UDP-based transport in Python can reach on that loop and datagram size.
- aioquic: one bidirectional stream, self-signed P-256 cert, client verification off,
  {QUIC_LOOPBACK.describe()} (`aioquic`; aioquic's default datagram is 1200 B) or
  {QUIC_LOOPBACK_LARGE.max_datagram_bytes} B datagrams (`aioquic_{QUIC_LOOPBACK_LARGE.max_datagram_bytes}`); \
the client keeps at most
  2 MiB unacknowledged in the stream's send buffer (aioquic has no write back-pressure).
  "timer wake-ups" counts aioquic's connection-timer callbacks: on uvloop, whose clock ticks in whole
  milliseconds, sub-millisecond pacing deadlines can make them spin (client CPU near 100%).
- KCP: the `kcp` package's `KCP` (C core) driven by an asyncio DatagramProtocol on both sides, fast mode
  ({KCP_LOOPBACK.describe()}; `kcp_mtu{KCP_LOOPBACK_LARGE.mtu_bytes}`: \
{KCP_LOOPBACK_LARGE.describe()}),
  SO_RCVBUF/SO_SNDBUF 4 MiB.
- CPU client / server = process CPU seconds / that side's transfer seconds (100% = one core)."""


def render(measurements: list[Measurement], loops: list[str], runs: list[Run], meta: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    cells = cells_of(runs)
    lines = [
        "# udptcp compared with its peers on loopback",
        "",
        f"- Command: `{meta['command']}`",
        f"- Date: {meta['date']} (UTC); wall time {meta['wall_s']:.0f} s; repetitions {meta['reps']}",
        *facts_lines(meta["environment"]),
        f"- Sizes: {meta['sizes']}",
        "",
        "## Results",
        "",
        results_table(measurements, loops, cells),
        "",
        "`x aioquic` = the row's median MB/s over aioquic's median on the same loop. "
        "CPU = process CPU seconds / transfer seconds of each side (100% = one core).",
        "",
        "## Round trips and connection set-ups",
        "",
        latency_table(measurements, loops, cells),
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
