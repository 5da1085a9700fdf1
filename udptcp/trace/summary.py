"""``udptcp trace summary``: what one side's trace says about its connection, as text.

Every figure is counted from the trace's own events (segments, losses, RTT samples, metrics),
not copied from the counters the trace ends with, so the two can be checked against each other.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from udptcp.trace.model import Side

RETRANSMISSION_CAUSES = ("rto", "rack", "tlp", "fast_retransmit", "handshake", "unknown")
LIMITS = ("cwnd", "rwnd", "pacing", "application", "socket", "cpu")


@dataclass
class Summary:
    """One side's connection in figures."""

    cid: str
    role: str
    handshake_s: float | None = None
    duration_s: float = 0.0
    segments_sent: int = 0
    segments_received: int = 0
    data_bytes_sent: int = 0
    data_bytes_received: int = 0
    new_bytes_sent: int = 0
    retransmissions: Counter[str] = field(default_factory=Counter)
    loss_events: Counter[str] = field(default_factory=Counter)
    rtt_samples_s: list[float] = field(default_factory=list)
    limited_s: Counter[str] = field(default_factory=Counter)
    final_state: str | None = None
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def data_retransmissions(self) -> int:
        """Retransmitted segments of data or FIN (the connection counts these)."""
        return sum(n for cause, n in self.retransmissions.items() if cause != "handshake")


def summarize(side: Side) -> Summary:
    """The figures of ``side``'s trace."""
    summary = Summary(side.cid, side.role)
    events = side.events
    if not events:
        return summary
    start = events[0]["t"]
    summary.duration_s = events[-1]["t"] - start
    opened_at: float | None = None
    limit: str | None = None
    limit_since = 0.0
    for e in events:
        kind = e["type"]
        if kind == "segment" and "malformed" not in e:
            if e["dir"] == "sent":
                summary.segments_sent += 1
                if "mtu_probe" not in e:
                    summary.data_bytes_sent += e["len"]
                cause = e.get("retransmission")
                if cause is not None:
                    summary.retransmissions[cause] += 1
                elif "mtu_probe" not in e:
                    summary.new_bytes_sent += e["len"]
                if "SYN" in e["flags"] and opened_at is None:
                    opened_at = e["t"]
            else:
                summary.segments_received += 1
                if "mtu_probe" not in e:
                    summary.data_bytes_received += e["len"]
                if "SYN" in e["flags"] and "ACK" not in e["flags"] and opened_at is None:
                    opened_at = e["t"]
        elif kind == "state":
            summary.final_state = e["new"]
            if e["new"] == "ESTABLISHED" and opened_at is not None and summary.handshake_s is None:
                summary.handshake_s = e["t"] - opened_at
        elif kind == "loss":
            summary.loss_events[e["cause"]] += int(e.get("count", 1))
        elif kind == "rtt":
            summary.rtt_samples_s.append(float(e["latest_s"]))
        elif kind == "metrics":
            if limit is not None:
                summary.limited_s[limit] += e["t"] - limit_since
            limit, limit_since = str(e["limit"]), e["t"]
        elif kind == "stats":
            summary.stats = {k: v for k, v in e.items() if k not in ("t", "cid", "type")}
    if limit is not None:
        summary.limited_s[limit] += events[-1]["t"] - limit_since
    return summary


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _octets(n: int) -> str:
    return f"{n:,} bytes"


def render(summary: Summary, source: str = "") -> str:
    """The summary as the command prints it."""
    lines = [f"connection {summary.cid} ({summary.role}){' in ' + source if source else ''}"]
    lines.append(f"  handshake: {'-' if summary.handshake_s is None else _ms(summary.handshake_s)}; "
                 f"traced for {summary.duration_s:.3f} s; last state {summary.final_state or '-'}")
    lines.append(f"  sent: {summary.segments_sent:,} segments, {_octets(summary.data_bytes_sent)} of data "
                 f"({_octets(summary.new_bytes_sent)} new)")
    lines.append(f"  received: {summary.segments_received:,} segments, "
                 f"{_octets(summary.data_bytes_received)} of data")
    causes = ", ".join(f"{cause.replace('_', ' ')} {summary.retransmissions[cause]}"
                       for cause in RETRANSMISSION_CAUSES if summary.retransmissions[cause])
    lines.append(f"  retransmissions: {summary.data_retransmissions:,} segments of data or FIN"
                 + (f" ({causes})" if causes else ""))
    events = summary.loss_events
    lines.append(f"  loss events: RTO {events['rto']}, RACK {events['rack']}, TLP {events['tlp']}, "
                 f"fast retransmit {events['fast_retransmit']}; spurious, undone: "
                 f"{events['spurious_undone']}")
    samples = summary.rtt_samples_s
    if samples:
        lines.append(f"  RTT: min {_ms(min(samples))}, median {_ms(statistics.median(samples))}, "
                     f"max {_ms(max(samples))} ({len(samples)} samples)")
    else:
        lines.append("  RTT: no samples")
    total = sum(summary.limited_s.values())
    if total > 0:
        shares = ", ".join(f"{limit} {summary.limited_s[limit] / total:.0%}"
                           for limit in LIMITS if summary.limited_s[limit] > 0)
        lines.append(f"  sender limited by: {shares}")
    if summary.stats:
        stats = summary.stats
        lines.append(
            f"  the connection's counters: retransmitted_segments={stats.get('retransmitted_segments')} "
            f"timeouts={stats.get('timeouts')} tail_loss_probes={stats.get('tail_loss_probes')} "
            f"fast_retransmits={stats.get('fast_retransmits')} spurious_undos={stats.get('spurious_undos')}"
        )
    return "\n".join(lines)
