"""The report of ``benchmarks.lossy``: goodput table, sharing table, per-run details, the plot, raw JSON.

The main table has one row per peer and configuration and one column per path (RTT x loss),
each cell "goodput (share of the bottleneck)", the median over repetitions with its range. The per-run
table keeps what explains a number: whether the run hit its time limit, the CPU of every
process (on 2 cores a CPU-bound process caps goodput, not the protocol), and the relay's own
counts of random and tail (queue) drops in each direction.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from benchmarks.lossy_runs import Outcome, SharingOutcome
from benchmarks.report import error_cell, markdown_table, percent, spread

LOG_TICKS_MBIT_S = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
CPU_BOUND_SHARE = 0.9
"""A process at or above this share of a core for the whole run is flagged as CPU-bound."""


def _cell(runs: list[Outcome], rate_mbit: float) -> str:
    stats = spread(r.goodput_mbit_s for r in runs)
    failed = sum(1 for r in runs if r.error)
    if stats is None:
        return "failed" if failed else "-"
    text = f"{stats.median:.1f} ({percent(stats.median / rate_mbit)})"
    if len(runs) - failed > 1:
        text += f" [{stats.low:.1f}-{stats.high:.1f}]"
    if any(r.time_limited for r in runs if not r.error):
        text += "*"
    if failed:
        text += f" ({failed} failed)"
    return text


def goodput_table(outcomes: list[Outcome], peers: list[tuple[str, str]], columns: list[tuple[float, float]],
                  rate_mbit: float) -> str:
    """Rows: peers (name, title); columns: (rtt_ms, loss_pct)."""
    rows = []
    for name, title in peers:
        row = [title]
        for rtt, loss in columns:
            runs = [o for o in outcomes if o.peer == name and o.rtt_ms == rtt and o.loss_pct == loss]
            row.append(_cell(runs, rate_mbit) if runs else "-")
        rows.append(row)
    return markdown_table(["peer / config", *(f"{rtt:g} ms, {loss:g} %" for rtt, loss in columns)], rows)


def sharing_table(sharing: list[SharingOutcome], rate_mbit: float) -> str:
    """One row per flow of every sharing run, with its share of the flows' sum."""
    rows = []
    for s in sharing:
        path = f"{s.rtt_ms:g} ms, {s.loss_pct:g} %"
        total = sum(f.goodput_mbit_s or 0.0 for f in s.flows)
        drops = _drops(s.relay.up if s.relay else {})
        cpu = f"server {_cpu(s.cpu.get('server'))}, relay {_cpu(s.cpu.get('relay'))}"
        for f in s.flows:
            share = percent(f.goodput_mbit_s / total) if f.goodput_mbit_s is not None and total > 0 else "-"
            goodput = f"**{f.goodput_mbit_s:.1f}**" if f.goodput_mbit_s is not None else "failed"
            rows.append([path, str(s.rep + 1), f.label, f.congestion_control, goodput, share,
                         f"{total:.1f} ({percent(total / rate_mbit)})", _opt(f.retransmitted),
                         _opt(f.timeouts), _cpu(f.cpu_client), drops, _error(f.error) if f.error else cpu])
        if not s.flows and s.error:
            rows.append([path, str(s.rep + 1), *["-"] * 2, "failed", *["-"] * 6, _error(s.error)])
    return markdown_table(["path", "rep", "flow", "controller", "goodput Mbit/s", "share of the sum",
                           f"sum (of {rate_mbit:g} Mbit/s)", "retransmitted", "timeouts", "CPU client",
                           "relay drops up: queue / random", "notes"], rows)


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cpu(value: float | None) -> str:
    if value is None:
        return "?"
    return f"**{percent(value)}**" if value >= CPU_BOUND_SHARE else percent(value)


def _error(text: str) -> str:
    return "**failed**: " + error_cell(text)


def _drops(counters: dict[str, int]) -> str:
    """Tail drops at the queue / random drops, as counts and share of what the path received."""
    received = counters.get("received", 0)
    if not received:
        return "-"
    queue, random_ = counters.get("dropped_queue", 0), counters.get("dropped_random", 0)
    return f"{queue:,} ({queue / received:.1%}) / {random_:,} ({random_ / received:.1%})"


def details_table(outcomes: list[Outcome], titles: dict[str, str]) -> str:
    """Every run: what it delivered, in how long, at what CPU, and what the relay dropped."""
    rows = []
    for o in outcomes:
        relay = o.relay
        notes: list[str] = []
        if o.error:
            notes.append(_error(o.error))
        for key in ("retransmitted", "timeouts", "timer_fires"):
            if key in o.extra:
                notes.append(f"{key.replace('_', ' ')} {o.extra[key]:,}")
        if relay is not None:
            lost = {k: v for d in (relay.up, relay.down) for k, v in d.items()
                    if k.startswith("relay_dropped") and v}
            if lost:
                notes.append("relay could not forward: " + ", ".join(f"{k}={v}" for k, v in lost.items()))
            if relay.notes:
                notes.append("relay: " + error_cell(relay.notes))
        cpu = " / ".join(_cpu(o.cpu.get(k)) for k in ("client", "server", "relay")) if o.cpu else "-"
        rows.append([f"{o.rtt_ms:g} ms, {o.loss_pct:g} %", titles.get(o.peer, o.peer), str(o.rep + 1),
                     f"{o.goodput_mbit_s:.1f}" if o.goodput_mbit_s is not None else "failed",
                     _num(o.mb), _num(o.seconds), "yes" if o.time_limited else "no", cpu,
                     _drops(relay.up) if relay else "-", _drops(relay.down) if relay else "-",
                     "; ".join(notes), o.udptcp_source if o.peer.startswith("udptcp") else ""])
    return markdown_table(["path", "peer", "rep", "goodput Mbit/s", "MB received", "receiver s", "capped",
                           "CPU client / server / relay", "relay up (data): queue / random drops",
                           "relay down (acks): queue / random", "notes", "udptcp src"], rows)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def source_versions(outcomes: list[Outcome], sharing: list[SharingOutcome]) -> list[str]:
    """A warning section when udptcp's sources changed between runs (else nothing)."""
    runs: list[tuple[str, str]] = [(o.udptcp_source, f"{o.peer} {o.rtt_ms:g} ms / {o.loss_pct:g} %")
                                   for o in outcomes if o.peer.startswith("udptcp")]
    runs += [(s.udptcp_source, f"sharing {s.rtt_ms:g} ms / {s.loss_pct:g} %") for s in sharing]
    versions = list(dict.fromkeys(v for v, _ in runs))
    if len(versions) < 2:
        return []
    lines = ["## Warning: udptcp's sources changed during this run", "",
             f"{len(versions)} versions of `udptcp/**/*.py` were measured (fingerprint: runs, in order):", ""]
    for version in versions:
        lines.append(f"- `{version}`: " + ", ".join(label for v, label in runs if v == version))
    return [*lines, ""]


def cpu_bound(outcomes: list[Outcome], sharing: list[SharingOutcome]) -> list[str]:
    """Runs in which some process used a whole core: their goodput may be the CPU's, not the path's."""
    found = []
    for o in outcomes:
        hot = [k for k, v in o.cpu.items() if v is not None and v >= CPU_BOUND_SHARE]
        if hot:
            found.append(f"{o.peer} at {o.rtt_ms:g} ms / {o.loss_pct:g} % (rep {o.rep + 1}): "
                         f"{', '.join(hot)}")
    for s in sharing:
        hot = [f"{f.label} client" for f in s.flows
               if f.cpu_client is not None and f.cpu_client >= CPU_BOUND_SHARE]
        hot += [k for k, v in s.cpu.items() if v is not None and v >= CPU_BOUND_SHARE]
        if hot:
            found.append(f"sharing at {s.rtt_ms:g} ms / {s.loss_pct:g} % (rep {s.rep + 1}): {', '.join(hot)}")
    return found


def plot(outcomes: list[Outcome], peers: list[tuple[str, str]], rtts: list[float], losses: list[float],
         rate_mbit: float, path: Path, subtitle: str) -> None:
    """Goodput against loss, one line per peer, one panel per RTT, the bottleneck drawn.

    The y axis is logarithmic: at 5 % loss the loss-based controllers are 100x below the
    bottleneck, and on a linear axis their lines would all lie on zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    fig, axes = plt.subplots(1, len(rtts), figsize=(5.5 * len(rtts), 5.2), sharey=True, squeeze=False)
    markers = "osD^vP*X"
    positions = list(range(len(losses)))
    values = [o.goodput_mbit_s for o in outcomes if o.goodput_mbit_s]
    lowest = max(0.01, min([*values, rate_mbit]))
    for ax, rtt in zip(axes[0], rtts, strict=True):
        ax.axhline(rate_mbit, color="black", linestyle="--", linewidth=1,
                   label=f"bottleneck {rate_mbit:g} Mbit/s")
        for i, (name, title) in enumerate(peers):
            xs, ys = [], []
            for x, loss in zip(positions, losses, strict=True):
                stats = spread(o.goodput_mbit_s for o in outcomes
                               if o.peer == name and o.rtt_ms == rtt and o.loss_pct == loss)
                if stats is not None:
                    xs.append(x)
                    ys.append(max(stats.median, 0.01))
            if xs:
                ax.plot(xs, ys, marker=markers[i % len(markers)], label=title.split(" (")[0])
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator(LOG_TICKS_MBIT_S))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(lowest / 1.5, rate_mbit * 1.5)
        ax.set_xticks(positions, [f"{loss:g} %" for loss in losses])
        ax.set_xlabel("random loss per direction")
        ax.set_title(f"RTT {rtt:g} ms")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("receiver goodput, Mbit/s (log)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(f"Goodput through a {rate_mbit:g} Mbit/s bottleneck with random loss\n{subtitle}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))  # room for the legend under the panels
    fig.savefig(path, dpi=120)
    plt.close(fig)


def raw_json(meta: dict[str, Any], outcomes: list[Outcome], sharing: list[SharingOutcome]) -> str:
    """Every run, successful or not, plus the metadata, for later analysis."""
    return json.dumps({"meta": meta, "runs": [dataclasses.asdict(o) for o in outcomes],
                       "sharing": [dataclasses.asdict(s) for s in sharing]}, indent=2)
