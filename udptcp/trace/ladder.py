"""The textbook ladder diagram of a traced connection, drawn with matplotlib.

A on the left, B on the right, time running down; each side's states written beside its line
as it enters them, the application's calls further out, and one slanted arrow per segment
labelled as the textbook labels it (``labels``). A lost segment's arrow stops half way, at a
cross; a retransmission is drawn red and says why it was sent. Many plain data segments and
their ACKs become one band ("1,432 data segments, 2.0 MB"), unless ``expand``; losses and
retransmissions among them stay arrows, drawn over the band. Time is
evenly spaced (every event one step, the textbook's look) or to scale.

The SVG keeps its text as text (``svg.fonttype: none``): searchable, and testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udptcp.trace.labels import Namer
from udptcp.trace.model import Arrow, Exchange

COLLAPSE_MIN_SEGMENTS = 8
"""At least this many plain data segments and ACKs between two states or calls become one band."""
ROW_INCHES = 0.3
WIDTH_INCHES = 10.0
LOST_REACH = 0.55
"""How far across a lost segment's arrow goes before its cross."""
LINE_X = {"A": 0.0, "B": 1.0}
STATE_X = {"A": -0.03, "B": 1.03}
CALL_X = {"A": -0.48, "B": 1.48}
TWO_MSL_X = {"A": -0.22, "B": 1.22}
TIME_WAIT_STATE = "TIME-WAIT"
BEFORE_S = 1e-6
"""The initial state is drawn this much before a side's first event."""


@dataclass
class _Band:
    arrows: list[Arrow]

    @property
    def start(self) -> float:
        return min(arrow.sent for arrow in self.arrows)

    @property
    def end(self) -> float:
        return max(arrow.received if arrow.received is not None else arrow.sent for arrow in self.arrows)

    def describe(self) -> str:
        data = [arrow for arrow in self.arrows if arrow.segment["len"]]
        octets = sum(arrow.segment["len"] for arrow in data)
        acks = len(self.arrows) - len(data)
        return (f"{len(data):,} data segments, {_size(octets)}"
                + (f"; {acks:,} ACK{'s' if acks > 1 else ''}" if acks else ""))


def _size(octets: int) -> str:
    if octets >= 1_000_000:
        return f"{octets / 1e6:.1f} MB"
    if octets >= 1000:
        return f"{octets / 1e3:.1f} kB"
    return f"{octets} bytes"


def _plain(arrow: Arrow) -> bool:
    seg = arrow.segment
    return (seg["flags"] in ("ACK", "ACK|PSH") and "retransmission" not in seg and not arrow.lost
            and "mtu_probe" not in seg and "mtu_probe_ack" not in seg)


def _marks(exchange: Exchange) -> list[tuple[float, str, str, str]]:
    """(time, side, kind, text): states entered and application calls, in time order."""
    marks = []
    for name, side in exchange.sides():
        first_state = next((e for e in side.events if e["type"] == "state"), None)
        if first_state is not None:  # the state it started in, above everything else
            began = min(e["t"] for e in side.events) - BEFORE_S
            marks.append((began, name, "state", str(first_state["old"])))
        listened = next((e["t"] for e in side.events if e["type"] == "app" and e["call"] == "listen"), None)
        for e in side.events:
            if e["type"] == "state":
                # A server's connection is made when the SYN comes, but it listened since listen().
                at = listened if e["new"] == "LISTEN" and listened is not None else e["t"]
                marks.append((at, name, "state", str(e["new"])))
            elif e["type"] == "app":
                marks.append((e["t"], name, "call", f"{e['call']}()"))
    return sorted(marks, key=lambda m: m[0])


def _items(exchange: Exchange, marks: list[tuple[float, str, str, str]], expand: bool) -> list[Arrow | _Band]:
    """Arrows in send order; between two states or calls, the plain data segments and ACKs
    become one band when there are many, and the others (losses, retransmissions, probes,
    control segments) stay arrows, drawn over it."""
    if expand:
        return list(exchange.arrows)
    mark_times = sorted(m[0] for m in marks)
    phases: list[list[Arrow]] = [[]]
    for arrow in exchange.arrows:
        phase = phases[-1]
        if phase and any(phase[-1].sent < t <= arrow.sent for t in mark_times):
            phases.append(phase := [])
        phase.append(arrow)
    items: list[Arrow | _Band] = []
    for phase in phases:
        plain = [arrow for arrow in phase if _plain(arrow)]
        if len(plain) >= COLLAPSE_MIN_SEGMENTS:
            items.append(_Band(plain))
            items.extend(arrow for arrow in phase if not _plain(arrow))
        else:
            items.extend(phase)
    return items


class _Scale:
    """Where each point of the diagram goes down the page: one step per point (in time order,
    ties kept in the order things happen: arrivals, states, calls, departures), or to scale."""

    def __init__(self, points: list[tuple[float, int, Any]], to_scale: bool) -> None:
        self.to_scale = to_scale
        ordered = sorted(points, key=lambda p: (p[0], p[1]))
        self._rank = {key: i for i, (_t, _order, key) in enumerate(ordered)}
        self._time = {key: t for t, _order, key in points}
        self.origin = ordered[0][0] if ordered else 0.0
        span = (ordered[-1][0] - self.origin) if ordered else 1.0
        self.rows = len(ordered) if not to_scale else max(12, min(len(ordered), 60))
        self._per_s = (self.rows / span) if span > 0 else 1.0

    def y(self, key: Any) -> float:
        """The y of the point ``key`` (downwards from 0)."""
        if self.to_scale:
            return -(self._time[key] - self.origin) * self._per_s
        return -float(self._rank[key])

    @property
    def bottom(self) -> float:
        """Below the last point."""
        return min((self.y(key) for key in self._rank), default=0.0) - 1.0


ARRIVAL, CALL, STATE, DEPARTURE = range(4)
"""The order of points that share a time: what arrived, what the application asked, the
state that follows, what leaves."""


def draw(
    exchange: Exchange, output: str | Path, *, numbering: str = "symbolic", expand: bool = False,
    to_scale: bool = False, title: str | None = None,
) -> Path:
    """Draw ``exchange`` into ``output`` (.svg, .png or .pdf, by its suffix); returns the path."""
    import matplotlib  # noqa: PLC0415 - the optional plot extra; only this command needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    namer = Namer(exchange, numbering)
    marks = _marks(exchange)
    items = _items(exchange, marks, expand)
    points: list[tuple[float, int, Any]] = [
        (m[0], STATE if m[2] == "state" else CALL, ("mark", i)) for i, m in enumerate(marks)
    ]
    for item in items:
        if isinstance(item, _Band):
            points += [(item.start, DEPARTURE, ("start", id(item))), (item.end, ARRIVAL, ("end", id(item)))]
            continue
        points.append((item.sent, DEPARTURE, ("sent", id(item))))
        if item.received is not None:
            points.append((item.received, ARRIVAL, ("received", id(item))))
        else:
            points.append((item.sent, DEPARTURE + 1, ("received", id(item))))  # a step below
    scale = _Scale(points, to_scale)
    height = max(4.0, (scale.rows + 4) * ROW_INCHES)
    with plt.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
        fig, ax = plt.subplots(figsize=(WIDTH_INCHES, height))
        bottom = scale.bottom
        for x in LINE_X.values():
            ax.plot([x, x], [1.0, bottom], color="black", linewidth=1.2)
        for name, side in [("A", exchange.a), ("B", exchange.b)]:
            who = "client" if name == "A" else "server"
            where = ""
            if side is not None and side.local:
                where = f"\n{side.local[0]}:{side.local[1]}"
            elif side is None and exchange.a.peer:
                where = f"\n{exchange.a.peer[0]}:{exchange.a.peer[1]} (not traced)"
            ax.text(LINE_X[name], 1.4, f"{name} ({who}){where}", ha="center", va="bottom",
                    fontsize=11, fontweight="bold")
        time_wait_at: dict[str, float] = {}
        for side_name in ("A", "B"):
            for i, (_t, name, kind, text) in enumerate(marks):
                if name != side_name or kind != "state":
                    continue
                y = scale.y(("mark", i))
                ax.text(STATE_X[name], y, text, ha="right" if name == "A" else "left",
                        va="center", fontsize=9, fontweight="bold", color="#1f4e79")
                if text == TIME_WAIT_STATE:
                    time_wait_at[name] = y
                elif text == "CLOSED" and name in time_wait_at:
                    _two_msl(ax, name, time_wait_at.pop(name), y)
        for item in _timeline(items, marks):
            if isinstance(item, int):
                _t, name, _kind, text = marks[item]
                ax.text(CALL_X[name], scale.y(("mark", item)), text, ha="right" if name == "A" else "left",
                        va="center", fontsize=9, style="italic", color="#555555")
            elif isinstance(item, _Band):
                _band(ax, item, scale.y(("start", id(item))), scale.y(("end", id(item))))
            else:
                _arrow(ax, item, namer.label(item), scale.y(("sent", id(item))),
                       scale.y(("received", id(item))))
        if title:
            ax.set_title(title, fontsize=11)
        ax.set_xlim(-0.85, 1.85)
        ax.set_ylim(bottom, 2.2)
        ax.axis("off")
        fig.tight_layout()
        path = Path(output)
        fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
        plt.close(fig)
    return path


def _timeline(items: list[Arrow | _Band], marks: list[tuple[float, str, str, str]]) -> list[Any]:
    """Arrows, bands and application calls merged in time order (the SVG's text order)."""
    merged: list[tuple[float, int, Any]] = [(m[0], 0, i) for i, m in enumerate(marks) if m[2] == "call"]
    for item in items:
        merged.append((item.start if isinstance(item, _Band) else item.sent, 1, item))
    merged.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry[2] for entry in merged]


def _arrow(ax: Any, arrow: Arrow, label: str, y0: float, y1: float) -> None:
    x0 = LINE_X[arrow.sender]
    x1 = LINE_X["B" if arrow.sender == "A" else "A"]
    color = "#c00000" if "retransmission" in arrow.segment else "#222222"
    if arrow.received is None:
        x1 = x0 + (x1 - x0) * LOST_REACH
        ax.plot([x0, x1], [y0, y1], color=color, linewidth=1.0)
        ax.plot([x1], [y1], marker="x", markersize=11, markeredgewidth=2.5, color="#c00000")
    else:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.0,
                                "linestyle": "--" if arrow.estimated else "-"})
    ax.text((x0 + x1) / 2, (y0 + y1) / 2, label, ha="center", va="center", fontsize=8, color=color,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


def _band(ax: Any, band: _Band, y0: float, y1: float) -> None:
    ax.fill_between([0.0, 1.0], [y0, y0], [y1, y1], color="#9bbbd9", alpha=0.5, linewidth=0)
    ax.text(0.5, y0 - 0.4, band.describe(), ha="center", va="top", fontsize=9, fontweight="bold",
            color="#1f4e79", bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"})


def _two_msl(ax: Any, side: str, y0: float, y1: float) -> None:
    x = TWO_MSL_X[side]
    ax.plot([x, x], [y0 - 0.3, y1 + 0.3], color="#1f4e79", linewidth=1.0)
    ax.text(x + (-0.01 if side == "A" else 0.01), (y0 + y1) / 2, "wait 2MSL", rotation=90,
            ha="right" if side == "A" else "left", va="center", fontsize=9, color="#1f4e79")
