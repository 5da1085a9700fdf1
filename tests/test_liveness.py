"""``Liveness`` on its own: keepalive (RFC 9293 3.8.4), the persist timer (3.8.6.1) and the
user timeout (RFC 5482, as Linux's TCP_USER_TIMEOUT).

Each test builds a ``Liveness`` over a plain ``Config``, ``Timers`` and ``ConnectionStats``,
reports what the connection would (segments heard, data sent and acknowledged, a closed
window) at hand-picked times, and checks the timers it arms and the ``Verdict`` it returns.
"""

from __future__ import annotations

from peer import ACK, BASIC, ISS, established

from udptcp.config import Config
from udptcp.core.events import ConnectionFailed
from udptcp.core.liveness import Liveness, Verdict
from udptcp.core.stats import ConnectionStats
from udptcp.core.timers import Timer, Timers

KEEPALIVE_S = 60.0
INTERVAL_S = 10.0
PROBES = 3
RTO_S = 1.0
RTO_MAX_S = 5.0
RETRIES = 4
USER_TIMEOUT_S = 90.0

KEEPALIVE = Config(keepalive_s=KEEPALIVE_S, keepalive_interval_s=INTERVAL_S, keepalive_probes=PROBES)


def liveness(config: Config = KEEPALIVE) -> tuple[Liveness, Timers, ConnectionStats]:
    timers = Timers()
    stats = ConnectionStats()
    return Liveness(config, timers, stats), timers, stats


def idle_from_zero(config: Config = KEEPALIVE) -> tuple[Liveness, Timers, ConnectionStats]:
    """Established at 0 s, last heard from at 0 s, nothing outstanding."""
    lv, timers, stats = liveness(config)
    lv.heard(0.0, keepalive=True)
    lv.start_keepalive(0.0)
    return lv, timers, stats


def probe_at(lv: Liveness, now_s: float) -> Verdict | None:
    return lv.on_keepalive_timer(now_s, keepalive=True, busy=False)


# -- keepalive ----------------------------------------------------------------------------------


def test_start_keepalive_arms_the_timer_keepalive_s_later() -> None:
    lv, timers, _ = liveness()
    lv.start_keepalive(5.0)
    assert timers.deadline(Timer.KEEPALIVE) == 5.0 + KEEPALIVE_S


def test_start_keepalive_without_keepalive_s_arms_nothing() -> None:
    lv, timers, _ = liveness(Config())
    lv.start_keepalive(5.0)
    lv.heard(6.0, keepalive=True)
    assert timers.pending() == {}


def test_idle_peer_is_probed_after_keepalive_s() -> None:
    lv, timers, stats = idle_from_zero()
    assert probe_at(lv, KEEPALIVE_S) is Verdict.PROBE
    assert lv.keepalive_probes == 1 and stats.keepalive_probes == 1
    assert timers.deadline(Timer.KEEPALIVE) == KEEPALIVE_S + INTERVAL_S


def test_a_peer_heard_recently_is_not_probed_and_the_timer_waits_for_its_idle_time() -> None:
    """Hearing from the peer does not move a running timer; the timer, firing, looks at when
    the peer was last heard and sleeps until keepalive_s after that."""
    lv, timers, stats = idle_from_zero()
    lv.heard(30.0, keepalive=True)
    assert timers.deadline(Timer.KEEPALIVE) == KEEPALIVE_S
    assert probe_at(lv, KEEPALIVE_S) is None
    assert stats.keepalive_probes == 0
    assert timers.deadline(Timer.KEEPALIVE) == 30.0 + KEEPALIVE_S


def test_heard_arms_keepalive_when_it_is_not_running() -> None:
    lv, timers, _ = liveness()
    lv.heard(12.0, keepalive=True)
    assert timers.deadline(Timer.KEEPALIVE) == 12.0 + KEEPALIVE_S


def test_a_busy_connection_is_not_probed() -> None:
    """Data outstanding or queued: the retransmission and persist timers watch the peer."""
    lv, timers, stats = idle_from_zero()
    assert lv.on_keepalive_timer(KEEPALIVE_S, keepalive=True, busy=True) is None
    assert stats.keepalive_probes == 0
    assert timers.deadline(Timer.KEEPALIVE) == 2 * KEEPALIVE_S


def test_busy_resets_the_count_of_unanswered_probes() -> None:
    lv, _, _ = idle_from_zero()
    assert probe_at(lv, KEEPALIVE_S) is Verdict.PROBE
    assert lv.on_keepalive_timer(KEEPALIVE_S + INTERVAL_S, keepalive=True, busy=True) is None
    assert lv.keepalive_probes == 0


def test_no_probe_in_a_state_that_is_not_probed() -> None:
    lv, _, stats = idle_from_zero()
    assert lv.on_keepalive_timer(KEEPALIVE_S, keepalive=False, busy=False) is None
    assert stats.keepalive_probes == 0


def test_keepalive_gives_up_after_keepalive_probes_unanswered() -> None:
    lv, _, stats = idle_from_zero()
    verdicts = [probe_at(lv, KEEPALIVE_S + i * INTERVAL_S) for i in range(PROBES + 1)]
    assert verdicts == [Verdict.PROBE] * PROBES + [Verdict.GIVE_UP]
    assert stats.keepalive_probes == PROBES


def test_keepalive_probes_go_keepalive_interval_s_apart() -> None:
    lv, timers, _ = idle_from_zero()
    deadlines = []
    for i in range(PROBES):
        probe_at(lv, KEEPALIVE_S + i * INTERVAL_S)
        deadlines.append(timers.deadline(Timer.KEEPALIVE))
    assert deadlines == [KEEPALIVE_S + (i + 1) * INTERVAL_S for i in range(PROBES)]


def test_with_a_user_timeout_keepalive_keeps_probing_past_keepalive_probes() -> None:
    """The user timeout, not the probe count, decides when to give up (as Linux)."""
    lv, _, stats = idle_from_zero(KEEPALIVE.replace(user_timeout_s=USER_TIMEOUT_S))
    verdicts = [probe_at(lv, KEEPALIVE_S + i * INTERVAL_S) for i in range(PROBES + 2)]
    assert verdicts == [Verdict.PROBE] * (PROBES + 2)
    assert stats.keepalive_probes == PROBES + 2


def test_an_answered_probe_resets_the_count_and_the_idle_time() -> None:
    lv, timers, _ = idle_from_zero()
    probe_at(lv, KEEPALIVE_S)
    probe_at(lv, KEEPALIVE_S + INTERVAL_S)
    answered_s = KEEPALIVE_S + INTERVAL_S + 0.1
    lv.heard(answered_s, keepalive=True)
    assert lv.keepalive_probes == 0
    assert timers.deadline(Timer.KEEPALIVE) == answered_s + KEEPALIVE_S
    # a whole new budget: keepalive_probes more probes before giving up
    start_s = answered_s + KEEPALIVE_S
    verdicts = [probe_at(lv, start_s + i * INTERVAL_S) for i in range(PROBES + 1)]
    assert verdicts == [Verdict.PROBE] * PROBES + [Verdict.GIVE_UP]


# -- persist ------------------------------------------------------------------------------------

PERSIST = Config(rto_max_s=RTO_MAX_S, retries=RETRIES)


def test_window_closed_arms_persist_one_rto_later() -> None:
    lv, timers, _ = liveness(PERSIST)
    lv.window_closed(3.0, RTO_S)
    assert timers.deadline(Timer.PERSIST) == 3.0 + RTO_S


def test_window_closed_again_does_not_move_the_persist_timer() -> None:
    lv, timers, _ = liveness(PERSIST)
    lv.window_closed(3.0, RTO_S)
    lv.window_closed(3.5, RTO_S)
    assert timers.deadline(Timer.PERSIST) == 3.0 + RTO_S


def test_persist_probes_back_off_exponentially_up_to_rto_max() -> None:
    lv, timers, stats = liveness(PERSIST.replace(retries=10))
    lv.window_closed(0.0, RTO_S)
    intervals = []
    now_s = RTO_S
    for _ in range(5):
        assert lv.on_persist_timer(now_s, RTO_S) is Verdict.PROBE
        at = timers.deadline(Timer.PERSIST)
        assert at is not None
        intervals.append(at - now_s)
        now_s = at
    assert intervals == [2 * RTO_S, 4 * RTO_S, RTO_MAX_S, RTO_MAX_S, RTO_MAX_S]
    assert stats.window_probes == 5


def test_persist_gives_up_after_retries_unanswered_probes() -> None:
    lv, _, stats = liveness(PERSIST)
    lv.window_closed(0.0, RTO_S)
    verdicts = [lv.on_persist_timer(float(i + 1), RTO_S) for i in range(RETRIES + 1)]
    assert verdicts == [Verdict.PROBE] * RETRIES + [Verdict.GIVE_UP]
    assert stats.window_probes == RETRIES


def test_with_a_user_timeout_unanswered_window_probes_give_up_once_the_peer_is_silent_that_long(
) -> None:
    """A peer that shut its window and died (issue 11's zero-window peers) is dropped after
    user_timeout_s of silence, not after retries probes of backoff up to rto_max_s."""
    lv, _, _ = liveness(PERSIST.replace(retries=15, rto_max_s=60.0, user_timeout_s=10.0))
    lv.heard(0.0, keepalive=False)
    lv.window_closed(0.0, RTO_S)
    assert lv.on_persist_timer(1.0, RTO_S) is Verdict.PROBE
    assert lv.on_persist_timer(5.0, RTO_S) is Verdict.PROBE
    assert lv.on_persist_timer(11.0, RTO_S) is Verdict.GIVE_UP
    alive, _, _ = liveness(PERSIST.replace(retries=15, rto_max_s=60.0, user_timeout_s=10.0))
    alive.window_closed(0.0, RTO_S)
    for now_s in (1.0, 5.0, 11.0, 30.0):
        assert alive.on_persist_timer(now_s, RTO_S) is Verdict.PROBE
        alive.heard(now_s, keepalive=False)  # it answers each probe
        alive.ack_received(window_open=False)


def test_answered_window_probes_never_give_up_but_keep_backing_off() -> None:
    """RFC 9293 3.8.6.1: a peer that answers its zero window is kept as long as it answers;
    the interval keeps its backoff while the window stays shut."""
    lv, timers, _ = liveness(PERSIST)
    lv.window_closed(0.0, RTO_S)
    now_s = RTO_S
    for _ in range(3 * RETRIES):
        assert lv.on_persist_timer(now_s, RTO_S) is Verdict.PROBE
        lv.ack_received(window_open=False)
        assert timers.is_armed(Timer.PERSIST)
        at = timers.deadline(Timer.PERSIST)
        assert at is not None
        now_s = at
    assert lv.window_probes == 0
    assert lv.persist_backoff == 3 * RETRIES


def test_an_open_window_ends_persist() -> None:
    lv, timers, _ = liveness(PERSIST)
    lv.window_closed(0.0, RTO_S)
    lv.on_persist_timer(RTO_S, RTO_S)
    lv.on_persist_timer(3 * RTO_S, RTO_S)
    lv.ack_received(window_open=True)
    assert not timers.is_armed(Timer.PERSIST)
    assert lv.persist_backoff == 0 and lv.window_probes == 0
    lv.window_closed(10.0, RTO_S)  # closes again: backoff starts over
    assert lv.on_persist_timer(10.0 + RTO_S, RTO_S) is Verdict.PROBE
    assert timers.deadline(Timer.PERSIST) == 10.0 + RTO_S + 2 * RTO_S


# -- user timeout -------------------------------------------------------------------------------

USER_TIMEOUT = Config(user_timeout_s=USER_TIMEOUT_S)


def test_user_timeout_armed_from_the_first_unacknowledged_send() -> None:
    lv, timers, _ = liveness(USER_TIMEOUT)
    lv.data_sent(10.0)
    assert timers.deadline(Timer.USER_TIMEOUT) == 10.0 + USER_TIMEOUT_S
    lv.data_sent(15.0)  # more data: the oldest unacknowledged send still counts
    assert timers.deadline(Timer.USER_TIMEOUT) == 10.0 + USER_TIMEOUT_S


def test_user_timeout_moves_on_each_ack_while_data_is_in_flight() -> None:
    lv, timers, _ = liveness(USER_TIMEOUT)
    lv.data_sent(10.0)
    lv.data_acked(20.0, in_flight=True)
    assert timers.deadline(Timer.USER_TIMEOUT) == 20.0 + USER_TIMEOUT_S
    lv.data_acked(50.0, in_flight=True)
    assert timers.deadline(Timer.USER_TIMEOUT) == 50.0 + USER_TIMEOUT_S


def test_user_timeout_cancelled_when_all_is_acknowledged() -> None:
    lv, timers, _ = liveness(USER_TIMEOUT)
    lv.data_sent(10.0)
    lv.data_acked(20.0, in_flight=False)
    assert not timers.is_armed(Timer.USER_TIMEOUT)
    assert lv.unacked_since is None
    lv.data_sent(30.0)  # the next send starts the clock anew
    assert timers.deadline(Timer.USER_TIMEOUT) == 30.0 + USER_TIMEOUT_S


def test_no_user_timeout_without_the_option() -> None:
    lv, timers, _ = liveness(Config())
    lv.data_sent(10.0)
    lv.data_acked(20.0, in_flight=True)
    assert not timers.is_armed(Timer.USER_TIMEOUT)


def test_unanswered_keepalives_make_silence_count_for_the_user_timeout() -> None:
    lv, timers, _ = idle_from_zero(KEEPALIVE.replace(user_timeout_s=USER_TIMEOUT_S))
    assert not timers.is_armed(Timer.USER_TIMEOUT)  # idle and nothing outstanding: no clock
    probe_at(lv, KEEPALIVE_S)
    assert timers.deadline(Timer.USER_TIMEOUT) == 0.0 + USER_TIMEOUT_S  # since last heard


def test_an_answered_keepalive_stops_the_user_timeout() -> None:
    lv, timers, _ = idle_from_zero(KEEPALIVE.replace(user_timeout_s=USER_TIMEOUT_S))
    probe_at(lv, KEEPALIVE_S)
    lv.heard(KEEPALIVE_S + 1.0, keepalive=True)
    assert not timers.is_armed(Timer.USER_TIMEOUT)


def test_unanswered_keepalives_do_not_extend_the_clock_of_older_unacked_data() -> None:
    """Data unacknowledged since before the peer was last heard: its send time counts."""
    lv, timers, _ = idle_from_zero(KEEPALIVE.replace(user_timeout_s=USER_TIMEOUT_S))
    lv.data_sent(5.0)
    lv.heard(20.0, keepalive=True)  # heard, but the data is still unacknowledged
    probe_at(lv, KEEPALIVE_S + 20.0)
    assert timers.deadline(Timer.USER_TIMEOUT) == 5.0 + USER_TIMEOUT_S


SHORT_USER_TIMEOUT_S = 30.0
"""Shorter than the keepalive idle time, as gRPC pairs them (2 h keepalive, 20 s timeout)."""
SHORT_UT = KEEPALIVE.replace(user_timeout_s=SHORT_USER_TIMEOUT_S)


def test_first_keepalive_probe_leaves_the_peer_time_to_answer_it() -> None:
    lv, timers, _ = idle_from_zero(SHORT_UT)
    assert probe_at(lv, KEEPALIVE_S) is Verdict.PROBE
    at = timers.deadline(Timer.USER_TIMEOUT)
    assert at is None or at > KEEPALIVE_S


def test_idle_connection_with_short_user_timeout_survives_its_first_keepalive() -> None:
    p = established(BASIC.replace(keepalive_s=KEEPALIVE_S, keepalive_interval_s=INTERVAL_S,
                                  keepalive_probes=PROBES, user_timeout_s=SHORT_USER_TIMEOUT_S))
    p.fire_timer()
    assert p.now == KEEPALIVE_S
    assert p.taken(ConnectionFailed) == []
    probe = p.recv_one()
    assert probe.flags == ACK and probe.seq == ISS  # SND.UNA - 1: the keepalive probe, no RST
