"""Every deadline of one connection, in one object (smoltcp's ``Timer`` is the model).

A connection has many clocks running — the handshake's retransmission, the RTO, the tail loss
probe, RACK's reordering window, the delayed ACK, the persist and keepalive probes, pacing, the
user timeout and the closing timer (TIME_WAIT or FIN_WAIT_2) — but its driver keeps exactly one
timer: :meth:`Timers.earliest`. The parts of the connection arm and cancel their own kinds here;
nothing else holds a deadline, so "what is pending" is answered in one place.
"""

from __future__ import annotations

from typing import Final


class Timer:
    """The kinds of deadline a connection keeps (each at most once).

    Plain ints rather than an ``enum``: naming one is on the per-segment path, and an enum
    member costs a descriptor lookup each time.
    """

    HANDSHAKE: Final = 0
    """Retransmit our SYN or SYN-ACK (RFC 6298 5.7's initial RTO, doubled each time), or repeat
    the ACK of an active open the server has not yet shown it received (``Handshake``)."""
    RTO: Final = 1
    """The retransmission timeout (RFC 6298)."""
    PROBE: Final = 2
    """RACK-TLP's probe timeout: send a tail loss probe (RFC 8985 7.2)."""
    REORDER: Final = 3
    """RACK's reordering window ends for a segment that may be lost (RFC 8985 6.2)."""
    DELAYED_ACK: Final = 4
    """Acknowledge a lone in-order segment (RFC 9293 3.8.6.3)."""
    PERSIST: Final = 5
    """Probe the peer's zero window (RFC 9293 3.8.6.1)."""
    KEEPALIVE: Final = 6
    """Probe an idle peer (RFC 9293 3.8.4)."""
    USER_TIMEOUT: Final = 7
    """Give up on a peer that acknowledges nothing (RFC 5482, Linux's TCP_USER_TIMEOUT)."""
    PACING: Final = 8
    """The pacer lets the next segment go."""
    CLOSE: Final = 9
    """Leave TIME_WAIT after 2*MSL, or an orphaned FIN_WAIT_2."""
    PATH_MTU: Final = 10
    """A path-MTU probe went unanswered, or it is time to probe for a larger size again."""

    NAMES: Final = ("HANDSHAKE", "RTO", "PROBE", "REORDER", "DELAYED_ACK", "PERSIST", "KEEPALIVE",
             "USER_TIMEOUT", "PACING", "CLOSE", "PATH_MTU")
    """The kinds' names, by number."""
    ALL: Final = tuple(range(len(NAMES)))
    """Every kind."""


_KINDS: Final = len(Timer.ALL)


class Timers:
    """One deadline (or None) per :class:`Timer` kind; times are the driver's ``now`` seconds."""

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: list[float | None] = [None] * _KINDS

    def arm(self, kind: int, at: float) -> None:
        """Set (or move) the deadline of ``kind``."""
        self._at[kind] = at

    def arm_if_idle(self, kind: int, at: float) -> None:
        """Set the deadline of ``kind`` unless it is already running (RFC 6298 5.1's rule)."""
        if self._at[kind] is None:
            self._at[kind] = at

    def cancel(self, kind: int) -> None:
        """Stop ``kind``."""
        self._at[kind] = None

    def cancel_all(self) -> None:
        """Stop every timer (the connection reached CLOSED or TIME_WAIT)."""
        self._at = [None] * _KINDS

    def deadline(self, kind: int) -> float | None:
        """When ``kind`` fires, or None if it is not running."""
        return self._at[kind]

    def is_armed(self, kind: int) -> bool:
        """``kind`` is running."""
        return self._at[kind] is not None

    def due(self, kind: int, now: float) -> bool:
        """``kind`` is running and its deadline has come."""
        at = self._at[kind]
        return at is not None and now >= at

    def fire(self, kind: int, now: float) -> bool:
        """If ``kind`` is due, stop it and say so (the caller then does what it stands for)."""
        at = self._at[kind]
        if at is not None and now >= at:
            self._at[kind] = None
            return True
        return False

    def earliest(self) -> float | None:
        """The first deadline of all, or None if nothing is pending: the driver's one timer."""
        best: float | None = None
        for at in self._at:
            if at is not None and (best is None or at < best):
                best = at
        return best

    def pending(self) -> dict[str, float]:
        """The running timers by name, for logs and tests."""
        return {Timer.NAMES[kind]: at for kind, at in enumerate(self._at) if at is not None}
