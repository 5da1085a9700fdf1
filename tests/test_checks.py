"""The acceptance checks of segment arrival (``udptcp.core.checks``), each called on its own.

``in_window`` (RFC 9293 3.10.7.4's four cases), ``paws_ok`` (RFC 7323 5.3 and 5.5),
``split_sack`` (which block is a DSACK, RFC 2883 4), ``rtt_sample`` (Karn's rule and the
smaller of two clocks), ``may_reopen`` (RFC 6191), ``reset_for_unknown`` (RFC 9293 3.10.7.1)
and the per-second limit of ``ChallengeAcks`` (RFC 5961 7).
"""

from __future__ import annotations

import pytest

from udptcp.core.checks import (
    CHALLENGE_ACKS_PER_S,
    OUT_OF_WINDOW_ACK_INTERVAL_S,
    PAWS_IDLE_S,
    TS_TICK_S,
    ChallengeAcks,
    in_window,
    may_reopen,
    paws_ok,
    reset_for_unknown,
    rtt_sample,
    split_sack,
)
from udptcp.core.negotiated import Negotiated
from udptcp.core.receiver import Receiver
from udptcp.core.sender import AckOutcome, SentSegment
from udptcp.core.stats import ConnectionStats
from udptcp.core.timers import Timers
from udptcp.wire import ACK, FIN, PSH, RST, SYN, decode_datagram, encode_datagram

MSS_BYTES = 1000
WINDOW_BYTES = 10_000
IRS = 5000
RCV_NXT = IRS + 1
SEQ_MOD = 1 << 32


def receiver(window_bytes: int = WINDOW_BYTES) -> Receiver:
    """A receiver past the peer's SYN (RCV.NXT = IRS + 1) advertising ``window_bytes``."""
    rx = Receiver(WINDOW_BYTES, MSS_BYTES, Timers())
    rx.start(IRS)
    rx.adv_right = rx.rcv_nxt + window_bytes
    return rx


# -- in_window ----------------------------------------------------------------------------------


def test_empty_segment_with_zero_window_is_acceptable_only_at_rcv_nxt() -> None:
    rx = receiver(window_bytes=0)
    assert rx.window == 0
    assert in_window(rx, ACK, RCV_NXT, 0)
    assert not in_window(rx, ACK, RCV_NXT + 1, 0)
    assert not in_window(rx, ACK, RCV_NXT - 1, 0)


def test_empty_segment_with_open_window_is_acceptable_anywhere_inside_it() -> None:
    rx = receiver()
    assert in_window(rx, ACK, RCV_NXT, 0)
    assert in_window(rx, ACK, RCV_NXT + WINDOW_BYTES - 1, 0)
    assert not in_window(rx, ACK, RCV_NXT + WINDOW_BYTES, 0)
    assert not in_window(rx, ACK, RCV_NXT - 1, 0)


def test_data_with_zero_window_is_never_acceptable() -> None:
    rx = receiver(window_bytes=0)
    assert not in_window(rx, ACK, RCV_NXT, 1)
    assert not in_window(rx, ACK | PSH, RCV_NXT, MSS_BYTES)


def test_data_with_open_window_is_acceptable_if_its_first_octet_is_inside() -> None:
    rx = receiver()
    assert in_window(rx, ACK, RCV_NXT, MSS_BYTES)
    assert in_window(rx, ACK, RCV_NXT + WINDOW_BYTES - 1, MSS_BYTES)  # runs past the right edge
    assert not in_window(rx, ACK, RCV_NXT + WINDOW_BYTES, MSS_BYTES)


def test_data_with_open_window_is_acceptable_if_its_last_octet_is_inside() -> None:
    """A retransmission overlapping RCV.NXT carries new octets: it must get through."""
    rx = receiver()
    assert in_window(rx, ACK, RCV_NXT - MSS_BYTES + 1, MSS_BYTES)  # last octet at RCV.NXT
    assert not in_window(rx, ACK, RCV_NXT - MSS_BYTES, MSS_BYTES)  # an old duplicate


def test_bare_fin_at_rcv_nxt_is_acceptable_with_a_zero_window() -> None:
    """A FIN needs no buffer space: the peer can close although we advertise nothing."""
    rx = receiver(window_bytes=0)
    assert in_window(rx, ACK | FIN, RCV_NXT, 0)
    assert not in_window(rx, ACK | FIN, RCV_NXT + 1, 0)
    assert not in_window(rx, ACK | FIN, RCV_NXT, 1)  # with data it waits for the window


def test_fin_counts_in_the_segment_length() -> None:
    """Data ending just before RCV.NXT is an old duplicate, but with a FIN after it the segment
    reaches RCV.NXT (the FIN is new); a bare FIN just before RCV.NXT is old."""
    rx = receiver()
    assert not in_window(rx, ACK | FIN, RCV_NXT - 1, 0)
    assert in_window(rx, ACK | FIN, RCV_NXT - 10, 10)
    assert not in_window(rx, ACK, RCV_NXT - 10, 10)


def test_syn_counts_in_the_segment_length() -> None:
    rx = receiver()
    assert in_window(rx, SYN | ACK, RCV_NXT - 10, 10)
    assert not in_window(rx, ACK, RCV_NXT - 10, 10)


# -- paws_ok ------------------------------------------------------------------------------------

TS_RECENT = 1_000_000
HEARD_AT_S = 50.0


def receiver_with_ts_recent(recent: int = TS_RECENT) -> Receiver:
    rx = receiver()
    rx.ts_recent = recent
    rx.ts_recent_at = HEARD_AT_S
    return rx


def test_paws_lets_anything_through_before_a_timestamp_is_known() -> None:
    rx = receiver()
    assert rx.ts_recent is None
    assert paws_ok(rx, 0, HEARD_AT_S)


def test_paws_rejects_a_timestamp_older_than_ts_recent() -> None:
    rx = receiver_with_ts_recent()
    assert not paws_ok(rx, TS_RECENT - 1, HEARD_AT_S + 1.0)
    assert rx.ts_recent == TS_RECENT


def test_paws_accepts_an_equal_or_newer_timestamp() -> None:
    rx = receiver_with_ts_recent()
    assert paws_ok(rx, TS_RECENT, HEARD_AT_S + 1.0)
    assert paws_ok(rx, TS_RECENT + 1, HEARD_AT_S + 1.0)


def test_paws_compares_timestamps_modulo_two_to_the_32() -> None:
    """The peer's clock passed 2**32: a small TSval is newer than one just below the wrap."""
    rx = receiver_with_ts_recent(SEQ_MOD - 10)
    assert paws_ok(rx, 5, HEARD_AT_S + 1.0)
    rx = receiver_with_ts_recent(5)
    assert not paws_ok(rx, SEQ_MOD - 10, HEARD_AT_S + 1.0)


def test_paws_rejects_an_old_timestamp_until_ts_recent_is_idle_too_long() -> None:
    rx = receiver_with_ts_recent()
    assert not paws_ok(rx, TS_RECENT - 1, HEARD_AT_S + PAWS_IDLE_S)
    assert rx.ts_recent == TS_RECENT


def test_paws_forgets_ts_recent_after_paws_idle_s() -> None:
    """RFC 7323 5.5: after a long idle time the peer's clock may have wrapped: let it through."""
    rx = receiver_with_ts_recent()
    assert paws_ok(rx, TS_RECENT - 1, HEARD_AT_S + PAWS_IDLE_S + 1.0)
    assert rx.ts_recent is None
    assert paws_ok(rx, 0, HEARD_AT_S + PAWS_IDLE_S + 2.0)


# -- split_sack ---------------------------------------------------------------------------------

UNA = 100_000


def test_split_sack_keeps_plain_blocks_and_finds_no_dsack() -> None:
    raw = ((UNA + 1000, UNA + 2000), (UNA + 3000, UNA + 4000))
    blocks, dsack = split_sack(raw, UNA, UNA)
    assert blocks == [(UNA + 1000, UNA + 2000), (UNA + 3000, UNA + 4000)]
    assert dsack is None


def test_split_sack_first_block_below_the_cumulative_ack_is_a_dsack() -> None:
    raw = ((UNA - 1000, UNA), (UNA + 1000, UNA + 2000))
    blocks, dsack = split_sack(raw, UNA, UNA)
    assert dsack == (UNA - 1000, UNA)
    assert blocks == [(UNA + 1000, UNA + 2000)]


def test_split_sack_dsack_below_an_ack_that_moves_snd_una() -> None:
    """The block lies above the old SND.UNA but at or below this ACK: a duplicate."""
    ack = UNA + 2000
    blocks, dsack = split_sack(((UNA + 1000, UNA + 2000),), UNA, ack)
    assert dsack == (UNA + 1000, UNA + 2000)
    assert blocks == []


def test_split_sack_first_block_inside_the_second_is_a_dsack() -> None:
    """RFC 2883 4.2: a duplicate of out-of-order data is reported within its SACK block."""
    raw = ((UNA + 2500, UNA + 3000), (UNA + 2000, UNA + 4000), (UNA + 6000, UNA + 7000))
    blocks, dsack = split_sack(raw, UNA, UNA)
    assert dsack == (UNA + 2500, UNA + 3000)
    assert blocks == [(UNA + 2000, UNA + 4000), (UNA + 6000, UNA + 7000)]


def test_split_sack_dsack_may_share_an_edge_with_the_second_block() -> None:
    for dup in ((UNA + 2000, UNA + 2500), (UNA + 3500, UNA + 4000), (UNA + 2000, UNA + 4000)):
        blocks, dsack = split_sack((dup, (UNA + 2000, UNA + 4000)), UNA, UNA)
        assert dsack == dup
        assert blocks == [(UNA + 2000, UNA + 4000)]


def test_split_sack_first_block_overlapping_the_second_is_not_a_dsack() -> None:
    raw = ((UNA + 1500, UNA + 2500), (UNA + 2000, UNA + 4000))
    blocks, dsack = split_sack(raw, UNA, UNA)
    assert dsack is None
    assert blocks == [(UNA + 1500, UNA + 2500), (UNA + 2000, UNA + 4000)]


def test_split_sack_unwraps_blocks_across_two_to_the_32() -> None:
    una = SEQ_MOD - 500
    raw = ((SEQ_MOD - 100, 200), (1000, 2000))  # the first spans the wrap
    blocks, dsack = split_sack(raw, una, una)
    assert dsack is None
    assert blocks == [(SEQ_MOD - 100, SEQ_MOD + 200), (SEQ_MOD + 1000, SEQ_MOD + 2000)]


def test_split_sack_unwraps_near_an_una_many_wraps_along() -> None:
    una = 5 * SEQ_MOD + 100
    blocks, dsack = split_sack(((50, 100), (300, 400)), una, una)
    assert dsack == (5 * SEQ_MOD + 50, 5 * SEQ_MOD + 100)
    assert blocks == [(5 * SEQ_MOD + 300, 5 * SEQ_MOD + 400)]


# -- rtt_sample ---------------------------------------------------------------------------------

NOW_S = 10.0


def outcome(
    *, acked: int = MSS_BYTES, rtt_sent_at: float | None = None, latest_sent_at: float | None = None,
) -> AckOutcome:
    out = AckOutcome()
    out.acked = acked
    out.rtt_sent_at = rtt_sent_at
    if latest_sent_at is not None:
        rec = SentSegment(UNA, UNA + MSS_BYTES, latest_sent_at)
        rec.retransmitted = rtt_sent_at is None
        out.latest = rec
    return out


def test_rtt_sample_from_the_send_time_without_timestamps() -> None:
    out = outcome(rtt_sent_at=NOW_S - 0.3, latest_sent_at=NOW_S - 0.3)
    assert rtt_sample(out, None, NOW_S) == pytest.approx(0.3)


def test_rtt_sample_takes_the_echo_when_it_is_smaller() -> None:
    """The segment's ACK was lost and a later one delivered it: the echo is the true RTT."""
    out = outcome(rtt_sent_at=NOW_S - 0.3, latest_sent_at=NOW_S - 0.3)
    assert rtt_sample(out, 0.1, NOW_S) == pytest.approx(0.1)


def test_rtt_sample_takes_the_send_time_when_the_echo_is_older() -> None:
    """A hole makes the peer echo an old TSval: the send time is the better bound then."""
    out = outcome(rtt_sent_at=NOW_S - 0.3, latest_sent_at=NOW_S - 0.3)
    assert rtt_sample(out, 0.8, NOW_S) == pytest.approx(0.3)


def test_karn_no_sample_for_a_retransmitted_only_ack_without_timestamps() -> None:
    out = outcome(rtt_sent_at=None, latest_sent_at=NOW_S - 0.05)
    assert rtt_sample(out, None, NOW_S) is None


def test_karn_echo_of_the_retransmission_itself_gives_a_sample() -> None:
    out = outcome(rtt_sent_at=None, latest_sent_at=NOW_S - 0.2)
    assert rtt_sample(out, 0.05, NOW_S) == pytest.approx(0.05)


def test_karn_echo_exactly_at_the_retransmission_survives_clock_rounding() -> None:
    """The echo is in microseconds: one taken at the retransmission's own send time may round
    to a hair before it, and still counts (``TS_TICK_S`` of slack)."""
    sent_at_s = NOW_S - 0.2
    out = outcome(rtt_sent_at=None, latest_sent_at=sent_at_s)
    age_s = NOW_S - sent_at_s + TS_TICK_S / 2
    assert rtt_sample(out, age_s, NOW_S) == age_s


def test_karn_echo_older_than_the_retransmission_gives_no_sample() -> None:
    """It echoes the original transmission: the original arrived, but when is unknown."""
    out = outcome(rtt_sent_at=None, latest_sent_at=NOW_S - 0.2)
    assert rtt_sample(out, 0.5, NOW_S) is None


def test_no_sample_from_sack_alone_of_retransmitted_data() -> None:
    out = outcome(acked=0, rtt_sent_at=None, latest_sent_at=NOW_S - 0.2)
    assert rtt_sample(out, 0.05, NOW_S) is None


# -- may_reopen ---------------------------------------------------------------------------------

SYN_TSVAL = 777_000


def timewait_receiver(ts_recent: int | None) -> Receiver:
    rx = receiver()
    rx.ts_recent = ts_recent
    return rx


def with_timestamps() -> Negotiated:
    neg = Negotiated(ts_offset=0)
    neg.timestamps = True
    return neg


def test_may_reopen_with_timestamps_needs_a_newer_tsval() -> None:
    rx = timewait_receiver(SYN_TSVAL)
    neg = with_timestamps()
    old_seq = RCV_NXT - 100  # the sequence number would say no: timestamps decide
    assert may_reopen(rx, neg, old_seq, SYN_TSVAL + 1)
    assert not may_reopen(rx, neg, RCV_NXT + 100, SYN_TSVAL)
    assert not may_reopen(rx, neg, RCV_NXT + 100, SYN_TSVAL - 1)


def test_may_reopen_with_timestamps_compares_modulo_two_to_the_32() -> None:
    rx = timewait_receiver(SEQ_MOD - 5)
    assert may_reopen(rx, with_timestamps(), RCV_NXT - 100, 3)


def test_may_reopen_without_timestamps_needs_a_sequence_number_beyond_rcv_nxt() -> None:
    rx = timewait_receiver(None)
    neg = Negotiated(ts_offset=0)
    assert may_reopen(rx, neg, RCV_NXT + 1, None)
    assert not may_reopen(rx, neg, RCV_NXT, None)
    assert not may_reopen(rx, neg, RCV_NXT - 1, None)


def test_may_reopen_falls_back_to_sequence_numbers_for_a_syn_without_timestamps() -> None:
    rx = timewait_receiver(SYN_TSVAL)
    neg = with_timestamps()
    assert may_reopen(rx, neg, RCV_NXT + 1, None)
    assert not may_reopen(rx, neg, RCV_NXT - 1, None)


def test_may_reopen_unwraps_the_syn_sequence_number() -> None:
    rx = receiver()
    rx.rcv_nxt = SEQ_MOD + 100  # the old incarnation's sequence space wrapped once
    neg = Negotiated(ts_offset=0)
    assert may_reopen(rx, neg, 200, None)
    assert not may_reopen(rx, neg, 50, None)


# -- reset_for_unknown --------------------------------------------------------------------------

PEER_SEQ = 4_000
PEER_ACK = 9_000


def test_reset_for_an_ack_is_a_rst_at_its_ack_number() -> None:
    reply = reset_for_unknown(encode_datagram(ACK, PEER_SEQ, PEER_ACK, 65535, b"data"))
    assert reply is not None
    flags, seq, ack, _wnd, payload, _opts = decode_datagram(reply)
    assert (flags, seq, ack, bytes(payload)) == (RST, PEER_ACK, 0, b"")


def test_reset_for_a_syn_acknowledges_the_syn() -> None:
    reply = reset_for_unknown(encode_datagram(SYN, PEER_SEQ, 0, 65535))
    assert reply is not None
    flags, seq, ack, _wnd, _payload, _opts = decode_datagram(reply)
    assert (flags, seq, ack) == (RST | ACK, 0, PEER_SEQ + 1)


def test_reset_without_ack_counts_payload_and_fin() -> None:
    reply = reset_for_unknown(encode_datagram(FIN, PEER_SEQ, 0, 65535, b"0123456789"))
    assert reply is not None
    flags, _seq, ack, _wnd, _payload, _opts = decode_datagram(reply)
    assert flags == RST | ACK
    assert ack == PEER_SEQ + 10 + 1


def test_reset_without_ack_counts_syn_and_fin_together() -> None:
    reply = reset_for_unknown(encode_datagram(SYN | FIN, PEER_SEQ, 0, 65535, b"abc"))
    assert reply is not None
    assert decode_datagram(reply)[2] == PEER_SEQ + 3 + 2


def test_reset_without_ack_wraps_its_ack_number() -> None:
    reply = reset_for_unknown(encode_datagram(SYN, SEQ_MOD - 1, 0, 65535))
    assert reply is not None
    assert decode_datagram(reply)[2] == 0


def test_no_reset_for_a_reset() -> None:
    assert reset_for_unknown(encode_datagram(RST, PEER_SEQ, 0, 0)) is None
    assert reset_for_unknown(encode_datagram(RST | ACK, PEER_SEQ, PEER_ACK, 0)) is None


def test_no_reset_for_garbage() -> None:
    assert reset_for_unknown(b"") is None
    assert reset_for_unknown(b"not a udptcp datagram at all") is None
    good = bytearray(encode_datagram(ACK, PEER_SEQ, PEER_ACK, 65535, b"data"))
    good[-1] ^= 0xFF  # checksum no longer matches
    assert reset_for_unknown(good) is None


# -- ChallengeAcks -------------------------------------------------------------------------------


def challenges() -> tuple[ChallengeAcks, Receiver, ConnectionStats]:
    rx = receiver()
    stats = ConnectionStats()
    return ChallengeAcks(rx, stats), rx, stats


def sent_one(acks: ChallengeAcks, rx: Receiver, now_s: float, *, out_of_window: bool = False) -> bool:
    """Ask for one challenge ACK (or the answer to an out-of-window pure ACK); True if it was
    granted."""
    rx.ack_now = False
    if out_of_window:
        acks.answer_out_of_window(now_s)
    else:
        acks.send(now_s)
    return rx.ack_now


def test_a_challenge_ack_asks_for_an_ack_and_is_counted() -> None:
    acks, rx, stats = challenges()
    assert sent_one(acks, rx, 3.0)
    assert stats.challenge_acks == 1


def test_challenge_acks_are_limited_per_second() -> None:
    acks, rx, stats = challenges()
    granted = [sent_one(acks, rx, 3.0 + i * 0.01) for i in range(CHALLENGE_ACKS_PER_S + 5)]
    assert granted == [True] * CHALLENGE_ACKS_PER_S + [False] * 5
    assert stats.challenge_acks == CHALLENGE_ACKS_PER_S


def test_challenge_ack_budget_comes_back_the_next_second() -> None:
    acks, rx, stats = challenges()
    for _ in range(CHALLENGE_ACKS_PER_S):
        assert sent_one(acks, rx, 3.5)
    assert not sent_one(acks, rx, 3.99)
    assert sent_one(acks, rx, 4.0)
    assert stats.challenge_acks == CHALLENGE_ACKS_PER_S + 1


def test_challenge_ack_budget_is_per_connection() -> None:
    acks, rx, _ = challenges()
    other, other_rx, _ = challenges()
    for _ in range(CHALLENGE_ACKS_PER_S):
        sent_one(acks, rx, 1.0)
    assert not sent_one(acks, rx, 1.0)
    assert sent_one(other, other_rx, 1.0)


def test_out_of_window_pure_acks_are_answered_once_per_interval() -> None:
    acks, rx, stats = challenges()
    start = 7.0
    assert sent_one(acks, rx, start, out_of_window=True)
    assert not sent_one(acks, rx, start + OUT_OF_WINDOW_ACK_INTERVAL_S / 2, out_of_window=True)
    assert sent_one(acks, rx, start + OUT_OF_WINDOW_ACK_INTERVAL_S, out_of_window=True)
    assert stats.acks_rate_limited == 1


def test_a_challenge_ack_past_the_rate_is_counted_as_limited() -> None:
    acks, rx, stats = challenges()
    for _ in range(CHALLENGE_ACKS_PER_S + 3):
        sent_one(acks, rx, 2.0)
    assert stats.acks_rate_limited == 3
