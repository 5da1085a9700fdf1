"""``Sender`` on its own: the send buffer and the scoreboard of sent segments.

Covers ``start`` and the stream properties, ``on_send_new`` bookkeeping, cumulative ACKs
(whole and partial segments, buffer trimmed, pipe, Karn's rule) and SACK blocks (counts, pipe,
reordering, blocks out of range). RACK, the loss queue, delivery rate and the compaction of
``recs`` are in ``test_sender_losses.py``.
"""

from __future__ import annotations

from sender_flight import (
    DATA,
    ISS,
    MSS_BYTES,
    RTT_S,
    SEND_GAP_S,
    T0_S,
    flight,
    seg_end,
    seg_range,
    sent_at,
    started,
)

from udptcp.core.sender import Sender

# -- start, queue and the stream ----------------------------------------------------------------


def test_start_puts_the_syn_at_iss_and_data_after_it() -> None:
    tx = Sender()
    tx.start(ISS)
    assert (tx.iss, tx.una, tx.nxt, tx.buf.start) == (ISS, ISS, ISS + 1, ISS + 1)
    assert tx.in_flight and not tx.all_acked  # the SYN is outstanding
    assert tx.data_end == ISS + 1


def test_queue_appends_and_counts_unsent_and_buffered() -> None:
    tx = started()
    tx.queue(b"a" * 150)
    tx.queue(bytearray(b"b" * 50))
    tx.queue(memoryview(b"c" * 50))
    assert tx.data_end == DATA + 250
    assert tx.unsent == 250 and tx.buffered == 250
    tx.on_send_new(DATA + 100, T0_S)
    assert tx.unsent == 150 and tx.buffered == 250
    tx.on_ack(DATA + 100, [], T0_S + RTT_S)
    assert tx.unsent == 150 and tx.buffered == 150
    assert tx.buf.start == DATA + 100


def test_queue_copies_the_callers_data() -> None:
    tx = started()
    data = bytearray(b"abc")
    tx.queue(data)
    data[0] = ord("z")
    assert bytes(tx.payload(DATA, DATA + 3)) == b"abc"


def test_unsent_is_zero_once_everything_and_a_fin_went_out() -> None:
    tx = started(100)
    tx.fin_seq = tx.data_end
    assert tx.unsent == 100
    tx.on_send_new(tx.data_end + 1, T0_S)  # the data and the FIN in one segment
    assert tx.unsent == 0 and tx.nxt == tx.fin_seq + 1


def test_payload_slices_the_buffer_and_a_fin_carries_none() -> None:
    tx = started(300)
    assert bytes(tx.payload(DATA + 10, DATA + 20)) == bytes(range(10, 20))
    # past the end: a FIN
    assert bytes(tx.payload(DATA + 250, DATA + 301)) == bytes(range(250, 256)) + bytes(44)


# -- on_send_new --------------------------------------------------------------------------------


def test_on_send_new_records_the_segment_and_grows_pipe_and_nxt() -> None:
    tx = started(300)
    first = tx.on_send_new(seg_end(0), T0_S)
    second = tx.on_send_new(DATA + 150, T0_S + SEND_GAP_S)
    assert (first.start, first.end, first.sent_at) == (DATA, seg_end(0), T0_S)
    assert (second.start, second.end) == (seg_end(0), DATA + 150)
    assert not (first.sacked or first.lost or first.retransmitted)
    assert tx.recs == [first, second]
    assert [rec for _, rec in tx.tsorted] == [first, second]
    assert tx.pipe == 150 and tx.nxt == DATA + 150
    assert tx.unsent == 150


def test_on_send_new_stamps_delivery_state_from_the_start_of_a_flight() -> None:
    tx = started(300)
    first = tx.on_send_new(seg_end(0), T0_S)
    second = tx.on_send_new(seg_end(1), T0_S + SEND_GAP_S)
    assert first.first_sent_at == second.first_sent_at == T0_S  # the pipe was empty at T0_S
    assert first.delivered == second.delivered == 0
    assert not first.app_limited


# -- cumulative ACKs ----------------------------------------------------------------------------


def test_cumulative_ack_of_whole_segments() -> None:
    tx, recs = flight(3)
    out = tx.on_ack(seg_end(1), [], T0_S + RTT_S)
    assert out.acked == 2 * MSS_BYTES and out.sacked == 0
    assert tx.una == seg_end(1)
    assert tx.pipe == MSS_BYTES
    assert tx.buffered == MSS_BYTES and tx.buf.start == seg_end(1)
    assert out.latest is recs[1]
    assert out.rtt_sent_at == sent_at(0)  # the earliest segment this ACK delivered
    assert not out.reordering
    assert tx.delivered == 2 * MSS_BYTES and tx.delivered_at == T0_S + RTT_S


def test_cumulative_ack_inside_a_segment_acknowledges_part_of_it() -> None:
    tx, recs = flight(2)
    out = tx.on_ack(DATA + 40, [], T0_S + RTT_S)
    assert out.acked == 40
    assert tx.pipe == 2 * MSS_BYTES - 40
    assert recs[0].start == DATA + 40 and recs[0].end == seg_end(0)
    assert tx.buffered == 2 * MSS_BYTES - 40
    out = tx.on_ack(seg_end(0), [], T0_S + RTT_S)
    assert out.acked == 60 and tx.pipe == MSS_BYTES


def test_ack_of_everything_including_a_fin_empties_the_buffer() -> None:
    tx = started(150)
    tx.fin_seq = tx.data_end
    tx.on_send_new(tx.data_end + 1, T0_S)
    out = tx.on_ack(tx.fin_seq + 1, [], T0_S + RTT_S)
    assert out.acked == 151  # the FIN's sequence number counts
    assert tx.all_acked and not tx.in_flight
    assert tx.buffered == 0 and tx.buf.start == DATA + 150
    assert tx.pipe == 0


def test_ack_that_does_not_move_una_acknowledges_nothing() -> None:
    tx, _ = flight(2)
    tx.on_ack(seg_end(0), [], T0_S + RTT_S)
    out = tx.on_ack(seg_end(0), [], T0_S + RTT_S + SEND_GAP_S)
    assert out.acked == 0 and out.latest is None and out.rtt_sent_at is None
    assert tx.pipe == MSS_BYTES and tx.delivered == MSS_BYTES


def test_karn_ack_of_a_retransmitted_segment_gives_no_rtt() -> None:
    tx, recs = flight(2)
    tx.mark_first_lost()
    tx.on_retransmit(recs[0], T0_S + 1.0)
    out = tx.on_ack(seg_end(1), [], T0_S + 1.0 + RTT_S)
    assert out.acked == 2 * MSS_BYTES
    assert out.rtt_sent_at is None  # the second segment alone is not enough: the ACK is ambiguous


def test_ack_of_a_segment_judged_lost_but_not_resent_times_only_the_others() -> None:
    tx, _ = flight(2)
    tx.mark_first_lost()
    out = tx.on_ack(seg_end(1), [], T0_S + RTT_S)
    assert out.acked == 2 * MSS_BYTES
    assert tx.pipe == 0  # the lost one had already left the pipe
    assert out.rtt_sent_at == sent_at(1)


def test_outcome_is_reset_between_acks() -> None:
    tx, _ = flight(3)
    tx.on_ack(DATA, [seg_range(2)], T0_S + RTT_S)
    out = tx.on_ack(seg_end(0), [], T0_S + RTT_S + SEND_GAP_S)
    assert out.sacked == 0 and out.acked == MSS_BYTES


# -- SACK ---------------------------------------------------------------------------------------


def test_sack_block_marks_whole_segments_and_leaves_the_pipe() -> None:
    tx, recs = flight(4)
    out = tx.on_ack(DATA, [(seg_range(1)[0], seg_end(2))], T0_S + RTT_S)
    assert out.acked == 0 and out.sacked == 2 * MSS_BYTES
    assert [r.sacked for r in recs] == [False, True, True, False]
    assert tx.sacked_count == 2
    assert tx.pipe == 2 * MSS_BYTES
    assert tx.fack == seg_end(2)
    assert tx.sacked is not None and list(tx.sacked) == [(seg_range(1)[0], seg_end(2))]
    assert out.latest is recs[2]
    assert out.rtt_sent_at == sent_at(1)
    assert tx.delivered == 2 * MSS_BYTES


def test_sack_block_covering_part_of_a_segment_sacks_nothing() -> None:
    tx, recs = flight(2)
    start, end = seg_range(1)
    out = tx.on_ack(DATA, [(start + 10, end)], T0_S + RTT_S)
    assert out.sacked == 0 and not recs[1].sacked and tx.pipe == 2 * MSS_BYTES
    out = tx.on_ack(DATA, [(start, end)], T0_S + RTT_S)  # the rest of it now
    assert out.sacked == MSS_BYTES and recs[1].sacked


def test_same_sack_block_twice_counts_once() -> None:
    tx, _ = flight(3)
    tx.on_ack(DATA, [seg_range(2)], T0_S + RTT_S)
    out = tx.on_ack(DATA, [seg_range(2)], T0_S + RTT_S + SEND_GAP_S)
    assert out.sacked == 0 and out.latest is None
    assert tx.sacked_count == 1 and tx.pipe == 2 * MSS_BYTES


def test_sack_blocks_outside_una_to_nxt_are_ignored() -> None:
    tx, recs = flight(3)
    tx.on_ack(seg_end(0), [], T0_S + RTT_S)
    below = (DATA, seg_end(0))  # already acknowledged (a DSACK, say)
    beyond = (seg_range(2)[0], seg_end(2) + MSS_BYTES)  # past SND.NXT
    out = tx.on_ack(seg_end(0), [below, beyond], T0_S + RTT_S)
    assert out.sacked == 0
    assert not any(r.sacked for r in recs)
    assert tx.sacked_count == 0 and not tx.sacked and tx.pipe == 2 * MSS_BYTES


def test_lower_segment_sacked_after_a_higher_one_is_reordering() -> None:
    tx, _ = flight(4)
    out = tx.on_ack(DATA, [seg_range(3)], T0_S + RTT_S)
    assert not out.reordering
    out = tx.on_ack(DATA, [seg_range(3), seg_range(1)], T0_S + RTT_S + SEND_GAP_S)
    assert out.reordering and out.sacked == MSS_BYTES


def test_cumulative_ack_below_the_highest_sack_is_reordering() -> None:
    tx, _ = flight(3)
    tx.on_ack(DATA, [seg_range(2)], T0_S + RTT_S)
    out = tx.on_ack(seg_end(0), [seg_range(2)], T0_S + RTT_S + SEND_GAP_S)
    assert out.reordering


def test_retransmitted_segment_sacked_late_is_not_reordering() -> None:
    tx, recs = flight(3)
    tx.on_ack(DATA, [seg_range(2)], T0_S + RTT_S)
    tx.mark_first_lost()
    tx.on_retransmit(recs[0], T0_S + RTT_S)
    out = tx.on_ack(seg_end(0), [seg_range(2)], T0_S + 2 * RTT_S)
    assert not out.reordering


def test_retransmitted_segment_sacked_below_the_highest_sack_is_not_reordering() -> None:
    tx, recs = flight(3)
    tx.on_ack(DATA, [seg_range(2)], T0_S + RTT_S)
    tx.mark_all_lost()
    tx.on_retransmit(recs[1], T0_S + 1.0)
    out = tx.on_ack(DATA, [(seg_range(1)[0], seg_end(2))], T0_S + 1.0 + RTT_S)
    assert out.sacked == MSS_BYTES and recs[1].sacked
    assert not out.reordering
    assert out.rtt_sent_at is None  # nor does it time the ACK (Karn)


def test_two_new_sack_blocks_in_one_ack_are_not_reordering() -> None:
    tx, _ = flight(5)
    # Segments 1 and 3 lost; the ACK that SACKed segment 2 alone was lost too.
    out = tx.on_ack(seg_end(0), [seg_range(4), seg_range(2)], T0_S + RTT_S)
    assert out.sacked == 2 * MSS_BYTES
    assert not out.reordering


def test_cumulative_ack_over_sacked_segments_counts_only_the_unsacked() -> None:
    tx, _ = flight(3)
    tx.on_ack(DATA, [seg_range(1)], T0_S + RTT_S)
    out = tx.on_ack(seg_end(2), [], T0_S + 2 * RTT_S)
    assert out.acked == 2 * MSS_BYTES  # the SACKed one was counted when SACKed
    assert tx.sacked_count == 0 and tx.pipe == 0
    assert not tx.sacked  # the SACKed ranges below SND.UNA are forgotten


def test_rtt_from_a_sack_is_the_earliest_newly_sacked_segment() -> None:
    tx, _ = flight(4)
    out = tx.on_ack(DATA, [seg_range(3), seg_range(1)], T0_S + RTT_S)
    assert out.rtt_sent_at == sent_at(1)


def test_rtt_from_an_ack_with_cumulative_and_sack_parts_is_the_cumulative_one() -> None:
    tx, _ = flight(4)
    out = tx.on_ack(seg_end(0), [seg_range(2)], T0_S + RTT_S)
    assert out.acked == MSS_BYTES and out.sacked == MSS_BYTES
    assert out.rtt_sent_at == sent_at(0)


def test_sacked_segment_times_an_ack_whose_cumulative_part_is_a_retransmission() -> None:
    tx, recs = flight(3)
    tx.mark_first_lost()
    tx.on_retransmit(recs[0], T0_S + RTT_S)
    out = tx.on_ack(seg_end(0), [seg_range(2)], T0_S + 2 * RTT_S)
    assert out.rtt_sent_at == sent_at(2)  # Karn rules out only the retransmitted segment
