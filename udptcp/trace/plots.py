"""``udptcp trace seq`` and ``udptcp trace cwnd``: a side's sending over time, with matplotlib.

The time-sequence graph is tcptrace's: each segment sent is a vertical bar from its first to
its last octet (red when retransmitted), the ACK line steps under them, the receive-window
line (ACK + window) above, and SACK blocks show where data arrived beyond a hole. Numbers are
relative to the side's ISN, times to the trace's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from udptcp.trace.model import Side

SEQ_SPACE = 1 << 32


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - the optional plot extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def seq_series(side: Side) -> dict[str, list[tuple[float, ...]]]:
    """The graph's data: ``sent`` and ``retransmitted`` (t, first, last), ``ack`` and
    ``window`` (t, value), ``sack`` (t, start, end); octets from 0 at the ISN, t from the
    trace's start."""
    start = side.events[0]["t"] if side.events else 0.0
    isn = side.iss
    series: dict[str, list[tuple[float, ...]]] = {
        "sent": [], "retransmitted": [], "ack": [], "window": [], "sack": [],
    }

    def rel(value: int) -> int:
        return (value - isn) % SEQ_SPACE

    for e in side.events:
        if e["type"] != "segment" or "malformed" in e:
            continue
        t = e["t"] - start
        if e["dir"] == "sent":
            if e["len"] and "mtu_probe" not in e:
                key = "retransmitted" if "retransmission" in e else "sent"
                series[key].append((t, rel(e["seq"]), rel(e["seq"]) + e["len"]))
        elif "ACK" in e["flags"]:
            ack = rel(e["ack"])
            series["ack"].append((t, ack))
            series["window"].append((t, ack + e["win"]))
            for block_start, block_end in e.get("sack", []):
                series["sack"].append((t, rel(block_start), rel(block_end)))
    return series


def draw_seq(side: Side, output: str | Path, title: str | None = None) -> Path:
    """The time-sequence graph of what ``side`` sent."""
    plt = _pyplot()
    series = seq_series(side)
    with plt.rc_context({"svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(10, 6))
        for key, color, label in (("sent", "#1f4e79", "segments sent"),
                                  ("retransmitted", "#c00000", "retransmissions")):
            bars = series[key]
            if bars:
                ax.vlines([b[0] for b in bars], [b[1] for b in bars], [b[2] for b in bars],
                          colors=color, linewidth=1.2, label=label)
                ax.plot([b[0] for b in bars], [b[2] for b in bars], linestyle="none", marker="_",
                        color=color, markersize=4)
        if series["ack"]:
            ax.step([p[0] for p in series["ack"]], [p[1] for p in series["ack"]], where="post",
                    color="#2e7d32", linewidth=1.0, label="ACK")
            ax.step([p[0] for p in series["window"]], [p[1] for p in series["window"]], where="post",
                    color="#b58900", linewidth=1.0, label="receive window (ACK + window)")
        if series["sack"]:
            sack = series["sack"]
            ax.vlines([b[0] for b in sack], [b[1] for b in sack], [b[2] for b in sack],
                      colors="#8e24aa", linewidth=2.5, alpha=0.6, label="SACK blocks")
        top = max((b[2] for key in ("sent", "retransmitted") for b in series[key]), default=1)
        ax.set_ylim(0, top * 1.05)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("sequence number (octets from the ISN)")
        ax.set_title(title or f"time-sequence graph: connection {side.cid} ({side.role})")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(output)
        fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
        plt.close(fig)
    return path


def draw_cwnd(side: Side, output: str | Path, title: str | None = None) -> Path:
    """cwnd, ssthresh, bytes in flight and pacing rate; RTT below."""
    plt = _pyplot()
    start = side.events[0]["t"] if side.events else 0.0
    metrics = side.of_type("metrics")
    rtts = side.of_type("rtt")
    with plt.rc_context({"svg.fonttype": "none"}):
        fig, (ax, ax_rtt) = plt.subplots(2, 1, figsize=(10, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
        t = [e["t"] - start for e in metrics]
        ax.step(t, [e["cwnd"] / 1e3 for e in metrics], where="post", label="cwnd", color="#1f4e79")
        ax.step(t, [e["in_flight"] / 1e3 for e in metrics], where="post", label="bytes in flight",
                color="#2e7d32", alpha=0.8)
        ssthresh = [(x, e["ssthresh"] / 1e3) for x, e in zip(t, metrics, strict=True)
                    if e["ssthresh"] < SEQ_SPACE - 1]
        if ssthresh:
            ax.step([p[0] for p in ssthresh], [p[1] for p in ssthresh], where="post",
                    label="ssthresh", color="#b58900", linestyle="--")
        ax.set_ylabel("kB")
        ax.grid(alpha=0.3)
        paced = [(x, e["pacing_rate"] * 8 / 1e6) for x, e in zip(t, metrics, strict=True) if e["pacing_rate"]]
        if paced:
            rate_ax = ax.twinx()
            rate_ax.step([p[0] for p in paced], [p[1] for p in paced], where="post", color="#8e24aa",
                         alpha=0.6, label="pacing rate")
            rate_ax.set_ylabel("pacing rate (Mbit/s)")
            rate_ax.legend(loc="upper right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(title or f"congestion window: connection {side.cid} ({side.role})")
        ax_rtt.plot([e["t"] - start for e in rtts], [e["latest_s"] * 1e3 for e in rtts], ".",
                    markersize=3, label="RTT sample", color="#555555")
        ax_rtt.plot([e["t"] - start for e in rtts], [(e["srtt_s"] or 0) * 1e3 for e in rtts],
                    label="smoothed RTT", color="#c00000")
        ax_rtt.set_ylabel("RTT (ms)")
        ax_rtt.set_xlabel("time (s)")
        ax_rtt.legend(loc="upper left", fontsize=8)
        ax_rtt.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(output)
        fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
        plt.close(fig)
    return path
