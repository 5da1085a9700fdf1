"""What the handshake settles: ``send_mss`` and the timestamp clock of ``Negotiated``.

``send_mss`` takes the smaller of our MSS and the peer's option (RFC 9293 3.7.1's 536 without
one, floored at ``MIN_MSS``); ``Negotiated.ts_clock`` is microseconds plus a per-connection
offset modulo 2**32 (RFC 7323 5.4), and ``echo_age_s`` turns an echoed TSval back into an age,
across the wrap, refusing an echo of a time that has not come yet.
"""

from __future__ import annotations

import pytest

from udptcp.core.negotiated import DEFAULT_PEER_MSS, MIN_MSS, TS_TICKS_PER_S, Negotiated, send_mss

OUR_MSS_BYTES = 1380
TS_MOD = 1 << 32


# -- send_mss ----------------------------------------------------------------------------------


def test_send_mss_takes_a_smaller_peer_option() -> None:
    assert send_mss(OUR_MSS_BYTES, 1000) == 1000


def test_send_mss_keeps_ours_when_the_peer_announces_more() -> None:
    assert send_mss(OUR_MSS_BYTES, 9000) == OUR_MSS_BYTES


def test_send_mss_without_an_option_is_536() -> None:
    """RFC 9293 3.7.1: no MSS option means the peer accepts 536 octets."""
    assert DEFAULT_PEER_MSS == 536
    assert send_mss(OUR_MSS_BYTES, None) == 536


def test_send_mss_without_an_option_never_exceeds_ours() -> None:
    assert send_mss(300, None) == 300


def test_send_mss_treats_an_option_of_zero_as_absent() -> None:
    assert send_mss(OUR_MSS_BYTES, 0) == DEFAULT_PEER_MSS


def test_send_mss_floors_a_tiny_peer_option() -> None:
    """A peer announcing 1 octet must not make us send one-octet segments."""
    assert send_mss(OUR_MSS_BYTES, 1) == MIN_MSS == 64
    assert send_mss(OUR_MSS_BYTES, MIN_MSS - 1) == MIN_MSS
    assert send_mss(OUR_MSS_BYTES, MIN_MSS + 1) == MIN_MSS + 1


def test_send_mss_floor_does_not_raise_ours() -> None:
    assert send_mss(MIN_MSS, 10) == MIN_MSS


# -- the timestamp clock -------------------------------------------------------------------------


def test_ts_clock_counts_microseconds_from_the_offset() -> None:
    neg = Negotiated(ts_offset=5)
    assert neg.ts_clock(0.0) == 5
    assert neg.ts_clock(1.5) == 1_500_005
    assert neg.ts_clock(2.0) - neg.ts_clock(1.0) == TS_TICKS_PER_S


def test_ts_clock_wraps_modulo_two_to_the_32() -> None:
    neg = Negotiated(ts_offset=TS_MOD - 10)
    assert neg.ts_clock(0.0) == TS_MOD - 10
    assert neg.ts_clock(20e-6) == 10
    assert 0 <= neg.ts_clock(5000.0) < TS_MOD


def test_ts_clock_of_two_connections_differ_by_their_offsets() -> None:
    """RFC 7323 5.4: a per-connection offset, so TSvals do not reveal the host's uptime."""
    now_s = 3.25
    assert Negotiated(ts_offset=7_000).ts_clock(now_s) - Negotiated(ts_offset=0).ts_clock(now_s) == 7_000


def test_echo_age_of_our_own_timestamp() -> None:
    neg = Negotiated(ts_offset=123_456)
    sent = neg.ts_clock(1.0)
    age_s = neg.echo_age_s(sent, 1.25)
    assert age_s == pytest.approx(0.25, abs=2 / TS_TICKS_PER_S)


def test_echo_age_of_a_timestamp_sent_just_now_is_zero() -> None:
    neg = Negotiated(ts_offset=99)
    assert neg.echo_age_s(neg.ts_clock(7.0), 7.0) == 0.0


def test_echo_age_across_the_wrap_of_the_clock() -> None:
    """Sent just before our clock passed 2**32, echoed just after: a small age, not a huge one."""
    neg = Negotiated(ts_offset=TS_MOD - 500)  # the clock wraps 500 us after 0
    sent = neg.ts_clock(0.0001)
    now_s = 0.0021
    assert neg.ts_clock(now_s) < sent  # the raw value went round
    age_s = neg.echo_age_s(sent, now_s)
    assert age_s == pytest.approx(0.002, abs=2 / TS_TICKS_PER_S)


def test_echo_from_the_future_has_no_age() -> None:
    """A TSecr we have not sent yet (a forged or corrupt echo) gives no RTT sample."""
    neg = Negotiated(ts_offset=1_000)
    later = neg.ts_clock(2.0)
    assert neg.echo_age_s(later, 1.0) is None
    assert neg.echo_age_s(neg.ts_clock(1.0) + 1, 1.0) is None


def test_echo_from_the_future_across_the_wrap_has_no_age() -> None:
    neg = Negotiated(ts_offset=TS_MOD - 500)
    future = neg.ts_clock(0.001)  # already wrapped round to a small value
    assert neg.echo_age_s(future, 0.0001) is None
