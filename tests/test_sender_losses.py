"""``Sender`` on its own: RACK's time-based loss detection, the loss queue (``mark_all_lost``,
``mark_first_lost``, ``unmark_lost``, ``next_lost``, ``on_retransmit``, ``split_lost``),
``last_unsacked``, delivery-rate samples with app-limited marking, and the compaction of ``recs``.
"""

from __future__ import annotations

import pytest
from sender_flight import (
    DATA,
    ISS,
    MSS_BYTES,
    REO_WND_S,
    RTT_S,
    SEND_GAP_S,
    T0_S,
    flight,
    seg_end,
    seg_range,
    sent_at,
    started,
)

import udptcp.core.sender as sender_module
from udptcp.core.sender import COMPACT_AFTER, RateSample, Sender

# -- RACK ---------------------------------------------------------------------------------------


def test_rack_update_keeps_the_most_recently_sent_delivered_segment() -> None:
    tx, recs = flight(3)
    tx.rack_update(recs[1], RTT_S)
    assert (tx.rack_sent_at, tx.rack_end, tx.rack_rtt_s) == (sent_at(1), seg_end(1), RTT_S)
    tx.rack_update(recs[0], 2 * RTT_S)  # sent earlier: changes nothing
    assert (tx.rack_sent_at, tx.rack_end, tx.rack_rtt_s) == (sent_at(1), seg_end(1), RTT_S)
    tx.rack_update(recs[2], 3 * RTT_S)
    assert (tx.rack_sent_at, tx.rack_end, tx.rack_rtt_s) == (sent_at(2), seg_end(2), 3 * RTT_S)


def test_rack_update_breaks_a_tie_in_send_time_by_sequence() -> None:
    tx, recs = flight(2, gap_s=0.0)
    tx.rack_update(recs[1], RTT_S)
    tx.rack_update(recs[0], 2 * RTT_S)
    assert tx.rack_end == seg_end(1) and tx.rack_rtt_s == RTT_S


def test_rack_detect_without_a_delivered_segment_marks_nothing() -> None:
    tx, _ = flight(3)
    assert tx.rack_detect(T0_S + 100.0, REO_WND_S) == (0, None)
    assert tx.pipe == 3 * MSS_BYTES


def test_rack_marks_lost_only_segments_a_reordering_window_before_the_delivered_one() -> None:
    assert REO_WND_S == 2 * SEND_GAP_S
    tx, recs = flight(4)
    sack_at = sent_at(2) + RTT_S
    out = tx.on_ack(DATA, [seg_range(2)], sack_at)
    assert out.latest is recs[2]
    tx.rack_update(recs[2], sack_at - recs[2].sent_at)

    # Segment 0 went out a reordering window (two gaps) before segment 2: lost now. Segment 1
    # went out one gap before: lost one gap later, which is when to look again.
    lost, again = tx.rack_detect(sack_at, REO_WND_S)
    assert lost == MSS_BYTES and recs[0].lost and not recs[1].lost
    assert again == sent_at(1) + RTT_S + REO_WND_S == sack_at + SEND_GAP_S
    assert tx.pipe == 2 * MSS_BYTES  # the SACKed and the lost one left the pipe

    assert tx.rack_detect(again - SEND_GAP_S / 2, REO_WND_S) == (0, again)
    lost, again = tx.rack_detect(again, REO_WND_S)
    assert lost == MSS_BYTES and recs[1].lost
    assert again is None  # segment 3 was sent after the delivered one: not for RACK to judge
    assert not recs[3].lost
    assert tx.next_lost() is recs[0]


def test_rack_detect_just_before_the_deadline_marks_nothing() -> None:
    tx, recs = flight(2)
    tx.on_ack(DATA, [seg_range(1)], T0_S + 1.0)
    tx.rack_update(recs[1], RTT_S)
    deadline = sent_at(0) + RTT_S + REO_WND_S
    assert tx.rack_detect(deadline - 0.001, REO_WND_S) == (0, deadline)
    assert tx.rack_detect(deadline, REO_WND_S) == (MSS_BYTES, None)


def test_rack_does_not_judge_a_retransmission_by_its_first_send_time() -> None:
    tx, recs = flight(3)
    tx.mark_first_lost()
    resent_at = T0_S + 1.0
    tx.on_retransmit(recs[0], resent_at)
    tx.on_ack(DATA, [seg_range(1)], resent_at)
    tx.rack_update(recs[1], RTT_S)  # delivered, but sent before the retransmission
    assert tx.rack_detect(resent_at + 10.0, REO_WND_S) == (0, None)
    assert not recs[0].lost


def test_rack_after_an_undo_still_judges_segments_sent_before_the_delivered_one() -> None:
    tx, recs = flight(4)
    tx.mark_all_lost()  # a retransmission timeout...
    tx.on_retransmit(recs[0], T0_S + 1.0)
    tx.unmark_lost()  # ...found spurious while the retransmission of segment 0 is in flight
    sack_at = T0_S + 1.0 + SEND_GAP_S
    tx.on_ack(DATA, [seg_range(2)], sack_at)  # the original segment 2 arrived
    tx.rack_update(recs[2], sack_at - recs[2].sent_at)
    lost, _ = tx.rack_detect(T0_S + 10.0, REO_WND_S)
    assert recs[1].lost  # sent before segment 2, and many round trips ago
    assert lost == MSS_BYTES


# -- the loss queue -----------------------------------------------------------------------------


def test_mark_all_lost_queues_everything_unsacked_from_snd_una() -> None:
    tx, recs = flight(5)
    tx.on_ack(seg_end(0), [seg_range(2)], T0_S + RTT_S)
    tx.rack_update(recs[2], RTT_S)
    tx.rack_detect(T0_S + 10.0, REO_WND_S)  # RACK judges segment 1 lost first
    assert recs[1].lost and tx.next_lost() is recs[1]
    newly = tx.mark_all_lost()
    assert newly == 2 * MSS_BYTES  # segments 3 and 4; segment 1 was lost already
    assert tx.pipe == 0
    queue = []
    while (rec := tx.next_lost()) is not None:
        queue.append(rec)
        tx.on_retransmit(rec, T0_S + 20.0)
    assert queue == [recs[1], recs[3], recs[4]]  # in sequence order, the SACKed one skipped


def test_mark_all_lost_puts_snd_una_first_even_if_later_ones_were_queued() -> None:
    tx, recs = flight(4)
    tx.on_ack(DATA, [seg_range(3)], T0_S + RTT_S)
    tx.rack_update(recs[3], RTT_S)
    tx.rack_detect(sent_at(1) + RTT_S + REO_WND_S, REO_WND_S)
    # Only segments 0 and 1 are lost so far; resend 0, which then is lost again.
    assert tx.next_lost() is recs[0]
    tx.on_retransmit(recs[0], T0_S + 5.0)
    assert tx.next_lost() is recs[1]
    tx.mark_all_lost()
    assert tx.next_lost() is recs[0]


def test_mark_first_lost_marks_the_segment_at_snd_una_and_puts_it_first() -> None:
    tx, recs = flight(3)
    tx.mark_first_lost()
    tx.on_retransmit(recs[0], T0_S + 1.0)  # resent; still unacknowledged
    tx.on_ack(DATA, [seg_range(2)], T0_S + 1.0)
    tx.rack_update(recs[2], RTT_S)
    assert tx.rack_detect(T0_S + 10.0, REO_WND_S)[0] == MSS_BYTES  # segment 1 is queued
    assert tx.next_lost() is recs[1]
    assert tx.mark_first_lost() == MSS_BYTES  # the retransmission at SND.UNA is lost too
    assert recs[0].lost
    assert tx.next_lost() is recs[0]  # it holds everything up: it goes before segment 1
    assert tx.pipe == 0


def test_mark_first_lost_twice_marks_once() -> None:
    tx, recs = flight(2)
    assert tx.mark_first_lost() == MSS_BYTES
    assert recs[0].lost and tx.pipe == MSS_BYTES
    assert tx.mark_first_lost() == 0
    assert tx.pipe == MSS_BYTES


def test_mark_first_lost_skips_a_sacked_segment_at_snd_una() -> None:
    tx, recs = flight(2)
    tx.on_ack(DATA, [seg_range(0)], T0_S + RTT_S)
    assert tx.mark_first_lost() == 0 and not recs[0].lost


def test_mark_first_lost_with_nothing_in_flight_marks_nothing() -> None:
    tx = started(100)
    assert tx.mark_first_lost() == 0
    assert tx.next_lost() is None


def test_on_retransmit_of_a_lost_segment_restores_the_pipe() -> None:
    tx, recs = flight(2)
    tx.mark_first_lost()
    assert tx.pipe == MSS_BYTES
    tx.on_retransmit(recs[0], T0_S + 1.0)
    assert tx.pipe == 2 * MSS_BYTES
    assert recs[0].retransmitted and not recs[0].lost and recs[0].sent_at == T0_S + 1.0
    assert tx.next_lost() is None
    assert tx.tsorted[-1] == (T0_S + 1.0, recs[0])


def test_on_retransmit_of_a_probe_leaves_the_pipe() -> None:
    tx, recs = flight(2)
    tx.on_retransmit(recs[1], T0_S + 1.0)  # a tail loss probe: not judged lost
    assert tx.pipe == 2 * MSS_BYTES and recs[1].retransmitted


def test_unmark_lost_puts_the_queued_segments_back_in_flight() -> None:
    tx, recs = flight(3)
    assert tx.mark_all_lost() == 3 * MSS_BYTES
    tx.on_retransmit(recs[0], T0_S + 1.0)
    assert tx.pipe == MSS_BYTES
    tx.unmark_lost()
    assert tx.pipe == 3 * MSS_BYTES
    assert not any(r.lost for r in recs)
    assert tx.next_lost() is None
    # back under RACK's watch: a later delivery can judge them lost again
    tx.on_ack(DATA, [seg_range(0)], T0_S + 2.0)
    tx.rack_update(recs[0], RTT_S)
    lost, _ = tx.rack_detect(T0_S + 10.0, REO_WND_S)
    assert lost == 2 * MSS_BYTES


def test_next_lost_drops_segments_acknowledged_or_sacked_since() -> None:
    tx, recs = flight(4)
    tx.mark_all_lost()
    tx.on_ack(seg_end(0), [seg_range(1)], T0_S + 1.0)
    assert tx.next_lost() is recs[2]


def test_last_unsacked_is_the_highest_segment_not_sacked() -> None:
    tx, recs = flight(4)
    assert tx.last_unsacked() is recs[3]
    tx.on_ack(DATA, [seg_range(3)], T0_S + RTT_S)
    assert tx.last_unsacked() is recs[2]
    tx.on_ack(DATA, [(DATA, seg_end(3))], T0_S + RTT_S)
    assert tx.last_unsacked() is None


def test_last_unsacked_with_everything_acknowledged_is_none() -> None:
    tx, _ = flight(2)
    tx.on_ack(seg_end(1), [], T0_S + RTT_S)
    assert tx.last_unsacked() is None


# -- delivery rate ------------------------------------------------------------------------------


def test_rate_sample_over_the_first_round() -> None:
    tx, _ = flight(4)  # sent over 3 gaps
    ack_at = sent_at(1) + RTT_S
    out = tx.on_ack(seg_end(1), [], ack_at)
    sample = RateSample()
    assert out.latest is not None
    tx.rate_sample(out.latest, ack_at, sample)
    assert sample.delivered == 2 * MSS_BYTES
    assert sample.prior_delivered == 0
    assert sample.interval_s == ack_at - T0_S  # the ACK interval is the longer one
    assert sample.rate == pytest.approx(2 * MSS_BYTES / (ack_at - T0_S))
    assert sample.rtt_s == RTT_S
    assert not sample.is_app_limited


def test_rate_sample_uses_the_send_interval_when_acks_are_compressed() -> None:
    tx = started(5 * MSS_BYTES)
    recs = [tx.on_send_new(seg_end(i), sent_at(i)) for i in range(4)]
    first_ack_at = sent_at(0) + RTT_S
    out = tx.on_ack(seg_end(0), [], first_ack_at)
    sample = RateSample()
    tx.rate_sample(recs[0], first_ack_at, sample)
    assert tx.first_sent_at == sent_at(0)
    fifth = tx.on_send_new(seg_end(4), first_ack_at)  # stamped: one segment delivered so far
    assert (fifth.delivered, fifth.delivered_at, fifth.first_sent_at) == (
        MSS_BYTES, first_ack_at, sent_at(0)
    )
    ack_at = first_ack_at + SEND_GAP_S  # the other four ACKed at once
    out = tx.on_ack(seg_end(4), [], ack_at)
    assert out.latest is fifth
    tx.rate_sample(fifth, ack_at, sample)
    assert sample.delivered == 4 * MSS_BYTES
    assert sample.prior_delivered == MSS_BYTES
    assert sample.interval_s == first_ack_at - sent_at(0)  # sending took longer than the ACKs
    assert sample.rtt_s == SEND_GAP_S


def test_rate_sample_of_a_retransmission_has_no_rtt() -> None:
    tx, recs = flight(1)
    tx.mark_first_lost()
    tx.on_retransmit(recs[0], T0_S + 1.0)
    out = tx.on_ack(seg_end(0), [], T0_S + 1.0 + RTT_S)
    sample = RateSample()
    assert out.latest is recs[0]
    tx.rate_sample(recs[0], T0_S + 1.0 + RTT_S, sample)
    assert sample.rtt_s == -1.0


def test_rate_sample_of_an_empty_interval_is_zero() -> None:
    assert RateSample().rate == 0.0


def test_segments_sent_after_app_limited_mark_their_samples() -> None:
    tx = started(4 * MSS_BYTES)
    first = tx.on_send_new(seg_end(0), T0_S)
    tx.mark_app_limited()  # nothing more to send for now
    assert tx.app_limited_until == MSS_BYTES  # delivered (0) + pipe
    second = tx.on_send_new(seg_end(1), T0_S + SEND_GAP_S)
    assert not first.app_limited and second.app_limited
    sample = RateSample()
    tx.on_ack(seg_end(0), [], T0_S + RTT_S)
    assert tx.app_limited_until == MSS_BYTES  # delivered == MSS: not past the mark yet
    tx.rate_sample(first, T0_S + RTT_S, sample)
    assert not sample.is_app_limited
    tx.on_ack(seg_end(1), [], T0_S + SEND_GAP_S + RTT_S)
    tx.rate_sample(second, T0_S + SEND_GAP_S + RTT_S, sample)
    assert sample.is_app_limited
    assert tx.app_limited_until == 0  # delivered past the mark: the bubble is gone
    third = tx.on_send_new(seg_end(2), T0_S + 1.0)
    assert not third.app_limited


def test_app_limited_with_nothing_in_flight_still_marks() -> None:
    tx = started(MSS_BYTES)
    tx.mark_app_limited()
    assert tx.app_limited_until == 1
    assert tx.on_send_new(seg_end(0), T0_S).app_limited


# -- compaction of recs -------------------------------------------------------------------------


def run_long_flight(tx: Sender, count: int) -> tuple[list[tuple[object, ...]], int]:
    """Send ``count`` one-octet segments, acknowledge most of them one by one, then SACK,
    lose and retransmit at the tail; everything observable, in order, and how many records
    the sender kept before the last ACK (which acknowledges everything)."""
    seen: list[tuple[object, ...]] = []
    tx.start(ISS)
    tx.una = ISS + 1
    tx.queue(bytes(count))
    recs = [tx.on_send_new(DATA + i + 1, T0_S + i * 0.001) for i in range(count)]
    acked_upto = count - 20
    for i in range(acked_upto):
        out = tx.on_ack(DATA + i + 1, [], T0_S + RTT_S + i * 0.001)
        seen.append((out.acked, out.rtt_sent_at, tx.pipe, tx.una))
    sack = (DATA + count - 10, DATA + count - 5)
    now = T0_S + 10.0
    out = tx.on_ack(DATA + acked_upto, [sack], now)
    seen.append((out.acked, out.sacked, out.reordering, tx.pipe, tx.sacked_count))
    assert out.latest is not None
    tx.rack_update(out.latest, RTT_S)
    seen.append(tx.rack_detect(now, REO_WND_S))
    seen.append((tx.last_unsacked() is recs[-1],))
    while (rec := tx.next_lost()) is not None:
        seen.append((rec.start, rec.end))
        tx.on_retransmit(rec, now)
    seen.append((tx.mark_all_lost(), tx.pipe))
    seen.append(tuple((r.start, r.sacked, r.lost) for r in tx.recs[tx.head :]))
    kept = len(tx.recs)
    out = tx.on_ack(DATA + count, [], now + RTT_S)
    seen.append((out.acked, tx.pipe, tx.all_acked, tx.buffered, tx.sacked_count))
    return seen, kept


def test_compaction_after_many_acknowledged_segments_keeps_behaviour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = COMPACT_AFTER + 200
    compacted = Sender()
    observed, kept = run_long_flight(compacted, count)
    assert kept < count  # the acknowledged head was cut off
    monkeypatch.setattr(sender_module, "COMPACT_AFTER", 10 * count)
    reference = Sender()
    expected, kept = run_long_flight(reference, count)
    assert kept == count  # never compacted
    assert observed == expected
    assert compacted.recs == reference.recs == [] and not compacted.tsorted  # all acknowledged


def test_compaction_resets_head_and_keeps_the_unacknowledged_segments() -> None:
    count = COMPACT_AFTER + 10
    tx = started(count)
    recs = [tx.on_send_new(DATA + i + 1, T0_S) for i in range(count)]
    tx.on_ack(DATA + COMPACT_AFTER, [], T0_S + RTT_S)
    assert tx.head == COMPACT_AFTER and len(tx.recs) == count  # not more than COMPACT_AFTER yet
    tx.on_ack(DATA + COMPACT_AFTER + 1, [], T0_S + RTT_S)
    assert tx.head == 0
    assert tx.recs == recs[COMPACT_AFTER + 1 :]
    assert tx.pipe == count - COMPACT_AFTER - 1
