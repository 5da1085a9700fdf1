"""Congestion control in the simulator: fairness, behaviour on lossy paths, BBR's states."""

from __future__ import annotations

import os

import pytest
from dumbbell import Dumbbell, jain_index
from sim import Sim

from udptcp.config import DEFAULT_MSS, Config
from udptcp.core import congestion
from udptcp.core.congestion.bbr import EXTRA_ACKED_MAX_S, QUEUE_MIN_SAMPLES, Bbr, Mode
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import RateSample
from udptcp.netem import Impairment

RATE_BPS = 10e6
RTT_S = 0.02
BDP_BYTES = int(RATE_BPS / 8 * RTT_S)
MB = 1_000_000


def goodput_through_bottleneck(cc: str, loss: float, size: int = 3 * MB, seed: int = 7) -> float:
    """Bits per second of one transfer through a RATE_BPS bottleneck with random loss."""
    up = Impairment(loss=loss, delay_s=RTT_S / 2, rate_bps=RATE_BPS, queue_bytes=max(BDP_BYTES, 30_000))
    down = Impairment(loss=loss, delay_s=RTT_S / 2)
    sim = Sim(Config(congestion_control=cc, msl_s=1.0), up=up, down=down, seed=seed)
    sim.client.to_send = os.urandom(size)
    sim.connect()
    sim.run(lambda: sim.client.established, max_time=30)
    start = sim.now
    sim.run(lambda: len(sim.server.received) >= size, max_time=3000)
    assert bytes(sim.server.received) == sim.client.to_send
    return size * 8 / (sim.now - start)


@pytest.mark.parametrize("cc", ["newreno", "cubic", "bbr"])
def test_clean_bottleneck_is_filled(cc: str) -> None:
    assert goodput_through_bottleneck(cc, 0.0) >= 0.8 * RATE_BPS


@pytest.mark.parametrize("loss", [0.01, 0.05])
def test_bbr_keeps_its_rate_under_random_loss(loss: float) -> None:
    assert goodput_through_bottleneck("bbr", loss) >= 0.8 * RATE_BPS


def test_loss_based_control_collapses_under_random_loss_as_mathis_predicts() -> None:
    cubic = goodput_through_bottleneck("cubic", 0.05, size=MB)
    mathis_bps = 1.22 * DEFAULT_MSS * 8 / (RTT_S * 0.05**0.5)  # about 3 Mbit/s here
    assert cubic < 1.5 * mathis_bps < 0.5 * RATE_BPS


def run_pair(ccs: list[str], duration_s: float = 30.0) -> list[float]:
    """Two flows through one bottleneck, the second starting a second later; their goodput
    over the second half of the run. Both use one segment size: path-MTU probes lost in the
    shared queue can leave two flows with different sizes, a different question."""
    bell = Dumbbell([Config(congestion_control=cc, mss=1380) for cc in ccs], rate_bps=RATE_BPS, rtt_s=RTT_S,
                    queue_bytes=max(BDP_BYTES, 30_000), seed=3)
    payload = bytes(int(RATE_BPS / 8 * duration_s))
    bell.start(0, payload)
    bell.run_until(1.0)
    bell.start(1, payload)
    bell.run_until(duration_s)
    return [bell.goodput_bps(i, duration_s / 2, duration_s) for i in range(len(ccs))]


@pytest.mark.parametrize("cc", ["newreno", "cubic", "bbr"])
def test_two_flows_converge_to_a_fair_share(cc: str) -> None:
    rates = run_pair([cc, cc])
    assert jain_index(rates) >= 0.9, rates
    assert sum(rates) >= 0.8 * RATE_BPS, rates


def test_bbr_beside_cubic_starves_neither() -> None:
    bbr, cubic = run_pair(["bbr", "cubic"])
    assert min(bbr, cubic) >= 0.15 * RATE_BPS, (bbr, cubic)
    assert bbr + cubic >= 0.8 * RATE_BPS


def test_controllers_are_chosen_by_name() -> None:
    assert {name: type(congestion.create(name, 1000, 10)).__name__ for name in congestion.CONTROLLERS} == {
        "newreno": "NewReno", "cubic": "Cubic", "bbr": "Bbr",
    }
    with pytest.raises(ValueError, match="unknown congestion control 'vegas'"):
        congestion.create("vegas", 1000, 10)
    assert congestion.create("cubic", 1000, 10).cwnd == 10_000  # RFC 6928 initial window


def _sample(delivered_total: int, delivered: int, interval_s: float, rtt_s: float) -> RateSample:
    sample = RateSample()
    sample.prior_delivered = delivered_total - delivered
    sample.delivered = delivered
    sample.interval_s = interval_s
    sample.rtt_s = rtt_s
    return sample


def test_bbr_leaves_startup_when_bandwidth_stops_growing_and_drains() -> None:
    bbr = Bbr(1000, 10)
    rtt = RttEstimator(1.0, 0.2, 60.0)
    delivered, now = 0, 0.0
    rates = [1e5, 2e5, 4e5, 8e5, 1e6, 1e6, 1e6, 1e6, 1e6]  # grows, then flat for three rounds
    for rate in rates:
        chunk = int(rate * 0.05)
        delivered += chunk
        now += 0.05
        bbr.on_ack(now, chunk, 200_000, rtt, _sample(delivered, chunk, 0.05, 0.05), False)
    assert bbr.filled_pipe and bbr.mode is Mode.DRAIN  # 200 kB in flight: four BDPs to drain
    assert bbr.btl_bw == pytest.approx(1e6)
    pacing = bbr.pacing_rate(rtt)
    assert pacing is not None and pacing < bbr.btl_bw  # draining the queue STARTUP built
    delivered += 1000
    bbr.on_ack(now + 0.05, 1000, 10_000, rtt, _sample(delivered, 1000, 0.05, 0.05), False)
    assert bbr.mode.value == "probe_bw"  # in flight fell below one BDP (50 kB)
    assert bbr.cwnd <= bbr.bdp(2.0) + bbr.btl_bw * EXTRA_ACKED_MAX_S  # plus ACK aggregation


def test_bbr_probes_rtt_after_ten_seconds_without_a_lower_sample() -> None:
    bbr = Bbr(1000, 10)
    rtt = RttEstimator(1.0, 0.2, 60.0)
    delivered = 0
    for step in range(1, 220):
        delivered += 5_000
        bbr.on_ack(step * 0.05, 5_000, 40_000, rtt, _sample(delivered, 5_000, 0.05, 0.05 + step * 1e-4),
                   False)
        if bbr.mode is Mode.PROBE_RTT:
            break
    assert bbr.mode is Mode.PROBE_RTT and step * 0.05 > 10.0
    assert bbr.cwnd == 4 * 1000  # four segments while the queue empties


def _ack_round(bbr: Bbr, rtt: RttEstimator, now: float, delivered: int, size: int, rtt_s: float,
               lost: int = 0) -> int:
    """One round trip of ACKs, QUEUE_MIN_SAMPLES of them, each for a part of ``size`` octets
    sent in the round before (so each rate sample spans a round); returns delivered after."""
    piece = size // QUEUE_MIN_SAMPLES
    for k in range(QUEUE_MIN_SAMPLES):
        sample = RateSample()
        sample.prior_delivered = delivered - size + k * piece
        sample.delivered = size
        sample.interval_s = 0.05
        sample.rtt_s = rtt_s
        bbr.on_ack(now + k * 0.001, piece, 40_000, rtt, sample, False)
        if k == 0 and lost:  # the first ACK closed the round before; the loss is this one's
            bbr.on_loss(now, lost)
    return delivered + piece * QUEUE_MIN_SAMPLES


def test_bbr_bounds_its_flight_after_congestive_loss_but_not_after_random_loss() -> None:
    """Loss above 2 % in a round with a standing queue (every RTT of the round 1.25x the
    minimum or more) bounds the flight; the same loss at the minimum RTT is random loss, and
    with RTTs only some of which are high (jitter) it is no queue either: neither bounds."""
    for rtts, bounded in (((0.05,), False), ((0.09,), True), ((0.05, 0.09), False)):
        bbr = Bbr(1000, 10)
        rtt = RttEstimator(1.0, 0.2, 60.0)
        delivered = _ack_round(bbr, rtt, 0.05, 8_000, 8_000, 0.05)  # the minimum RTT
        for step in range(2, 6):
            rtt_s = rtts[step % len(rtts)] if len(rtts) == 1 else None
            if rtt_s is None:  # jitter: alternate low and high RTTs inside the round
                bbr.on_loss(step * 0.05, 500)
                for k in range(QUEUE_MIN_SAMPLES):
                    sample = RateSample()
                    sample.prior_delivered = delivered - 8_000 + k * 1_000
                    sample.delivered, sample.interval_s = 8_000, 0.05
                    sample.rtt_s = rtts[k % 2]
                    bbr.on_ack(step * 0.05 + k * 0.001, 1_000, 40_000, rtt, sample, False)
                delivered += 8_000
            else:
                delivered = _ack_round(bbr, rtt, step * 0.05, delivered, 8_000, rtt_s, lost=500)
        assert (bbr.inflight_hi is not None) == bounded, rtts
        if bounded:
            assert bbr.inflight_hi is not None and bbr.cwnd <= bbr.inflight_hi


def test_bbr_startup_does_not_depend_on_where_the_clock_starts() -> None:
    """A driver's clock (time.monotonic) may read thousands of seconds at the first ACK; that
    must not look like a stale minimum RTT and send BBR to PROBE_RTT at once."""
    bbr = Bbr(1000, 10)
    rtt = RttEstimator(1.0, 0.2, 60.0)
    start, delivered = 86_400.0, 0
    for step in range(1, 6):
        chunk = 10_000 * 2**step
        delivered += chunk
        bbr.on_ack(start + step * 0.05, chunk, 2 * chunk, rtt, _sample(delivered, chunk, 0.05, 0.05), False)
        assert bbr.mode is Mode.STARTUP
    assert bbr.cwnd > 10 * 1000



@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_hystart_leaves_slow_start_when_the_rtt_rises(cc: str) -> None:
    """RFC 9406: a round whose smallest RTT is 1/8 above the last one's means a queue is
    building; slow start slows to a quarter, and after five such rounds it ends."""
    control = congestion.create(cc, 1000, 10)
    rtt = RttEstimator(1.0, 0.2, 60.0)
    delivered = 0
    for round_no in range(12):
        rtt_s = 0.1 if round_no < 4 else 0.13  # the queue starts to build in round 4
        round_start = delivered  # this round's packets left after the last round's ACKs
        for _ in range(control.cwnd // 1000):
            delivered += 1000
            sample = _sample(delivered, 1000, rtt_s, rtt_s)
            sample.prior_delivered = round_start
            control.on_ack(round_no * rtt_s, 1000, control.cwnd, rtt, sample, False)
    assert control.ssthresh < 1 << 40  # slow start ended without any loss
    assert control.cwnd < 10 * 1000 * 2**12  # far from twelve doublings


def test_bbr_undoes_the_flight_bound_that_spurious_losses_set() -> None:
    """Reordering makes RACK see losses that DSACK or timestamps later prove spurious; the
    bound they put on BBR's flight goes with them, or jitter would starve the connection."""
    bbr = Bbr(1000, 10)
    rtt = RttEstimator(1.0, 0.2, 60.0)
    delivered, now = 8_000, 0.0
    for _ in range(20):  # establish a bandwidth, a minimum RTT, and rounds
        now += 0.05
        delivered = _ack_round(bbr, rtt, now, delivered, 8_000, 0.05)
    assert bbr.inflight_hi is None
    bbr.on_congestion_event(now, 50_000, rtt)
    for lost in (5_000, 5_000, 0):  # 5 kB "lost" in rounds whose RTTs all look queued
        now += 0.05
        delivered = _ack_round(bbr, rtt, now, delivered, 8_000, 0.2, lost=lost)
    assert bbr.inflight_hi is not None
    bbr.undo()
    assert bbr.inflight_hi is None
