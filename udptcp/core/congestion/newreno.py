"""NewReno (RFC 5681, RFC 6582): halve on loss, grow by one segment per round trip."""

from __future__ import annotations

from udptcp.core.congestion.base import LossBasedControl
from udptcp.core.rtt import RttEstimator


class NewReno(LossBasedControl):
    """The classic additive-increase, multiplicative-decrease controller."""

    name = "newreno"

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        super().__init__(mss, initial_window_segments)
        self._acked_in_round = 0

    def _avoid_congestion(self, now: float, acked: int, rtt: RttEstimator) -> None:
        self._acked_in_round += acked
        if self._acked_in_round >= self.cwnd:
            self._acked_in_round -= self.cwnd
            self.cwnd += self.mss

    def on_congestion_event(self, now: float, pipe: int, rtt: RttEstimator) -> None:
        self.save_for_undo()
        self._end_slow_start()
        self.ssthresh = max(pipe // 2, self.min_cwnd)
        self.cwnd = self.ssthresh
        self._acked_in_round = 0

    def on_rto(self, now: float, pipe: int) -> None:
        self.save_for_undo()
        self._end_slow_start()
        self.ssthresh = max(pipe // 2, self.min_cwnd)
        self.cwnd = self.mss
        self._acked_in_round = 0
