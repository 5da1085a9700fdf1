"""Is the peer still there? Keepalive, zero-window probes and the user timeout.

Three mechanisms watch a peer that has gone quiet, each with its own budget: keepalive probes
an idle connection (RFC 9293 3.8.4), the persist timer probes a zero window (3.8.6.1), and the
user timeout (RFC 5482, Linux's TCP_USER_TIMEOUT) bounds how long sent data may stay
unacknowledged. This module keeps their counters and arms their timers; when a timer runs out
it returns a :class:`Verdict` and the connection acts on it (a probe, or giving up).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

from udptcp.core.stats import ConnectionStats
from udptcp.core.timers import Timer, Timers

if TYPE_CHECKING:
    from udptcp.config import Config

MAX_PERSIST_BACKOFF_SHIFT: Final = 16
"""The persist interval doubles per unanswered probe, up to rto_max_s (and this many doublings)."""


class Verdict(enum.Enum):
    """What a liveness timer asks of the connection."""

    PROBE = "send a probe"
    GIVE_UP = "fail the connection"


class Liveness:
    """The probes and the timeout that notice a peer which stopped answering."""

    __slots__ = (
        "_config",
        "_first_probe_at",
        "_stats",
        "_timers",
        "keepalive_probes",
        "last_heard",
        "persist_backoff",
        "unacked_since",
        "window_probes",
    )

    def __init__(self, config: Config, timers: Timers, stats: ConnectionStats) -> None:
        self._config = config
        self._timers = timers
        self._stats = stats
        self.last_heard = 0.0
        """When the peer last sent anything."""
        self.keepalive_probes = 0
        """Keepalive probes sent since the peer was last heard from."""
        self._first_probe_at = 0.0
        self.window_probes = 0
        """Zero-window probes sent since the last ACK."""
        self.persist_backoff = 0
        self.unacked_since: float | None = None
        """Since when some sent data has waited for an acknowledgement (None: nothing waits)."""

    # -- what the connection reports ----------------------------------------------------------

    def start_keepalive(self, now: float) -> None:
        """The connection is established: an idle peer is probed from ``keepalive_s`` on."""
        if self._config.keepalive_s is not None:
            self._timers.arm(Timer.KEEPALIVE, now + self._config.keepalive_s)

    def heard(self, now: float, keepalive: bool) -> None:
        """A segment arrived; ``keepalive`` says the state is one where idle peers are probed."""
        self.last_heard = now
        keepalive_s = self._config.keepalive_s
        if keepalive and keepalive_s is not None:
            if self.keepalive_probes:
                self.keepalive_probes = 0  # it answered: start counting idle time anew
                self._timers.arm(Timer.KEEPALIVE, now + keepalive_s)
                self._refresh_user_timeout()
            elif not self._timers.is_armed(Timer.KEEPALIVE):
                self._timers.arm(Timer.KEEPALIVE, now + keepalive_s)
        elif self.keepalive_probes and self._config.user_timeout_s is not None:
            self._refresh_user_timeout()

    def data_sent(self, now: float) -> None:
        """New data went out: if nothing was waiting, the user timeout's clock starts."""
        if self.unacked_since is None:
            self.unacked_since = now
            self._refresh_user_timeout()

    def data_acked(self, now: float, in_flight: bool) -> None:
        """An ACK delivered data: the clock restarts for what is still in flight, if anything."""
        self.unacked_since = now if in_flight else None
        if self._config.user_timeout_s is not None:
            self._refresh_user_timeout()

    def ack_received(self, window_open: bool) -> None:
        """Any acceptable ACK: the window probes were answered; an open window ends persist."""
        self.window_probes = 0
        if window_open:
            self._timers.cancel(Timer.PERSIST)
            self.persist_backoff = 0

    def window_closed(self, now: float, rto_s: float) -> None:
        """Data waits for a zero window with nothing in flight: start probing it."""
        self._timers.arm_if_idle(Timer.PERSIST, now + rto_s)

    # -- the timers ---------------------------------------------------------------------------

    def on_persist_timer(self, now: float, rto_s: float) -> Verdict:
        """The persist timer ran out: probe the window again (backing off), or give up: after
        ``retries`` unanswered probes, or (as Linux's TCP_USER_TIMEOUT does for zero-window
        probes) once the peer has been silent for ``user_timeout_s``. A peer that answers its
        probes is kept, however long its window stays shut."""
        config = self._config
        user_timeout_s = config.user_timeout_s
        if self.window_probes >= config.retries or (
            self.window_probes and user_timeout_s is not None
            and now - self.last_heard >= user_timeout_s
        ):
            return Verdict.GIVE_UP
        self.window_probes += 1
        self.persist_backoff += 1
        self._stats.window_probes += 1
        interval_s = rto_s * (1 << min(self.persist_backoff, MAX_PERSIST_BACKOFF_SHIFT))
        self._timers.arm(Timer.PERSIST, now + min(interval_s, config.rto_max_s))
        return Verdict.PROBE

    def on_keepalive_timer(self, now: float, keepalive: bool, busy: bool) -> Verdict | None:
        """RFC 9293 3.8.4: after keepalive_s of silence with nothing outstanding, probe;
        unanswered probes fail the connection.

        ``keepalive`` says the state is one where idle peers are probed; ``busy`` that data
        is outstanding or queued, which the retransmission and persist timers watch with their
        larger budget (as Linux's keepalive timer leaves it to them).
        """
        config = self._config
        keepalive_s = config.keepalive_s
        if not keepalive or keepalive_s is None:
            return None
        timers = self._timers
        if busy:
            if self.keepalive_probes:
                self.keepalive_probes = 0
                self._refresh_user_timeout()
            timers.arm(Timer.KEEPALIVE, now + keepalive_s)
            return None
        idle_until = self.last_heard + keepalive_s  # one expression, so no float gap
        if now < idle_until and not self.keepalive_probes:
            timers.arm(Timer.KEEPALIVE, idle_until)
            return None
        if self.keepalive_probes >= config.keepalive_probes and config.user_timeout_s is None:
            return Verdict.GIVE_UP
        if not self.keepalive_probes:
            self._first_probe_at = now
        self.keepalive_probes += 1
        self._stats.keepalive_probes += 1
        timers.arm(Timer.KEEPALIVE, now + config.keepalive_interval_s)
        self._refresh_user_timeout()
        return Verdict.PROBE

    def _refresh_user_timeout(self) -> None:
        """Arm the user timeout from its inputs: unacknowledged data, or unanswered keepalives.

        Silence counts once a keepalive probe is out (as Linux): the connection fails when the
        peer has been silent for the user timeout, but never before the first probe had a
        probe interval to be answered in, however short the user timeout is.
        """
        limit_s = self._config.user_timeout_s
        if limit_s is None:
            return
        since = self.unacked_since
        deadline = None if since is None else since + limit_s
        if self.keepalive_probes:
            silent_until = max(
                self.last_heard + limit_s, self._first_probe_at + self._config.keepalive_interval_s
            )
            if deadline is None or silent_until < deadline:
                deadline = silent_until
        if deadline is None:
            self._timers.cancel(Timer.USER_TIMEOUT)
        else:
            self._timers.arm(Timer.USER_TIMEOUT, deadline)
