"""The interface every congestion controller implements, and what they share.

The connection never touches ``cwnd`` itself: it reports sends, ACKs, loss episodes and
timeouts, and reads ``cwnd`` and ``pacing_rate``. Loss *detection* (RACK, the RTO) is the
connection's; the controller only decides how to respond.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import RateSample

INFINITE_SSTHRESH = 1 << 62


class CongestionControl(ABC):
    """Window (and pacing rate) of one connection; every size is in octets."""

    name: ClassVar[str]
    slow_start_pacing_gain: ClassVar[float] = 2.0
    """Linux's defaults: pace at 200 % of cwnd/SRTT in slow start and 120 % afterwards."""
    avoidance_pacing_gain: ClassVar[float] = 1.2

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        self.mss = mss
        self.cwnd = initial_window_segments * mss
        self.ssthresh = INFINITE_SSTHRESH
        self._undo_cwnd = self.cwnd
        self._undo_ssthresh = self.ssthresh

    @property
    def in_slow_start(self) -> bool:
        """The window is below the slow-start threshold."""
        return self.cwnd < self.ssthresh

    @property
    def min_cwnd(self) -> int:
        """The floor after a loss: two segments (RFC 5681)."""
        return 2 * self.mss

    def on_sent(self, now: float, size: int, pipe: int) -> None:  # noqa: B027 - optional hook
        """A segment of ``size`` octets went out; ``pipe`` includes it."""

    @abstractmethod
    def on_ack(
        self, now: float, acked: int, pipe: int, rtt: RttEstimator, sample: RateSample | None,
        in_recovery: bool,
    ) -> None:
        """``acked`` octets were newly delivered (cumulatively or by SACK)."""

    @abstractmethod
    def on_congestion_event(self, now: float, pipe: int, rtt: RttEstimator) -> None:
        """Loss was detected; called once per recovery episode, at its start."""

    def on_recovery_exit(self, now: float) -> None:  # noqa: B027 - optional hook
        """Everything outstanding at the start of the episode has been acknowledged."""

    @abstractmethod
    def on_rto(self, now: float, pipe: int) -> None:
        """The retransmission timer expired: fall back to the loss window."""

    def on_loss(self, now: float, lost: int) -> None:  # noqa: B027 - optional hook
        """``lost`` octets were judged lost (model-based controllers count them)."""

    def save_for_undo(self) -> None:
        """Remember the window before a reduction, in case the loss proves spurious."""
        self._undo_cwnd = self.cwnd
        self._undo_ssthresh = self.ssthresh

    def undo(self) -> None:
        """The last reduction was for a spurious loss (RFC 4015): restore the window."""
        self.cwnd = max(self.cwnd, self._undo_cwnd)
        self.ssthresh = max(self.ssthresh, self._undo_ssthresh)

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        """Octets per second to pace at, or None (no RTT yet: send as the window allows)."""
        srtt = rtt.srtt_s
        if srtt is None or srtt <= 0.0:
            return None
        gain = self.slow_start_pacing_gain if self.in_slow_start else self.avoidance_pacing_gain
        return gain * self.cwnd / srtt

    def _slow_start(self, acked: int) -> int:
        """Grow by the octets acknowledged, up to ssthresh; return what is left over."""
        room = self.ssthresh - self.cwnd
        grow = min(acked, room)
        self.cwnd += grow
        return acked - grow
