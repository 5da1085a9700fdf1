"""Connection states (RFC 9293's names) and the table of legal transitions.

The table is data so that it can be read against RFC 9293's Figure 5 and
``shared/spec/connection-management.md`` line by line. Every state change in the core goes
through ``Connection._set_state``, which refuses an edge that is not listed here.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """The eleven states of a TCP connection."""

    # Members compare by identity; hashing them by identity too keeps ``state in SOME_SET``
    # in C (Enum's own __hash__ is Python code, and the send path asks a few times a segment).
    __hash__ = object.__hash__

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RCVD = "SYN_RCVD"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"


class Cause(enum.Enum):
    """What moved a connection from one state to the next."""

    PASSIVE_OPEN = "passive open"
    ACTIVE_OPEN = "active open"
    CLOSE = "close"
    ABORT = "abort"
    RCV_SYN = "rcv SYN"
    RCV_SYN_ACK = "rcv SYN,ACK"
    RCV_ACK_OF_SYN = "rcv ACK of SYN"
    RCV_FIN = "rcv FIN"
    RCV_ACK_OF_FIN = "rcv ACK of FIN"
    RCV_RST = "rcv RST"
    RCV_DATA_AFTER_CLOSE = "rcv data after close"
    RETRIES_EXHAUSTED = "retransmissions exhausted"
    USER_TIMEOUT = "user timeout"
    TIME_WAIT_TIMEOUT = "2*MSL timeout"
    FIN_WAIT_2_TIMEOUT = "FIN_WAIT_2 timeout"


S = State
C = Cause

_FAILURES = (C.ABORT, C.RCV_RST, C.RETRIES_EXHAUSTED, C.USER_TIMEOUT)

TRANSITIONS: dict[tuple[State, Cause], frozenset[State]] = {
    # Opening (RFC 9293 Figure 5, upper half).
    (S.CLOSED, C.PASSIVE_OPEN): frozenset({S.LISTEN}),
    (S.CLOSED, C.ACTIVE_OPEN): frozenset({S.SYN_SENT}),
    (S.LISTEN, C.RCV_SYN): frozenset({S.SYN_RCVD}),
    (S.LISTEN, C.CLOSE): frozenset({S.CLOSED}),
    (S.LISTEN, C.ABORT): frozenset({S.CLOSED}),
    (S.SYN_SENT, C.RCV_SYN_ACK): frozenset({S.ESTABLISHED}),
    (S.SYN_SENT, C.RCV_SYN): frozenset({S.SYN_RCVD}),  # simultaneous open
    (S.SYN_SENT, C.CLOSE): frozenset({S.CLOSED}),
    (S.SYN_SENT, C.ABORT): frozenset({S.CLOSED}),
    (S.SYN_SENT, C.RCV_RST): frozenset({S.CLOSED}),  # refused
    (S.SYN_SENT, C.RETRIES_EXHAUSTED): frozenset({S.CLOSED}),  # timed out
    (S.SYN_RCVD, C.RCV_ACK_OF_SYN): frozenset({S.ESTABLISHED}),
    (S.SYN_RCVD, C.CLOSE): frozenset({S.FIN_WAIT_1}),
    (S.SYN_RCVD, C.ABORT): frozenset({S.CLOSED}),
    # A passive open that fails goes back to LISTEN (the listener forgets it); an active
    # (simultaneous) open that fails is CLOSED.
    (S.SYN_RCVD, C.RCV_RST): frozenset({S.LISTEN, S.CLOSED}),
    (S.SYN_RCVD, C.RCV_SYN): frozenset({S.LISTEN}),
    (S.SYN_RCVD, C.RETRIES_EXHAUSTED): frozenset({S.LISTEN, S.CLOSED}),
    # Closing (Figure 5, lower half).
    (S.ESTABLISHED, C.CLOSE): frozenset({S.FIN_WAIT_1}),
    (S.ESTABLISHED, C.RCV_FIN): frozenset({S.CLOSE_WAIT}),
    (S.FIN_WAIT_1, C.RCV_ACK_OF_FIN): frozenset({S.FIN_WAIT_2}),
    (S.FIN_WAIT_1, C.RCV_FIN): frozenset({S.CLOSING}),  # simultaneous close
    (S.FIN_WAIT_1, C.RCV_DATA_AFTER_CLOSE): frozenset({S.CLOSED}),
    (S.FIN_WAIT_2, C.RCV_FIN): frozenset({S.TIME_WAIT}),
    (S.FIN_WAIT_2, C.FIN_WAIT_2_TIMEOUT): frozenset({S.CLOSED}),
    (S.FIN_WAIT_2, C.RCV_DATA_AFTER_CLOSE): frozenset({S.CLOSED}),
    (S.CLOSE_WAIT, C.CLOSE): frozenset({S.LAST_ACK}),
    (S.CLOSING, C.RCV_ACK_OF_FIN): frozenset({S.TIME_WAIT}),
    (S.LAST_ACK, C.RCV_ACK_OF_FIN): frozenset({S.CLOSED}),
    (S.TIME_WAIT, C.TIME_WAIT_TIMEOUT): frozenset({S.CLOSED}),
    (S.TIME_WAIT, C.RCV_SYN): frozenset({S.CLOSED}),  # a new incarnation takes over (RFC 6191)
    (S.TIME_WAIT, C.ABORT): frozenset({S.CLOSED}),
}

# Resets, aborts and exhausted retries end every synchronized state.
for _state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK):
    for _cause in _FAILURES:
        TRANSITIONS[(_state, _cause)] = frozenset({S.CLOSED})

SYNCHRONIZED = frozenset(
    {S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT}
)
"""States in which both sides' sequence numbers are known."""

MAY_SEND = frozenset({S.SYN_SENT, S.SYN_RCVD, S.ESTABLISHED, S.CLOSE_WAIT})
"""States in which the application may still queue data (it is sent once established)."""

MAY_RECEIVE = frozenset({S.SYN_RCVD, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2})
"""States in which data from the peer is accepted (its FIN has not arrived)."""

KEEPALIVE_STATES = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_2})
"""States in which an idle connection is probed, if keepalive is on."""

OUR_FIN_SENT = frozenset({S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT})
"""States in which the application has closed its sending side."""
