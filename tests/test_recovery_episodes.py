"""``LossRecovery`` on its own (``recovery_flight.Flight``): fast retransmit and NewReno without
SACK (RFC 5681, RFC 6582), one window reduction per loss episode, Eifel (RFC 3522) and DSACK
(RFC 2883) undo, and leaving recovery.
"""

from __future__ import annotations

from recovery_flight import (
    MSS_BYTES,
    REO_WND_S,
    RTO_S,
    RTT_S,
    TSVAL_ORIGINAL,
    TSVAL_RETRANSMISSION,
    Flight,
    edge,
    reordered_flight,
)

from udptcp.core.recovery import DUP_THRESH

# -- without SACK: fast retransmit and NewReno ---------------------------------------------------


def test_two_duplicate_acks_mark_nothing_lost() -> None:
    f = Flight(sack=False)
    f.send(4, 0.0)
    f.rec.on_duplicate_ack(0.1)
    f.rec.on_duplicate_ack(0.1)
    assert f.lost() == []
    assert not f.rec.in_recovery


def test_third_duplicate_ack_marks_the_first_segment_lost() -> None:
    """RFC 5681 3.2: fast retransmit."""
    f = Flight(sack=False)
    f.send(4, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.1)
    assert f.lost() == [0]
    assert f.stats.fast_retransmits == 1
    assert f.rec.in_fast_recovery
    assert f.rec.recovery_point == edge(4)


def test_more_duplicate_acks_do_not_mark_more_lost() -> None:
    f = Flight(sack=False)
    f.send(6, 0.0)
    for _ in range(2 * DUP_THRESH + 1):
        f.rec.on_duplicate_ack(0.1)
    assert f.lost() == [0]
    assert f.stats.fast_retransmits == 1


def test_with_sack_duplicate_acks_leave_loss_detection_to_rack() -> None:
    f = Flight(sack=True)
    f.send(4, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.1)
    assert f.lost() == []


def test_fast_retransmit_halves_the_flight() -> None:
    """RFC 5681 3.2 step 2: ssthresh = max(FlightSize / 2, 2 SMSS), cwnd = ssthresh (NewReno
    without the artificial inflation)."""
    f = Flight(sack=False)
    f.send(8, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.1)
    assert f.cc.ssthresh == 4 * MSS_BYTES
    assert f.cc.cwnd == 4 * MSS_BYTES


def test_a_partial_ack_marks_the_next_segment_lost() -> None:
    """RFC 6582 3.2 step 3: an ACK that does not reach the recovery point shows the next hole."""
    f = Flight(sack=False)
    f.send(4, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.1)
    f.retransmit(0, 0.1)
    # Acknowledged sooner than a round trip, so RACK takes nothing from it (it must be the
    # original's ACK): only NewReno's rule speaks. Segment 1 arrived, segment 2 did not.
    f.ack(2, 0.15)
    assert f.lost() == [2]
    assert f.rec.in_recovery
    assert f.stats.loss_episodes == 1


def test_a_partial_ack_without_sack_marks_only_the_next_segment_lost() -> None:
    f = Flight(sack=False)
    f.send(8, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.05)
    f.retransmit(0, 0.05)
    f.ack(2, 0.05 + RTT_S)  # a partial ACK: segment 2 is the next hole; 3..7 arrived
    assert f.lost() == [2]


def test_a_full_ack_ends_fast_recovery() -> None:
    f = Flight(sack=False)
    f.send(4, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.1)
    f.retransmit(0, 0.1)
    f.ack(4, 0.15)
    assert not f.rec.in_recovery
    assert f.rec.dupacks == 0


# -- one congestion event per episode -------------------------------------------------------------


def test_several_losses_in_one_episode_reduce_the_window_once() -> None:
    f = Flight()
    f.send(1, 0.0)
    f.send(9, 0.01)
    f.ack(0, 0.11, sacked=[(9, 10)])
    f.rec.on_reorder_timer(RTT_S + REO_WND_S)
    assert f.lost() == [0]
    reduced = f.cc.cwnd
    assert reduced == 5 * MSS_BYTES  # half the flight of 10 segments
    f.rec.on_reorder_timer(0.01 + RTT_S + REO_WND_S)
    assert f.lost() == list(range(9))
    assert f.cc.cwnd == reduced
    assert f.stats.loss_episodes == 1


def test_a_loss_after_recovery_ended_is_a_new_episode() -> None:
    f = reordered_flight()
    f.rec.on_reorder_timer(RTT_S + REO_WND_S)
    f.rec.on_reorder_timer(0.01 + RTT_S + REO_WND_S)
    f.retransmit(0, 0.14)
    f.retransmit(1, 0.14)
    f.ack(3, 0.24)
    assert not f.rec.in_recovery
    f.send(1, 0.3)
    f.send(2, 0.31)
    f.ack(3, 0.41, sacked=[(5, 6)])
    f.rec.on_reorder_timer(1.0)
    assert f.lost() == [3, 4]
    assert f.stats.loss_episodes == 2


# -- undo: Eifel (RFC 3522) and DSACK (RFC 2883) ---------------------------------------------------


def fast_retransmitted(flight_segments: int = 4) -> tuple[Flight, int]:
    """Without SACK: three duplicate ACKs, segment 0 resent with a timestamp; returns the
    flight and the window before the reduction."""
    f = Flight(sack=False)
    f.send(flight_segments, 0.0)
    cwnd = f.cc.cwnd
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.05)
    f.retransmit(0, 0.05, tsval=TSVAL_RETRANSMISSION)
    assert f.cc.cwnd < cwnd
    return f, cwnd


def test_eifel_undo_when_the_ack_echoes_the_original_timestamp() -> None:
    """The ACK of the retransmitted segment echoes a TSval older than the retransmission's:
    the original arrived, the loss was spurious, the reduction is undone."""
    f, cwnd = fast_retransmitted()
    f.ack(4, 0.06, tsecr=TSVAL_ORIGINAL)
    assert f.cc.cwnd == cwnd
    assert f.stats.spurious_undos == 1
    assert not f.rec.in_recovery


def test_no_eifel_undo_when_the_ack_echoes_the_retransmission() -> None:
    f, cwnd = fast_retransmitted()
    f.ack(4, 0.06 + RTT_S, tsecr=TSVAL_RETRANSMISSION)
    assert f.cc.cwnd < cwnd
    assert f.stats.spurious_undos == 0


def test_no_eifel_undo_from_an_ack_short_of_the_retransmission() -> None:
    """An old echo on an ACK that does not yet cover the retransmitted segment proves nothing."""
    f = Flight(sack=False)
    f.send(4, 0.0)
    for _ in range(DUP_THRESH):
        f.rec.on_duplicate_ack(0.05)
    f.retransmit(0, 0.05, tsval=TSVAL_RETRANSMISSION)
    assert f.rec.undo_seq == edge(1)
    cwnd = f.cc.cwnd
    f.rec.on_ack(edge(0) + MSS_BYTES // 2, [], None, TSVAL_ORIGINAL, None, 0.06)
    assert f.stats.spurious_undos == 0
    assert f.cc.cwnd == cwnd


def test_eifel_undo_after_an_rto_restores_the_window() -> None:
    f = Flight(sack=False)
    f.send(4, 0.0)
    cwnd = f.cc.cwnd
    f.rec.on_rto(RTO_S)
    assert f.cc.cwnd == MSS_BYTES
    f.retransmit(0, RTO_S, tsval=TSVAL_RETRANSMISSION)
    f.ack(4, RTO_S + 0.01, tsecr=TSVAL_ORIGINAL)
    assert f.cc.cwnd == cwnd
    assert f.stats.spurious_undos == 1


def rack_episode() -> tuple[Flight, int]:
    """With SACK: segment 0 sent at 0 s, segments 1 and 2 at 0.01 s and SACKed at 0.11 s;
    RACK judges segment 0 lost once its reordering window passed, and it is resent. Returns
    the window before the reduction."""
    f = Flight()
    f.send(1, 0.0)
    f.send(2, 0.01)
    f.ack(0, 0.11, sacked=[(1, 3)])  # slow start grows the window by what this delivers
    cwnd = f.cc.cwnd
    f.rec.on_reorder_timer(RTT_S + REO_WND_S)
    assert f.lost() == [0] and f.cc.cwnd < cwnd
    f.retransmit(0, RTT_S + REO_WND_S)
    return f, cwnd


def test_dsack_undo_when_every_retransmission_is_reported_duplicate() -> None:
    f, cwnd = rack_episode()
    f.ack(3, 0.13)  # the original arrived late: recovery ends, reduced
    assert not f.rec.in_recovery and f.cc.cwnd < cwnd
    f.ack(3, 0.2, dsack=(0, 1))  # then the retransmission arrived as a duplicate
    assert f.cc.cwnd == cwnd
    assert f.stats.spurious_undos == 1
    assert f.rec.reordering_seen


def test_no_dsack_undo_while_one_retransmission_is_unreported() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.send(2, 0.01)
    f.ack(0, 0.11, sacked=[(2, 4)])
    cwnd = f.cc.cwnd
    f.rec.on_reorder_timer(1.0)
    assert f.lost() == [0, 1]
    f.retransmit(0, 1.0)
    f.retransmit(1, 1.0)
    f.ack(4, 1.01)
    f.ack(4, 1.1, dsack=(0, 1))  # one of the two retransmissions was needless
    assert f.stats.spurious_undos == 0
    assert f.cc.cwnd < cwnd
    f.ack(4, 1.11, dsack=(1, 2))  # and now the other
    assert f.stats.spurious_undos == 1
    assert f.cc.cwnd == cwnd


def test_a_dsack_of_data_from_before_the_episode_does_not_undo() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.ack(1, 0.1)
    f.send(1, 0.2)
    f.send(2, 0.21)
    f.ack(1, 0.31, sacked=[(3, 5)])
    f.rec.on_reorder_timer(1.0)
    assert f.lost() == [1, 2] and f.stats.loss_episodes == 1
    reduced = f.cc.cwnd
    f.retransmit(1, 1.0)
    f.retransmit(2, 1.0)
    f.ack(5, 1.01, dsack=(0, 1))  # a duplicate of segment 0, acknowledged before the episode
    assert f.stats.spurious_undos == 0
    assert f.cc.cwnd == reduced


# -- leaving recovery --------------------------------------------------------------------------------


def test_recovery_lasts_until_snd_una_reaches_the_recovery_point() -> None:
    f, _ = rack_episode()
    assert f.rec.recovery_point == edge(3)
    f.ack(0, 0.2, sacked=[(1, 3)])
    assert f.rec.in_recovery
    f.ack(3, 0.3)
    assert not f.rec.in_recovery
    assert f.rec.recovery_point is None


def test_data_sent_during_recovery_does_not_move_the_recovery_point() -> None:
    f, _ = rack_episode()
    f.send(2, 0.13)
    assert f.rec.recovery_point == edge(3)
    f.ack(3, 0.25)
    assert not f.rec.in_recovery
    assert f.tx.in_flight


def test_recovery_after_an_rto_ends_at_its_recovery_point_too() -> None:
    f = Flight()
    f.send(3, 0.0)
    f.rec.on_rto(RTO_S)
    for i in range(3):
        f.retransmit(i, RTO_S)
    f.ack(2, RTO_S + RTT_S)
    assert f.rec.in_recovery and f.rec.after_rto
    f.ack(3, RTO_S + RTT_S + 0.01)
    assert not f.rec.in_recovery and not f.rec.after_rto
