"""``LossRecovery`` on its own, over a real ``Sender``, ``RttEstimator``, NewReno and ``Timers``.

No connection and no segments: the tests put segments in the scoreboard by hand
(``Sender.on_send_new``), report them to recovery as the send path would (``on_sent``,
``on_retransmit``, ``on_probe_sent``), feed ACKs as plain numbers (``on_ack``,
``on_duplicate_ack``) and fire timers by calling their handlers at a chosen ``now``. They
cover the RTO (RFC 6298), RACK's reordering window and timer (RFC 8985 6), the tail loss probe
(RFC 8985 7), fast retransmit and NewReno without SACK (RFC 5681, RFC 6582), one window
reduction per loss episode, Eifel (RFC 3522) and DSACK (RFC 2883) undo, and leaving recovery.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from udptcp.core import congestion
from udptcp.core.congestion.base import INFINITE_SSTHRESH
from udptcp.core.recovery import DUP_THRESH, REO_WND_PERSIST_ROUNDS, LossRecovery
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import AckOutcome, Sender, SentSegment
from udptcp.core.stats import ConnectionStats
from udptcp.core.timers import Timer, Timers

MSS_BYTES = 1000
ISS = 10_000
INITIAL_WINDOW_SEGMENTS = 10
RTT_S = 0.1
"""The one RTT sample taken before each test (the handshake's): SRTT 0.1 s, RTTVAR 0.05 s."""
RTO_MIN_S = 0.2
RTO_S = RTT_S + max(RTO_MIN_S, 4 * RTT_S / 2)
"""0.3 s: RFC 6298's SRTT + max(G, 4 * RTTVAR) after that sample, with rto_min_s as G."""
DELAYED_ACK_S = 0.04
REO_WND_S = RTT_S / 4
"""RACK's initial reordering window: min_RTT / 4 (RFC 8985 6.2)."""
TSVAL_ORIGINAL = 1_000
TSVAL_RETRANSMISSION = 500_000


def edge(i: int) -> int:
    """The sequence number where data segment ``i`` (counting from 0) starts."""
    return ISS + 1 + i * MSS_BYTES


class Flight:
    """A sender past its handshake, with loss recovery and the parts it drives."""

    def __init__(self, *, sack: bool = True, rtt_sample_s: float | None = RTT_S, cc: str = "newreno") -> None:
        self.tx = Sender()
        self.tx.start(ISS)
        self.tx.una = ISS + 1  # the SYN is acknowledged
        self.tx.max_seg = MSS_BYTES
        self.tx.wnd = self.tx.max_wnd = 1 << 20
        self.rtt = RttEstimator(1.0, RTO_MIN_S, 60.0)
        if rtt_sample_s is not None:
            self.rtt.on_sample(rtt_sample_s)
        self.cc = congestion.create(cc, MSS_BYTES, INITIAL_WINDOW_SEGMENTS)
        self.stats = ConnectionStats()
        self.timers = Timers()
        self.rec = LossRecovery(self.tx, self.rtt, self.cc, self.stats, self.timers, DELAYED_ACK_S)
        self.rec.sack = sack
        self.segs: list[SentSegment] = []

    def send(self, count: int, now: float) -> list[SentSegment]:
        """``count`` new full segments go out at ``now``."""
        tx = self.tx
        tx.queue(bytes(count * MSS_BYTES))
        sent = []
        for _ in range(count):
            sent.append(tx.on_send_new(tx.nxt + MSS_BYTES, now))
            self.rec.on_sent(now)
        self.segs.extend(sent)
        return sent

    def retransmit(self, i: int, now: float, tsval: int | None = None) -> None:
        """Segment ``i`` goes out again, as the send path resends a lost one."""
        seg = self.segs[i]
        self.tx.on_retransmit(seg, now)
        self.rec.on_retransmit(seg.end, tsval, now)

    def ack(
        self, upto: int, now: float, *, sacked: Sequence[tuple[int, int]] = (),
        dsack: tuple[int, int] | None = None, tsecr: int | None = None, echo_age_s: float | None = None,
    ) -> AckOutcome:
        """An ACK of segments ``0..upto-1``, SACKing segments ``[a, b)`` for each ``(a, b)``,
        with an optional DSACK of segments ``[a, b)``."""
        blocks = [(edge(a), edge(b)) for a, b in sacked]
        dup = (edge(dsack[0]), edge(dsack[1])) if dsack is not None else None
        return self.rec.on_ack(edge(upto), blocks, dup, tsecr, echo_age_s, now)

    def lost(self) -> list[int]:
        """Indices of the segments judged lost and not yet resent."""
        return [i for i, seg in enumerate(self.segs) if seg.lost]


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


def reordered_flight() -> Flight:
    """Segment 0 sent at 0 s, segments 1 and 2 at 0.01 s; at 0.11 s segment 2 is SACKed."""
    f = Flight()
    f.send(1, 0.0)
    f.send(2, 0.01)
    f.ack(0, 0.11, sacked=[(2, 3)])
    return f


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
