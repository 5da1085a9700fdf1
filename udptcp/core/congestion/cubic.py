"""CUBIC (RFC 9438): a cubic window curve around the window of the last loss."""

from __future__ import annotations

from typing import Final

from udptcp.core.congestion.base import LossBasedControl
from udptcp.core.rtt import RttEstimator

CUBIC_C: Final = 0.4
"""Segments per second cubed (RFC 9438 4.2)."""
BETA_CUBIC: Final = 0.7
ALPHA_CUBIC: Final = 3.0 * (1.0 - BETA_CUBIC) / (1.0 + BETA_CUBIC)


class Cubic(LossBasedControl):
    """RFC 9438 with fast convergence and the Reno-friendly region; windows in segments."""

    name = "cubic"

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        super().__init__(mss, initial_window_segments)
        self._w_max = 0.0
        self._w_est = 0.0
        self._k = 0.0
        self._epoch_start: float | None = None
        self._growth = 0.0

    def _avoid_congestion(self, now: float, acked: int, rtt: RttEstimator) -> None:
        mss = self.mss
        cwnd = self.cwnd / mss
        if self._epoch_start is None:
            self._epoch_start = now
            if self._w_max <= cwnd:  # no loss yet, or grown past it: the curve starts here
                self._w_max = cwnd
                self._k = 0.0
            else:
                self._k = ((self._w_max - cwnd) / CUBIC_C) ** (1.0 / 3.0)
            self._w_est = cwnd
        srtt = rtt.srtt_s or 0.0
        t = now - self._epoch_start + srtt
        target = CUBIC_C * (t - self._k) ** 3 + self._w_max
        target = min(max(target, cwnd), 1.5 * cwnd)
        self._w_est += ALPHA_CUBIC * (acked / mss) / cwnd
        target = max(target, self._w_est)  # the Reno-friendly region (RFC 9438 4.3)
        self._growth += (target - cwnd) * acked / cwnd  # octets: (target - cwnd) / cwnd per MSS
        whole = int(self._growth)
        self._growth -= whole
        self.cwnd += whole

    def on_congestion_event(self, now: float, pipe: int, rtt: RttEstimator) -> None:
        self.save_for_undo()
        self._end_slow_start()
        cwnd = self.cwnd / self.mss
        if cwnd < self._w_max:  # fast convergence (RFC 9438 4.7)
            self._w_max = cwnd * (1.0 + BETA_CUBIC) / 2.0
        else:
            self._w_max = cwnd
        self.ssthresh = max(int(self.cwnd * BETA_CUBIC), self.min_cwnd)
        self.cwnd = self.ssthresh
        self._epoch_start = None

    def on_rto(self, now: float, pipe: int) -> None:
        self.save_for_undo()
        self._end_slow_start()
        self._w_max = self.cwnd / self.mss
        self.ssthresh = max(int(self.cwnd * BETA_CUBIC), self.min_cwnd)
        self.cwnd = self.mss
        self._epoch_start = None

    def undo(self) -> None:
        super().undo()
        self._epoch_start = None
