"""Connection states (RFC 9293's names), every state change as data, and the named state sets.

This module is the one home of the state machine (h11's rule): the tables below *decide* where
an input takes a connection, and :func:`next_state` is the only reader of them. The connection
classifies what happened (the application closed, a FIN arrived, our FIN was acknowledged, a
timer ran out, ...) and asks; it never names a target state itself. Each table can be read
against RFC 9293's Figure 5 and section 3.10 line by line (``docs/PROTOCOL.md`` walks through
them). The sets at the end are every group of states the rest of the package asks about,
defined once, here.
"""

from __future__ import annotations

import enum
from typing import Final


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
    """What moved a connection from one state to the next: the inputs of the state machine."""

    __hash__ = object.__hash__

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

# -- the members as module constants -----------------------------------------------------------
# For the compiled core, which names states and causes on every segment: ``State.ESTABLISHED``
# is an attribute lookup on the enum class, which CPython routes through EnumType's
# ``__getattr__`` hook (some 900 instructions, compiled), where a Final module constant is one
# load. The same objects: ``CLOSED is State.CLOSED``.

CLOSED: Final = State.CLOSED
LISTEN: Final = State.LISTEN
SYN_SENT: Final = State.SYN_SENT
SYN_RCVD: Final = State.SYN_RCVD
ESTABLISHED: Final = State.ESTABLISHED
FIN_WAIT_1: Final = State.FIN_WAIT_1
FIN_WAIT_2: Final = State.FIN_WAIT_2
CLOSE_WAIT: Final = State.CLOSE_WAIT
CLOSING: Final = State.CLOSING
LAST_ACK: Final = State.LAST_ACK
TIME_WAIT: Final = State.TIME_WAIT

PASSIVE_OPEN: Final = Cause.PASSIVE_OPEN
ACTIVE_OPEN: Final = Cause.ACTIVE_OPEN
CLOSE: Final = Cause.CLOSE
ABORT: Final = Cause.ABORT
RCV_SYN: Final = Cause.RCV_SYN
RCV_SYN_ACK: Final = Cause.RCV_SYN_ACK
RCV_ACK_OF_SYN: Final = Cause.RCV_ACK_OF_SYN
RCV_FIN: Final = Cause.RCV_FIN
RCV_ACK_OF_FIN: Final = Cause.RCV_ACK_OF_FIN
RCV_RST: Final = Cause.RCV_RST
RCV_DATA_AFTER_CLOSE: Final = Cause.RCV_DATA_AFTER_CLOSE
RETRIES_EXHAUSTED: Final = Cause.RETRIES_EXHAUSTED
USER_TIMEOUT: Final = Cause.USER_TIMEOUT
TIME_WAIT_TIMEOUT: Final = Cause.TIME_WAIT_TIMEOUT
FIN_WAIT_2_TIMEOUT: Final = Cause.FIN_WAIT_2_TIMEOUT

# -- the tables: for each input, the state it leads to from each state where it does --------

ON_OPEN: Final[dict[tuple[State, Cause], State]] = {
    (S.CLOSED, C.PASSIVE_OPEN): S.LISTEN,
    (S.CLOSED, C.ACTIVE_OPEN): S.SYN_SENT,
}
"""The application's OPEN calls."""

ON_HANDSHAKE: Final[dict[tuple[State, Cause], State]] = {
    (S.LISTEN, C.RCV_SYN): S.SYN_RCVD,
    (S.SYN_SENT, C.RCV_SYN_ACK): S.ESTABLISHED,
    (S.SYN_SENT, C.RCV_SYN): S.SYN_RCVD,  # simultaneous open
    (S.SYN_RCVD, C.RCV_ACK_OF_SYN): S.ESTABLISHED,
    (S.TIME_WAIT, C.RCV_SYN): S.CLOSED,  # a new incarnation takes over the pair (RFC 6191)
}
"""Segments of the three-way handshake (Figure 5, upper half)."""

ON_CLOSE: Final[dict[State, State]] = {
    S.LISTEN: S.CLOSED,
    S.SYN_SENT: S.CLOSED,
    S.SYN_RCVD: S.FIN_WAIT_1,
    S.ESTABLISHED: S.FIN_WAIT_1,
    S.CLOSE_WAIT: S.LAST_ACK,
}
"""The application's CLOSE (RFC 9293 3.10.4): no more data from this side."""

ON_FIN: Final[dict[State, State]] = {
    S.ESTABLISHED: S.CLOSE_WAIT,
    S.FIN_WAIT_1: S.CLOSING,  # simultaneous close
    S.FIN_WAIT_2: S.TIME_WAIT,
}
"""The peer's FIN, once every octet before it has arrived (RFC 9293 3.10.7.4, eighth step)."""

ON_FIN_ACKED: Final[dict[State, State]] = {
    S.FIN_WAIT_1: S.FIN_WAIT_2,
    S.CLOSING: S.TIME_WAIT,
    S.LAST_ACK: S.CLOSED,
}
"""An ACK that covers our FIN (RFC 9293 3.10.7.4, fifth step)."""

ON_TIMEOUT: Final[dict[State, Cause]] = {
    S.TIME_WAIT: C.TIME_WAIT_TIMEOUT,
    S.FIN_WAIT_2: C.FIN_WAIT_2_TIMEOUT,
}
"""Which input the one closing timer is, by the state that armed it (both lead to CLOSED)."""

FAILURES: Final = (C.ABORT, C.RCV_RST, C.RETRIES_EXHAUSTED, C.USER_TIMEOUT)
"""Inputs that end a connection abnormally: from every state where they apply, to CLOSED."""

ON_FAILURE: Final[dict[tuple[State, Cause], State]] = {
    **{(state, C.ABORT): S.CLOSED for state in (S.LISTEN, S.SYN_SENT, S.SYN_RCVD, S.TIME_WAIT)},
    (S.SYN_SENT, C.RCV_RST): S.CLOSED,  # refused
    (S.SYN_SENT, C.RETRIES_EXHAUSTED): S.CLOSED,  # no answer to the SYNs
    (S.SYN_RCVD, C.RCV_RST): S.CLOSED,  # an active (simultaneous) open refused
    (S.SYN_RCVD, C.RETRIES_EXHAUSTED): S.CLOSED,
    (S.FIN_WAIT_1, C.RCV_DATA_AFTER_CLOSE): S.CLOSED,  # nobody reads it: reset (RFC 2525 2.17)
    (S.FIN_WAIT_2, C.RCV_DATA_AFTER_CLOSE): S.CLOSED,
    **{
        (state, cause): S.CLOSED
        for state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK)
        for cause in FAILURES
    },
}
"""Aborts, resets and exhausted retries."""

BACK_TO_LISTEN: Final[dict[tuple[State, Cause], State]] = {
    (S.SYN_RCVD, C.RCV_RST): S.LISTEN,
    (S.SYN_RCVD, C.RCV_SYN): S.LISTEN,
    (S.SYN_RCVD, C.RETRIES_EXHAUSTED): S.LISTEN,
}
"""A half-open connection that came from LISTEN goes back there (RFC 9293 3.10.7.4: "return
this connection to the LISTEN state"); these take precedence over the tables above for it."""

TRANSITIONS: Final[dict[tuple[State, Cause], State]] = {
    **ON_OPEN,
    **ON_HANDSHAKE,
    **{(state, C.CLOSE): new for state, new in ON_CLOSE.items()},
    **{(state, C.RCV_FIN): new for state, new in ON_FIN.items()},
    **{(state, C.RCV_ACK_OF_FIN): new for state, new in ON_FIN_ACKED.items()},
    **{(state, cause): S.CLOSED for state, cause in ON_TIMEOUT.items()},
    **ON_FAILURE,
}
"""Every edge for a connection opened actively (or a listener's own CLOSED/LISTEN edges)."""

EDGES: Final[frozenset[tuple[State, Cause, State]]] = frozenset(
    [(old, cause, new) for (old, cause), new in TRANSITIONS.items()]
    + [(old, cause, new) for (old, cause), new in BACK_TO_LISTEN.items()]
)
"""The whole diagram as a set of ``(old, input, new)`` edges, for review and for the tests."""


def next_state(state: State, cause: Cause, *, passive: bool) -> State | None:
    """Where ``cause`` takes a connection in ``state``; None if it changes nothing there.

    ``passive`` says the connection was opened from LISTEN, which decides where a failed
    handshake goes.
    """
    if passive:
        back = BACK_TO_LISTEN.get((state, cause))
        if back is not None:
            return back
    return TRANSITIONS.get((state, cause))


LEAVE_PEER_OPEN: Final = frozenset({
    C.ABORT, C.RETRIES_EXHAUSTED, C.USER_TIMEOUT, C.RCV_DATA_AFTER_CLOSE, C.FIN_WAIT_2_TIMEOUT,
})
"""Inputs that end a synchronized connection while its peer may still believe it open. The
peer learns by our RST, which it accepts only at exactly its RCV.NXT (RFC 5961 3.2): otherwise
it sends a challenge ACK, and learns from the RST that answers it (RFC 9293 3.10.7.1). After
a FIN_WAIT_2 timeout it learns only from the RST that answers its next segment."""


def leaves_peer_open(old: State, cause: Cause) -> bool:
    """Whether ending a connection in ``old`` by ``cause`` may leave its peer believing it open,
    so that what the peer sends next should still be answered with a RST for a while."""
    return cause in LEAVE_PEER_OPEN and old in SYNCHRONIZED and old is not S.TIME_WAIT


# -- the named sets of states ----------------------------------------------------------------

AWAITING_SYN: Final = frozenset({S.LISTEN, S.SYN_SENT})
"""States in which the peer's SYN has not arrived: the options of a segment are still an offer."""

AWAITING_PROOF: Final = frozenset({S.LISTEN, S.SYN_RCVD})
"""States in which a passive connection has not yet seen the handshake's third segment, so the
peer's address is not proven: what we send it is bounded (amplification limit)."""

HANDSHAKING: Final = frozenset({S.SYN_SENT, S.SYN_RCVD})
"""States in which our SYN (or SYN-ACK) is sent and retransmitted until acknowledged."""

SYNCHRONIZED: Final = frozenset(
    {S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT}
)
"""States in which both sides' sequence numbers are known."""

MAY_SEND: Final = frozenset({S.SYN_SENT, S.SYN_RCVD, S.ESTABLISHED, S.CLOSE_WAIT})
"""States in which the application may still queue data (it is sent once established)."""

WRITABLE: Final = frozenset({S.SYN_RCVD, S.ESTABLISHED, S.CLOSE_WAIT})
"""States in which a transport the application holds accepts ``write`` and ``write_eof``."""

MAY_RECEIVE: Final = frozenset({S.SYN_RCVD, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2})
"""States in which data from the peer is accepted (its FIN has not arrived)."""

OPEN_FOR_DATA: Final = frozenset({S.ESTABLISHED, S.CLOSE_WAIT})
"""States in which new data of ours may still be sent (and the path probed for its size)."""

SENDING: Final = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.CLOSING, S.LAST_ACK})
"""States in which data or our FIN may still be (re)transmitted."""

OUR_FIN_SENT: Final = frozenset({S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT})
"""States in which the application has closed its sending side."""

KEEPALIVE_STATES: Final = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_2})
"""States in which an idle connection is probed, if keepalive is on."""

USER_TIMEOUT_STATES: Final = (KEEPALIVE_STATES | OUR_FIN_SENT) - {S.TIME_WAIT}
"""States in which unacknowledged data or a silent peer can time out the connection."""

RESET_ON_ABORT: Final = frozenset({S.SYN_RCVD, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT})
"""States in which ABORT sends the peer a RST (RFC 9293 3.10.5)."""

RESET_ON_FAILURE: Final = SYNCHRONIZED | {S.SYN_RCVD}
"""States in which a connection that gives up (retries, user timeout) tells the peer by RST."""

ENDED: Final = frozenset({S.CLOSED, S.TIME_WAIT})
"""States in which the connection is over for its application (TIME_WAIT only guards the pair)."""
