"""``Receiver`` on its own: reassembly, SACK and DSACK blocks, the receive window and ACK policy.

Covers in-order data (handed on without a copy), duplicates and overlaps (DSACK), out-of-order
data (stored, SACKed most recent first, drained in order once the hole fills), data beyond the
window, the cap on out-of-order pieces, the advertised window with receiver-side silly window
avoidance, paused reading, the delayed-ACK policy and TS.Recent. Sequence numbers are
unwrapped; times are passed by hand.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from udptcp.core.receiver import MAX_RECENT_BLOCKS, MIN_OOO_PIECES, Receiver
from udptcp.core.timers import Timer, Timers


def delayed_ack_deadline(rx: Receiver) -> float | None:
    """When the delayed ACK is due, if one is pending: the one place that reads it."""
    return rx.timers.deadline(Timer.DELAYED_ACK)


IRS = 5000
DATA = IRS + 1
"""The first data octet's sequence number (the peer's SYN takes ``IRS``)."""
BUFFER_BYTES = 4000
MSS_BYTES = 100
NOW_S = 10.0
DELAYED_ACK_S = 0.04


def receiver(buffer_bytes: int = BUFFER_BYTES, mss_bytes: int = MSS_BYTES) -> Receiver:
    rx = Receiver(buffer_bytes, mss_bytes, Timers())
    rx.start(IRS)
    return rx


def stream(start: int, end: int) -> bytes:
    """The peer's octets ``[start, end)``: a pattern, so that misplaced data shows."""
    return bytes((seq * 7) & 0xFF for seq in range(start, end))


def deliver(rx: Receiver, start: int, end: int, now: float = NOW_S,
            delayed_ack_s: float = DELAYED_ACK_S) -> bytes:
    """Feed the peer's ``[start, end)``; the octets released, joined."""
    out = rx.accept(start, memoryview(stream(start, end)), now, delayed_ack_s)
    return b"".join(bytes(chunk) for chunk in out)


# -- in-order data ------------------------------------------------------------------------------


def test_start_opens_the_window_after_the_syn() -> None:
    rx = receiver()
    assert (rx.irs, rx.rcv_nxt) == (IRS, DATA)
    assert rx.window == BUFFER_BYTES and rx.adv_right == DATA + BUFFER_BYTES
    assert rx.last_ack_sent == DATA


def test_in_order_data_is_returned_without_a_copy() -> None:
    rx = receiver()
    payload = memoryview(stream(DATA, DATA + 50))
    out = rx.accept(DATA, payload, NOW_S, DELAYED_ACK_S)
    assert len(out) == 1 and out[0] is payload
    assert rx.rcv_nxt == DATA + 50
    assert rx.ooo is None and rx.dsack is None


def test_in_order_segments_follow_each_other() -> None:
    rx = receiver()
    assert deliver(rx, DATA, DATA + 30) + deliver(rx, DATA + 30, DATA + 80) == stream(DATA, DATA + 80)
    assert rx.rcv_nxt == DATA + 80


# -- duplicates and overlaps --------------------------------------------------------------------


def test_duplicate_segment_is_reported_as_dsack_and_acknowledged_at_once() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100)
    rx.on_ack_sent()
    assert deliver(rx, DATA + 20, DATA + 60) == b""
    assert rx.dsack == (DATA + 20, DATA + 60)
    assert rx.ack_now
    assert rx.rcv_nxt == DATA + 100
    assert rx.sack_blocks(4) == [(DATA + 20, DATA + 60)]


def test_partial_overlap_is_trimmed_and_its_old_part_reported() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100)
    assert deliver(rx, DATA + 80, DATA + 150) == stream(DATA + 100, DATA + 150)
    assert rx.dsack == (DATA + 80, DATA + 100)
    assert rx.rcv_nxt == DATA + 150


def test_on_ack_sent_clears_the_dsack() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100)
    deliver(rx, DATA, DATA + 100)
    rx.on_ack_sent()
    assert rx.dsack is None and rx.sack_blocks(4) == []


# -- out-of-order data and SACK blocks ----------------------------------------------------------


def test_out_of_order_segment_is_stored_and_acknowledged_at_once() -> None:
    rx = receiver()
    assert deliver(rx, DATA + 100, DATA + 200) == b""
    assert rx.ack_now
    assert rx.rcv_nxt == DATA
    assert rx.ooo_bytes == 100 and rx.ooo is not None and rx.ooo.starts == [DATA + 100]
    assert rx.sack_blocks(4) == [(DATA + 100, DATA + 200)]
    assert delayed_ack_deadline(rx) is None  # no delay: the sender must see the hole


def test_out_of_order_copy_does_not_alias_the_datagram() -> None:
    rx = receiver()
    datagram = bytearray(stream(DATA + 100, DATA + 200))
    rx.accept(DATA + 100, memoryview(datagram), NOW_S, DELAYED_ACK_S)
    datagram[:] = bytes(100)  # the transport reuses its buffer
    assert deliver(rx, DATA, DATA + 100) == stream(DATA, DATA + 200)


def test_hole_filled_drains_everything_in_order() -> None:
    rx = receiver()
    deliver(rx, DATA + 200, DATA + 300)
    deliver(rx, DATA + 100, DATA + 200)
    deliver(rx, DATA + 400, DATA + 500)
    rx.on_ack_sent()
    assert deliver(rx, DATA, DATA + 100) == stream(DATA, DATA + 300)
    assert rx.ack_now  # a hole filled: acknowledge at once (RFC 5681 4.2)
    assert rx.rcv_nxt == DATA + 300
    assert rx.ooo is not None and rx.ooo.starts == [DATA + 400] and rx.ooo_bytes == 100
    assert list(rx.ooo.ranges) == [(DATA + 400, DATA + 500)]
    assert rx.sack_blocks(4) == [(DATA + 400, DATA + 500)]


def test_segment_overlapping_stored_pieces_stores_only_the_new_parts() -> None:
    rx = receiver()
    deliver(rx, DATA + 100, DATA + 150)
    deliver(rx, DATA + 200, DATA + 250)
    deliver(rx, DATA + 120, DATA + 300)  # fills [150, 200) and [250, 300)
    assert rx.ooo_bytes == 200 and rx.ooo is not None
    assert list(rx.ooo.ranges) == [(DATA + 100, DATA + 300)]
    assert rx.dsack is None
    assert deliver(rx, DATA, DATA + 100) == stream(DATA, DATA + 300)


def test_in_order_segment_reaching_into_stored_data_releases_each_octet_once() -> None:
    rx = receiver()
    deliver(rx, DATA + 50, DATA + 150)
    assert deliver(rx, DATA, DATA + 100) == stream(DATA, DATA + 150)
    assert rx.ooo_bytes == 0 and rx.ooo is None


def test_duplicate_of_stored_data_is_a_dsack_with_its_holder_block_next() -> None:
    rx = receiver()
    deliver(rx, DATA + 300, DATA + 400)
    deliver(rx, DATA + 100, DATA + 200)
    rx.on_ack_sent()
    deliver(rx, DATA + 120, DATA + 180)
    assert rx.dsack == (DATA + 120, DATA + 180) and rx.ack_now
    assert rx.ooo_bytes == 200
    assert rx.sack_blocks(4) == [
        (DATA + 120, DATA + 180),  # the duplicate (RFC 2883)
        (DATA + 100, DATA + 200),  # the block it fell in
        (DATA + 300, DATA + 400),
    ]


def test_sack_blocks_most_recently_changed_first() -> None:
    rx = receiver()
    for start in (100, 300, 500):
        deliver(rx, DATA + start, DATA + start + 50)
    assert rx.sack_blocks(4) == [(DATA + 500, DATA + 550), (DATA + 300, DATA + 350),
                                 (DATA + 100, DATA + 150)]
    deliver(rx, DATA + 150, DATA + 200)  # extends the oldest block: now the most recent
    assert rx.sack_blocks(4)[0] == (DATA + 100, DATA + 200)
    assert len(rx.sack_blocks(4)) == 3


def test_sack_blocks_honour_the_limit() -> None:
    rx = receiver()
    for start in (100, 300, 500, 700):
        deliver(rx, DATA + start, DATA + start + 50)
    assert rx.sack_blocks(3) == [(DATA + 700, DATA + 750), (DATA + 500, DATA + 550),
                                 (DATA + 300, DATA + 350)]
    assert rx.sack_blocks(1) == [(DATA + 700, DATA + 750)]
    deliver(rx, DATA + 510, DATA + 520)  # a duplicate inside the second block
    assert rx.sack_blocks(2) == [(DATA + 510, DATA + 520), (DATA + 500, DATA + 550)]
    assert rx.sack_blocks(3) == [(DATA + 510, DATA + 520), (DATA + 500, DATA + 550),
                                 (DATA + 700, DATA + 750)]


def test_sack_remembers_at_most_max_recent_blocks() -> None:
    rx = receiver()
    starts = [100 + 100 * i for i in range(MAX_RECENT_BLOCKS + 2)]
    for start in starts:
        deliver(rx, DATA + start, DATA + start + 50)
    assert rx.ooo is not None and len(rx.ooo.recent) == MAX_RECENT_BLOCKS
    assert rx.sack_blocks(10) == [(DATA + s, DATA + s + 50) for s in reversed(starts)][
        :MAX_RECENT_BLOCKS
    ]


def test_block_drained_by_a_filled_hole_leaves_room_for_the_others() -> None:
    rx = receiver()
    for start in (300, 500, 100):
        deliver(rx, DATA + start, DATA + start + 50)
    deliver(rx, DATA, DATA + 100)  # drains the most recent block, [100, 150)
    for start in (700, 900):
        deliver(rx, DATA + start, DATA + start + 50)
    assert rx.sack_blocks(4) == [(DATA + s, DATA + s + 50) for s in (900, 700, 500, 300)]


def test_sack_reports_every_block_that_fits_after_one_block_grows() -> None:
    rx = receiver()
    deliver(rx, DATA + 100, DATA + 200)  # block A, after a hole
    for k in range(4):  # block B grows by four segments, after a second hole
        deliver(rx, DATA + 300 + 100 * k, DATA + 400 + 100 * k)
    assert rx.sack_blocks(3) == [(DATA + 300, DATA + 700), (DATA + 100, DATA + 200)]


# -- the window ---------------------------------------------------------------------------------


def test_data_beyond_the_advertised_window_is_trimmed() -> None:
    rx = receiver()
    edge = rx.adv_right
    deliver(rx, edge - 100, edge + 50)
    assert rx.ooo_bytes == 100 and rx.ooo is not None
    assert list(rx.ooo.ranges) == [(edge - 100, edge)]
    got = deliver(rx, DATA, edge - 100)
    assert len(got) == BUFFER_BYTES and rx.rcv_nxt == edge


def test_in_order_data_beyond_the_window_is_trimmed() -> None:
    rx = receiver(buffer_bytes=200)
    assert deliver(rx, DATA, DATA + 300) == stream(DATA, DATA + 200)
    assert rx.rcv_nxt == DATA + 200


def test_window_shrinks_as_data_arrives_until_advertised_again() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100)
    assert rx.window == BUFFER_BYTES - 100  # as last advertised: the edge has not moved
    assert rx.advertise() == BUFFER_BYTES
    assert rx.adv_right == DATA + 100 + BUFFER_BYTES


def test_advertise_moves_the_edge_only_by_at_least_one_mss() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + MSS_BYTES - 1)
    assert rx.advertise() == BUFFER_BYTES - (MSS_BYTES - 1)
    assert rx.adv_right == DATA + BUFFER_BYTES
    deliver(rx, DATA + MSS_BYTES - 1, DATA + MSS_BYTES)
    assert rx.advertise() == BUFFER_BYTES


def test_advertise_with_a_small_buffer_moves_by_half_of_it() -> None:
    buffer_bytes = 3 * MSS_BYTES // 2  # half of it is less than one MSS
    rx = receiver(buffer_bytes=buffer_bytes)
    deliver(rx, DATA, DATA + buffer_bytes // 2 - 1)
    assert rx.advertise() == buffer_bytes - (buffer_bytes // 2 - 1)
    deliver(rx, DATA + buffer_bytes // 2 - 1, DATA + buffer_bytes // 2)
    assert rx.advertise() == buffer_bytes


def test_advertise_records_the_last_ack_sent() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 10)
    assert rx.last_ack_sent == DATA
    rx.advertise()
    assert rx.last_ack_sent == DATA + 10


def test_right_edge_never_moves_left() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 1000)
    rx.advertise()
    edge = rx.adv_right
    rx.paused = True
    deliver(rx, DATA + 1000, DATA + 1500)
    rx.buffer_bytes = 1000  # even were the buffer to shrink, what was offered stays offered
    assert rx.advertise() == edge - (DATA + 1500)
    assert rx.adv_right == edge


# -- the cap on out-of-order pieces -------------------------------------------------------------


def test_out_of_order_pieces_cap_scales_with_the_window() -> None:
    assert receiver().max_ooo_pieces == MIN_OOO_PIECES
    many = receiver(buffer_bytes=2000 * MSS_BYTES)
    assert many.max_ooo_pieces == 4000


def test_out_of_order_pieces_beyond_the_cap_are_dropped() -> None:
    rx = receiver(buffer_bytes=4 * MIN_OOO_PIECES)
    for i in range(MIN_OOO_PIECES):
        deliver(rx, DATA + 2 + 2 * i, DATA + 3 + 2 * i)  # one octet, a hole before each
    reasm = rx.ooo
    assert reasm is not None and len(reasm.starts) == MIN_OOO_PIECES and rx.ooo_dropped == 0
    beyond = DATA + 2 + 2 * MIN_OOO_PIECES
    deliver(rx, beyond, beyond + 1)
    assert rx.ooo_dropped == 1
    assert reasm.ranges.find(beyond) is None
    assert rx.ack_now  # the ACK still shows the hole
    got = deliver(rx, DATA, DATA + 2)  # the first hole: in order, never capped
    assert got == stream(DATA, DATA + 3)
    assert rx.ooo is reasm and len(reasm.starts) == MIN_OOO_PIECES - 1
    deliver(rx, beyond, beyond + 1)
    assert reasm.ranges.find(beyond) == (beyond, beyond + 1)


# -- paused reading -----------------------------------------------------------------------------


def test_paused_reading_holds_data_and_shrinks_the_window() -> None:
    rx = receiver()
    rx.paused = True
    assert deliver(rx, DATA, DATA + 1000) == b""
    assert rx.held_bytes == 1000 and rx.rcv_nxt == DATA + 1000
    assert rx.advertise() == BUFFER_BYTES - 1000
    deliver(rx, DATA + 2000, DATA + 2100)
    assert deliver(rx, DATA + 1000, DATA + 2000) == b""  # the hole fills: drained into held
    assert rx.held_bytes == 2100
    assert rx.advertise() == BUFFER_BYTES - 2100


def test_take_held_hands_over_in_order_and_reopens_the_window() -> None:
    rx = receiver()
    rx.paused = True
    deliver(rx, DATA, DATA + 500)
    deliver(rx, DATA + 500, DATA + 900)
    rx.advertise()
    rx.paused = False
    assert b"".join(bytes(chunk) for chunk in rx.take_held()) == stream(DATA, DATA + 900)
    assert rx.held_bytes == 0 and rx.held is None
    assert rx.take_held() == []
    assert rx.advertise() == BUFFER_BYTES


def test_window_update_due_once_reading_frees_enough() -> None:
    rx = receiver()
    rx.paused = True
    deliver(rx, DATA, DATA + BUFFER_BYTES)
    assert rx.advertise() == 0
    assert not rx.window_update_due()
    rx.paused = False
    rx.take_held()
    assert rx.window_update_due()
    rx.advertise()
    assert not rx.window_update_due()


def test_window_update_not_due_for_a_small_opening() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 3 * MSS_BYTES)
    rx.advertise()
    deliver(rx, DATA + 3 * MSS_BYTES, DATA + 4 * MSS_BYTES)
    # one MSS freed: not the min(buffer/2, 2 MSS) that makes an update worth sending, and the
    # window left (BUFFER - 1 MSS) is still at least one MSS
    assert not rx.window_update_due()
    deliver(rx, DATA + 4 * MSS_BYTES, DATA + 5 * MSS_BYTES)
    assert rx.window_update_due()


# -- delayed ACKs -------------------------------------------------------------------------------


def test_first_in_order_segment_sets_a_delayed_ack_deadline() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100, now=NOW_S)
    assert not rx.ack_now
    assert delayed_ack_deadline(rx) == NOW_S + DELAYED_ACK_S


def test_second_in_order_segment_is_acknowledged_at_once() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100, now=NOW_S)
    deliver(rx, DATA + 100, DATA + 200, now=NOW_S + 0.01)
    assert rx.ack_now
    assert delayed_ack_deadline(rx) == NOW_S + DELAYED_ACK_S  # not pushed back


def test_count_for_ack_without_delay_acknowledges_at_once() -> None:
    rx = receiver()
    rx.count_for_ack(NOW_S, 0.0)
    assert rx.ack_now and delayed_ack_deadline(rx) is None


def test_count_for_ack_counts_segments_not_octets() -> None:
    rx = receiver()
    rx.count_for_ack(NOW_S, DELAYED_ACK_S)
    assert not rx.ack_now and rx.segs_unacked == 1
    rx.count_for_ack(NOW_S + 0.001, DELAYED_ACK_S)
    assert rx.ack_now and rx.segs_unacked == 2


def test_on_ack_sent_resets_the_delayed_ack() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100, now=NOW_S)
    rx.on_ack_sent()
    assert delayed_ack_deadline(rx) is None
    assert not rx.ack_now and rx.segs_unacked == 0
    deliver(rx, DATA + 100, DATA + 200, now=NOW_S + 1.0)
    assert not rx.ack_now  # counting starts again: this is the first
    assert delayed_ack_deadline(rx) == NOW_S + 1.0 + DELAYED_ACK_S


# -- TS.Recent ----------------------------------------------------------------------------------


def test_ts_recent_taken_from_a_segment_covering_the_last_ack_sent() -> None:
    rx = receiver()
    rx.update_ts_recent(1000, DATA, NOW_S)
    assert (rx.ts_recent, rx.ts_recent_at) == (1000, NOW_S)
    rx.update_ts_recent(1001, DATA - 10, NOW_S + 1.0)  # starts before Last.ACK.sent: covers it
    assert (rx.ts_recent, rx.ts_recent_at) == (1001, NOW_S + 1.0)


def test_ts_recent_ignores_a_segment_beyond_the_last_ack_sent() -> None:
    rx = receiver()
    rx.update_ts_recent(1000, DATA, NOW_S)
    rx.update_ts_recent(2000, DATA + 100, NOW_S + 1.0)  # out of order: after a hole
    assert (rx.ts_recent, rx.ts_recent_at) == (1000, NOW_S)


def test_ts_recent_follows_last_ack_sent_as_acks_go_out() -> None:
    rx = receiver()
    deliver(rx, DATA, DATA + 100)
    rx.update_ts_recent(1000, DATA + 100, NOW_S)
    assert rx.ts_recent is None  # no ACK for DATA + 100 has gone out yet
    rx.advertise()
    rx.update_ts_recent(1000, DATA + 100, NOW_S)
    assert rx.ts_recent == 1000


def test_ts_recent_never_moves_back() -> None:
    rx = receiver()
    rx.update_ts_recent(1000, DATA, NOW_S)
    rx.update_ts_recent(999, DATA, NOW_S + 1.0)
    assert (rx.ts_recent, rx.ts_recent_at) == (1000, NOW_S)
    rx.update_ts_recent(1000, DATA, NOW_S + 2.0)  # an equal value is taken (and its time)
    assert rx.ts_recent_at == NOW_S + 2.0


def test_ts_recent_compares_modulo_two_to_the_32() -> None:
    rx = receiver()
    rx.update_ts_recent(2**32 - 5, DATA, NOW_S)
    rx.update_ts_recent(3, DATA, NOW_S + 1.0)  # 8 ticks later, across the wrap
    assert rx.ts_recent == 3
    rx.update_ts_recent(2**32 - 1, DATA, NOW_S + 2.0)  # 4 ticks before: older
    assert rx.ts_recent == 3


# -- property test: any arrival order ----------------------------------------------------------

PROP_BUFFER_BYTES = 400
PROP_MSS_BYTES = 50

_arrival = st.one_of(
    st.tuples(st.just("segment"), st.integers(-PROP_MSS_BYTES, PROP_BUFFER_BYTES),
              st.integers(1, 2 * PROP_MSS_BYTES)),
    st.tuples(st.sampled_from(["pause", "resume", "advertise", "ack_sent"]), st.just(0), st.just(0)),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(_arrival, max_size=60))
def test_any_arrival_order_delivers_the_stream_in_order_within_the_window(
    ops: list[tuple[str, int, int]],
) -> None:
    rx = receiver(PROP_BUFFER_BYTES, PROP_MSS_BYTES)
    got = bytearray()
    min_move = min(PROP_BUFFER_BYTES // 2, PROP_MSS_BYTES)
    for name, offset, length in ops:
        edge = rx.adv_right
        if name == "segment":
            seq = max(DATA, rx.rcv_nxt + offset)
            if seq >= rx.adv_right:
                continue  # not acceptable: the connection drops it before the receiver
            got += deliver(rx, seq, seq + length)
        elif name == "pause":
            rx.paused = True
        elif name == "resume":
            rx.paused = False
            got += b"".join(bytes(chunk) for chunk in rx.take_held())
        elif name == "advertise":
            rx.advertise()
            assert rx.adv_right == edge or rx.adv_right - edge >= min_move
        else:
            rx.on_ack_sent()
        assert rx.adv_right >= edge  # the right edge never moves left
        assert rx.held_bytes + rx.ooo_bytes <= PROP_BUFFER_BYTES
        assert rx.held_bytes == sum(len(chunk) for chunk in rx.held or [])
        reasm = rx.ooo
        assert reasm is None or reasm.starts  # kept only while it holds something
        kept = reasm.pieces if reasm is not None else {}
        ranges = list(reasm.ranges) if reasm is not None else []
        pieces = [(start, start + len(kept[start])) for start in sorted(kept)]
        assert reasm is None or reasm.starts == sorted(kept)
        assert all(rx.rcv_nxt < a < b <= rx.adv_right for a, b in pieces)
        assert all(b1 <= a2 for (_, b1), (a2, _) in pairwise(pieces))
        assert all(kept[a] == stream(a, b) for a, b in pieces)
        covered = {seq for a, b in pieces for seq in range(a, b)}
        assert covered == {seq for a, b in ranges for seq in range(a, b)}
        blocks = rx.sack_blocks(4)
        reported = blocks[1:] if rx.dsack is not None else blocks
        assert all(block in ranges for block in reported)
        assert len(set(reported)) == len(reported)
    rx.paused = False
    got += b"".join(bytes(chunk) for chunk in rx.take_held())
    assert bytes(got) == stream(DATA, rx.rcv_nxt)


# -- a batch of segments, then one pass of output (the driver's one pass per wake-up) -----------

def test_a_batch_of_in_order_segments_is_acknowledged_by_one_ack_in_one_pass() -> None:
    from peer import ACK, BASIC, ISS, PEER_ISS, established

    from udptcp.core import DataReceived

    p = established(BASIC.replace(delayed_ack_s=0.04))
    seq = PEER_ISS + 1
    for i in range(10):  # what one wake-up of the socket hands over
        p.send(ACK, seq, ISS + 1, bytes([i]) * 100)
        seq += 100
    (ack,) = p.recv()  # one pass of the output: one ACK for all ten
    assert ack.flags == ACK and ack.ack == seq
    delivered = b"".join(bytes(e.data) for e in p.taken(DataReceived) if isinstance(e, DataReceived))
    assert delivered == b"".join(bytes([i]) * 100 for i in range(10))


def test_a_batch_with_a_hole_is_acknowledged_at_once_and_once() -> None:
    from peer import ACK, BASIC, ISS, PEER_ISS, established

    p = established(BASIC.replace(delayed_ack_s=0.04))
    p.send(ACK, PEER_ISS + 1 + 100, ISS + 1, b"y" * 100)  # the first 100 octets are missing
    p.send(ACK, PEER_ISS + 1 + 200, ISS + 1, b"z" * 100)
    (ack,) = p.recv()  # no delayed-ACK timer in front of it: out of order is told at once
    assert ack.ack == PEER_ISS + 1  # still waiting for the hole
