"""RTT estimation and the retransmission timeout: RFC 6298 (and RFC 7323 appendix G, Karn).

Unit tests of :class:`RttEstimator` with hand-computed values, then the connection's use of
it: which ACKs may give a sample (Karn's rule without timestamps, TSecr with them).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from peer import ACK, BASIC, ISS, PEER_ISS, SYN, Peer, syn_sent

from udptcp.config import Config
from udptcp.core.rtt import CLOCK_GRANULARITY_S, RTO_AFTER_LOST_SYN_S, RttEstimator

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


def test_rto_is_clamped_up_to_rto_min() -> None:
    """RFC 6298 2.4: a computed RTO below the minimum is rounded up to it."""
    rtt = estimator(rto_min_s=1.0)
    rtt.on_sample(0.01)
    assert rtt.rto_s == 1.0


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


@pytest.mark.parametrize("echo", ["retransmission", "original"])
def test_timestamps_measure_rtt_from_tsecr_even_after_a_retransmission(echo: str) -> None:
    """RFC 7323 4.1: TSecr says which transmission is acknowledged, so Karn's rule is moot."""
    p = opened_with_timestamps(0.1)
    p.conn.send(b"x" * 100)
    first = p.recv_one()
    sent_first = p.now
    p.fire_timer()
    again = p.recv_one()
    sent_again = p.now
    assert first.timestamps is not None and again.timestamps is not None
    assert again.timestamps[0] != first.timestamps[0]
    p.now += 0.05
    tsecr, sent = (
        (again.timestamps[0], sent_again) if echo == "retransmission"
        else (first.timestamps[0], sent_first)
    )
    p.send(ACK, PEER_ISS + 1, ISS + 101, timestamps=(PEER_TSVAL + 1, tsecr))
    sample = p.now - sent
    rtt = p.conn.rtt
    assert rtt.latest_s == pytest.approx(sample, abs=2e-6)  # microsecond clock
    assert rtt.srtt_s == pytest.approx(0.875 * 0.1 + 0.125 * sample, abs=1e-6)
    assert rtt.backoff == 0


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
