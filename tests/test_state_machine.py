"""One test per edge of RFC 9293's state diagram (and the spec's scenarios), named after it.

Names read ``test_<state>_<input>[_<variant>]``. Each builds a connection in the state with a
fixture from ``peer.py`` and checks the segments it sends and the state it reaches.

As smoltcp groups its TCP tests, the tests come in one section per state, in the diagram's
order from CLOSED to TIME-WAIT, each under the state it starts in; a local call the state
refuses (``test_connect_twice_...``, ``test_send_after_shutdown_...``) sits under that state.
The last section holds the tests that span states.
"""

from __future__ import annotations

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

from udptcp.core import (
    CloseReason,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionTerminated,
    DataReceived,
    EofReceived,
    LocalProtocolError,
    SendComplete,
    State,
)
from udptcp.wire import Flags

S = State


# --- CLOSED ---


def test_closed_active_open_sends_syn() -> None:
    p = Peer()
    p.conn.connect(0.0)
    syn = p.recv_one()
    assert syn.flags == SYN and syn.seq == ISS and not syn.payload
    assert syn.mss == BASIC.announced_mss
    assert p.state is S.SYN_SENT


def test_closed_passive_open_listens() -> None:
    p = Peer()
    p.conn.listen()
    assert p.state is S.LISTEN
    p.recv_nothing()


# --- LISTEN ---


def test_listen_syn_answers_syn_ack() -> None:
    p = listen()
    p.send(SYN, PEER_ISS)
    synack = p.recv_one()
    assert synack.flags == SYN | ACK
    assert (synack.seq, synack.ack) == (ISS, PEER_ISS + 1)
    assert p.state is S.SYN_RCVD
    assert p.taken(ConnectionEstablished) == []  # no accept before the third segment


def test_listen_ack_answers_rst_at_its_ack() -> None:
    p = listen()
    p.send(ACK, 77, 1234)
    rst = p.recv_one()
    assert rst.flags == RST and rst.seq == 1234
    assert p.state is S.LISTEN


def test_listen_rst_is_ignored() -> None:
    p = listen()
    p.send(RST, 77)
    p.recv_nothing()
    assert p.state is S.LISTEN


def test_listen_close_goes_to_closed() -> None:
    p = listen()
    p.conn.shutdown()
    assert p.state is S.CLOSED


# --- SYN-SENT ---


def test_syn_sent_syn_ack_establishes_and_acknowledges() -> None:
    p = syn_sent()
    p.send(SYN | ACK, PEER_ISS, ISS + 1)
    ack = p.recv_one()
    assert ack.flags == ACK and (ack.seq, ack.ack) == (ISS + 1, PEER_ISS + 1)
    assert p.state is S.ESTABLISHED
    assert len(p.taken(ConnectionEstablished)) == 1


def test_syn_sent_syn_ack_with_data_and_fin_delivers_both() -> None:
    """RFC 9293 3.10.7.3: text and FIN in a SYN-ACK are processed once established."""
    p = syn_sent()
    p.send(SYN | ACK | FIN, PEER_ISS, ISS + 1, b"early")
    ack = p.recv_one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 1 + 5 + 1
    assert [e.data for e in p.taken(DataReceived) if isinstance(e, DataReceived)] == [b"early"]
    assert len(p.taken(EofReceived)) == 1
    assert p.path() == [S.CLOSED, S.SYN_SENT, S.ESTABLISHED, S.CLOSE_WAIT]


def test_syn_sent_syn_is_simultaneous_open() -> None:
    p = syn_sent()
    p.send(SYN, PEER_ISS)
    synack = p.recv_one()
    assert synack.flags == SYN | ACK and (synack.seq, synack.ack) == (ISS, PEER_ISS + 1)
    assert p.state is S.SYN_RCVD
    p.send(SYN | ACK, PEER_ISS, ISS + 1)  # the peer's own SYN-ACK, crossing ours
    assert p.is_in(S.ESTABLISHED)


def test_syn_sent_rst_with_acceptable_ack_is_refused() -> None:
    p = syn_sent()
    p.send(RST | ACK, 0, ISS + 1)
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.REFUSED)]
    p.recv_nothing()


@pytest.mark.parametrize("ack", [None, ISS, ISS + 2])
def test_syn_sent_rst_without_acceptable_ack_is_ignored(ack: int | None) -> None:
    p = syn_sent()
    p.send(RST if ack is None else RST | ACK, 0, ack or 0)
    assert p.state is S.SYN_SENT
    p.recv_nothing()


def test_syn_sent_syn_ack_of_old_syn_answers_rst() -> None:
    """The spec's old-duplicate scenario, client side: a SYN-ACK not for our current SYN."""
    p = syn_sent()
    p.send(SYN | ACK, PEER_ISS, ISS - 500)
    rst = p.recv_one()
    assert rst.flags == RST and rst.seq == (ISS - 500)
    assert p.state is S.SYN_SENT


def test_syn_sent_close_goes_to_closed() -> None:
    p = syn_sent()
    p.conn.shutdown()
    p.recv_nothing()
    assert p.state is S.CLOSED
    assert p.taken(ConnectionTerminated)


def test_syn_sent_retransmits_syn_with_backoff_then_times_out() -> None:
    p = syn_sent(BASIC.replace(syn_retries=3, rto_initial_s=1.0))
    gaps = []
    for _ in range(3):
        gaps.append(p.fire_timer())
        syn = p.recv_one()
        assert syn.flags == SYN and syn.seq == ISS
    assert gaps == [1.0, 2.0, 4.0]
    p.fire_timer()
    p.recv_nothing()
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.TIMED_OUT)]


def test_connect_twice_is_a_local_error() -> None:
    p = syn_sent()
    with pytest.raises(LocalProtocolError, match="needs a CLOSED connection"):
        p.conn.connect(0.0)


# --- SYN-RECEIVED ---
# The simultaneous-open RST test reaches SYN-RECEIVED from SYN-SENT (no passive open to return to).


def test_syn_received_ack_establishes() -> None:
    p = syn_received()
    p.send(ACK, PEER_ISS + 1, ISS + 1)
    assert p.state is S.ESTABLISHED
    assert len(p.taken(ConnectionEstablished)) == 1
    p.recv_nothing()


def test_syn_received_ack_with_data_establishes_and_delivers() -> None:
    p = syn_received()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"hello")
    assert p.state is S.ESTABLISHED
    ack = p.recv_one()
    assert ack.ack == PEER_ISS + 6


@pytest.mark.parametrize("ack", [ISS, ISS + 2])
def test_syn_received_bad_ack_answers_rst(ack: int) -> None:
    p = syn_received()
    p.send(ACK, PEER_ISS + 1, ack)
    rst = p.recv_one()
    assert rst.flags == RST and rst.seq == ack
    assert p.state is S.SYN_RCVD


def test_syn_received_rst_returns_passive_open_to_listen() -> None:
    """The spec's old-duplicate scenario, server side: the client's RST drops the half-open."""
    p = syn_received()
    p.send(RST, PEER_ISS + 1)
    assert p.state is S.LISTEN
    assert p.taken(ConnectionEstablished) == []
    assert p.taken(ConnectionTerminated)


def test_syn_received_rst_on_simultaneous_open_is_refused() -> None:
    p = syn_sent()
    p.send(SYN, PEER_ISS)
    p.recv_one()
    p.send(RST, PEER_ISS + 1)
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.REFUSED)]


def test_syn_received_duplicate_syn_repeats_syn_ack() -> None:
    p = syn_received()
    p.send(SYN, PEER_ISS)
    synack = p.recv_one()
    assert synack.flags == SYN | ACK and synack.ack == PEER_ISS + 1


def test_syn_received_retransmits_syn_ack_then_forgets() -> None:
    p = listen(BASIC.replace(syn_retries=2))
    # A SYN of 28 octets (options as a real client's): the amplification limit (three times
    # what the peer sent) leaves room for the SYN-ACK and its two retransmissions.
    p.send(SYN, PEER_ISS, mss=1380, sack_permitted=True)
    assert p.recv_one().flags == SYN | ACK
    for _ in range(2):
        p.fire_timer()
        assert p.recv_one().flags == SYN | ACK
    p.fire_timer()
    assert p.state is S.LISTEN
    assert p.taken(ConnectionEstablished) == []


def test_syn_received_close_sends_fin() -> None:
    p = syn_received()
    p.conn.shutdown()
    assert p.state is S.FIN_WAIT_1
    p.send(ACK, PEER_ISS + 1, ISS + 1)
    fin = p.recv_one()
    assert fin.flags == FIN | ACK and fin.seq == ISS + 1


# --- ESTABLISHED ---


def test_established_close_sends_fin() -> None:
    p = established()
    p.conn.shutdown()
    fin = p.recv_one()
    assert fin.flags == FIN | ACK and (fin.seq, fin.ack) == (ISS + 1, PEER_ISS + 1)
    assert p.state is S.FIN_WAIT_1


def test_established_fin_goes_to_close_wait() -> None:
    p = established()
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 1)
    ack = p.recv_one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 2  # the FIN took one number
    assert p.state is S.CLOSE_WAIT
    assert len(p.taken(EofReceived)) == 1


def test_established_rst_at_rcv_nxt_resets() -> None:
    p = established()
    p.send(RST, PEER_ISS + 1)
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.RESET)]


def test_established_rst_in_window_is_challenged() -> None:
    p = established()
    p.send(RST, PEER_ISS + 100)
    assert p.state is S.ESTABLISHED
    ack = p.recv_one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 1


def test_established_rst_outside_window_is_ignored() -> None:
    p = established()
    p.send(RST, PEER_ISS + 1 + BASIC.recv_buffer_bytes + 10)
    assert p.state is S.ESTABLISHED
    p.recv_nothing()


def test_established_syn_is_challenged() -> None:
    p = established()
    p.send(SYN, PEER_ISS + 1)
    assert p.state is S.ESTABLISHED
    assert p.recv_one().flags == ACK


def test_established_abort_sends_rst() -> None:
    p = established()
    p.conn.abort()
    rst = p.recv_one()
    assert rst.flags & RST and rst.seq == ISS + 1
    assert p.state is S.CLOSED


def test_established_segment_beyond_window_is_acknowledged_and_dropped() -> None:
    p = established()
    p.send(ACK, PEER_ISS + 1 + BASIC.recv_buffer_bytes, ISS + 1, b"far")
    ack = p.recv_one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 1
    assert p.conn.stats.dropped_out_of_window == 1


def test_established_old_segment_is_acknowledged_as_duplicate() -> None:
    p = established()
    p.send(ACK, PEER_ISS - 10, ISS + 1, b"old")
    ack = p.recv_one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 1
    assert p.conn.stats.duplicate_segments == 1


# --- FIN-WAIT-1 ---


def test_fin_wait_1_ack_of_fin_goes_to_fin_wait_2() -> None:
    p = fin_wait_1()
    p.send(ACK, PEER_ISS + 1, ISS + 2)
    assert p.state is S.FIN_WAIT_2
    assert p.taken(SendComplete)


def test_fin_wait_1_fin_is_simultaneous_close() -> None:
    p = fin_wait_1()
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 1)
    assert p.recv_one().ack == PEER_ISS + 2
    assert p.state is S.CLOSING
    p.send(ACK, PEER_ISS + 2, ISS + 2)
    assert p.is_in(S.TIME_WAIT)
    assert p.path()[-3:] == [S.FIN_WAIT_1, S.CLOSING, S.TIME_WAIT]


def test_fin_wait_1_fin_with_ack_of_fin_goes_to_time_wait() -> None:
    p = fin_wait_1()
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 2)
    assert p.state is S.TIME_WAIT
    assert p.recv_one().ack == PEER_ISS + 2


def test_fin_wait_1_retransmits_fin_with_backoff_then_resets() -> None:
    p = fin_wait_1(BASIC.replace(retries=3))
    gaps = []
    for _ in range(3):
        gaps.append(p.fire_timer())
        fin = p.recv_one()
        assert fin.flags == FIN | ACK and fin.seq == ISS + 1
    assert gaps[1] == pytest.approx(2 * gaps[0]) and gaps[2] == pytest.approx(2 * gaps[1])
    p.fire_timer()
    rst = p.recv_one()
    assert rst.flags & RST
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.TIMED_OUT)]


def test_send_after_shutdown_is_a_local_error() -> None:
    p = fin_wait_1()
    with pytest.raises(LocalProtocolError, match="closed for sending"):
        p.conn.send(b"x")


# --- FIN-WAIT-2 ---


def test_fin_wait_2_fin_goes_to_time_wait() -> None:
    p = fin_wait_2()
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 2)
    assert p.recv_one().ack == PEER_ISS + 2
    assert p.state is S.TIME_WAIT


def test_fin_wait_2_still_receives_data_after_half_close() -> None:
    p = fin_wait_2()
    p.send(ACK, PEER_ISS + 1, ISS + 2, b"reply")
    assert p.recv_one().ack == PEER_ISS + 6
    assert p.state is S.FIN_WAIT_2
    p.advance(3600)
    assert p.state is S.FIN_WAIT_2  # a half-close waits as long as it takes


def test_fin_wait_2_times_out_after_full_close() -> None:
    p = fin_wait_2(BASIC.replace(fin_wait_2_timeout_s=60.0))
    p.conn.close()
    p.advance(59.9)
    assert p.state is S.FIN_WAIT_2
    p.advance(0.2)
    assert p.is_in(S.CLOSED)


def test_fin_wait_2_data_after_full_close_resets() -> None:
    p = fin_wait_2()
    p.conn.close()
    p.send(ACK, PEER_ISS + 1, ISS + 2, b"nobody reads this")
    assert p.recv_one().flags & RST
    assert p.state is S.CLOSED


# --- CLOSE-WAIT ---


def test_close_wait_can_still_send() -> None:
    p = close_wait()
    p.conn.send(b"answer")
    seg = p.recv_one()
    assert seg.payload == b"answer" and seg.seq == ISS + 1


def test_close_wait_close_goes_to_last_ack() -> None:
    p = close_wait()
    p.conn.shutdown()
    fin = p.recv_one()
    assert fin.flags == FIN | ACK and (fin.seq, fin.ack) == (ISS + 1, PEER_ISS + 2)
    assert p.state is S.LAST_ACK


# --- CLOSING ---


def test_closing_ack_of_fin_goes_to_time_wait() -> None:
    p = closing()
    p.send(ACK, PEER_ISS + 2, ISS + 2)
    assert p.state is S.TIME_WAIT


# --- LAST-ACK ---


def test_last_ack_ack_of_fin_closes() -> None:
    p = last_ack()
    p.send(ACK, PEER_ISS + 2, ISS + 2)
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == []
    assert p.taken(ConnectionTerminated)


def test_last_ack_retransmits_fin() -> None:
    p = last_ack()
    p.fire_timer()
    fin = p.recv_one()
    assert fin.flags == FIN | ACK and fin.seq == ISS + 1
    assert p.state is S.LAST_ACK


# --- TIME-WAIT ---


def test_time_wait_lasts_two_msl() -> None:
    p = time_wait(BASIC.replace(msl_s=30.0))
    p.advance(59.9)
    assert p.state is S.TIME_WAIT
    p.advance(0.2)
    assert p.is_in(S.CLOSED)


def test_time_wait_fin_is_acknowledged_again_and_restarts_timer() -> None:
    p = time_wait(BASIC.replace(msl_s=30.0))
    p.advance(50.0)
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 2)  # the peer never saw our last ACK
    ack = p.recv_one()
    assert ack.flags == ACK and (ack.seq, ack.ack) == (ISS + 2, PEER_ISS + 2)
    p.advance(59.9)
    assert p.state is S.TIME_WAIT
    p.advance(0.2)
    assert p.is_in(S.CLOSED)


def test_time_wait_rst_is_ignored() -> None:
    """RFC 1337: a RST does not end TIME_WAIT early; 2*MSL still protects the next connection."""
    p = time_wait()
    p.send(RST, PEER_ISS + 2)
    p.recv_nothing()
    assert p.state is S.TIME_WAIT
    assert p.conn.stats.resets_ignored == 1
    p.advance(60.1)
    assert p.is_in(S.CLOSED)


# --- across states ---
# Sequence-space accounting over a whole connection, the transition table, and what the
# options-free peer of ``peer.py`` receives.


def test_sequence_accounting_syn_and_fin_take_one_pure_ack_none() -> None:
    p = established()
    p.conn.send(b"abc")
    data = p.recv_one()
    assert data.seq == ISS + 1  # the SYN took ISS; the third segment's ACK took nothing
    p.send(ACK, PEER_ISS + 1, ISS + 4)
    p.conn.shutdown()
    fin = p.recv_one()
    assert fin.seq == ISS + 4
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 5)
    assert p.recv_one().seq == ISS + 5


def test_basic_peer_receives_no_options() -> None:
    p = established()
    p.conn.send(b"x")
    seg = p.recv_one()
    assert seg.timestamps is None and seg.sack == () and seg.mss is None
    assert Flags(seg.flags) == ACK
