"""The failure edges of RFC 9293's state diagram: RST, ABORT and exhausted retries, state by state.

``test_state_machine.py`` walks the diagram's normal edges; these are the ones that end a
connection abnormally, named ``test_<state>_<input>`` in the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from peer import (
    ACK,
    BASIC,
    FIN,
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

from udptcp.core import CloseReason, ConnectionFailed, ConnectionTerminated, State, StateChanged
from udptcp.core.checks import reset_for_unknown
from udptcp.core.state import Cause
from udptcp.wire import Segment

S = State


def _cause_of_close(p: Peer) -> Cause:
    changes = p.taken(StateChanged)
    assert isinstance(changes[-1], StateChanged) and changes[-1].new is S.CLOSED
    return changes[-1].cause


# -- RST at exactly RCV.NXT ends every synchronized state ---------------------------------------

@pytest.mark.parametrize(
    ("make", "rcv_nxt"),
    [
        (fin_wait_1, PEER_ISS + 1),
        (fin_wait_2, PEER_ISS + 1),
        (close_wait, PEER_ISS + 2),
        (closing, PEER_ISS + 2),
        (last_ack, PEER_ISS + 2),
    ],
    ids=["fin_wait_1", "fin_wait_2", "close_wait", "closing", "last_ack"],
)
def test_synchronized_state_rst_resets(make: Callable[..., Peer], rcv_nxt: int) -> None:
    p = make()
    p.send(RST, rcv_nxt)
    p.recv_nothing()  # never a RST for a RST
    assert p.is_in(S.CLOSED)
    assert _cause_of_close(p) is Cause.RCV_RST
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.RESET)]
    assert len(p.taken(ConnectionTerminated)) == 1


def test_fin_wait_2_rst_outside_window_is_ignored() -> None:
    p = fin_wait_2()
    p.send(RST, PEER_ISS + 1 + BASIC.recv_buffer_bytes + 10)  # beyond the window
    p.recv_nothing()
    assert p.state is S.FIN_WAIT_2


# -- ABORT from every state that has one ---------------------------------------------------------

@pytest.mark.parametrize(
    ("make", "sends_rst"),
    [
        (listen, False),
        (syn_sent, False),
        (syn_received, True),
        (established, True),
        (fin_wait_1, True),
        (fin_wait_2, True),
        (close_wait, True),
        (closing, False),
        (last_ack, False),
        (time_wait, False),
    ],
    ids=[
        "listen", "syn_sent", "syn_received", "established", "fin_wait_1", "fin_wait_2",
        "close_wait", "closing", "last_ack", "time_wait",
    ],
)
def test_state_abort_closes(make: Callable[..., Peer], sends_rst: bool) -> None:
    """RFC 9293 3.10.5: ABORT sends a RST where the peer may still send data or expect ours;
    in CLOSING, LAST_ACK and TIME_WAIT both sides are done sending, so it just closes."""
    p = make()
    p.conn.abort()
    segs = p.recv()
    if sends_rst:
        assert [s.flags & RST for s in segs] == [RST]
        assert segs[0].seq == p.conn.tx.nxt % 2**32
    else:
        assert segs == []
    assert p.is_in(S.CLOSED)
    assert _cause_of_close(p) is Cause.ABORT


# -- retransmissions that run out ----------------------------------------------------------------

@pytest.mark.parametrize("make", [closing, last_ack], ids=["closing", "last_ack"])
def test_fin_retries_exhausted_reset(make: Callable[..., Peer]) -> None:
    """The FIN of CLOSING and LAST_ACK is retransmitted with backoff, a bounded number of times;
    then the close cannot complete, and the connection resets."""
    p = make(BASIC.replace(retries=3))
    state = p.state
    gaps = []
    for _ in range(3):
        gaps.append(p.fire_timer())
        fin = p.recv_one()
        assert fin.flags == FIN | ACK and fin.seq == ISS + 1
        assert p.state is state
    assert gaps[1] == pytest.approx(2 * gaps[0]) and gaps[2] == pytest.approx(2 * gaps[1])
    p.fire_timer()
    assert p.recv_one().flags & RST
    assert p.is_in(S.CLOSED)
    assert _cause_of_close(p) is Cause.RETRIES_EXHAUSTED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.TIMED_OUT)]


def test_established_data_retries_exhausted_reset() -> None:
    p = established(BASIC.replace(retries=2))
    p.conn.send(b"never acknowledged")
    assert p.recv_one().payload == b"never acknowledged"
    for _ in range(2):
        p.fire_timer()
        assert p.recv_one().payload == b"never acknowledged"
    p.fire_timer()
    assert p.recv_one().flags & RST
    assert p.is_in(S.CLOSED)
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.TIMED_OUT)]


# -- data after a full close --------------------------------------------------------------------

def test_fin_wait_1_data_after_close_resets() -> None:
    """RFC 2525 2.17: data for an application that closed would be lost; tell the peer."""
    p = fin_wait_1()
    p.conn.close()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"too late")
    rst = p.recv_one()
    assert rst.flags & RST and rst.seq == ISS + 2
    assert p.is_in(S.CLOSED)
    assert _cause_of_close(p) is Cause.RCV_DATA_AFTER_CLOSE


# -- what answers what ----------------------------------------------------------------------------

def test_reset_for_unknown_never_answers_a_rst() -> None:
    for flags in (RST, RST | ACK):
        datagram = Segment(flags=flags, seq=1, ack=2, window=0).encode()
        assert reset_for_unknown(datagram) is None
    syn = Segment(flags=SYN, seq=41, ack=0, window=100).encode()
    answer = reset_for_unknown(syn)
    assert answer is not None
    rst = Segment.decode(answer)
    assert rst.flags == RST | ACK and (rst.seq, rst.ack) == (0, 42)
    ack = Segment(flags=ACK, seq=41, ack=99, window=100, payload=b"x").encode()
    answer = reset_for_unknown(ack)
    assert answer is not None
    assert Segment.decode(answer)[:3] == (RST, 99, 0)
    assert reset_for_unknown(b"\x01 not a segment") is None
