"""Both ends of one connection, from their traces: which segment arrived when, which was lost.

A segment sent by one side is matched with the same segment received by the other (same
flags, numbers, length and checksum); one never received is lost.
Both processes stamp their events with ``time.monotonic``, which one machine shares, so the
two traces merge on one time line. The connections of two trace files pair up by their
initial sequence numbers: each side's ISN is the other's IRS.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from udptcp.trace.schema import TraceError, read_events


@dataclass
class Side:
    """One end's view: its events in time order, and the numbers that name the connection."""

    cid: str
    role: str
    iss: int
    events: list[dict[str, Any]]
    source: str
    irs: int | None = None
    local: list[Any] = field(default_factory=list)
    peer: list[Any] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Events of one type, in order."""
        return [e for e in self.events if e["type"] == kind]


@dataclass
class Arrow:
    """One segment on its way: sent by ``sender`` ("A" or "B") at ``sent``, received at
    ``received`` (None: lost; for a side without a trace, its time is estimated)."""

    sender: str
    segment: dict[str, Any]
    sent: float
    received: float | None
    estimated: bool = False

    @property
    def lost(self) -> bool:
        """Sent and never received by the other side."""
        return self.received is None


@dataclass
class Exchange:
    """A connection between A (the client, drawn left) and B (the server, right)."""

    a: Side
    b: Side | None
    arrows: list[Arrow]

    def sides(self) -> list[tuple[str, Side]]:
        """("A", side) and ("B", side), those that were traced."""
        return [("A", self.a)] + ([("B", self.b)] if self.b is not None else [])


def load_sides(paths: Sequence[str | Path]) -> list[Side]:
    """Every connection found in the trace files, one Side each."""
    sides: list[Side] = []
    for path in paths:
        by_cid: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in read_events(path):
            by_cid[event["cid"]].append(event)
        for cid, events in by_cid.items():
            header = next((e for e in events if e["type"] == "connection"), None)
            if header is None:
                raise TraceError(f"{path}: connection {cid} has no 'connection' event (the trace "
                                 "was cut at its start, or rotated: pass PATH, and keep PATH.1)")
            events.sort(key=lambda e: e["t"])
            side = Side(cid, str(header.get("role")), int(header["iss"]), events, str(path),
                        local=list(header.get("local") or []), peer=list(header.get("peer") or []))
            syn = next((e for e in events if e["type"] == "segment" and e.get("dir") == "received"
                        and "SYN" in e.get("flags", "")), None)
            side.irs = None if syn is None else int(syn["seq"])
            sides.append(side)
    return sides


def pair(sides: list[Side]) -> list[Exchange]:
    """Connections matched end to end (by ISNs); a connection whose peer was not traced alone."""
    exchanges = []
    used: set[int] = set()
    for i, side in enumerate(sides):
        if i in used:
            continue
        used.add(i)
        match = None
        for j in range(i + 1, len(sides)):
            other = sides[j]
            if j not in used and other.irs == side.iss and side.irs == other.iss:
                match = other
                used.add(j)
                break
        a, b = side, match
        if b is not None and a.role == "server":
            a, b = b, a
        exchanges.append(build(a, b))
    return exchanges


def _key(segment: dict[str, Any]) -> tuple[Any, ...]:
    return (segment["flags"], segment["seq"], segment["ack"], segment["len"], segment.get("crc"))


def build(a: Side, b: Side | None) -> Exchange:
    """The arrows between ``a`` and ``b`` (or, with one trace, between ``a`` and its peer)."""
    arrows: list[Arrow] = []
    if b is None:
        half_rtt = _half_rtt(a)
        for e in a.of_type("segment"):
            if "malformed" in e:
                continue
            if e["dir"] == "sent":
                arrows.append(Arrow("A", e, e["t"], e["t"] + half_rtt, estimated=True))
            else:
                arrows.append(Arrow("B", e, e["t"] - half_rtt, e["t"], estimated=True))
        return Exchange(a, None, sorted(arrows, key=lambda arrow: arrow.sent))
    for name, sender, receiver in (("A", a, b), ("B", b, a)):
        copies: dict[tuple[Any, ...], list[Arrow]] = defaultdict(list)
        for e in sender.of_type("segment"):
            if e["dir"] == "sent":
                arrow = Arrow(name, e, e["t"], None)
                copies[_key(e)].append(arrow)
                arrows.append(arrow)
        for e in receiver.of_type("segment"):
            if e["dir"] == "received" and "malformed" not in e:
                _match(copies.get(_key(e), []), e["t"])
    return Exchange(a, b, sorted(arrows, key=lambda arrow: arrow.sent))


def _match(copies: list[Arrow], received: float) -> None:
    """A segment arrived at ``received``: it is the latest copy of it sent before then that is
    not yet accounted for (identical copies, a retransmission without timestamps, cannot be
    told apart; the latest is the one a lost first copy leaves)."""
    candidates = [arrow for arrow in copies if arrow.received is None]
    if not candidates:
        return
    before = [arrow for arrow in candidates if arrow.sent <= received]
    chosen = before[-1] if before else candidates[0]
    chosen.received = received


def _half_rtt(side: Side) -> float:
    samples = [e["min_rtt_s"] for e in side.of_type("rtt") if e.get("min_rtt_s")]
    return min(samples) / 2.0 if samples else 0.0005


def load(paths: Sequence[str | Path]) -> list[Exchange]:
    """The connections in these trace files, paired end to end where both ends are there."""
    return pair(load_sides(paths))
