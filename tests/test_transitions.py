"""The state machine's table against RFC 9293's diagram, edge by edge, driven for real.

``EXPECTED`` below is written by hand from RFC 9293 Figure 5 and section 3.10 (plus the
failures and timeouts every TCP has): one scenario per edge, each building a connection in the
edge's first state with the fixtures of ``peer.py`` and feeding it the edge's input. Three
checks follow from it:

- the table in ``udptcp.core.state`` holds exactly these edges, no more, no fewer;
- driving each scenario takes exactly its edge (the table decides where a connection goes, so
  a wrong entry shows up as a wrong state here);
- no scenario takes an edge outside the table.

Each check is a function that reports differences; ``test_checks_catch_a_wrong_table`` runs
them against a deliberately wrong table (ESTABLISHED --rcv FIN--> LAST_ACK instead of
CLOSE_WAIT) and shows that each of them fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from peer import (
    ACK,
    BASIC,
    ISS,
    PEER_ISS,
    RST,
    SYN,
    Peer,
    close_wait,
    closing,
    established,
    fin_wait_1,
    fin_wait_2,
    last_ack,
    listen,
    syn_received,
    syn_sent,
    time_wait,
)

from udptcp.config import Config
from udptcp.core import state as machine
from udptcp.core.events import StateChanged
from udptcp.core.state import Cause, State

S = State
C = Cause
Edge = tuple[State, Cause, State]

FEW_RETRIES = BASIC.replace(retries=2, syn_retries=2)
USER_TIMEOUT = BASIC.replace(user_timeout_s=3.0)
KEEPALIVE = BASIC.replace(keepalive_s=1.0, keepalive_interval_s=1.0, keepalive_probes=2)
KEEPALIVE_USER_TIMEOUT = KEEPALIVE.replace(user_timeout_s=3.0)
LONG_S = 10_000.0
"""Longer than any timer of these configurations can run before it gives up."""
MAX_TIMER_FIRINGS = 1000


def _simultaneous_open(config: Config = BASIC) -> Peer:
    p = syn_sent(config)
    p.send(SYN, PEER_ISS)
    p.recv_one()
    return p


def _sending(make: Callable[[Config], Peer], config: Config) -> Peer:
    """A connection from ``make`` with a byte outstanding."""
    p = make(config)
    p.conn.send(b"x")
    p.recv()
    return p


def _closed_then(make: Callable[[Config], Peer]) -> Peer:
    """A connection from ``make`` that the application fully closed."""
    p = make(BASIC)
    p.conn.close()
    p.recv()
    return p


def _reopened_time_wait() -> Peer:
    p = time_wait()
    assert p.conn.successor_isn(PEER_ISS + 1_000_000) is not None
    p.conn.end_time_wait()
    return p


def _rst(make: Callable[[Config], Peer], rcv_nxt: int, config: Config = BASIC) -> Peer:
    p = make(config)
    p.send(RST, rcv_nxt)
    return p


def _wait(make: Callable[[Config], Peer], config: Config) -> Peer:
    """A connection from ``make`` left alone by its peer: timers fire, retransmissions go out."""
    p = make(config)
    return _idle(p)


def _idle(p: Peer) -> Peer:
    for _ in range(MAX_TIMER_FIRINGS):
        if p.conn.get_timer() is None or p.now > LONG_S:
            break
        p.fire_timer()
        p.recv()
    return p


def _scenarios() -> list[tuple[Edge, Callable[[], Peer]]]:
    """Every edge of the diagram and how to drive it."""
    p1, p2 = PEER_ISS + 1, PEER_ISS + 2  # RCV.NXT before and after the peer's FIN
    return [
        # Opening (Figure 5, upper half).
        ((S.CLOSED, C.PASSIVE_OPEN, S.LISTEN), listen),
        ((S.CLOSED, C.ACTIVE_OPEN, S.SYN_SENT), syn_sent),
        ((S.LISTEN, C.RCV_SYN, S.SYN_RCVD), syn_received),
        ((S.SYN_SENT, C.RCV_SYN_ACK, S.ESTABLISHED), established),
        ((S.SYN_SENT, C.RCV_SYN, S.SYN_RCVD), _simultaneous_open),
        ((S.SYN_RCVD, C.RCV_ACK_OF_SYN, S.ESTABLISHED), _established_passively),
        ((S.TIME_WAIT, C.RCV_SYN, S.CLOSED), _reopened_time_wait),
        # The application's CLOSE.
        ((S.LISTEN, C.CLOSE, S.CLOSED), lambda: _shut(listen())),
        ((S.SYN_SENT, C.CLOSE, S.CLOSED), lambda: _shut(syn_sent())),
        ((S.SYN_RCVD, C.CLOSE, S.FIN_WAIT_1), lambda: _shut(syn_received())),
        ((S.ESTABLISHED, C.CLOSE, S.FIN_WAIT_1), fin_wait_1),
        ((S.CLOSE_WAIT, C.CLOSE, S.LAST_ACK), last_ack),
        # The peer's FIN, and the ACK of ours.
        ((S.ESTABLISHED, C.RCV_FIN, S.CLOSE_WAIT), close_wait),
        ((S.FIN_WAIT_1, C.RCV_FIN, S.CLOSING), closing),
        ((S.FIN_WAIT_2, C.RCV_FIN, S.TIME_WAIT), time_wait),
        ((S.FIN_WAIT_1, C.RCV_ACK_OF_FIN, S.FIN_WAIT_2), fin_wait_2),
        ((S.CLOSING, C.RCV_ACK_OF_FIN, S.TIME_WAIT), lambda: _acked(closing())),
        ((S.LAST_ACK, C.RCV_ACK_OF_FIN, S.CLOSED), lambda: _acked(last_ack())),
        # Closing timers.
        ((S.TIME_WAIT, C.TIME_WAIT_TIMEOUT, S.CLOSED), lambda: _wait(time_wait, BASIC)),
        ((S.FIN_WAIT_2, C.FIN_WAIT_2_TIMEOUT, S.CLOSED), _orphaned_fin_wait_2),
        # ABORT: from every state but CLOSED.
        *[
            ((make_state, C.ABORT, S.CLOSED), _aborter(make))
            for make_state, make in (
                (S.LISTEN, listen), (S.SYN_SENT, syn_sent), (S.SYN_RCVD, syn_received),
                (S.ESTABLISHED, established), (S.FIN_WAIT_1, fin_wait_1),
                (S.FIN_WAIT_2, fin_wait_2), (S.CLOSE_WAIT, close_wait), (S.CLOSING, closing),
                (S.LAST_ACK, last_ack), (S.TIME_WAIT, time_wait),
            )
        ],
        # A RST at RCV.NXT.
        ((S.SYN_SENT, C.RCV_RST, S.CLOSED), _refused),
        ((S.SYN_RCVD, C.RCV_RST, S.LISTEN), lambda: _rst(syn_received, p1)),
        ((S.SYN_RCVD, C.RCV_RST, S.CLOSED), lambda: _rst(_simultaneous_open, p1)),
        ((S.ESTABLISHED, C.RCV_RST, S.CLOSED), lambda: _rst(established, p1)),
        ((S.FIN_WAIT_1, C.RCV_RST, S.CLOSED), lambda: _rst(fin_wait_1, p1)),
        ((S.FIN_WAIT_2, C.RCV_RST, S.CLOSED), lambda: _rst(fin_wait_2, p1)),
        ((S.CLOSE_WAIT, C.RCV_RST, S.CLOSED), lambda: _rst(close_wait, p2)),
        ((S.CLOSING, C.RCV_RST, S.CLOSED), lambda: _rst(closing, p2)),
        ((S.LAST_ACK, C.RCV_RST, S.CLOSED), lambda: _rst(last_ack, p2)),
        # A new SYN inside the window of a half-open passive connection (RFC 9293 3.10.7.4).
        ((S.SYN_RCVD, C.RCV_SYN, S.LISTEN), lambda: _syn_in_window(syn_received())),
        # Retransmissions exhausted.
        ((S.SYN_SENT, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _wait(syn_sent, FEW_RETRIES)),
        ((S.SYN_RCVD, C.RETRIES_EXHAUSTED, S.LISTEN), lambda: _wait(syn_received, FEW_RETRIES)),
        ((S.SYN_RCVD, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _wait(_simultaneous_open, FEW_RETRIES)),
        ((S.ESTABLISHED, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _given_up(established, FEW_RETRIES)),
        ((S.FIN_WAIT_1, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _wait(fin_wait_1, FEW_RETRIES)),
        ((S.FIN_WAIT_2, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _wait(fin_wait_2, KEEPALIVE)),
        ((S.CLOSE_WAIT, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _given_up(close_wait, FEW_RETRIES)),
        ((S.CLOSING, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _wait(closing, FEW_RETRIES)),
        ((S.LAST_ACK, C.RETRIES_EXHAUSTED, S.CLOSED), lambda: _wait(last_ack, FEW_RETRIES)),
        # The user timeout (RFC 5482).
        ((S.ESTABLISHED, C.USER_TIMEOUT, S.CLOSED), lambda: _given_up(established, USER_TIMEOUT)),
        ((S.FIN_WAIT_1, C.USER_TIMEOUT, S.CLOSED), lambda: _wait(fin_wait_1, USER_TIMEOUT)),
        ((S.FIN_WAIT_2, C.USER_TIMEOUT, S.CLOSED), lambda: _wait(fin_wait_2, KEEPALIVE_USER_TIMEOUT)),
        ((S.CLOSE_WAIT, C.USER_TIMEOUT, S.CLOSED), lambda: _given_up(close_wait, USER_TIMEOUT)),
        ((S.CLOSING, C.USER_TIMEOUT, S.CLOSED), lambda: _wait(closing, USER_TIMEOUT)),
        ((S.LAST_ACK, C.USER_TIMEOUT, S.CLOSED), lambda: _wait(last_ack, USER_TIMEOUT)),
        # Data for an application that closed (RFC 2525 2.17: answer it with RST).
        ((S.FIN_WAIT_1, C.RCV_DATA_AFTER_CLOSE, S.CLOSED), lambda: _data(_closed_then(established), ISS + 1)),
        ((S.FIN_WAIT_2, C.RCV_DATA_AFTER_CLOSE, S.CLOSED), lambda: _data(_closed_then(fin_wait_2), ISS + 2)),
    ]


def _established_passively() -> Peer:
    p = syn_received()
    p.send(ACK, PEER_ISS + 1, ISS + 1)
    return p


def _shut(p: Peer) -> Peer:
    p.conn.shutdown()
    return p


def _acked(p: Peer) -> Peer:
    p.send(ACK, PEER_ISS + 2, ISS + 2)
    return p


def _orphaned_fin_wait_2() -> Peer:
    p = fin_wait_2()
    p.conn.close()
    p.advance(BASIC.fin_wait_2_timeout_s + 1.0)
    return p


def _aborter(make: Callable[[], Peer]) -> Callable[[], Peer]:
    def drive() -> Peer:
        p = make()
        p.conn.abort()
        p.recv()
        return p

    return drive


def _refused() -> Peer:
    p = syn_sent()
    p.send(RST | ACK, 0, ISS + 1)
    return p


def _syn_in_window(p: Peer) -> Peer:
    p.send(SYN, PEER_ISS + 1)
    return p


def _given_up(make: Callable[[Config], Peer], config: Config) -> Peer:
    return _idle(_sending(make, config))


def _data(p: Peer, ack: int) -> Peer:
    p.send(ACK, PEER_ISS + 1, ack, b"late")
    return p


SCENARIOS = _scenarios()
EXPECTED: frozenset[Edge] = frozenset(edge for edge, _ in SCENARIOS)


def taken(p: Peer) -> set[Edge]:
    """The edges a connection took (its last datagrams are collected first, with their events)."""
    p.recv()
    return {(e.old, e.cause, e.new) for e in p.events if isinstance(e, StateChanged)}


# -- the three checks, as functions that report what is wrong -------------------------------

def table_differences(table: Iterable[Edge], expected: Iterable[Edge]) -> set[Edge]:
    """Edges in one of the two and not the other."""
    return set(table) ^ set(expected)


def edge_missed(edge: Edge, drive: Callable[[], Peer]) -> bool:
    """Driving the scenario does not take its edge."""
    return edge not in taken(drive())


def edges_outside(observed: Iterable[Edge], table: Iterable[Edge]) -> set[Edge]:
    """Edges a connection took that the table does not have."""
    return set(observed) - set(table)


# -- the tests -----------------------------------------------------------------------------

def test_table_is_the_rfc_diagram() -> None:
    assert table_differences(machine.EDGES, EXPECTED) == set()


@pytest.mark.parametrize(
    ("edge", "drive"), SCENARIOS, ids=[f"{o.name}-{c.name}-{n.name}" for (o, c, n), _ in SCENARIOS]
)
def test_every_edge_is_driven(edge: Edge, drive: Callable[[], Peer]) -> None:
    p = drive()
    assert not edge_missed(edge, lambda: p), f"expected {edge}, took {taken(p)}"
    assert edges_outside(taken(p), machine.EDGES) == set()


def test_checks_catch_a_wrong_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a table with ESTABLISHED --rcv FIN--> LAST_ACK, every check reports it."""
    right: Edge = (S.ESTABLISHED, C.RCV_FIN, S.CLOSE_WAIT)
    wrong: Edge = (S.ESTABLISHED, C.RCV_FIN, S.LAST_ACK)
    wrong_edges = (machine.EDGES - {right}) | {wrong}
    assert table_differences(wrong_edges, EXPECTED) == {right, wrong}

    monkeypatch.setitem(machine.TRANSITIONS, (S.ESTABLISHED, C.RCV_FIN), S.LAST_ACK)
    p = close_wait()
    assert edge_missed(right, lambda: p)
    assert edges_outside(taken(p), EXPECTED) == {wrong}


PEER_LEFT_OPEN: frozenset[Edge] = frozenset(
    {(old, cause, S.CLOSED)
     for old in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK)
     for cause in (C.ABORT, C.RETRIES_EXHAUSTED, C.USER_TIMEOUT)}
    | {(S.FIN_WAIT_1, C.RCV_DATA_AFTER_CLOSE, S.CLOSED), (S.FIN_WAIT_2, C.RCV_DATA_AFTER_CLOSE, S.CLOSED),
       (S.FIN_WAIT_2, C.FIN_WAIT_2_TIMEOUT, S.CLOSED)}
)
"""Ends after which the peer may still believe the connection open: we reset it from a
synchronized state (it may challenge the RST), or gave up waiting for its FIN. Not its own
RST, not the closing handshake, not a TIME_WAIT (the peer has closed), not a half-open one."""


def test_the_ends_that_may_leave_the_peer_open_are_flagged_for_the_driver() -> None:
    flagged = set()
    for (old, cause, new), drive in SCENARIOS:
        if new is S.CLOSED and drive().conn.peer_may_be_open:
            flagged.add((old, cause, new))
    assert flagged == PEER_LEFT_OPEN
