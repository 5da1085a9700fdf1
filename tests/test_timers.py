"""``Timers``: the one object that owns every deadline of a connection.

Arming, moving and cancelling one kind; ``arm_if_idle`` (RFC 6298 5.1's "start it only if it
is not running"); ``due`` and ``fire`` (firing stops the timer, so it fires once); ``earliest``,
the driver's single timer over all kinds; ``cancel_all``; and ``pending`` for logs.
"""

from __future__ import annotations

from udptcp.core.timers import Timer, Timers

T0_S = 10.0
LATER_S = 25.0


def test_a_fresh_timers_object_has_nothing_pending() -> None:
    timers = Timers()
    assert timers.earliest() is None
    assert timers.pending() == {}
    for kind in Timer.ALL:
        assert not timers.is_armed(kind)
        assert timers.deadline(kind) is None


def test_arm_sets_the_deadline_of_that_kind_only() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    assert timers.is_armed(Timer.RTO)
    assert timers.deadline(Timer.RTO) == T0_S
    assert [kind for kind in Timer.ALL if timers.is_armed(kind)] == [Timer.RTO]


def test_arm_moves_a_running_timer_later_or_earlier() -> None:
    timers = Timers()
    timers.arm(Timer.KEEPALIVE, T0_S)
    timers.arm(Timer.KEEPALIVE, LATER_S)
    assert timers.deadline(Timer.KEEPALIVE) == LATER_S
    timers.arm(Timer.KEEPALIVE, T0_S - 5.0)
    assert timers.deadline(Timer.KEEPALIVE) == T0_S - 5.0


def test_cancel_stops_one_kind_and_leaves_the_others() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.arm(Timer.PERSIST, LATER_S)
    timers.cancel(Timer.RTO)
    assert not timers.is_armed(Timer.RTO)
    assert timers.deadline(Timer.RTO) is None
    assert timers.deadline(Timer.PERSIST) == LATER_S


def test_cancelling_an_idle_timer_is_harmless() -> None:
    timers = Timers()
    timers.cancel(Timer.CLOSE)
    assert not timers.is_armed(Timer.CLOSE)
    assert timers.earliest() is None


def test_arm_if_idle_starts_a_stopped_timer() -> None:
    timers = Timers()
    timers.arm_if_idle(Timer.RTO, T0_S)
    assert timers.deadline(Timer.RTO) == T0_S


def test_arm_if_idle_does_not_move_a_running_timer() -> None:
    """RFC 6298 5.1: a second send does not restart the retransmission timer."""
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.arm_if_idle(Timer.RTO, LATER_S)
    assert timers.deadline(Timer.RTO) == T0_S
    timers.arm_if_idle(Timer.RTO, T0_S - 5.0)  # not even earlier
    assert timers.deadline(Timer.RTO) == T0_S


def test_arm_if_idle_starts_again_after_a_cancel() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.cancel(Timer.RTO)
    timers.arm_if_idle(Timer.RTO, LATER_S)
    assert timers.deadline(Timer.RTO) == LATER_S


def test_due_is_false_before_the_deadline_and_true_from_it_on() -> None:
    timers = Timers()
    timers.arm(Timer.DELAYED_ACK, T0_S)
    assert not timers.due(Timer.DELAYED_ACK, T0_S - 0.001)
    assert timers.due(Timer.DELAYED_ACK, T0_S)
    assert timers.due(Timer.DELAYED_ACK, T0_S + 100.0)


def test_due_does_not_stop_the_timer() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    assert timers.due(Timer.RTO, T0_S)
    assert timers.due(Timer.RTO, T0_S)
    assert timers.deadline(Timer.RTO) == T0_S


def test_an_idle_timer_is_never_due() -> None:
    timers = Timers()
    assert not timers.due(Timer.RTO, 1e12)


def test_fire_before_the_deadline_does_nothing() -> None:
    timers = Timers()
    timers.arm(Timer.PROBE, T0_S)
    assert not timers.fire(Timer.PROBE, T0_S - 0.5)
    assert timers.deadline(Timer.PROBE) == T0_S


def test_fire_at_the_deadline_stops_the_timer_and_fires_once() -> None:
    timers = Timers()
    timers.arm(Timer.PROBE, T0_S)
    assert timers.fire(Timer.PROBE, T0_S)
    assert not timers.is_armed(Timer.PROBE)
    assert not timers.fire(Timer.PROBE, T0_S)
    assert not timers.fire(Timer.PROBE, LATER_S)


def test_fire_only_stops_the_kind_that_fired() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.arm(Timer.REORDER, T0_S)
    assert timers.fire(Timer.REORDER, T0_S)
    assert timers.deadline(Timer.RTO) == T0_S


def test_fire_of_an_idle_timer_is_false() -> None:
    timers = Timers()
    assert not timers.fire(Timer.KEEPALIVE, 1e9)


def test_earliest_is_the_first_deadline_over_every_kind() -> None:
    timers = Timers()
    timers.arm(Timer.CLOSE, 60.0)
    timers.arm(Timer.USER_TIMEOUT, 30.0)
    timers.arm(Timer.HANDSHAKE, 45.0)
    assert timers.earliest() == 30.0
    timers.cancel(Timer.USER_TIMEOUT)
    assert timers.earliest() == 45.0
    timers.arm(Timer.PACING, 1.0)
    assert timers.earliest() == 1.0


def test_earliest_follows_a_deadline_moved_later() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.arm(Timer.KEEPALIVE, LATER_S)
    timers.arm(Timer.RTO, LATER_S + 1.0)
    assert timers.earliest() == LATER_S


def test_earliest_is_none_once_every_timer_fired() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.arm(Timer.DELAYED_ACK, T0_S + 0.04)
    assert timers.fire(Timer.RTO, LATER_S)
    assert timers.fire(Timer.DELAYED_ACK, LATER_S)
    assert timers.earliest() is None


def test_a_deadline_at_zero_counts_as_armed() -> None:
    """0.0 is a time like any other (a driver's clock may start there), not "no deadline"."""
    timers = Timers()
    timers.arm(Timer.HANDSHAKE, 0.0)
    assert timers.is_armed(Timer.HANDSHAKE)
    assert timers.earliest() == 0.0
    timers.arm_if_idle(Timer.HANDSHAKE, 5.0)
    assert timers.deadline(Timer.HANDSHAKE) == 0.0
    assert timers.fire(Timer.HANDSHAKE, 0.0)


def test_cancel_all_stops_every_timer() -> None:
    timers = Timers()
    for i, kind in enumerate(Timer.ALL):
        timers.arm(kind, T0_S + i)
    timers.cancel_all()
    assert timers.earliest() is None
    assert timers.pending() == {}
    assert not any(timers.is_armed(kind) for kind in Timer.ALL)


def test_timers_arm_again_after_cancel_all() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.cancel_all()
    timers.arm(Timer.CLOSE, LATER_S)
    assert timers.pending() == {"CLOSE": LATER_S}


def test_pending_names_the_running_timers_with_their_deadlines() -> None:
    timers = Timers()
    timers.arm(Timer.RTO, T0_S)
    timers.arm(Timer.KEEPALIVE, LATER_S)
    timers.arm(Timer.PACING, 1.5)
    timers.cancel(Timer.PACING)
    assert timers.pending() == {"RTO": T0_S, "KEEPALIVE": LATER_S}


def test_separate_timers_objects_do_not_share_deadlines() -> None:
    one, other = Timers(), Timers()
    one.arm(Timer.RTO, T0_S)
    assert other.deadline(Timer.RTO) is None
    one.cancel_all()
    other.arm(Timer.RTO, LATER_S)
    assert one.deadline(Timer.RTO) is None
