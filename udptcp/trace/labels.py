"""The textbook's words for a segment: ``SYN=1, ACK=1, seq=y, ack=x+1``.

Numbers come three ways. ``symbolic`` names them as the textbook does: ``x`` and ``y`` are the
two initial sequence numbers, ``u`` the sequence number of the first FIN segment, ``v`` that
of the other side's first segment acknowledging that FIN and ``w`` that of the other side's
FIN; any other number is written
from the nearest name before it (``x+1381``). As in the textbook, the first FIN's label says
``FIN=1, seq=u`` only (its ACK bit is set, as on every segment after the handshake).
``relative`` counts from 0 at each side's ISN, as Wireshark does; ``absolute`` writes the
32-bit fields as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from udptcp.trace.model import Arrow, Exchange

NUMBERINGS = ("symbolic", "relative", "absolute")
SEQ_SPACE = 1 << 32


@dataclass
class _Landmark:
    name: str
    value: int  # offset from the side's ISN
    since: float  # it names numbers in labels of segments sent from this time on


class Namer:
    """Labels for the arrows of one exchange, in one of ``NUMBERINGS``."""

    def __init__(self, exchange: Exchange, numbering: str = "symbolic") -> None:
        if numbering not in NUMBERINGS:
            raise ValueError(f"numbers must be one of {', '.join(NUMBERINGS)}, got {numbering!r}")
        self.numbering = numbering
        a = exchange.a
        isn_a = a.iss
        isn_b = a.irs if a.irs is not None else (exchange.b.iss if exchange.b is not None else 0)
        self.isn = {"A": isn_a, "B": isn_b}
        self.first_fin: Arrow | None = None
        self.marks: dict[str, list[_Landmark]] = {
            "A": [_Landmark("x", 0, float("-inf"))], "B": [_Landmark("y", 0, float("-inf"))],
        }
        self._find_close(exchange.arrows)

    def _offset(self, side: str, number: int) -> int:
        return (number - self.isn[side]) % SEQ_SPACE

    def _find_close(self, arrows: list[Arrow]) -> None:
        fins = [arrow for arrow in arrows if "FIN" in arrow.segment["flags"]]
        if not fins:
            return
        first = self.first_fin = fins[0]
        closer = first.sender
        other = "B" if closer == "A" else "A"
        u = self._offset(closer, first.segment["seq"])
        self.marks[closer].append(_Landmark("u", u, first.sent))
        fin_acked = u + first.segment["len"] + 1  # the FIN follows the data it carries
        for arrow in arrows:
            seg = arrow.segment
            if arrow.sender == other and arrow.sent >= first.sent and "ACK" in seg["flags"] and (
                self._offset(closer, seg["ack"]) == fin_acked
            ):
                self.marks[other].append(_Landmark("v", self._offset(other, seg["seq"]), arrow.sent))
                break
        other_fin = next((arrow for arrow in fins if arrow.sender == other), None)
        if other_fin is not None:
            self.marks[other].append(_Landmark("w", self._offset(other, other_fin.segment["seq"]),
                                               other_fin.sent))

    def number(self, side: str, value: int, at: float) -> str:
        """``value``, a sequence number of ``side``, written as this namer writes numbers."""
        if self.numbering == "absolute":
            return str(value)
        offset = self._offset(side, value)
        if self.numbering == "relative":
            return str(offset)
        best: _Landmark | None = None
        for mark in self.marks[side]:
            if mark.since <= at and mark.value <= offset and (best is None or mark.value >= best.value):
                best = mark
        assert best is not None  # the ISN's name is always there
        extra = offset - best.value
        return best.name if extra == 0 else f"{best.name}+{extra}"

    def label(self, arrow: Arrow) -> str:
        """The segment's textbook label, with what happened to it."""
        seg: dict[str, Any] = arrow.segment
        flags = seg["flags"].split("|")
        side = arrow.sender
        other = "B" if side == "A" else "A"
        parts = [f"{flag}=1" for flag in ("SYN", "FIN", "RST") if flag in flags]
        first = self.first_fin
        textbook_fin = self.numbering == "symbolic" and first is not None and "FIN" in flags and (
            side == first.sender and seg["seq"] == first.segment["seq"]  # the first FIN, or a copy
        )
        with_ack = "ACK" in flags and not textbook_fin
        if with_ack:
            parts.append("ACK=1")
        at = arrow.sent
        parts.append(f"seq={self.number(side, seg['seq'], at)}")
        if with_ack:
            parts.append(f"ack={self.number(other, seg['ack'], at)}")
        text = ", ".join(parts)
        if "mtu_probe" in seg:
            text = f"MTU probe, {seg['len']:,} bytes"
        elif seg["len"]:
            text += f", {seg['len']:,} bytes"
        if seg.get("sack"):
            text += ", SACK " + " ".join(
                f"{self.number(other, s, at)}-{self.number(other, e, at)}" for s, e in seg["sack"]
            )
        cause = seg.get("retransmission")
        if cause is not None:
            text += f" (retransmission: {cause.replace('_', ' ')})"
        if arrow.lost:
            text += " (lost)"
        return text
