"""``LossRecovery`` on its own (``recovery_flight.Flight``): the retransmission timer (RFC 6298),
RACK's reordering window and timer (RFC 8985 6) and the tail loss probe (RFC 8985 7).

Fast retransmit without SACK, loss episodes, undo and leaving recovery are in
``test_recovery_episodes.py``.
"""

from __future__ import annotations

import pytest
from recovery_flight import (
    DELAYED_ACK_S,
    INITIAL_WINDOW_SEGMENTS,
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

from udptcp.core.congestion.base import INFINITE_SSTHRESH
from udptcp.core.recovery import DUP_THRESH, REO_WND_PERSIST_ROUNDS
from udptcp.core.timers import Timer

# -- the retransmission timer (RFC 6298) -------------------------------------------------------


def test_rto_armed_when_data_is_sent() -> None:
    f = Flight()
    assert not f.timers.is_armed(Timer.RTO)
    f.send(1, 2.0)
    assert f.timers.deadline(Timer.RTO) == pytest.approx(2.0 + RTO_S)


def test_a_second_send_does_not_move_the_rto() -> None:
    """RFC 6298 5.1: the timer is started only if it is not running."""
    f = Flight()
    f.send(1, 2.0)
    f.send(1, 2.1)
    assert f.timers.deadline(Timer.RTO) == pytest.approx(2.0 + RTO_S)


def test_an_ack_of_new_data_restarts_the_rto() -> None:
    """RFC 6298 5.3: restart it so that it expires one RTO after this ACK."""
    f = Flight()
    f.send(2, 0.0)
    f.ack(1, 0.15)
    restarted_at = f.timers.deadline(Timer.RTO)
    assert restarted_at == pytest.approx(0.15 + f.rtt.rto_s)
    assert restarted_at is not None and restarted_at > RTO_S


def test_a_sack_without_new_cumulative_data_leaves_the_rto() -> None:
    f = Flight()
    f.send(3, 0.0)
    f.ack(0, 0.15, sacked=[(2, 3)])
    assert f.timers.deadline(Timer.RTO) == pytest.approx(RTO_S)


def test_rto_cancelled_when_all_data_is_acknowledged() -> None:
    """RFC 6298 5.2."""
    f = Flight()
    f.send(3, 0.0)
    f.ack(3, 0.1)
    assert not f.timers.is_armed(Timer.RTO)
    assert not f.timers.is_armed(Timer.PROBE)
    assert f.timers.earliest() is None


def test_on_rto_backs_off_the_timeout() -> None:
    """RFC 6298 5.5: double the RTO; 5.6: restart the timer with it."""
    f = Flight()
    f.send(2, 0.0)
    f.rec.on_rto(RTO_S)
    assert f.rtt.backoff == 1
    assert f.rtt.rto_s == pytest.approx(2 * RTO_S)
    assert f.timers.deadline(Timer.RTO) == pytest.approx(RTO_S + 2 * RTO_S)
    f.rec.on_rto(3 * RTO_S)
    assert f.timers.deadline(Timer.RTO) == pytest.approx(3 * RTO_S + 4 * RTO_S)
    assert f.rec.timeouts == 2 and f.stats.timeouts == 2


def test_on_rto_marks_everything_not_sacked_lost() -> None:
    f = Flight()
    f.send(4, 0.0)
    f.ack(0, 0.1, sacked=[(2, 3)])
    f.rec.on_rto(1.0)
    assert f.lost() == [0, 1, 3]
    assert f.tx.pipe == 0
    first = f.tx.next_lost()
    assert first is not None and first.start == edge(0)  # RFC 6298 5.4: SND.UNA first


def test_on_rto_enters_recovery_after_rto_and_cancels_the_other_timers() -> None:
    f = Flight()
    f.send(3, 0.0)
    f.ack(0, 0.11, sacked=[(2, 3)])  # segments 0 and 1 wait out the reordering window
    assert f.timers.is_armed(Timer.REORDER)
    f.rec.on_rto(RTO_S)
    assert f.rec.in_recovery and not f.rec.in_fast_recovery
    assert f.rec.recovery_point == f.tx.nxt
    assert not f.timers.is_armed(Timer.PROBE) and not f.timers.is_armed(Timer.REORDER)
    assert f.timers.is_armed(Timer.RTO)


def test_on_rto_collapses_the_window_to_one_segment() -> None:
    """RFC 5681 3.1: cwnd = 1 SMSS, ssthresh = max(FlightSize / 2, 2 SMSS)."""
    f = Flight()
    f.send(8, 0.0)
    f.rec.on_rto(RTO_S)
    assert f.cc.cwnd == MSS_BYTES
    assert f.cc.ssthresh == 4 * MSS_BYTES


def test_an_ack_of_new_data_resets_the_count_of_timeouts() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.rec.on_rto(RTO_S)
    f.rec.on_rto(3 * RTO_S)
    f.ack(1, 3.5)
    assert f.rec.timeouts == 0
    assert f.stats.timeouts == 2


# -- RACK (RFC 8985 6) ---------------------------------------------------------------------------


def test_rack_marks_nothing_lost_without_a_later_sent_segment_delivered() -> None:
    f = Flight()
    f.send(3, 0.0)
    f.ack(1, 0.1)  # the oldest arrived, the others are merely outstanding
    f.rec.on_reorder_timer(5.0)
    assert f.lost() == []
    assert not f.timers.is_armed(Timer.REORDER)
    assert not f.rec.in_recovery


def test_rack_waits_for_the_reordering_window_before_marking_lost() -> None:
    f = reordered_flight()
    assert f.lost() == []
    assert f.timers.deadline(Timer.REORDER) == pytest.approx(0.0 + RTT_S + REO_WND_S)


def test_rack_marks_lost_when_the_reordering_window_has_passed() -> None:
    f = reordered_flight()
    f.rec.on_reorder_timer(RTT_S + REO_WND_S)
    assert f.lost() == [0]
    assert f.rec.in_recovery
    assert f.stats.loss_episodes == 1


def test_rack_arms_the_reorder_timer_for_the_rest() -> None:
    """Segment 1 was sent 10 ms after segment 0: its window ends 10 ms later."""
    f = reordered_flight()
    f.rec.on_reorder_timer(RTT_S + REO_WND_S)
    assert f.timers.deadline(Timer.REORDER) == pytest.approx(0.01 + RTT_S + REO_WND_S)
    f.rec.on_reorder_timer(0.01 + RTT_S + REO_WND_S)
    assert f.lost() == [0, 1]
    assert not f.timers.is_armed(Timer.REORDER)


def test_rack_never_marks_a_segment_sent_after_the_delivered_one() -> None:
    f = Flight()
    f.send(1, 0.0)
    f.send(1, 0.01)
    f.send(1, 0.05)  # sent after segment 1, which is the one SACKed
    f.ack(0, 0.11, sacked=[(1, 2)])
    f.rec.on_reorder_timer(0.2)
    f.rec.on_reorder_timer(10.0)
    assert f.lost() == [0]


def retransmitted_before_a_later_original() -> Flight:
    """Segment 0 sent at 0 s, segment 1 at 0.01 s (SACKed at 0.11 s), segment 2 at 0.05 s;
    segment 0 judged lost by RACK and resent at 0.13 s."""
    f = Flight()
    f.send(1, 0.0)
    f.send(1, 0.01)
    f.send(1, 0.05)
    f.ack(0, 0.11, sacked=[(1, 2)])
    f.rec.on_reorder_timer(RTT_S + REO_WND_S)
    assert f.lost() == [0]
    f.retransmit(0, 0.13)
    return f


def test_rack_orders_by_send_time_so_a_delivered_retransmission_marks_older_originals() -> None:
    """Segment 2 has a higher sequence number than the resent segment 0 but was sent before
    its retransmission: once that is delivered (a round trip later), segment 2 is lost."""
    f = retransmitted_before_a_later_original()
    f.ack(1, 0.13 + 1.2 * RTT_S)
    assert f.lost() == [2]


def test_rack_takes_a_retransmission_delivered_within_min_rtt_for_its_original() -> None:
    """RFC 8985 6.2: an ACK quicker than any round trip cannot be the retransmission's: the
    original arrived, and the retransmission's send time says nothing."""
    f = retransmitted_before_a_later_original()
    f.ack(1, 0.13 + RTT_S / 2)
    assert f.lost() == []


def test_reordering_window_is_min_rtt_over_four_outside_recovery() -> None:
    f = Flight()
    f.send(3, 0.0)
    assert f.rec.reo_wnd() == pytest.approx(REO_WND_S)


def test_reordering_window_is_zero_in_recovery_before_reordering_is_seen() -> None:
    """RFC 8985 6.2 step 4: in recovery with no reordering observed, a hole is a loss."""
    f = Flight()
    f.send(3, 0.0)
    f.rec.on_rto(RTO_S)
    assert f.rec.reo_wnd() == 0.0


def test_reordering_window_is_zero_once_dupthresh_segments_are_sacked() -> None:
    """With DUP_THRESH segments SACKed above a hole, the hole is lost at once (as fast
    retransmit would), not a reordering window later."""
    f = Flight()
    f.send(DUP_THRESH + 1, 0.0)
    f.ack(0, RTT_S, sacked=[(1, DUP_THRESH)])
    assert f.rec.reo_wnd() == pytest.approx(REO_WND_S)
    assert f.lost() == [] and f.timers.is_armed(Timer.REORDER)
    f.ack(0, RTT_S, sacked=[(1, DUP_THRESH + 1)])
    assert f.tx.sacked_count == DUP_THRESH
    assert f.lost() == [0]
    assert not f.timers.is_armed(Timer.REORDER)


def test_a_dsack_widens_the_reordering_window_even_in_recovery() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.ack(1, 0.1, dsack=(0, 1))
    assert f.rec.reordering_seen
    assert f.rec.reo_wnd() == pytest.approx(2 * REO_WND_S)
    f.rec.on_rto(1.0)
    assert f.rec.reo_wnd() == pytest.approx(2 * REO_WND_S)
    assert f.stats.dsacks_received == 1


def test_dsacks_widen_the_reordering_window_once_per_round_trip() -> None:
    f = Flight()
    f.send(3, 0.0)
    f.ack(1, 0.1, dsack=(0, 1))
    f.ack(2, 0.1, dsack=(1, 2))  # same round: SND.UNA has not passed what was sent then
    assert f.rec.reo_wnd_mult == 2
    f.send(1, 0.2)
    f.ack(3, 0.3)
    f.ack(4, 0.3, dsack=(3, 4))  # SND.UNA passed the first DSACK's round
    assert f.rec.reo_wnd_mult == 3
    assert f.rec.reo_wnd() == pytest.approx(3 * REO_WND_S)


def test_reordering_window_never_exceeds_srtt() -> None:
    f = Flight()
    for i in range(8):
        f.send(1, i * 0.2)
        f.ack(i + 1, i * 0.2 + RTT_S, dsack=(i, i + 1))
    assert f.rec.reo_wnd_mult > 4
    assert f.rtt.srtt_s is not None
    assert f.rec.reo_wnd() == pytest.approx(f.rtt.srtt_s)


def test_widened_reordering_window_returns_to_normal_after_sixteen_recoveries() -> None:
    f = Flight()
    f.send(1, 0.0)
    f.ack(1, 0.1, dsack=(0, 1))
    assert f.rec.reo_wnd_mult == 2
    now = 1.0
    for episode in range(REO_WND_PERSIST_ROUNDS):
        assert f.rec.reo_wnd_mult == 2, episode
        f.send(1, now)
        f.rec.on_rto(now + 1.0)
        f.ack(episode + 2, now + 1.1)
        assert not f.rec.in_recovery
        now += 2.0
    assert f.rec.reo_wnd_mult == 1


# -- the tail loss probe (RFC 8985 7) ---------------------------------------------------------


def test_probe_armed_at_two_srtt_with_several_segments_in_flight() -> None:
    f = Flight()
    f.send(2, 1.0)
    assert f.timers.deadline(Timer.PROBE) == pytest.approx(1.0 + 2 * RTT_S)


def test_probe_with_one_segment_in_flight_allows_for_a_delayed_ack() -> None:
    """RFC 8985 7.2: the lone segment's ACK may be delayed by the receiver."""
    f = Flight()
    f.send(1, 1.0)
    assert f.timers.deadline(Timer.PROBE) == pytest.approx(1.0 + 2 * RTT_S + DELAYED_ACK_S)


def test_no_probe_when_the_rto_comes_sooner() -> None:
    f = Flight()
    f.send(1, 0.0)  # RTO at 0.3 s
    f.send(1, 0.2)  # a probe would be at 0.4 s, after the RTO
    assert f.timers.deadline(Timer.RTO) == pytest.approx(RTO_S)
    assert not f.timers.is_armed(Timer.PROBE)


def test_no_probe_without_sack() -> None:
    f = Flight(sack=False)
    f.send(2, 0.0)
    assert f.timers.is_armed(Timer.RTO)
    assert not f.timers.is_armed(Timer.PROBE)


def test_no_probe_before_an_rtt_sample() -> None:
    f = Flight(rtt_sample_s=None)
    f.send(2, 0.0)
    assert f.timers.is_armed(Timer.RTO)
    assert not f.timers.is_armed(Timer.PROBE)


def test_probe_sent_stops_the_probe_timer_and_rearms_the_rto() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.send(1, 2 * RTT_S)
    f.rec.on_probe_sent(2 * RTT_S, retransmitted=False, tsval=None)
    assert not f.timers.is_armed(Timer.PROBE)
    assert f.timers.deadline(Timer.RTO) == pytest.approx(2 * RTT_S + RTO_S)
    assert f.stats.tail_loss_probes == 1


def test_no_second_probe_until_the_first_is_acknowledged() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.send(1, 0.2)
    f.rec.on_probe_sent(0.2, retransmitted=False, tsval=None)
    f.send(1, 0.25)
    assert not f.timers.is_armed(Timer.PROBE)
    f.ack(2, 0.3)  # not yet up to the probe
    assert not f.timers.is_armed(Timer.PROBE)
    f.ack(3, 0.35)  # the probe is acknowledged; one segment remains in flight
    assert f.timers.is_armed(Timer.PROBE)


def test_a_new_data_probe_acknowledged_is_no_congestion_event() -> None:
    f = Flight()
    f.send(2, 0.0)
    f.send(1, 0.2)
    f.rec.on_probe_sent(0.2, retransmitted=False, tsval=None)
    cwnd = f.cc.cwnd
    f.ack(3, 0.3)
    assert f.stats.loss_episodes == 0
    assert f.cc.cwnd >= cwnd


def probe_by_retransmission(cc: str = "cubic", flight_segments: int = 3) -> Flight:
    """``flight_segments`` sent at 0 s; at 0.2 s the last one is resent as a tail loss probe."""
    f = Flight(cc=cc)
    f.send(flight_segments, 0.0)
    last = flight_segments - 1
    f.tx.on_retransmit(f.segs[last], 2 * RTT_S)
    f.rec.on_probe_sent(2 * RTT_S, retransmitted=True, tsval=TSVAL_RETRANSMISSION)
    return f


def test_a_retransmitted_probe_that_repaired_a_loss_reduces_the_window_once() -> None:
    """RFC 8985 7.4.2: the probe's ACK without an echo of the original means the last
    segment was lost, and the probe repaired it: respond as to a loss, once."""
    f = probe_by_retransmission()
    f.ack(3, 0.3, tsecr=TSVAL_RETRANSMISSION)
    assert f.stats.loss_episodes == 1
    assert f.cc.ssthresh < INFINITE_SSTHRESH
    assert f.cc.cwnd == f.cc.ssthresh < INITIAL_WINDOW_SEGMENTS * MSS_BYTES
    assert not f.rec.in_recovery
    assert f.rec.tlp_end is None


def test_a_retransmitted_probe_whose_original_arrived_is_no_congestion_event() -> None:
    """The ACK echoes the original's timestamp: nothing was lost, the probe was a duplicate."""
    f = probe_by_retransmission()
    f.ack(3, 0.3, tsecr=TSVAL_ORIGINAL)
    assert f.stats.loss_episodes == 0
    assert f.cc.ssthresh == INFINITE_SSTHRESH


def test_newreno_halves_rather_than_collapses_after_a_repaired_tail_loss() -> None:
    f = probe_by_retransmission(cc="newreno", flight_segments=INITIAL_WINDOW_SEGMENTS)
    f.ack(INITIAL_WINDOW_SEGMENTS, 0.3)
    assert f.stats.loss_episodes == 1
    assert f.cc.cwnd >= INITIAL_WINDOW_SEGMENTS * MSS_BYTES // 2
