"""RTT estimation and the retransmission timeout: RFC 6298 (and RFC 7323 appendix G, Karn).

Unit tests of :class:`RttEstimator` with hand-computed values, then the connection's use of
it: which ACKs may give a sample (Karn's rule without timestamps, TSecr with them).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from peer import ACK, BASIC, ISS, PEER_ISS, SYN, Peer, syn_sent
from sim import Sim

from udptcp.config import Config
from udptcp.core.rtt import CLOCK_GRANULARITY_S, RTO_AFTER_LOST_SYN_S, RttEstimator
from udptcp.netem import Impairment
from udptcp.wire import Segment

G = CLOCK_GRANULARITY_S


def estimator(rto_initial_s: float = 1.0, rto_min_s: float = 0.2, rto_max_s: float = 60.0) -> RttEstimator:
    return RttEstimator(rto_initial_s, rto_min_s, rto_max_s)


# -- RttEstimator ------------------------------------------------------------------------------


def test_before_any_sample_the_rto_is_the_initial_one() -> None:
    rtt = estimator(rto_initial_s=1.0)
    assert rtt.srtt_s is None and rtt.min_rtt_s is None
    assert rtt.rto_s == 1.0


def test_first_sample_sets_srtt_and_half_of_it_as_rttvar() -> None:
    """RFC 6298 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4 * RTTVAR)."""
    rtt = estimator(rto_min_s=0.2)
    rtt.on_sample(0.1)
    assert rtt.srtt_s == pytest.approx(0.1)
    assert rtt.rttvar_s == pytest.approx(0.05)
    assert rtt.rto_s == pytest.approx(0.1 + 4 * 0.05)
    assert rtt.min_rtt_s == pytest.approx(0.1) and rtt.latest_s == pytest.approx(0.1)


def test_rto_min_floors_the_variance_term() -> None:
    """As Linux: the RTO is at least SRTT + rto_min_s (RFC 6298's G raised to rto_min_s), so
    on a path whose RTT is near rto_min_s a repair that takes two round trips is no timeout."""
    rtt = estimator(rto_min_s=0.2)
    rtt.on_sample(0.01)
    assert rtt.rto_s == pytest.approx(0.01 + 0.2)
    for _ in range(50):
        rtt.on_sample(0.15)
    assert rtt.srtt_s is not None
    assert rtt.rto_s == pytest.approx(rtt.srtt_s + 0.2)
    assert rtt.rto_s > 2 * 0.15


def test_clock_granularity_bounds_the_variance_term() -> None:
    """With RTTVAR ~ 0 the RTO is SRTT + G, not SRTT (RFC 6298 2.3)."""
    rtt = estimator(rto_min_s=1e-6)
    for _ in range(200):
        rtt.on_sample(0.01)
    assert 4 * rtt.rttvar_s < G
    assert rtt.rto_s == pytest.approx(0.01 + G)


def test_subsequent_samples_use_alpha_one_eighth_and_beta_one_quarter() -> None:
    """RFC 6298 2.3, in order: RTTVAR from the old SRTT, then SRTT."""
    rtt = estimator(rto_min_s=0.001)
    rtt.on_sample(0.1)
    rtt.on_sample(0.3, flight_segments=3)
    rttvar = 0.75 * 0.05 + 0.25 * abs(0.1 - 0.3)
    srtt = 0.875 * 0.1 + 0.125 * 0.3
    assert rtt.rttvar_s == pytest.approx(rttvar)
    assert rtt.srtt_s == pytest.approx(srtt)
    assert rtt.rto_s == pytest.approx(srtt + 4 * rttvar)
    rtt.on_sample(0.05, flight_segments=1)
    rttvar2 = 0.75 * rttvar + 0.25 * abs(srtt - 0.05)
    srtt2 = 0.875 * srtt + 0.125 * 0.05
    assert rtt.srtt_s == pytest.approx(srtt2)
    assert rtt.rttvar_s == pytest.approx(rttvar2)
    assert rtt.min_rtt_s == pytest.approx(0.05)


def test_per_segment_samples_scale_the_gains_down_for_falling_rtts() -> None:
    """RFC 7323 appendix G: with ~flight/2 samples per round trip, divide alpha and beta."""
    rtt = estimator(rto_min_s=0.001)
    rtt.on_sample(0.3)
    rtt.on_sample(0.1, flight_segments=10)  # 5 samples per RTT expected
    assert rtt.rttvar_s == pytest.approx((1 - 0.25 / 5) * 0.15 + 0.25 / 5 * 0.2)
    assert rtt.srtt_s == pytest.approx((1 - 0.125 / 5) * 0.3 + 0.125 / 5 * 0.1)


def test_rising_rtts_keep_the_full_gains_so_the_rto_follows_a_filling_queue() -> None:
    rtt = estimator(rto_min_s=0.001)
    rtt.on_sample(0.1)
    rtt.on_sample(0.3, flight_segments=400)
    assert rtt.rttvar_s == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert rtt.srtt_s == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)


def test_backoff_doubles_the_rto_and_caps_it_at_rto_max() -> None:
    """RFC 6298 5.5 and 2.5."""
    rtt = estimator(rto_initial_s=1.0, rto_max_s=10.0)
    seen = []
    for _ in range(8):
        rtt.on_timeout()
        seen.append(rtt.rto_s)
    assert seen == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    assert rtt.backoff <= 4  # no unbounded shift count while capped


def test_a_new_sample_ends_the_backoff() -> None:
    rtt = estimator(rto_min_s=0.2)
    rtt.on_sample(0.1)
    base = rtt.rto_s
    rtt.on_timeout()
    rtt.on_timeout()
    assert rtt.rto_s == pytest.approx(4 * base)
    rtt.on_sample(0.1)
    assert rtt.backoff == 0
    assert rtt.rto_s < 2 * base


def test_negative_samples_are_ignored() -> None:
    rtt = estimator()
    rtt.on_sample(0.1)
    rtt.on_sample(-0.5)
    assert rtt.srtt_s == pytest.approx(0.1) and rtt.latest_s == pytest.approx(0.1)


def test_handshake_retransmitted_gives_three_seconds() -> None:
    """RFC 6298 5.7: no sample and a lost SYN: start data transfer with RTO = 3 s."""
    rtt = estimator(rto_initial_s=1.0)
    rtt.on_timeout()
    rtt.on_handshake_retransmitted()
    assert rtt.srtt_s is None
    assert rtt.rto_s == RTO_AFTER_LOST_SYN_S == 3.0


def test_handshake_retransmitted_respects_rto_max_and_existing_samples() -> None:
    capped = estimator(rto_initial_s=1.0, rto_max_s=2.0)
    capped.on_handshake_retransmitted()
    assert capped.rto_s == 2.0
    sampled = estimator(rto_min_s=0.2)
    sampled.on_sample(0.1)
    before = sampled.rto_s
    sampled.on_handshake_retransmitted()
    assert sampled.rto_s == before


@given(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=50), st.integers(0, 12))
def test_rto_always_within_bounds(samples: list[float], timeouts: int) -> None:
    """Whatever the samples and timeouts, rto_min <= RTO <= rto_max and RTTVAR >= 0."""
    rtt = estimator(rto_initial_s=1.0, rto_min_s=0.2, rto_max_s=30.0)
    for i, sample in enumerate(samples):
        rtt.on_sample(sample, flight_segments=i % 7)
        assert 0.2 <= rtt.rto_s <= 30.0
        assert rtt.rttvar_s >= 0.0
    for _ in range(timeouts):
        rtt.on_timeout()
        assert 0.2 <= rtt.rto_s <= 30.0


# -- the connection's samples --------------------------------------------------------------------

KARN = BASIC.replace(mss=100, rto_min_s=0.2, timestamps=False)


def opened_at(config: Config, rtt_s: float) -> Peer:
    """Actively opened, the SYN-ACK taking ``rtt_s``: the first sample is exactly ``rtt_s``."""
    p = syn_sent(config)
    p.now = rtt_s
    p.send(SYN | ACK, PEER_ISS, ISS + 1)
    p.recv_one()
    assert p.conn.rtt.srtt_s == pytest.approx(rtt_s)
    return p


def test_handshake_gives_the_first_sample() -> None:
    p = opened_at(KARN, 0.1)
    assert p.conn.rtt.rttvar_s == pytest.approx(0.05)


def test_lost_syn_starts_data_transfer_with_three_second_rto() -> None:
    """A retransmitted SYN gives no sample (Karn) and RTO = 3 s (RFC 6298 5.7)."""
    p = syn_sent(KARN)
    p.fire_timer()
    assert p.recv_one().flags == SYN
    p.now += 0.05
    p.send(SYN | ACK, PEER_ISS, ISS + 1)
    assert p.conn.rtt.srtt_s is None
    assert p.conn.rtt.rto_s == 3.0
    p.conn.send(b"x" * 100)
    p.recv_one()
    assert p.conn.get_timer() == pytest.approx(p.now + 3.0)


def test_karn_ack_of_retransmitted_segment_gives_no_sample() -> None:
    """Without timestamps an ACK for a retransmission is ambiguous: no sample, backoff kept."""
    p = opened_at(KARN, 0.1)
    rtt = p.conn.rtt
    p.conn.send(b"x" * 100)
    first = p.recv_one()
    p.fire_timer()
    again = p.recv_one()
    assert again.seq == first.seq and again.payload == first.payload
    backed_off = rtt.rto_s
    p.now += 0.05  # looks like a 0.05 s RTT for the retransmission, or RTO+0.05 for the first
    p.send(ACK, PEER_ISS + 1, ISS + 101)
    assert rtt.srtt_s == pytest.approx(0.1)
    assert rtt.rttvar_s == pytest.approx(0.05)
    assert rtt.rto_s == backed_off  # RFC 6298 5: the backed-off RTO stays until a valid sample

    p.conn.send(b"y" * 100)  # new data, sent once: its ACK is a valid sample again
    p.recv_one()
    p.now += 0.08
    p.send(ACK, PEER_ISS + 1, ISS + 201)
    assert rtt.latest_s == pytest.approx(0.08)
    assert rtt.srtt_s == pytest.approx(0.875 * 0.1 + 0.125 * 0.08)
    assert rtt.backoff == 0


def test_ack_of_segment_sent_once_gives_a_sample_without_timestamps() -> None:
    p = opened_at(KARN, 0.1)
    p.conn.send(b"x" * 100)
    p.recv_one()
    p.now += 0.3
    p.send(ACK, PEER_ISS + 1, ISS + 101)
    assert p.conn.rtt.latest_s == pytest.approx(0.3)
    assert p.conn.rtt.srtt_s == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)


TS = BASIC.replace(mss=100, rto_min_s=0.2, timestamps=True)
PEER_TSVAL = 1_000


def opened_with_timestamps(rtt_s: float) -> Peer:
    """Timestamps negotiated; the handshake sample is exactly ``rtt_s``."""
    p = Peer(TS)
    p.conn.connect(0.0)
    syn = p.recv_one()
    assert syn.timestamps is not None
    p.now = rtt_s
    p.send(SYN | ACK, PEER_ISS, ISS + 1, timestamps=(PEER_TSVAL, syn.timestamps[0]))
    p.recv_one()
    assert p.conn.ts_ok
    assert p.conn.rtt.srtt_s == pytest.approx(rtt_s)
    return p


def _retransmitted_once(p: Peer) -> tuple[Segment, float, Segment, float]:
    p.conn.send(b"x" * 100)
    first = p.recv_one()
    sent_first = p.now
    p.fire_timer()
    again = p.recv_one()
    assert first.timestamps is not None and again.timestamps is not None
    assert again.timestamps[0] != first.timestamps[0]
    return first, sent_first, again, p.now


def test_timestamps_measure_rtt_from_tsecr_even_after_a_retransmission() -> None:
    """RFC 7323 4.1: TSecr says which transmission is acknowledged, so Karn's rule is moot."""
    p = opened_with_timestamps(0.1)
    _, _, again, sent_again = _retransmitted_once(p)
    assert again.timestamps is not None
    p.now += 0.05
    p.send(ACK, PEER_ISS + 1, ISS + 101, timestamps=(PEER_TSVAL + 1, again.timestamps[0]))
    rtt = p.conn.rtt
    assert rtt.latest_s == pytest.approx(p.now - sent_again, abs=2e-6)  # microsecond clock
    assert rtt.srtt_s == pytest.approx(0.875 * 0.1 + 0.125 * 0.05, abs=1e-6)
    assert rtt.backoff == 0


def test_timestamp_echo_of_the_original_after_a_retransmission_measures_nothing() -> None:
    """An ACK for retransmitted data that echoes the original's TSval says the original
    arrived, but not when: its own ACK may have been lost and this one answer the copy (a
    duplicate does not update TS.Recent, RFC 7323 5.3). Such a "sample" can be seconds too
    long on a lossy path, so none is taken, and the backed-off RTO stays until a real one."""
    p = opened_with_timestamps(0.1)
    first, _, _, _ = _retransmitted_once(p)
    assert first.timestamps is not None
    backed_off = p.conn.rtt.rto_s
    p.now += 0.05
    p.send(ACK, PEER_ISS + 1, ISS + 101, timestamps=(PEER_TSVAL + 1, first.timestamps[0]))
    rtt = p.conn.rtt
    assert rtt.latest_s == pytest.approx(0.1)  # still the handshake's
    assert rtt.rto_s == backed_off and rtt.backoff == 1
    p.conn.send(b"y" * 100)
    fresh = p.recv_one()
    assert fresh.timestamps is not None
    p.now += 0.02
    p.send(ACK, PEER_ISS + 1, ISS + 201, timestamps=(PEER_TSVAL + 2, fresh.timestamps[0]))
    assert rtt.latest_s == pytest.approx(0.02, abs=2e-6) and rtt.backoff == 0


def test_timestamps_sample_ignores_when_the_ack_arrives_relative_to_send() -> None:
    """An ACK echoing an old TSval (e.g. a delayed ACK) measures from that TSval, not from now."""
    p = opened_with_timestamps(0.1)
    p.conn.send(b"a" * 100)
    a = p.recv_one()
    p.now += 0.2
    p.conn.send(b"b" * 100)
    p.recv_one()
    p.now += 0.05  # one ACK for both, echoing the first segment's TSval (RFC 7323 4.3)
    assert a.timestamps is not None
    p.send(ACK, PEER_ISS + 1, ISS + 201, timestamps=(PEER_TSVAL + 1, a.timestamps[0]))
    assert p.conn.rtt.latest_s == pytest.approx(0.25, abs=2e-6)


@pytest.mark.parametrize("seed", range(4))
def test_heavy_loss_does_not_inflate_the_rtt_estimate(seed: int) -> None:
    """At 20 % loss each way on a 1 ms path, ACKs and their SACK blocks are lost often, so
    segments are reported delivered long after they arrived, and the peer echoes stale
    timestamps while holes are open. Samples taken from those would make SRTT and the RTO
    seconds long, and every timeout a long stall; the estimate must stay near the path's RTT."""
    path = Impairment(delay_s=0.0005, loss=0.2)
    sim = Sim(Config(), up=path, down=path, seed=seed)
    payload = bytes(300_000)
    sim.client.to_send = payload
    sim.connect()
    worst_s = 0.0
    while len(sim.server.received) < len(payload) and sim.now < 120.0:
        sim.run_for(0.05)
        worst_s = max(worst_s, sim.client.conn.rtt.srtt_s or 0.0)
    assert sim.server.received == payload
    assert worst_s < 0.05
