"""Goodput through an impaired path (``udptcp netem``): udptcp's three controllers, aioquic and KCP.

Why: on loopback every transport is CPU-bound and congestion control never matters; on a real
path it is the other way round. This puts a ``udptcp netem`` relay between each sender and
receiver (one-way delay RTT/2 per direction, random loss per direction, a rate limit through a
tail-drop queue of one bandwidth-delay product) and measures, in one run and on the same
machine, what each peer delivers. A second part runs two udptcp flows (BBR and CUBIC) through
ONE shared bottleneck to show how they divide it.

Peers (``--only``): ``udptcp-newreno``, ``udptcp-cubic``, ``udptcp-bbr`` (group ``udptcp``),
``aioquic``, ``kcp-fast`` and ``kcp-normal`` (group ``kcp``), and ``sharing``. Each configurable
peer runs with the settings of its profile (``benchmarks.peers.settings``), which the report
states. aioquic and KCP are skipped with a note when their packages are missing.

Usage (from the repository's root; ``make lossy`` runs the second):
    .venv/bin/python -m benchmarks.lossy --quick                       # smoke test, ~3 minutes
    .venv/bin/python -m benchmarks.lossy --markdown benchmarks/out/lossy.md \\
        --plot benchmarks/out/lossy.png --json benchmarks/out/lossy.json   # full, ~13 minutes
    .venv/bin/python -m benchmarks.lossy --only udptcp-bbr,kcp --rtts 100 --losses 1 --reps 3

The runs are ``benchmarks.lossy_runs``, the report ``benchmarks.lossy_report``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import lossy_report
from benchmarks.lossy_runs import (
    Outcome,
    Setup,
    SharingOutcome,
    run_peer,
    run_sharing,
    run_udptcp,
    source_fingerprint,
)
from benchmarks.netem import PathSpec
from benchmarks.peers import missing_peers
from benchmarks.peers.settings import KCP_NORMAL, QUIC_PATH, Settings, kcp_fast_for
from benchmarks.report import (
    RunCounter,
    clock,
    command_line,
    environment,
    facts_lines,
    progress,
    utc_now,
    write,
)

SHARING_CONTROLLERS = ["bbr", "cubic"]
QUICK_TIME_LIMIT_S = 10.0
FULL_TIME_LIMIT_S = 30.0
KILL_AFTER_LIMIT_S = 45.0
"""A run still going this long after its time limit is killed and reported failed."""

PeerRun = Callable[[Setup, PathSpec, int, int], Outcome]


@dataclasses.dataclass(frozen=True)
class Peer:
    """A row of the goodput table: a peer in one configuration."""

    name: str
    group: str
    title: str
    """May name a package's version as ``{aioquic}`` or ``{kcp}``."""
    run: PeerRun
    settings_for: Callable[[PathSpec], Settings] | None = None
    """The settings of a configurable peer on a path (they may depend on it)."""

    def describe(self, paths: list[PathSpec]) -> str:
        """The title with the settings used on ``paths`` (per RTT where they differ)."""
        if self.settings_for is None:
            return self.title
        by_rtt = {path.rtt_ms: self.settings_for(path).describe() for path in paths}
        if len(set(by_rtt.values())) == 1:
            return f"{self.title} ({next(iter(by_rtt.values()))})"
        return f"{self.title} (" + "; ".join(f"at {rtt:g} ms: {text}" for rtt, text in by_rtt.items()) + ")"


def _udptcp(cc: str, title: str) -> Peer:
    def run(setup: Setup, path: PathSpec, seed: int, rep: int) -> Outcome:
        return run_udptcp(setup, cc, path, seed, rep)
    return Peer(f"udptcp-{cc}", "udptcp", title, run)


def _configured(name: str, group: str, module: str, title: str,
                settings_for: Callable[[PathSpec], Settings]) -> Peer:
    def run(setup: Setup, path: PathSpec, seed: int, rep: int) -> Outcome:
        return run_peer(setup, name, module, settings_for(path), path, seed, rep)
    return Peer(name, group, title, run, settings_for)


PEERS = [
    _udptcp("newreno", "udptcp, NewReno"),
    _udptcp("cubic", "udptcp, CUBIC (default)"),
    _udptcp("bbr", "udptcp, BBR"),
    _configured("aioquic", "aioquic", "quic", "aioquic {aioquic}, one stream", lambda path: QUIC_PATH),
    _configured("kcp-fast", "kcp", "kcp", "kcp {kcp} 'fast'",
                lambda path: kcp_fast_for(path.rtt_ms, path.rate_mbit)),
    _configured("kcp-normal", "kcp", "kcp", "kcp {kcp} 'normal'", lambda path: KCP_NORMAL),
]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything one invocation measures."""

    peers: list[Peer]
    sharing: bool
    rtts: list[float]
    losses: list[float]
    sharing_losses: list[float]
    rate_mbit: float
    reps: int
    seed: int
    setup: Setup

    def as_json(self) -> dict[str, Any]:
        """The plan for the raw JSON output: the peers by name and title (with their settings)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        paths = [PathSpec(rtt, 0, self.rate_mbit) for rtt in self.rtts]
        return {**fields, "peers": {p.name: p.describe(paths) for p in self.peers},
                "setup": dataclasses.asdict(self.setup)}


def _floats(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one number, none negative")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Goodput of udptcp (NewReno, CUBIC, BBR), aioquic and KCP through a udptcp netem relay "
                    "(delay, random loss, rate limit with a one-BDP tail-drop queue), and BBR vs CUBIC "
                    "sharing one bottleneck.",
        epilog=f"peers for --only: {', '.join(p.name for p in PEERS)}; groups udptcp, kcp; and sharing")
    parser.add_argument("--only", default="", metavar="NAME[,NAME]",
                        help="run only these peers (and/or sharing)")
    parser.add_argument("--rtts", type=_floats, default=None, metavar="MS[,MS]", help="RTTs (default 20,100)")
    parser.add_argument("--losses", type=_floats, default=None, metavar="PCT[,PCT]",
                        help="random loss per direction in %% (default 0,1,5)")
    parser.add_argument("--sharing-losses", type=_floats, default=None, metavar="PCT[,PCT]",
                        help="losses of the sharing runs (default 0,1)")
    parser.add_argument("--rate-mbit", type=float, default=50.0, help="bottleneck per direction (default 50)")
    parser.add_argument("--size-mb", type=float, default=None, help="MB per run (default 32; 8 with --quick)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="cap of a run; goodput is then what the receiver got over its time "
                             f"(default {FULL_TIME_LIMIT_S:g}; {QUICK_TIME_LIMIT_S:g} with --quick)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="a run still going after this is killed and reported failed "
                             f"(default time limit + {KILL_AFTER_LIMIT_S:g})")
    parser.add_argument("--reps", type=int, default=1, help="repetitions per cell; medians shown (default 1)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="event loop of every process (default uvloop)")
    parser.add_argument("--seed", type=int, default=1, help="relay seed of repetition 1 (rep i: seed+i-1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 8 MB, 10 s cap, RTT 20 ms, loss 0 and 1 %%, sharing at 0 %% only")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write the report as Markdown")
    parser.add_argument("--plot", type=Path, metavar="PATH", help="write a PNG of goodput against loss")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every run's raw result as JSON")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace, notes: list[str]) -> Plan:
    """The invocation's plan; peers whose packages are missing are dropped with a note."""
    wanted = {t.strip() for t in args.only.split(",") if t.strip()}
    known = {p.name for p in PEERS} | {p.group for p in PEERS} | {"sharing"}
    if wanted - known:
        raise SystemExit(f"benchmarks.lossy: unknown peer(s) {', '.join(sorted(wanted - known))}; "
                         f"choose from {', '.join(sorted(known))}")
    peers = [p for p in PEERS if not wanted or p.name in wanted or p.group in wanted]
    missing = missing_peers()
    notes += [why for group, why in missing.items() if any(p.group == group for p in peers)]
    peers = [p for p in peers if p.group not in missing]
    time_limit = args.time_limit if args.time_limit is not None else (
        QUICK_TIME_LIMIT_S if args.quick else FULL_TIME_LIMIT_S)
    size = args.size_mb if args.size_mb is not None else (8.0 if args.quick else 32.0)
    if args.reps < 1 or size <= 0 or time_limit <= 0 or args.rate_mbit <= 0:
        raise SystemExit("benchmarks.lossy: --reps, --size-mb, --time-limit and --rate-mbit must be positive")
    loop = args.loop
    if loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            loop = "asyncio"
            notes.append("uvloop is not importable: every process ran on the stock asyncio loop")
    timeout = args.timeout if args.timeout is not None else time_limit + KILL_AFTER_LIMIT_S
    return Plan(
        peers=peers, sharing=not wanted or "sharing" in wanted,
        rtts=args.rtts or ([20.0] if args.quick else [20.0, 100.0]),
        losses=args.losses or ([0.0, 1.0] if args.quick else [0.0, 1.0, 5.0]),
        sharing_losses=args.sharing_losses or ([0.0] if args.quick else [0.0, 1.0]),
        rate_mbit=args.rate_mbit, reps=args.reps, seed=args.seed,
        setup=Setup(size_mb=size, time_limit_s=time_limit, timeout_s=timeout, loop=loop))


def _cpus(cpu: dict[str, float | None]) -> str:
    return "/".join("?" if v is None else f"{v:.0%}" for v in cpu.values())


def run_cells(plan: Plan, counter: RunCounter) -> list[Outcome]:
    """Every peer on every path; within a path cell the peers' order flips each repetition."""
    outcomes: list[Outcome] = []
    for rep in range(plan.reps):
        order = plan.peers if rep % 2 == 0 else plan.peers[::-1]
        for rtt in plan.rtts:
            for loss in plan.losses:
                path = PathSpec(rtt, loss, plan.rate_mbit)
                for peer in order:
                    label = f"{counter.next()} {path.label:<12} {peer.name:<15} rep {rep + 1}/{plan.reps}"
                    source = source_fingerprint()
                    progress(f"{label} running ({path.netem()}; elapsed {counter.elapsed()})")
                    o = peer.run(plan.setup, path, plan.seed + rep, rep)
                    o.udptcp_source = source
                    outcomes.append(o)
                    if o.error is not None or o.goodput_mbit_s is None:
                        progress(f"{label} FAILED after {o.wall_s:.1f} s: {(o.error or '')[:300]}")
                        continue
                    queue = o.relay.up.get("dropped_queue", 0) if o.relay else 0
                    progress(f"{label} {o.goodput_mbit_s:6.1f} Mbit/s  {o.mb:5.1f} MB in {o.seconds:5.1f} s"
                             f"{' (capped)' if o.time_limited else ''}  cpu c/s/relay {_cpus(o.cpu)}  "
                             f"queue drops {queue}  ({o.wall_s:.1f} s wall)")
    return outcomes


def run_sharing_cells(plan: Plan, counter: RunCounter) -> list[SharingOutcome]:
    """BBR and CUBIC through one shared bottleneck, per RTT and sharing loss."""
    found: list[SharingOutcome] = []
    for rep in range(plan.reps):
        for rtt in plan.rtts:
            for loss in plan.sharing_losses:
                path = PathSpec(rtt, loss, plan.rate_mbit)
                label = (f"{counter.next()} sharing {path.label:<12} {'+'.join(SHARING_CONTROLLERS)} "
                         f"rep {rep + 1}/{plan.reps}")
                progress(f"{label} running ({path.netem()} --shared; elapsed {counter.elapsed()})")
                source = source_fingerprint()
                s = run_sharing(plan.setup, SHARING_CONTROLLERS, path, plan.seed + rep, rep)
                s.udptcp_source = source
                found.append(s)
                flows = ", ".join(f"{f.congestion_control} {f.goodput_mbit_s:.1f}"
                                  if f.goodput_mbit_s is not None else f"{f.congestion_control} failed"
                                  for f in s.flows)
                progress(f"{label} {flows} Mbit/s ({s.wall_s:.1f} s wall)"
                         f"{'; ' + s.error[:300] if s.error else ''}")
    return found


def _sources(fingerprints: dict[str, str]) -> str:
    start, end = fingerprints["start"], fingerprints["end"]
    return f"`{start}`" if start == end else f"`{start}` at the start, `{end}` at the end (see the warning)"


def render(plan: Plan, outcomes: list[Outcome], sharing: list[SharingOutcome], meta: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    env: dict[str, str] = meta["environment"]
    paths = [PathSpec(rtt, 0, plan.rate_mbit) for rtt in plan.rtts]
    titles = {p.name: p.describe(paths).format(**env) for p in plan.peers}
    short_titles = {p.name: p.title.format(**env) for p in plan.peers}
    columns = [(rtt, loss) for rtt in plan.rtts for loss in plan.losses]
    queues = ", ".join(f"{rtt:g} ms: {PathSpec(rtt, 0, plan.rate_mbit).queue_bytes / 1000:g} kB"
                       for rtt in plan.rtts)
    s = plan.setup
    lines = [
        "# Goodput through an impaired path: udptcp, aioquic and KCP",
        "",
        f"- Command: `{meta['command']}`",
        f"- Date: {meta['date']} (UTC); wall time {clock(meta['wall_s'])}; repetitions {plan.reps}"
        + (" (median [min-max])" if plan.reps > 1 else ""),
        *facts_lines(env),
        f"- Event loop: **{s.loop}** in every process (senders, receivers, relay)",
        f"- udptcp sources (hash of `udptcp/**/*.py`): {_sources(meta['udptcp_source'])}",
        f"- Path: one `udptcp netem` relay per run; per direction one-way delay RTT/2, random loss, "
        f"{plan.rate_mbit:g} Mbit/s through a tail-drop queue of one BDP, at least 30 kB ({queues})",
        f"- Transfer: {s.size_mb:g} MB per run, capped at {s.time_limit_s:g} s (goodput then = bytes the "
        f"receiver got / the receiver's time); a run is killed after {s.timeout_s:g} s",
        "",
        f"## Goodput in Mbit/s (share of the {plan.rate_mbit:g} Mbit/s bottleneck)",
        "",
        lossy_report.goodput_table(outcomes, list(titles.items()), columns, plan.rate_mbit),
        "",
        f"`*` = the run hit the {s.time_limit_s:g} s limit before {s.size_mb:g} MB arrived.",
        "",
    ]
    if sharing:
        lines += [f"## Sharing one bottleneck: {' and '.join(c.upper() for c in SHARING_CONTROLLERS)}", "",
                  f"Two udptcp flows started together through ONE `udptcp netem --shared` relay (the "
                  f"same queue and rate limit for both), each sending for {s.time_limit_s:g} s.", "",
                  lossy_report.sharing_table(sharing, plan.rate_mbit), ""]
    lines += lossy_report.source_versions(outcomes, sharing)
    hot = lossy_report.cpu_bound(outcomes, sharing)
    lines += ["## CPU-bound runs", "", *([f"- {h}" for h in hot] or ["none (no process at 90 % of a core)"]),
              "", "## Every run", "", lossy_report.details_table(outcomes, short_titles), ""]
    if meta["notes"]:
        lines += ["## Skipped", "", *[f"- {n}" for n in meta["notes"]], ""]
    lines += ["## Method", "", METHOD, ""]
    return "\n".join(lines)


METHOD = """\
- Per run: receiver process, `udptcp netem` relay (`--both delay=RTT/2,loss=P,rate=R,queue=BDP`,
  seed = 1 + repetition), sender process, all on 127.0.0.1. Goodput is measured at the receiver: its
  bytes / its first-to-last byte time. Mbit = 1e6 bits, MB = 1e6 bytes.
- udptcp: `python -m udptcp bench --role server` and `--role client --json --time-limit T
  -o congestion_control=C`, default MSS; a run still going at T counts what the receiver has
  acknowledged by then over T, and resets the connection.
- aioquic and KCP: the loopback peers `benchmarks.peers.quic` / `benchmarks.peers.kcp` with the
  settings in each row's title (aioquic: one stream, 2 MiB send-buffer cap; KCP: 4 MiB socket
  buffers); their receivers run with `--time-limit T` and report what they got T seconds after
  their first byte.
- Sharing: one `udptcp bench --role server --connections 2`, one relay with `--shared` (every flow
  through the same two impaired paths), two clients started together with `--time-limit T`.
- CPU = process CPU seconds over its run time (1.0 = one core); bold at >= 90 %. Relay drops are
  the relay's own exit summary: `queue` = tail drops at the bottleneck queue, `random` = the loss
  asked for, as counts and as a share of the datagrams the relay received in that direction."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    plan = make_plan(args, notes)
    for note in notes:
        progress(f"note: {note}")
    runs = plan.reps * len(plan.rtts) * len(plan.losses) * len(plan.peers)
    shares = plan.reps * len(plan.rtts) * len(plan.sharing_losses) if plan.sharing else 0
    if not runs and not shares:
        progress("benchmarks.lossy: nothing left to measure")
        return 1
    progress(f"benchmarks.lossy: {runs} runs + {shares} sharing runs, up to {plan.setup.time_limit_s:g} s "
             f"each, loop {plan.setup.loop}")
    counter = RunCounter(runs + shares)
    date = utc_now()
    source_at_start = source_fingerprint()
    outcomes = run_cells(plan, counter)
    sharing = run_sharing_cells(plan, counter) if plan.sharing else []
    meta: dict[str, Any] = {
        "command": command_line("benchmarks.lossy", sys.argv[1:] if argv is None else argv),
        "date": date, "wall_s": time.monotonic() - counter.started, "notes": notes,
        "udptcp_source": {"start": source_at_start, "end": source_fingerprint()},
        "plan": plan.as_json(), "environment": environment(),
    }
    text = render(plan, outcomes, sharing, meta)
    print(text)
    write(args.markdown, text)
    write(args.json, lossy_report.raw_json(meta, outcomes, sharing))
    if args.plot is not None:
        try:
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            s = plan.setup
            subtitle = f"{meta['date']} UTC, {s.loop}, {s.size_mb:g} MB or {s.time_limit_s:g} s per run"
            lossy_report.plot(outcomes, [(p.name, p.title.format(**meta["environment"])) for p in plan.peers],
                              plan.rtts, plan.losses, plan.rate_mbit, args.plot, subtitle)
            progress(f"wrote {args.plot}")
        except ImportError:
            progress("note: matplotlib is not importable; no plot (pip install matplotlib)")
    failed = any(o.error for o in outcomes) or any(s.error for s in sharing)
    progress(f"benchmarks.lossy: done in {counter.elapsed()}" + (" (some runs failed)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
