"""The interface every congestion controller implements, and what they share.

The connection never touches ``cwnd`` itself: it reports sends, ACKs, loss episodes and
timeouts, and reads ``cwnd`` and ``pacing_rate``. Loss *detection* (RACK, the RTO) is the
connection's; the controller only decides how to respond.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Final

from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import RateSample

INFINITE_SSTHRESH: Final = 1 << 62
HYSTART_MIN_RTT_THRESH_S: Final = 0.004
HYSTART_MAX_RTT_THRESH_S: Final = 0.016
HYSTART_MIN_RTT_DIVISOR: Final = 8
HYSTART_RTT_SAMPLES: Final = 8
CSS_GROWTH_DIVISOR: Final = 4
CSS_ROUNDS: Final = 5
RFC6928_SEGMENT_BYTES: Final = 1460
"""RFC 6928's initial window caps 10 segments at 14600 octets: 1460 octets per segment."""


def initial_window_bytes(mss: int, segments: int) -> int:
    """RFC 6928 section 2: min(N*MSS, max(2*MSS, N*1460)) for an initial window of N segments
    (N = 10 gives the RFC's min(10*MSS, max(2*MSS, 14600))): a small MSS does not get ten
    segments' worth of a large one, and a large MSS is capped near 14600 octets."""
    return min(segments * mss, max(2 * mss, segments * RFC6928_SEGMENT_BYTES))


class CongestionControl(ABC):
    """Window (and pacing rate) of one connection; every size is in octets."""

    name: ClassVar[str]
    slow_start_pacing_gain: ClassVar[float] = 2.0
    """Linux's defaults: pace at 200 % of cwnd/SRTT in slow start and 120 % afterwards."""
    avoidance_pacing_gain: ClassVar[float] = 1.2

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        self.mss = mss
        self.cwnd = initial_window_bytes(mss, initial_window_segments)
        self.ssthresh = INFINITE_SSTHRESH
        self._undo_cwnd = self.cwnd
        self._undo_ssthresh = self.ssthresh
        self._round_end = 0
        self._last_round_min_rtt = float("inf")
        self._round_min_rtt = float("inf")
        self._rtt_samples = 0
        self._css_baseline: float | None = None
        self._css_rounds = 0

    def start_window(self, mss: int, initial_window_segments: int) -> None:
        """The handshake settled the segment size: the initial window follows it (RFC 6928),
        before anything is sent."""
        self.mss = mss
        self.cwnd = self._undo_cwnd = initial_window_bytes(mss, initial_window_segments)

    @property
    def in_slow_start(self) -> bool:
        """The window is below the slow-start threshold."""
        return self.cwnd < self.ssthresh

    @property
    def min_cwnd(self) -> int:
        """The floor after a loss: two segments (RFC 5681)."""
        return 2 * self.mss

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

    def _slow_start(self, acked: int, sample: RateSample | None) -> int:
        """Grow by the octets acknowledged, up to ssthresh; return what is left over.

        HyStart++ (RFC 9406) watches the smallest RTT of each round: once it rises by
        min(max(RTT/8, 4 ms), 16 ms), a queue is building, and slow start goes on at a quarter
        of its pace (conservative slow start) for five rounds, then ends, instead of doubling
        until the queue overflows and a whole window is lost.
        """
        if sample is not None:
            self._hystart(sample)
        if self._css_baseline is not None:
            acked_growth = acked // CSS_GROWTH_DIVISOR
            self.cwnd = min(self.cwnd + acked_growth, max(self.ssthresh, self.cwnd))
            return 0
        room = self.ssthresh - self.cwnd
        grow = min(acked, room)
        self.cwnd += grow
        return acked - grow

    def _hystart(self, sample: RateSample) -> None:
        if sample.prior_delivered >= self._round_end:  # a new round begins
            self._round_end = sample.prior_delivered + sample.delivered
            self._last_round_min_rtt = self._round_min_rtt
            self._round_min_rtt = float("inf")
            self._rtt_samples = 0
            if self._css_baseline is not None:
                self._css_rounds += 1
                if self._css_rounds >= CSS_ROUNDS:
                    self.ssthresh = self.cwnd  # on to congestion avoidance
                    self._css_baseline = None
                    return
        if sample.rtt_s > 0.0:
            self._round_min_rtt = min(self._round_min_rtt, sample.rtt_s)
            self._rtt_samples += 1
        if self._rtt_samples < HYSTART_RTT_SAMPLES:
            return
        if self._css_baseline is None:
            last = self._last_round_min_rtt
            if last != float("inf"):
                eta = min(max(last / HYSTART_MIN_RTT_DIVISOR, HYSTART_MIN_RTT_THRESH_S),
                          HYSTART_MAX_RTT_THRESH_S)
                if self._round_min_rtt >= last + eta:
                    self._css_baseline = self._round_min_rtt
                    self._css_rounds = 0
        elif self._round_min_rtt < self._css_baseline:
            self._css_baseline = None  # the rise was a blip: back to slow start

    def _end_slow_start(self) -> None:
        """A loss or timeout ends any conservative slow start."""
        self._css_baseline = None


class LossBasedControl(CongestionControl):
    """What NewReno and CUBIC share: the window holds still in fast recovery, grows by slow
    start (with HyStart++) below ssthresh, and by the algorithm's own rule above it."""

    def on_ack(
        self, now: float, acked: int, pipe: int, rtt: RttEstimator, sample: RateSample | None,
        in_recovery: bool,
    ) -> None:
        if in_recovery:
            return
        if self.in_slow_start:
            acked = self._slow_start(acked, sample)
            if not acked:
                return
        self._avoid_congestion(now, acked, rtt)

    @abstractmethod
    def _avoid_congestion(self, now: float, acked: int, rtt: RttEstimator) -> None:
        """Grow the window above ssthresh for ``acked`` octets newly delivered."""
