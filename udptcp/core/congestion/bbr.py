"""BBR v1 (Cardwell et al. 2016; draft-cardwell-iccrg-bbr-congestion-control): a model, not a reaction.

BBR estimates the bottleneck bandwidth (the windowed maximum of delivery-rate samples over ten
round trips) and the round-trip propagation time (the windowed minimum RTT over ten seconds),
paces at a gain times the bandwidth and keeps about two bandwidth-delay products in flight.
Random loss does not enter the model, so a lossy path that is not congested keeps its rate;
loss-based controllers read every loss as congestion and collapse on such paths.

The states: STARTUP doubles the rate each round until the bandwidth stops growing; DRAIN
empties the queue STARTUP built; PROBE_BW cycles the pacing gain (1.25, 0.75, then 1 for six
rounds) to probe for more bandwidth and then drain what the probe queued; PROBE_RTT drops to
four segments for 200 ms every ten seconds to measure the propagation time afresh. Loss makes
BBR conserve packets for a round (RFC 6937-like), as Linux's BBR v1 does.

One addition from BBR v2: an upper bound on data in flight (``inflight_hi``), set to 0.7 times
the flight of a round that lost more than 2 % -- but only if that round also saw a queue (even
its smallest RTT a quarter above the minimum). Congestive loss happens at a full queue; random
loss does not raise the RTT, and jitter raises only some RTTs of a round. Without the bound,
BBR v1 keeps two BDPs in flight into a buffer that holds less, and a loss-based flow beside it
(CUBIC) starves; with a plain loss threshold, as in v2, BBR would give up the lossy paths it
is meant for. Losses later proven spurious (reordering) take their bound with them. As in
v2's PROBE_UP, the bound grows back only while BBR probes for bandwidth (pacing gain above 1),
by a step that doubles each round.
Such a round also ends STARTUP, as in v2, rather than three more rounds of overflowing queue.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from typing import Final

from udptcp.core.congestion.base import CongestionControl
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import RateSample

HIGH_GAIN: Final = 2.0 / math.log(2.0)
"""STARTUP's gain: the smallest that doubles the sending rate every round."""
DRAIN_GAIN: Final = 1.0 / HIGH_GAIN
CWND_GAIN: Final = 2.0
# Not Final: mypyc (mypy 2.4) leaves a Final tuple of floats unset in compiled code (NameError).
PROBE_BW_GAINS = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
BW_WINDOW_ROUNDS: Final = 10
MIN_RTT_WINDOW_S: Final = 10.0
PROBE_RTT_DURATION_S: Final = 0.2
FULL_BW_GROWTH: Final = 1.25
FULL_BW_ROUNDS: Final = 3
MIN_CWND_SEGMENTS: Final = 4
QUANTUM_SEGMENTS: Final = 2
"""Extra segments of cwnd beyond the BDP, for ACK aggregation and delayed ACKs."""
LOSS_THRESHOLD: Final = 0.02
"""BBR v2's loss rate per round above which the round counts as lossy."""
QUEUE_MIN_SAMPLES: Final = 8
"""RTT samples a round needs before its smallest says anything about a queue."""
QUEUE_RTT_FACTOR: Final = 1.25
"""A round whose smallest RTT exceeds the minimum by this factor found a standing queue.
The smallest, not the largest: jitter and reordering raise some RTTs of a round, a queue
raises all of them."""
INFLIGHT_BETA: Final = 0.7
EXTRA_ACKED_WINDOW_ROUNDS: Final = 5
"""Rounds over which the ACK-aggregation estimate keeps its maximum (as Linux's BBR)."""
EXTRA_ACKED_MAX_S: Final = 0.1
"""The most ACK aggregation the window allows for: 100 ms at the estimated bandwidth."""
ACK_EPOCH_RESET_BYTES: Final = 1 << 20
"""An aggregation epoch this long (in octets acknowledged) starts over, so it cannot drift."""


class Mode(enum.Enum):
    """BBR's four states."""

    STARTUP = "startup"
    DRAIN = "drain"
    PROBE_BW = "probe_bw"
    PROBE_RTT = "probe_rtt"


class Bbr(CongestionControl):
    """BBR v1, in octets and seconds."""

    name = "bbr"

    def start_window(self, mss: int, initial_window_segments: int) -> None:
        super().start_window(mss, initial_window_segments)
        self._initial_cwnd = self.cwnd

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        super().__init__(mss, initial_window_segments)
        self.mode = Mode.STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN
        self._bw_samples: deque[tuple[int, float]] = deque()  # (round, best rate in that round)
        self.min_rtt_s: float | None = None
        self._min_rtt_at = 0.0
        self._round = 0
        self._next_round_delivered = 0
        self._round_start = False
        self._full_bw = 0.0
        self._full_bw_rounds = 0
        self.filled_pipe = False
        self._cycle_index = 0
        self._cycle_at = 0.0
        self._probe_rtt_done_at: float | None = None
        self._probe_rtt_round_done = False
        self._prior_cwnd = 0
        self._conserving = False
        self._conserve_until = 0
        self._initial_cwnd = self.cwnd
        self.inflight_hi: int | None = None
        self._undo_inflight_hi: int | None = None
        self._hi_step = 1
        self._round_lost = 0
        self._round_delivered = 0
        self._round_min_rtt_s = math.inf
        self._round_rtt_samples = 0
        self._round_max_pipe = 0
        self._extra_acked = [0, 0]
        self._extra_acked_index = 0
        self._extra_acked_rounds = 0
        self._ack_epoch_at = 0.0
        self._ack_epoch_acked = 0

    # -- the model -------------------------------------------------------------------------

    @property
    def btl_bw(self) -> float:
        """Bottleneck bandwidth estimate, octets per second (0.0 before any sample)."""
        return max((bw for _, bw in self._bw_samples), default=0.0)

    def bdp(self, gain: float) -> int:
        """``gain`` times the estimated bandwidth-delay product, in octets."""
        bw = self.btl_bw
        if self.min_rtt_s is None or bw == 0.0:
            return self._initial_cwnd
        return int(gain * bw * self.min_rtt_s) + QUANTUM_SEGMENTS * self.mss

    @property
    def in_slow_start(self) -> bool:
        return self.mode is Mode.STARTUP

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        bw = self.btl_bw
        if bw == 0.0:
            srtt = rtt.srtt_s
            if not srtt:
                return None
            return HIGH_GAIN * self.cwnd / srtt  # no sample yet: as STARTUP would
        return self.pacing_gain * bw

    # -- events ----------------------------------------------------------------------------

    def on_ack(
        self, now: float, acked: int, pipe: int, rtt: RttEstimator, sample: RateSample | None,
        in_recovery: bool,
    ) -> None:
        if sample is None:
            return
        self._round_delivered += acked
        self._round_max_pipe = max(self._round_max_pipe, pipe + acked)
        if sample.rtt_s > 0.0:
            self._round_min_rtt_s = min(self._round_min_rtt_s, sample.rtt_s)
            self._round_rtt_samples += 1
        self._update_round(sample)
        self._update_bw(sample)
        self._update_ack_aggregation(now, acked)
        self._update_cycle(now, pipe)
        self._check_full_bw(sample)
        self._check_drain(now, pipe)
        self._update_min_rtt(now, sample, pipe)
        self._set_cwnd(acked, pipe, sample)

    def _update_round(self, sample: RateSample) -> None:
        self._round_start = False
        if sample.prior_delivered >= self._next_round_delivered:
            self._next_round_delivered = sample.prior_delivered + sample.delivered
            self._round += 1
            self._round_start = True
            if self._conserving and sample.prior_delivered >= self._conserve_until:
                self._conserving = False
            self._end_round()

    def _end_round(self) -> None:
        """Bound the flight after a round of congestive loss; otherwise let the bound grow."""
        lost, total = self._round_lost, self._round_lost + self._round_delivered
        queued = (
            self.min_rtt_s is not None
            and self._round_rtt_samples >= QUEUE_MIN_SAMPLES
            and self._round_min_rtt_s > QUEUE_RTT_FACTOR * self.min_rtt_s
        )
        if total and lost > LOSS_THRESHOLD * total and queued:
            self.inflight_hi = max(int(INFLIGHT_BETA * self._round_max_pipe), MIN_CWND_SEGMENTS * self.mss)
            self._hi_step = 1
            if self.mode is Mode.STARTUP:
                self.filled_pipe = True  # as BBR v2: the queue overflowed, the pipe is full
        elif self.inflight_hi is not None and self.pacing_gain > 1.0:
            self.inflight_hi += self._hi_step * self.mss
            self._hi_step = min(self._hi_step * 2, 1 << 20)
        self._round_lost = self._round_delivered = self._round_max_pipe = 0
        self._round_min_rtt_s = math.inf
        self._round_rtt_samples = 0

    def _update_bw(self, sample: RateSample) -> None:
        rate = sample.rate
        if rate <= 0.0 or (sample.is_app_limited and rate < self.btl_bw):
            return  # an app-limited sample only says the path can do at least this much
        if self.min_rtt_s is not None and sample.interval_s < self.min_rtt_s:
            return  # shorter than a round trip: a burst of ACKs, not the path's rate (as Linux)
        samples = self._bw_samples
        if samples and samples[-1][0] == self._round:
            if rate > samples[-1][1]:
                samples[-1] = (self._round, rate)
        else:
            samples.append((self._round, rate))
        while samples and samples[0][0] <= self._round - BW_WINDOW_ROUNDS:
            samples.popleft()

    def _update_ack_aggregation(self, now: float, acked: int) -> None:
        """Estimate how many octets arrive in ACK bursts beyond what the bandwidth explains.

        Delayed ACKs, jitter and reordering make ACKs come in clumps; a window of only
        2 * bandwidth * min RTT then runs dry between clumps and the bandwidth estimate sinks
        with it. Linux's BBR keeps the largest excess of the last few rounds and adds it to
        the window; so does this.
        """
        if self._round_start:
            self._extra_acked_rounds += 1
            if self._extra_acked_rounds >= EXTRA_ACKED_WINDOW_ROUNDS:
                self._extra_acked_rounds = 0
                self._extra_acked_index ^= 1
                self._extra_acked[self._extra_acked_index] = 0
        expected = self.btl_bw * (now - self._ack_epoch_at)
        if self._ack_epoch_acked <= expected or self._ack_epoch_acked + acked >= ACK_EPOCH_RESET_BYTES:
            self._ack_epoch_acked = 0
            self._ack_epoch_at = now
            expected = 0.0
        self._ack_epoch_acked += acked
        extra = min(int(self._ack_epoch_acked - expected), self.cwnd)
        index = self._extra_acked_index
        self._extra_acked[index] = max(self._extra_acked[index], extra)

    def _aggregation_cwnd(self) -> int:
        """Window for ACK aggregation, once the pipe is known to be full."""
        if not self.filled_pipe:
            return 0
        return min(max(self._extra_acked), int(self.btl_bw * EXTRA_ACKED_MAX_S))

    def _update_cycle(self, now: float, pipe: int) -> None:
        if self.mode is not Mode.PROBE_BW or self.min_rtt_s is None:
            return
        elapsed = now - self._cycle_at > self.min_rtt_s
        gain = self.pacing_gain
        if gain > 1.0:  # probing: stay until the extra is really in flight (or losses say no)
            advance = elapsed and pipe >= self.bdp(gain)
        elif gain < 1.0:  # draining: leave as soon as the queue is gone
            advance = elapsed or pipe <= self.bdp(1.0)
        else:
            advance = elapsed
        if advance:
            self._cycle_index = (self._cycle_index + 1) % len(PROBE_BW_GAINS)
            self._cycle_at = now
            self.pacing_gain = PROBE_BW_GAINS[self._cycle_index]

    def _check_full_bw(self, sample: RateSample) -> None:
        if self.filled_pipe or not self._round_start or sample.is_app_limited:
            return
        bw = self.btl_bw
        if bw >= self._full_bw * FULL_BW_GROWTH:
            self._full_bw = bw
            self._full_bw_rounds = 0
            return
        self._full_bw_rounds += 1
        if self._full_bw_rounds >= FULL_BW_ROUNDS:
            self.filled_pipe = True

    def _check_drain(self, now: float, pipe: int) -> None:
        if self.mode is Mode.STARTUP and self.filled_pipe:
            self.mode = Mode.DRAIN
            self.pacing_gain = DRAIN_GAIN
            self.cwnd_gain = HIGH_GAIN
        if self.mode is Mode.DRAIN and pipe <= self.bdp(1.0):
            self._enter_probe_bw(now)

    def _enter_probe_bw(self, now: float) -> None:
        self.mode = Mode.PROBE_BW
        self.cwnd_gain = CWND_GAIN
        # Start in a random phase other than the draining one, so flows do not probe in step;
        # the core has no randomness of its own, so the clock's microseconds stand in for it.
        phase = int(now * 1_000_000) % (len(PROBE_BW_GAINS) - 1)
        self._cycle_index = phase + 1 if phase >= 1 else 0
        self.pacing_gain = PROBE_BW_GAINS[self._cycle_index]
        self._cycle_at = now

    def _update_min_rtt(self, now: float, sample: RateSample, pipe: int) -> None:
        # Only a measured minimum can go stale (the clock need not start near zero).
        expired = self.min_rtt_s is not None and now - self._min_rtt_at > MIN_RTT_WINDOW_S
        if sample.rtt_s > 0.0 and (self.min_rtt_s is None or sample.rtt_s <= self.min_rtt_s or expired):
            self.min_rtt_s = sample.rtt_s
            self._min_rtt_at = now
        if expired and self.mode is not Mode.PROBE_RTT and self.min_rtt_s is not None:
            self.mode = Mode.PROBE_RTT
            self.pacing_gain = 1.0
            self.cwnd_gain = 1.0
            self._prior_cwnd = max(self._prior_cwnd, self.cwnd)
            self._probe_rtt_done_at = None
        if self.mode is Mode.PROBE_RTT:
            if self._probe_rtt_done_at is None and pipe <= MIN_CWND_SEGMENTS * self.mss:
                self._probe_rtt_done_at = now + PROBE_RTT_DURATION_S
                self._probe_rtt_round_done = False
                self._next_round_delivered = sample.prior_delivered + sample.delivered
            elif self._probe_rtt_done_at is not None:
                if self._round_start:
                    self._probe_rtt_round_done = True
                if self._probe_rtt_round_done and now >= self._probe_rtt_done_at:
                    self._min_rtt_at = now
                    self.cwnd = max(self.cwnd, self._prior_cwnd)
                    if self.filled_pipe:
                        self._enter_probe_bw(now)
                    else:
                        self.mode = Mode.STARTUP
                        self.pacing_gain = self.cwnd_gain = HIGH_GAIN

    def _set_cwnd(self, acked: int, pipe: int, sample: RateSample) -> None:
        target = self.bdp(self.cwnd_gain) + self._aggregation_cwnd()
        cwnd = self.cwnd
        if self._conserving:
            cwnd = max(cwnd, pipe + acked)
        elif self.filled_pipe:
            cwnd = min(cwnd + acked, target)
        elif cwnd < target or sample.prior_delivered + sample.delivered < self._initial_cwnd:
            cwnd += acked
        if self.inflight_hi is not None:
            cwnd = min(cwnd, self.inflight_hi)
        cwnd = max(cwnd, MIN_CWND_SEGMENTS * self.mss)
        if self.mode is Mode.PROBE_RTT:
            cwnd = min(cwnd, MIN_CWND_SEGMENTS * self.mss)
        self.cwnd = cwnd

    def on_loss(self, now: float, lost: int) -> None:
        self._round_lost += lost

    def save_for_undo(self) -> None:
        super().save_for_undo()
        self._undo_inflight_hi = self.inflight_hi

    def undo(self) -> None:
        """The losses were spurious (reordering): lift the bound they set, forget them."""
        super().undo()
        self.inflight_hi = self._undo_inflight_hi
        self._round_lost = 0
        self._conserving = False

    def on_congestion_event(self, now: float, pipe: int, rtt: RttEstimator) -> None:
        """Loss starts a recovery episode: conserve packets for a round, keep the model."""
        self.save_for_undo()
        self._prior_cwnd = self.cwnd
        self.cwnd = max(pipe, MIN_CWND_SEGMENTS * self.mss)
        self._conserving = True
        self._conserve_until = self._next_round_delivered

    def on_recovery_exit(self, now: float) -> None:
        self._conserving = False
        self.cwnd = max(self.cwnd, self._prior_cwnd)

    def on_rto(self, now: float, pipe: int) -> None:
        self.save_for_undo()
        self._prior_cwnd = max(self._prior_cwnd, self.cwnd)
        self.cwnd = self.mss
        self._conserving = False
