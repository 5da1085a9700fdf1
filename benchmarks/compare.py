"""Measure udptcp side by side with its peers, on loopback, in one run.

Why one command: numbers taken on different days, loads or package versions do not compare on a
noisy 2-core VM. This runs, interleaved and with the same repetitions:

- ``udptcp_mss1380``, ``udptcp``: udptcp bulk (``python -m udptcp bench --json``) with the segment
  size a 1500-octet path carries and with the size path-MTU discovery finds (64 KiB on loopback),
  each with the compiled core and the pure-Python one (``_pure``);
- ``udptcp_2conns_1worker``, ``udptcp_2conns_2workers``: two transfers at once to one server
  process, and to ``--workers 2``;
- ``rtt_udp``, ``rtt_tcp``, ``rtt_udptcp``: 1-octet round trips; ``setups_tcp_1``, ``setups_tcp_64``,
  ``setups_udptcp_1``, ``setups_udptcp_64``: connection set-ups per second, 1 and 64 at a time;
- ``tcp``: asyncio streams over kernel TCP (the bar for any stream transport);
- ``udp_1400``, ``udp_8192``, ``udp_65000``: windowed raw asyncio UDP, the ceiling for any
  UDP-based transport in Python at that datagram size;
- ``aioquic``, ``aioquic_16384``, ``kcp``, ``kcp_mtu65000``: the other reliable transports over
  UDP from Python, at udptcp's default datagram size and at their best with large datagrams, in
  the configurations of ``benchmarks.peers.settings`` (optional: skipped with a note if their
  packages are missing).

each on the stock asyncio loop and on uvloop, every transfer between two processes on
127.0.0.1. Every run has a time limit; a run that fails or times out is reported as such.

Usage (from the repository's root; ``make compare`` runs the first):
    .venv/bin/python -m benchmarks.compare                    # full: 3 reps, about 2.5 minutes
    .venv/bin/python -m benchmarks.compare --quick            # smoke test: 1 rep, small sizes
    .venv/bin/python -m benchmarks.compare --only udptcp,aioquic --markdown out.md --json raw.json

The measurements are ``benchmarks.compare_runs``, the report ``benchmarks.compare_report``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from benchmarks import compare_report
from benchmarks.compare_runs import Measurement, Plan, build
from benchmarks.peers import missing_peers
from benchmarks.procs import RUN_FAILURES
from benchmarks.report import RunCounter, command_line, environment, progress, utc_now, write

LOOPS = ("asyncio", "uvloop")
FULL = Plan(size_mb=100, slow_size_mb=30, udp_seconds=3.0)
QUICK = Plan(size_mb=20, slow_size_mb=5, udp_seconds=1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="udptcp vs kernel TCP, raw UDP, aioquic and KCP on loopback, both event loops.",
        epilog="measurement names: udptcp_mss1380(_pure), udptcp(_pure), udptcp_2conns_1worker, "
               "udptcp_2conns_2workers, tcp, udp_1400, udp_8192, udp_65000, aioquic, aioquic_16384, kcp, "
               "kcp_mtu65000, rtt_udp, rtt_tcp, rtt_udptcp, setups_tcp_1, setups_tcp_64, setups_udptcp_1, "
               "setups_udptcp_64; groups: udptcp, workers, tcp, udp, aioquic, kcp, latency")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per cell (default 3; 1 with --quick)")
    parser.add_argument("--size-mb", type=float, default=None,
                        help=f"MB per udptcp, TCP and KCP transfer (default {FULL.size_mb:g}; "
                             f"{QUICK.size_mb:g} quick)")
    parser.add_argument("--slow-size-mb", type=float, default=None,
                        help=f"MB per aioquic transfer (default {FULL.slow_size_mb:g}; "
                             f"{QUICK.slow_size_mb:g} quick)")
    parser.add_argument("--udp-seconds", type=float, default=None,
                        help=f"seconds per raw UDP run (default {FULL.udp_seconds:g}; "
                             f"{QUICK.udp_seconds:g} quick)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 repetition, small sizes")
    parser.add_argument("--only", default="", metavar="NAME[,NAME]",
                        help="run only these measurements (names or groups, see below)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="time limit of one run in seconds (default 60)")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the report as Markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run's raw result as JSON")
    return parser.parse_args(argv)


def select(measurements: list[Measurement], only: str) -> list[Measurement]:
    """The measurements ``--only`` names (by name or group); all when it is empty."""
    wanted = {token.strip() for token in only.split(",") if token.strip()}
    if not wanted:
        return measurements
    known = {m.name for m in measurements} | {m.group for m in measurements}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"benchmarks.compare: unknown measurement(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(sorted(known))}")
    return [m for m in measurements if m.name in wanted or m.group in wanted]


def available_loops() -> tuple[list[str], list[str]]:
    """The loops to measure, and notes about any that cannot be."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"], ["uvloop rows skipped: uvloop is not importable"]
    return list(LOOPS), []


def run_all(measurements: list[Measurement], loops: list[str], reps: int,
            timeout_s: float) -> list[compare_report.Run]:
    """Every repetition of every cell; the loop order alternates so neither loop always goes first."""
    runs: list[compare_report.Run] = []
    counter = RunCounter(reps * len(measurements) * len(loops))
    for rep in range(reps):
        order = loops if rep % 2 == 0 else loops[::-1]
        for m in measurements:
            for loop in order:
                label = f"{counter.next()} rep {rep + 1}/{reps} {m.name:<16} {loop:<7}"
                progress(f"{label} running ({m.data}; elapsed {counter.elapsed()})")
                started = time.monotonic()
                try:
                    sample = m.run(loop, timeout_s)
                except RUN_FAILURES as exc:
                    wall = time.monotonic() - started
                    message = str(exc) or type(exc).__name__
                    runs.append(compare_report.Run(m.name, loop, rep, None, message, wall))
                    progress(f"{label} FAILED after {wall:.1f} s: {message[:300]}")
                    continue
                wall = time.monotonic() - started
                runs.append(compare_report.Run(m.name, loop, rep, sample, None, wall))
                shown = (f"{sample.mb_per_s:9.1f} MB/s" if m.unit == "MB/s"
                         else f"{sample.extra['value']:9.1f} {m.unit}")
                progress(f"{label} {shown}  cpu {sample.cpu_client:4.0%} / "
                         f"{sample.cpu_server:4.0%}  ({sample.seconds:.2f} s, {wall:.1f} s wall)")
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(size_mb=args.size_mb if args.size_mb is not None else base.size_mb,
                slow_size_mb=args.slow_size_mb if args.slow_size_mb is not None else base.slow_size_mb,
                udp_seconds=args.udp_seconds if args.udp_seconds is not None else base.udp_seconds)
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    if reps < 1 or plan.size_mb <= 0 or plan.slow_size_mb <= 0 or plan.udp_seconds <= 0:
        raise SystemExit("benchmarks.compare: --reps, sizes and --udp-seconds must be positive")
    selected = select(build(plan), args.only)
    loops, skipped = available_loops()
    missing = missing_peers()
    for group, why in missing.items():
        if any(m.group == group for m in selected):
            skipped.append(why)
    selected = [m for m in selected if m.group not in missing]
    for note in skipped:
        progress(f"note: {note}")
    if not selected:
        progress("benchmarks.compare: nothing left to measure")
        return 1
    progress(f"benchmarks.compare: {reps * len(selected) * len(loops)} runs "
             f"({len(selected)} measurements x {len(loops)} loops x {reps} reps)")

    started = time.monotonic()
    date = utc_now()
    runs = run_all(selected, loops, reps, args.timeout)
    meta = {
        "command": command_line("benchmarks.compare", sys.argv[1:] if argv is None else argv),
        "date": date,
        "wall_s": time.monotonic() - started,
        "reps": reps,
        "sizes": (f"udptcp, TCP and KCP {plan.size_mb:g} MB per transfer; aioquic "
                  f"{plan.slow_size_mb:g} MB (scaled down: it is the slow peer); "
                  f"raw UDP {plan.udp_seconds:g} s per run"),
        "plan": dataclasses.asdict(plan),
        "loops": loops,
        "skipped": skipped,
        "environment": environment(),
    }
    text = compare_report.render(selected, loops, runs, meta)
    print(text)
    write(args.markdown, text)
    write(args.json, compare_report.raw_json(runs, meta))
    return 0 if all(r.error is None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
