"""A sorted set of disjoint, non-adjacent half-open integer ranges.

The receiver keeps the out-of-order data it holds as one (its SACK blocks), the sender the
ranges the peer has SACKed. Both hold few ranges (one per hole in the sequence space), so a
pair of sorted lists with ``bisect`` is fast and simple (aioquic's ``RangeSet`` is the model).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator


class RangeSet:
    """Ranges ``[start, end)`` kept merged: adding ``[1, 3)`` to ``[3, 5)`` gives ``[1, 5)``."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def __repr__(self) -> str:
        return f"RangeSet({list(self)})"

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``, merging with every range it overlaps or touches."""
        if start >= end:
            return
        starts, ends = self._starts, self._ends
        lo = bisect_left(ends, start)  # first range that ends at or after start
        hi = bisect_right(starts, end)  # ranges from lo up to hi touch [start, end)
        if lo < hi:
            start = min(start, starts[lo])
            end = max(end, ends[hi - 1])
            del starts[lo:hi]
            del ends[lo:hi]
        starts.insert(lo, start)
        ends.insert(lo, end)

    def find(self, value: int) -> tuple[int, int] | None:
        """The range holding ``value``, if any."""
        i = bisect_right(self._starts, value) - 1
        if i >= 0 and value < self._ends[i]:
            return self._starts[i], self._ends[i]
        return None

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` that no range covers, in order."""
        gaps: list[tuple[int, int]] = []
        starts, ends = self._starts, self._ends
        i = bisect_right(ends, start)
        cursor = start
        while cursor < end:
            if i < len(starts) and starts[i] < end:
                if starts[i] > cursor:
                    gaps.append((cursor, starts[i]))
                cursor = max(cursor, ends[i])
                i += 1
            else:
                gaps.append((cursor, end))
                break
        return gaps

    def discard_below(self, value: int) -> None:
        """Forget everything below ``value`` (the cumulative point moved up to it)."""
        starts, ends = self._starts, self._ends
        i = bisect_right(ends, value)
        if i:
            del starts[:i]
            del ends[:i]
        if starts and starts[0] < value:
            starts[0] = value
