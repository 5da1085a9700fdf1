"""Pacing: spread a window's segments over the round trip instead of sending them at once.

A token bucket filled at the controller's pacing rate. Its depth allows a small burst (two
segments, or what the rate sends in ``BURST_S``) because drivers' timers tick in milliseconds:
with a deeper bucket nothing is gained, with a shallower one a fast path is throttled by timer
granularity rather than by the rate.
"""

from __future__ import annotations

from typing import Final

BURST_S: Final = 0.002
MIN_BURST_SEGMENTS: Final = 2
INFINITE_TOKENS: Final = float("inf")
PACING_SLACK_BYTES: Final = 1.0
"""A shortfall of less than an octet is float rounding, not pacing: waiting for it could mean
a release time that the clock cannot tell from now, and a timer that fires for ever."""


class Pacer:
    """Says when the next segment may leave."""

    __slots__ = ("_last_s", "_mss", "_tokens", "rate")

    def __init__(self, mss: int) -> None:
        self._mss = mss
        self.rate: float | None = None
        self._tokens = 0.0
        self._last_s = float("-inf")  # the bucket starts full, whatever the clock's origin

    def set_segment_size(self, mss: int) -> None:
        """The handshake settled the segment size: the burst allowance follows it."""
        self._mss = mss

    def _depth(self, rate: float) -> float:
        return max(MIN_BURST_SEGMENTS * self._mss, rate * BURST_S)

    def tokens(self, now: float) -> float:
        """Octets that may leave at ``now`` (infinite while there is no rate to pace at)."""
        rate = self.rate
        if rate is None:
            return INFINITE_TOKENS
        return min(self._tokens + (now - self._last_s) * rate, self._depth(rate))

    def release_time(self, now: float, size: int) -> float:
        """``now`` if ``size`` octets may be sent now, else when they may."""
        rate = self.rate
        if rate is None:
            return now
        tokens = min(self._tokens + (now - self._last_s) * rate, self._depth(rate))
        if tokens + PACING_SLACK_BYTES >= size:
            return now
        return now + (size - tokens) / rate

    def on_sent(self, now: float, size: int) -> None:
        """Spend tokens for ``size`` octets sent at ``now``."""
        rate = self.rate
        if rate is None:
            return
        tokens = min(self._tokens + (now - self._last_s) * rate, self._depth(rate))
        self._tokens = tokens - size
        self._last_s = now
