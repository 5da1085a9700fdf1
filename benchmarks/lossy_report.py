"""The report of ``lossy.py``: goodput table, sharing table, per-run details, the plot, raw JSON.

The main table has the reference measurement's shape (rows = peer/config, columns = RTT x loss,
"goodput (share of the bottleneck)"), so that the two can be read side by side. The per-run
table keeps what explains a number: whether the run hit its time limit, the CPU of every
process (on 2 cores a CPU-bound process caps goodput, not the protocol), and the relay's own
counts of random and tail (queue) drops in each direction.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lossy_runs import Outcome, SharingOutcome

LOG_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
CPU_BOUND = 0.9
"""A process at or above this share of a core for the whole run is flagged as CPU-bound."""
ERROR_CHARS = 200


def _median(values: Iterable[float | None]) -> tuple[float, float, float] | None:
    found = [v for v in values if v is not None]
    return (statistics.median(found), min(found), max(found)) if found else None


def _pct(value: float) -> str:
    return f"{value:.0%}".replace("%", " %")


def _cell(runs: list[Outcome], rate_mbit: float) -> str:
    stats = _median(r.goodput_mbit_s for r in runs)
    failed = sum(1 for r in runs if r.error)
    if stats is None:
        return "failed" if failed else "-"
    text = f"{stats[0]:.1f} ({_pct(stats[0] / rate_mbit)})"
    if len(runs) - failed > 1:
        text += f" [{stats[1]:.1f}-{stats[2]:.1f}]"
    if any(r.time_limited for r in runs if not r.error):
        text += "*"
    if failed:
        text += f" ({failed} failed)"
    return text


def goodput_table(outcomes: list[Outcome], peers: list[tuple[str, str]], columns: list[tuple[float, float]],
                  rate_mbit: float) -> str:
    """Rows: peers (name, title); columns: (rtt_ms, loss_pct)."""
    header = "| peer / config | " + " | ".join(f"{rtt:g} ms, {loss:g} %" for rtt, loss in columns) + " |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for name, title in peers:
        row = []
        for rtt, loss in columns:
            runs = [o for o in outcomes if o.peer == name and o.rtt_ms == rtt and o.loss_pct == loss]
            row.append(_cell(runs, rate_mbit) if runs else "-")
        lines.append(f"| {title} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def sharing_table(sharing: list[SharingOutcome], rate_mbit: float) -> str:
    """One row per flow of every sharing run, with its share of the flows' sum."""
    lines = ["| path | rep | flow | controller | goodput Mbit/s | share of the sum | sum (of 50 Mbit/s) "
             "| retransmitted | timeouts | CPU client | relay drops up: queue / random | notes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in sharing:
        total = sum(f.goodput_mbit_s or 0.0 for f in s.flows)
        drops = _drops(s.relay.up if s.relay else {})
        cpu = f"server {_cpu(s.cpu.get('server'))}, relay {_cpu(s.cpu.get('relay'))}"
        for f in s.flows:
            share = _pct(f.goodput_mbit_s / total) if f.goodput_mbit_s is not None and total > 0 else "-"
            goodput = f"**{f.goodput_mbit_s:.1f}**" if f.goodput_mbit_s is not None else "failed"
            note = _error(f.error) if f.error else cpu
            lines.append(f"| {s.rtt_ms:g} ms, {s.loss_pct:g} % | {s.rep + 1} | {f.label} "
                         f"| {f.congestion_control} | {goodput} | {share} "
                         f"| {total:.1f} ({_pct(total / rate_mbit)}) "
                         f"| {_opt(f.retransmitted)} | {_opt(f.timeouts)} | {_cpu(f.cpu_client)} | {drops} "
                         f"| {note} |")
        if not s.flows and s.error:
            lines.append(f"| {s.rtt_ms:g} ms, {s.loss_pct:g} % | {s.rep + 1} | - | - | failed | - | - "
                         f"| - | - | - | - | {_error(s.error)} |")
    return "\n".join(lines)


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cpu(value: float | None) -> str:
    if value is None:
        return "?"
    return f"**{_pct(value)}**" if value >= CPU_BOUND else _pct(value)


def _error(text: str) -> str:
    return "**failed**: " + text.replace("|", "/").replace("\n", " ")[:ERROR_CHARS]


def _drops(counters: dict[str, int]) -> str:
    """Tail drops at the queue / random drops, as counts and share of what the path received."""
    received = counters.get("received", 0)
    if not received:
        return "-"
    queue, random_ = counters.get("dropped_queue", 0), counters.get("dropped_random", 0)
    return f"{queue:,} ({queue / received:.1%}) / {random_:,} ({random_ / received:.1%})"


def details_table(outcomes: list[Outcome], titles: dict[str, str]) -> str:
    """Every run: what it delivered, in how long, at what CPU, and what the relay dropped."""
    lines = ["| path | peer | rep | goodput Mbit/s | MB received | receiver s | capped | CPU client / server "
             "/ relay | relay up (data): queue / random drops | relay down (acks): queue / random | notes "
             "| udptcp src |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
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
                notes.append("relay: " + relay.notes.replace("|", "/")[:ERROR_CHARS])
        cpu = " / ".join(_cpu(o.cpu.get(k)) for k in ("client", "server", "relay")) if o.cpu else "-"
        goodput = f"{o.goodput_mbit_s:.1f}" if o.goodput_mbit_s is not None else "failed"
        lines.append(f"| {o.rtt_ms:g} ms, {o.loss_pct:g} % | {titles.get(o.peer, o.peer)} | {o.rep + 1} "
                     f"| {goodput} | {_num(o.mb)} | {_num(o.seconds)} | {'yes' if o.time_limited else 'no'} "
                     f"| {cpu} | {_drops(relay.up) if relay else '-'} "
                     f"| {_drops(relay.down) if relay else '-'} "
                     f"| {'; '.join(notes)} | {o.udptcp_source if o.peer.startswith('udptcp') else ''} |")
    return "\n".join(lines)


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
        hot = [k for k, v in o.cpu.items() if v is not None and v >= CPU_BOUND]
        if hot:
            found.append(f"{o.peer} at {o.rtt_ms:g} ms / {o.loss_pct:g} % (rep {o.rep + 1}): "
                         f"{', '.join(hot)}")
    for s in sharing:
        hot = [f"{f.label} client" for f in s.flows if f.cpu_client is not None and f.cpu_client >= CPU_BOUND]
        hot += [k for k, v in s.cpu.items() if v is not None and v >= CPU_BOUND]
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
                stats = _median(o.goodput_mbit_s for o in outcomes
                                if o.peer == name and o.rtt_ms == rtt and o.loss_pct == loss)
                if stats is not None:
                    xs.append(x)
                    ys.append(max(stats[0], 0.01))
            if xs:
                ax.plot(xs, ys, marker=markers[i % len(markers)], label=title.split(" (")[0])
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator(LOG_TICKS))
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
    return json.dumps({"meta": meta, "runs": [dataclasses.asdict(o) for o in outcomes],
                       "sharing": [dataclasses.asdict(s) for s in sharing]}, indent=2)
