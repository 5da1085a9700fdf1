"""``Pacer`` on its own: a token bucket filled at ``rate`` octets per second, ``depth`` deep.

No rate never delays; a full bucket lets a burst of its depth (two segments, or what the rate
sends in ``BURST_S``) leave at once, after which each segment waits size/rate; tokens refill
with time and stop at the depth; a new rate takes effect on the next question. Times are
passed by hand, starting well after 0.0 so that the bucket is full when a test begins.
"""

from __future__ import annotations

import pytest

from udptcp.core.pacing import BURST_S, MIN_BURST_SEGMENTS, Pacer

MSS_BYTES = 1000
SLOW_RATE_BPS = 100_000.0
"""Octets per second slow enough that the bucket's depth is ``MIN_BURST_SEGMENTS`` segments."""
FAST_RATE_BPS = 10_000_000.0
"""Octets per second fast enough that the depth is what the rate sends in ``BURST_S``."""
START_S = 100.0
"""The first ``now`` of each test: long after the pacer's origin, so the bucket starts full."""


def paced(rate_bps: float | None) -> Pacer:
    pacer = Pacer(MSS_BYTES)
    pacer.rate = rate_bps
    return pacer


def send_burst(pacer: Pacer, now: float, size: int) -> int:
    """Send ``size``-octet segments at ``now`` while the pacer allows; how many went."""
    sent = 0
    while pacer.release_time(now, size) == now:
        pacer.on_sent(now, size)
        sent += 1
        assert sent < 10_000, "the pacer never said wait"
    return sent


def test_no_rate_never_delays() -> None:
    pacer = paced(None)
    for _ in range(100):
        assert pacer.release_time(START_S, MSS_BYTES) == START_S
        pacer.on_sent(START_S, MSS_BYTES)


def test_slow_rate_bursts_two_segments_then_spaces_by_size_over_rate() -> None:
    pacer = paced(SLOW_RATE_BPS)
    assert SLOW_RATE_BPS * BURST_S < MIN_BURST_SEGMENTS * MSS_BYTES  # the floor applies
    assert send_burst(pacer, START_S, MSS_BYTES) == MIN_BURST_SEGMENTS
    release = pacer.release_time(START_S, MSS_BYTES)
    assert release == pytest.approx(START_S + MSS_BYTES / SLOW_RATE_BPS)


def test_fast_rate_bursts_what_the_rate_sends_in_burst_time() -> None:
    pacer = paced(FAST_RATE_BPS)
    depth_bytes = FAST_RATE_BPS * BURST_S
    assert depth_bytes > MIN_BURST_SEGMENTS * MSS_BYTES
    assert send_burst(pacer, START_S, MSS_BYTES) == int(depth_bytes // MSS_BYTES)
    assert pacer.release_time(START_S, MSS_BYTES) == pytest.approx(
        START_S + MSS_BYTES / FAST_RATE_BPS
    )


def test_release_time_counts_only_the_tokens_missing() -> None:
    pacer = paced(SLOW_RATE_BPS)
    pacer.on_sent(START_S, 1500)  # 2000 tokens at first: 500 left
    assert pacer.release_time(START_S, 400) == START_S
    assert pacer.release_time(START_S, 1000) == pytest.approx(START_S + 500 / SLOW_RATE_BPS)


def test_segment_sent_at_its_release_time_then_next_waits_a_full_interval() -> None:
    pacer = paced(SLOW_RATE_BPS)
    now = START_S
    send_burst(pacer, now, MSS_BYTES)
    gap_s = MSS_BYTES / SLOW_RATE_BPS
    for _ in range(5):
        release = pacer.release_time(now, MSS_BYTES)
        assert release == pytest.approx(now + gap_s)
        assert pacer.release_time(release, MSS_BYTES) == release
        pacer.on_sent(release, MSS_BYTES)
        now = release


def test_tokens_refill_with_time() -> None:
    pacer = paced(SLOW_RATE_BPS)
    send_burst(pacer, START_S, MSS_BYTES)
    half_s = MSS_BYTES / SLOW_RATE_BPS / 2
    assert pacer.release_time(START_S + half_s, MSS_BYTES) > START_S + half_s
    later = START_S + 2 * half_s
    assert pacer.release_time(later, MSS_BYTES) == later


def test_tokens_cap_at_the_depth_after_a_long_idle() -> None:
    pacer = paced(SLOW_RATE_BPS)
    send_burst(pacer, START_S, MSS_BYTES)
    idle_until = START_S + 3600.0
    assert send_burst(pacer, idle_until, MSS_BYTES) == MIN_BURST_SEGMENTS


def test_segment_larger_than_the_tokens_left_waits_for_the_difference() -> None:
    pacer = paced(FAST_RATE_BPS)
    pacer.on_sent(START_S, 19_000)  # depth 20000: 1000 left
    assert pacer.release_time(START_S, 1000) == START_S
    assert pacer.release_time(START_S, 1500) == pytest.approx(START_S + 500 / FAST_RATE_BPS)


def test_rate_change_sets_the_next_interval() -> None:
    pacer = paced(SLOW_RATE_BPS)
    send_burst(pacer, START_S, MSS_BYTES)
    pacer.rate = 2 * SLOW_RATE_BPS
    assert pacer.release_time(START_S, MSS_BYTES) == pytest.approx(
        START_S + MSS_BYTES / (2 * SLOW_RATE_BPS)
    )


def test_rate_lowered_shrinks_the_bucket_to_the_new_depth() -> None:
    pacer = paced(FAST_RATE_BPS)
    pacer.on_sent(START_S, 1)  # remembers START_S with a full bucket (20000 tokens)
    pacer.rate = SLOW_RATE_BPS
    assert send_burst(pacer, START_S, MSS_BYTES) == MIN_BURST_SEGMENTS


def test_rate_removed_stops_pacing_and_restored_later_starts_full() -> None:
    pacer = paced(SLOW_RATE_BPS)
    send_burst(pacer, START_S, MSS_BYTES)
    pacer.rate = None
    assert pacer.release_time(START_S, MSS_BYTES) == START_S
    pacer.rate = SLOW_RATE_BPS
    assert send_burst(pacer, START_S + 1.0, MSS_BYTES) == MIN_BURST_SEGMENTS


def test_segments_sent_while_unpaced_spend_no_tokens() -> None:
    pacer = paced(SLOW_RATE_BPS)
    send_burst(pacer, START_S, MSS_BYTES)  # the bucket is empty at START_S
    pacer.rate = None
    half_gap_s = MSS_BYTES / SLOW_RATE_BPS / 2
    pacer.on_sent(START_S + half_gap_s, MSS_BYTES)
    pacer.rate = SLOW_RATE_BPS
    # Half a segment's tokens came in since START_S, and the unpaced send took none of them.
    assert pacer.release_time(START_S + half_gap_s, MSS_BYTES) == pytest.approx(
        START_S + 2 * half_gap_s
    )


def test_fresh_pacer_allows_a_burst_whatever_the_clock_origin() -> None:
    pacer = paced(SLOW_RATE_BPS)
    assert send_burst(pacer, 0.0, MSS_BYTES) == MIN_BURST_SEGMENTS
