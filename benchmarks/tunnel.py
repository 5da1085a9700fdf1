"""``udptcp tunnel`` measured beside the same topology carried over kernel TCP.

Four processes on 127.0.0.1, the hop in the middle carried three ways:

    load client -> tunnel client -> HOP -> tunnel server -> target     (benchmarks.peers.tunnel_load)

- ``udptcp``: the tunnel as users run it (``udptcp tunnel client|server``);
- ``tcp``: the same two processes, the same relay code, kernel TCP on the hop (``--carrier
  tcp``, an option only this benchmark uses): what is udptcp's and what is the relay's cost;
- ``direct``: the load client straight to the target, no tunnel (the ceiling of the ends).

Each is measured three ways: bulk upload (MB/s), many small requests over ``--parallel`` kept
connections (requests/s), and one request per new connection (connections/s). Topologies run
interleaved, in alternating order, each repetition with fresh processes; the report gives the
median with the min-max range, and the CPU share of the two tunnel processes during bulk.

Usage (from the repository's root; build the core first, ``make build``, to measure it compiled):
    .venv/bin/python -m benchmarks.tunnel                         # 3 reps, about a minute
    .venv/bin/python -m benchmarks.tunnel --quick                 # smoke test
    .venv/bin/python -m benchmarks.tunnel --markdown out.md --json raw.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.procs import HOST, LISTENING, RUN_FAILURES, Child, Group
from benchmarks.report import (
    RunCounter,
    command_line,
    environment,
    error_cell,
    facts_lines,
    markdown_table,
    number,
    percent,
    progress,
    spread,
    utc_now,
    write,
)

TOPOLOGIES = ("udptcp", "tcp", "direct")
TOPOLOGY_TITLES = {"udptcp": "udptcp tunnel", "tcp": "same relay, TCP hop", "direct": "direct TCP"}
MEASURES = {"bulk": "MB/s", "requests": "requests/s", "connects": "connections/s"}
LOAD = [sys.executable, "-m", "benchmarks.peers.tunnel_load"]
UDPTCP = [sys.executable, "-m", "udptcp"]


@dataclass(frozen=True)
class Plan:
    """The load of one repetition."""

    bulk_mb: float
    requests_per_connection: int
    parallel: int
    connections: int
    loop: str


FULL = Plan(bulk_mb=200, requests_per_connection=500, parallel=16, connections=400, loop="auto")
QUICK = Plan(bulk_mb=30, requests_per_connection=100, parallel=16, connections=80, loop="auto")


@dataclass
class Run:
    """One measure of one topology in one repetition: its value, or why there is none."""

    topology: str
    measure: str
    rep: int
    value: float | None
    error: str | None
    cpu: dict[str, float | None]


def load_args(measure: str, plan: Plan, port: int, deadline_s: float) -> list[str]:
    """The load client's command line for one measure."""
    common = ["--port", str(port), "--parallel", str(plan.parallel), "--deadline", f"{deadline_s:.0f}"]
    if measure == "bulk":
        return [*LOAD, "--role", "bulk", "--bytes", str(int(plan.bulk_mb * 1e6)), *common]
    if measure == "requests":
        return [*LOAD, "--role", "requests", "--count", str(plan.requests_per_connection), *common]
    return [*LOAD, "--role", "connects", "--count", str(plan.connections), *common]


def tunnel_args(side: str, topology: str, to_port: int, loop: str) -> list[str]:
    return [*UDPTCP, "tunnel", side, "--listen", f"{HOST}:0", "--to", f"{HOST}:{to_port}",
            "--carrier", topology, "--loop", loop]


def measure_topology(topology: str, plan: Plan, rep: int, timeout_s: float) -> list[Run]:
    """Start the target (and the tunnel), run every measure through it, one after the other."""
    runs: list[Run] = []
    with Group() as group:
        deadline = time.monotonic() + timeout_s
        port = group.start("target", [*LOAD, "--role", "target", "--deadline", f"{timeout_s:.0f}"]
                           ).port(LISTENING, deadline)
        tunnel: list[Child] = []
        if topology != "direct":
            server = group.start("tunnel server", tunnel_args("server", topology, port, plan.loop))
            client = group.start("tunnel client",
                                 tunnel_args("client", topology, server.port(LISTENING, deadline), plan.loop))
            port = client.port(LISTENING, deadline)
            tunnel = [client, server]
        for measure in MEASURES:
            cpu0 = [child.cpu_seconds() for child in tunnel]
            seconds = 0.0
            try:
                load = group.start(measure, load_args(measure, plan, port, deadline - time.monotonic()))
                result = load.result(deadline)
                value: float | None = float(result["value"])
                seconds, error = float(result["seconds"]), None
            except RUN_FAILURES as exc:
                value, error = None, str(exc) or type(exc).__name__
            cpu = {child.name: _share(before, child.cpu_seconds(), seconds)
                   for child, before in zip(tunnel, cpu0, strict=True)}
            runs.append(Run(topology, measure, rep, value, error, cpu))
    return runs


def _share(before: float | None, after: float | None, seconds: float) -> float | None:
    """CPU used over the measured interval (the processes idle outside it: a slight overstatement)."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds


def render(runs: list[Run], meta: dict[str, Any]) -> str:
    """The Markdown report: one row per measure, one column per topology."""
    lines = ["# udptcp tunnel beside the same topology over kernel TCP", "",
             f"- Command: `{meta['command']}`", f"- Date (UTC): {meta['date']}; wall {meta['wall_s']:.0f} s; "
             f"{meta['reps']} repetitions", f"- Load: {meta['load']}", f"- Core: {meta['core']}; "
             f"tunnel loop: {meta['plan']['loop']}", *facts_lines(meta["environment"]), ""]
    header = ["measure", *(TOPOLOGY_TITLES[t] for t in TOPOLOGIES), "tunnel / TCP relay"]
    rows = []
    for measure, unit in MEASURES.items():
        row = [f"{measure} ({unit})"]
        medians: dict[str, float] = {}
        for topology in TOPOLOGIES:
            cell = [r for r in runs if r.topology == topology and r.measure == measure]
            found = spread(r.value for r in cell)
            errors = [r.error for r in cell if r.error]
            if found is None:
                row.append(error_cell(errors[0]) if errors else "-")
                continue
            medians[topology] = found.median
            failed = f", {len(errors)} failed" if errors else ""
            row.append(f"{number(found.median)} ({number(found.low)}-{number(found.high)}{failed})")
        ratio = (percent(medians["udptcp"] / medians["tcp"])
                 if "udptcp" in medians and medians.get("tcp") else "-")
        rows.append([*row, ratio])
    lines += [markdown_table(header, rows), ""]
    cpu_rows = []
    for topology in TOPOLOGIES[:2]:
        bulk = [r for r in runs if r.topology == topology and r.measure == "bulk"]
        shares = [spread(r.cpu.get(name) for r in bulk) for name in ("tunnel client", "tunnel server")]
        cpu_rows.append([TOPOLOGY_TITLES[topology],
                         *(percent(s.median) if s is not None else "-" for s in shares)])
    lines += ["CPU share of the tunnel processes during bulk (median; 100 % = one core):", "",
              markdown_table(["hop", "tunnel client", "tunnel server"], cpu_rows)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="udptcp tunnel vs the same relay over kernel TCP vs direct TCP: bulk, requests, "
                    "connections")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 repetition, small loads")
    parser.add_argument("--bulk-mb", type=float, default=None,
                        help=f"MB per bulk upload (default {FULL.bulk_mb:g}; {QUICK.bulk_mb:g} quick)")
    parser.add_argument("--loop", default="auto", choices=["auto", "uvloop", "asyncio"],
                        help="the tunnel processes' event loop (default auto: uvloop when installed)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="time limit of one topology's repetition in seconds (default 120)")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the report as Markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run's raw result as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from udptcp.corebuild import core_build  # the children import the same build

    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = dataclasses.replace(base, loop=args.loop,
                               bulk_mb=args.bulk_mb if args.bulk_mb is not None else base.bulk_mb)
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    if reps < 1 or plan.bulk_mb <= 0:
        raise SystemExit("benchmarks.tunnel: --reps and --bulk-mb must be positive")
    counter = RunCounter(reps * len(TOPOLOGIES))
    started, date = time.monotonic(), utc_now()
    runs: list[Run] = []
    for rep in range(reps):
        for topology in TOPOLOGIES if rep % 2 == 0 else TOPOLOGIES[::-1]:
            progress(f"{counter.next()} rep {rep + 1}/{reps} {topology:<7} (elapsed {counter.elapsed()})")
            done = measure_topology(topology, plan, rep, args.timeout)
            for run in done:
                shown = f"{run.value:10.1f} {MEASURES[run.measure]}" if run.value is not None else \
                    f"FAILED: {(run.error or '')[:200]}"
                progress(f"    {run.measure:<9} {shown}")
            runs += done
    meta = {
        "command": command_line("benchmarks.tunnel", sys.argv[1:] if argv is None else argv),
        "date": date,
        "wall_s": time.monotonic() - started,
        "reps": reps,
        "load": (f"bulk {plan.bulk_mb:g} MB upload; requests: {plan.parallel} connections x "
                 f"{plan.requests_per_connection} requests of 64 B, 256 B answers, one at a time per "
                 f"connection; connects: {plan.connections} connections, {plan.parallel} at a time, "
                 "one request each"),
        "core": core_build(),
        "plan": dataclasses.asdict(plan),
        "environment": environment(),
    }
    text = render(runs, meta)
    print(text)
    write(args.markdown, text)
    write(args.json, json.dumps({"meta": meta, "runs": [dataclasses.asdict(r) for r in runs]}, indent=1))
    return 0 if all(r.error is None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
