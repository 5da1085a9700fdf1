"""No amplification (RFC 9000 section 8.1): before the handshake's third segment proves the
peer's address, a passive connection sends it at most three times the octets it received,
retransmissions included."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from peer import ACK, PEER_ISS, SYN, Peer, listen
from sim import Sim

from udptcp.config import Config
from udptcp.core import State
from udptcp.core.connection import AMPLIFICATION_FACTOR
from udptcp.netem import Impairment
from udptcp.wire import Segment

BARE_SYN_BYTES = len(Segment(flags=SYN, seq=PEER_ISS, ack=0, window=65535).encode())


def sent_bytes(p: Peer, until_s: float) -> int:
    """Octets the connection sends, timers run, until ``until_s`` of its clock."""
    total = 0
    while (t := p.conn.get_timer()) is not None and t <= until_s:
        p.advance(t - p.now)
        total += sum(len(d) for d in p.conn.datagrams_to_send(p.now))
    return total + sum(len(d) for d in p.conn.datagrams_to_send(p.now))


def test_syn_ack_retransmissions_stop_at_three_times_what_the_syn_brought() -> None:
    p = listen()
    p.send(SYN, PEER_ISS)
    [syn_ack] = p.conn.datagrams_to_send(p.now)
    total = len(syn_ack) + sent_bytes(p, 600.0)
    budget = AMPLIFICATION_FACTOR * BARE_SYN_BYTES
    assert total == (budget // len(syn_ack)) * len(syn_ack) < 4 * len(syn_ack)  # as many as fit
    assert p.conn.stats.amplification_limited > 0
    assert p.state is State.LISTEN  # the retries ran out as usual: the half-open one is gone


def test_a_retransmitted_syn_earns_room_for_another_syn_ack() -> None:
    p = listen(Config(sack=False, timestamps=False, syn_retries=20, rto_max_s=1.0))
    p.send(SYN, PEER_ISS)
    first = p.recv()
    assert len(first) == 1
    sent_bytes(p, 30.0)  # the budget is spent by retransmissions
    assert p.recv() == [] and p.conn.stats.amplification_limited > 0
    p.send(SYN, PEER_ISS)  # the client retries its SYN
    [again] = p.recv()
    assert again.flags == SYN | ACK and again.ack == PEER_ISS + 1


def test_once_the_third_segment_arrives_the_limit_is_gone() -> None:
    """A transfer from the server starts at once after the handshake: its first window is
    far more than three times what the client sent, and all of it leaves."""
    sim = Sim(Config(pacing=False), up=Impairment(delay_s=0.01), down=Impairment(delay_s=0.01))
    sim.server.to_send = bytes(100_000)
    sim.connect()
    sim.run(lambda: len(sim.client.received) == 100_000, max_time=30)
    received_by_server = sum(len(seg.encode()) for _, name, seg in sim.wire if name == "client")
    sent_by_server = sum(len(seg.encode()) for _, name, seg in sim.wire if name == "server")
    assert sent_by_server > AMPLIFICATION_FACTOR * received_by_server
    assert sim.server.conn.stats.amplification_limited == 0


def test_a_lost_syn_ack_under_the_limit_is_still_resent() -> None:
    """The common case is untouched: a client SYN with options (as udptcp sends them) leaves
    room for the SYN-ACK and two retransmissions, and a lost SYN-ACK is recovered."""
    sim = Sim(Config(), seed=2)
    sim.drop_next["server"] = 2
    sim.connect()
    sim.run(lambda: sim.client.established and sim.server.established, max_time=30)
    assert sim.server.conn.stats.amplification_limited == 0


def _client_bare_acks(sim: Sim) -> list[float]:
    """When the client sent an ACK with no SYN, data or FIN (its handshake's third segment,
    or a repetition of it)."""
    return [t for t, name, seg in sim.wire
            if name == "client" and seg.flags == ACK and not seg.payload]


def _drop_client_bare_acks(count: int) -> Callable[[str, Segment], bool]:
    """An ``intercept`` that loses the client's first ``count`` bare ACKs."""
    left = [count]

    def intercept(name: str, seg: Segment) -> bool:
        if name == "client" and seg.flags == ACK and not seg.payload and left[0]:
            left[0] -= 1
            return True
        return False
    return intercept


def test_a_client_whose_acks_are_lost_repeats_its_ack_until_the_server_speaks() -> None:
    """The server speaks first (a banner) and its SYN-ACK retries are spent by the limit: the
    client's ACK, lost five times (the answers to the three SYN-ACKs the budget allows, and
    the repetitions until the budget is spent), is repeated on the client's handshake timer
    until one arrives, and the connection opens on both sides."""
    sim = Sim(Config(), up=Impairment(delay_s=0.01), down=Impairment(delay_s=0.01))
    sim.server.to_send = b"220 hello\r\n"
    sim.intercept = _drop_client_bare_acks(5)
    sim.connect()
    sim.run(lambda: bytes(sim.client.received) == b"220 hello\r\n", max_time=30)
    assert sim.server.conn.stats.amplification_limited > 0  # the limit did hold SYN-ACKs back
    assert sim.server.established and not sim.server.failed
    assert "HANDSHAKE" not in sim.client.conn.timers.pending()  # heard the server: done


def test_the_ack_is_repeated_backed_off_and_at_most_syn_retries_times() -> None:
    """Neither side speaks: the client cannot tell that its ACK arrived, so it repeats it,
    waiting twice as long each time, ``syn_retries`` times, then stops."""
    sim = Sim(Config(syn_retries=4), up=Impairment(delay_s=0.01), down=Impairment(delay_s=0.01))
    sim.connect()
    sim.run(lambda: sim.client.established and sim.server.established, max_time=5)
    sim.run_for(300.0)
    acks = _client_bare_acks(sim)
    assert len(acks) == 1 + 4
    gaps = [b - a for a, b in itertools.pairwise(acks[1:])]  # between the repetitions
    assert all(later == pytest.approx(2 * earlier) for earlier, later in itertools.pairwise(gaps))
    assert sim.client.conn.get_timer() is None and sim.server.conn.get_timer() is None
    assert sim.client.conn.state is State.ESTABLISHED is sim.server.conn.state


@pytest.mark.parametrize("who", ["server", "client"])
def test_no_ack_is_repeated_once_data_flows(who: str) -> None:
    """The common cases cost nothing: the server's first segment, or the client's own data
    (retransmitted until acknowledged, and carrying the ACK), ends the repetitions."""
    sim = Sim(Config(), up=Impairment(delay_s=0.01), down=Impairment(delay_s=0.01))
    (sim.server if who == "server" else sim.client).to_send = b"first words"
    sim.connect()
    sim.run(lambda: b"first words" in (sim.client.received + sim.server.received), max_time=5)
    assert "HANDSHAKE" not in sim.client.conn.timers.pending()
    sim.run_for(60.0)
    assert len(_client_bare_acks(sim)) <= 1 + (who == "server")  # the third segment; the ACK of the data
