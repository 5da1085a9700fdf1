"""TIME_WAIT's two duties (the spec's "Why A waits 2*MSL"), in the core.

It answers the peer's retransmitted FIN, and only that FIN; and it keeps a later connection
between the same two addresses from taking a segment of this one, while letting a new SYN
reopen the pair early when that is provably safe (RFC 6191).
"""

from __future__ import annotations

from peer import ACK, BASIC, FIN, ISS, PEER_ISS, SYN, Peer, time_wait

from udptcp.core import State
from udptcp.core.connection import INCARNATION_GAP

S = State
TS_CONFIG = BASIC.replace(timestamps=True)


def test_time_wait_fin_with_another_sequence_number_does_not_restart_the_timer() -> None:
    p = time_wait(BASIC.replace(msl_s=30.0))
    p.advance(50.0)
    p.send(FIN | ACK, PEER_ISS + 777, ISS + 2)  # not the FIN the peer sent: old or forged
    assert all(seg.flags == ACK for seg in p.recv())
    p.advance(10.1)
    assert p.is_in(S.CLOSED)


def test_time_wait_syn_beyond_the_old_sequence_space_opens_a_new_incarnation() -> None:
    p = time_wait()
    old_nxt = p.conn.tx.nxt
    isn = p.conn.successor_isn(PEER_ISS + 100_000)
    assert isn == (old_nxt + INCARNATION_GAP) % 2**32
    p.conn.end_time_wait()
    assert p.is_in(S.CLOSED)


def test_time_wait_old_syn_reopens_nothing_and_is_answered_with_an_ack() -> None:
    p = time_wait()
    assert p.conn.successor_isn(PEER_ISS) is None
    p.send(SYN, PEER_ISS)  # an old duplicate of the first connection's SYN
    ack = p.recv_one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 2
    assert p.state is S.TIME_WAIT


def _time_wait_with_timestamps(peer_tsval: int) -> Peer:
    p = Peer(TS_CONFIG)
    p.conn.connect(p.now)
    p.recv_one()
    p.send(SYN | ACK, PEER_ISS, ISS + 1, timestamps=(peer_tsval, 0))
    p.recv_one()
    p.conn.shutdown()
    p.recv_one()
    p.send(ACK, PEER_ISS + 1, ISS + 2, timestamps=(peer_tsval + 1, 0))
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 2, timestamps=(peer_tsval + 2, 0))
    p.recv_one()
    assert p.state is S.TIME_WAIT
    return p


def test_time_wait_with_timestamps_reopens_on_a_newer_timestamp_only() -> None:
    """RFC 6191: with timestamps, the SYN's TSval decides, whatever its sequence number."""
    p = _time_wait_with_timestamps(peer_tsval=5000)
    assert p.conn.successor_isn(PEER_ISS - 50_000, 5003) is not None
    assert p.conn.successor_isn(PEER_ISS + 50_000, 4000) is None
    assert p.conn.successor_isn(PEER_ISS + 50_000, 5002) is None
    assert p.conn.successor_isn(PEER_ISS + 50_000, None) is not None  # no TSval: by sequence


def test_time_wait_paws_drops_an_old_fin() -> None:
    p = _time_wait_with_timestamps(peer_tsval=5000)
    p.advance(10.0)
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 2, timestamps=(4000, 0))  # a stale copy
    p.recv()
    p.advance(50.1)
    assert p.is_in(S.CLOSED)  # the stale FIN did not restart 2*MSL
