"""Issue-4 mechanisms one by one: negotiation, delayed ACKs, fast retransmit without SACK,
undo of spurious retransmissions, pacing, large windows, keepalive and the user timeout."""

from __future__ import annotations

import os
from functools import partial

import pytest
from peer import ACK, BASIC, ISS, PEER_ISS, SYN, Peer, established, listen
from sim import LOOPBACK_DATAGRAM_BYTES, Sim, established_pair

from udptcp.config import DEFAULT_MSS, MAX_MSS, Config
from udptcp.core import CloseReason, State
from udptcp.netem import Impairment

S = State
FULL = Config(pacing=False)
"""Defaults with SACK and timestamps on (BASIC, the scripted peer's, has them off)."""


# -- negotiation --------------------------------------------------------------------------------

def test_syn_offers_mss_sack_and_timestamps() -> None:
    p = Peer(FULL)
    p.conn.connect(0.0)
    syn = p.recv_one()
    assert syn.mss == MAX_MSS and syn.sack_permitted and syn.timestamps is not None
    assert syn.mtu_probe_permitted  # it answers path-MTU probes


def test_syn_ack_echoes_only_the_options_the_syn_offered() -> None:
    p = listen(FULL)
    p.send(SYN, PEER_ISS, mss=1000)
    synack = p.recv_one()
    assert synack.mss == MAX_MSS and not synack.sack_permitted and synack.timestamps is None
    assert p.conn.tx.max_seg == 1000  # we send segments the peer accepts
    assert not p.conn.sack_ok and not p.conn.ts_ok


def test_without_mss_option_the_peer_gets_536_octet_segments() -> None:
    p = listen(FULL)
    p.send(SYN, PEER_ISS)
    p.recv_one()
    p.send(ACK, PEER_ISS + 1, ISS + 1)
    p.conn.send(b"x" * 2000)
    assert [len(s.payload) for s in p.recv()] == [536, 536, 536, 392]


def test_default_mss_fits_a_1500_octet_path_over_ipv6() -> None:
    """The largest datagram a connection with default options sends, plus IPv6 and UDP headers,
    fits a 1500-octet path. Data flows both ways over lossy paths, so that full data segments
    also carry SACK blocks next to their timestamps: the most option octets there are."""
    ipv6_and_udp_headers_bytes = 40 + 8
    size_bytes = 300_000
    lossy = Impairment(loss=0.2, delay_s=0.01)  # enough holes for three SACK blocks
    sim = Sim(Config(), up=lossy, down=lossy, seed=3)
    sim.client.to_send = os.urandom(size_bytes)
    sim.server.to_send = os.urandom(size_bytes)
    sim.connect()
    sim.run(lambda: len(sim.client.received) == len(sim.server.received) == size_bytes, max_time=600)
    fullest = [
        seg for side in ("client", "server") for seg in sim.segments(side)
        if len(seg.payload) == DEFAULT_MSS and seg.timestamps is not None and len(seg.sack) == 3
    ]
    assert fullest, "no full-sized data segment carried timestamps and three SACK blocks"
    largest_bytes = max(sim.largest_datagram_bytes.values())
    assert largest_bytes == len(fullest[0].encode())
    assert ipv6_and_udp_headers_bytes + largest_bytes <= 1500


def test_options_are_used_when_both_sides_offer_them() -> None:
    sim = established_pair(Sim(FULL, seed=1))
    assert sim.client.conn.sack_ok and sim.client.conn.ts_ok
    assert sim.server.conn.sack_ok and sim.server.conn.ts_ok
    segments = sim.segments("client")[2:] + sim.segments("server")[1:]
    assert all(seg.timestamps is not None for seg in segments)


# -- delayed ACKs -------------------------------------------------------------------------------

def test_delayed_ack_waits_at_most_delayed_ack_s_for_a_lone_segment() -> None:
    p = established(BASIC.replace(delayed_ack_s=0.04, quick_acks=0))
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"a" * 100)
    p.recv_nothing()
    assert p.fire_timer() == pytest.approx(0.04)
    assert p.recv_one().ack == PEER_ISS + 101


def test_every_second_full_segment_is_acknowledged_at_once() -> None:
    p = established(BASIC.replace(delayed_ack_s=0.04, quick_acks=0))
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"a" * 1000)
    p.recv_nothing()
    p.send(ACK, PEER_ISS + 1001, ISS + 1, b"b" * 1000)
    assert p.recv_one().ack == PEER_ISS + 2001


def test_a_connection_s_first_segments_are_acknowledged_at_once() -> None:
    """Quick ACKs (Linux's quickack mode): the first ``quick_acks`` in-order segments are
    acknowledged one by one, then every second segment again."""
    p = established(BASIC.replace(delayed_ack_s=0.04, quick_acks=2))
    for i in range(2):
        p.send(ACK, PEER_ISS + 1 + 100 * i, ISS + 1, b"q" * 100)
        assert p.recv_one().ack == PEER_ISS + 101 + 100 * i
    p.send(ACK, PEER_ISS + 201, ISS + 1, b"d" * 100)
    p.recv_nothing()  # the third waits for a second one, or the delayed ACK
    assert p.fire_timer() == pytest.approx(0.04)
    assert p.recv_one().ack == PEER_ISS + 301


def test_quick_acks_end_once_we_send_data_ourselves() -> None:
    """A request/response connection: our replies carry the ACKs, so a request that gets no
    reply at once waits for the delayed ACK again (Linux's pingpong mode)."""
    p = established(BASIC.replace(delayed_ack_s=0.04, quick_acks=16))
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"request")
    assert p.recv_one().ack == PEER_ISS + 8  # a quick ACK
    p.conn.send(b"reply")
    assert p.recv_one().payload == b"reply"
    p.send(ACK, PEER_ISS + 8, ISS + 6, b"next")
    p.recv_nothing()
    assert p.fire_timer() == pytest.approx(0.04)


def test_out_of_order_data_is_acknowledged_at_once() -> None:
    p = established(BASIC.replace(delayed_ack_s=0.04))
    p.send(ACK, PEER_ISS + 1001, ISS + 1, b"b" * 1000)
    assert p.recv_one().ack == PEER_ISS + 1
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"a" * 1000)  # fills the gap: at once too
    assert p.recv_one().ack == PEER_ISS + 2001


# -- fast retransmit without SACK ---------------------------------------------------------------

def test_third_duplicate_ack_triggers_fast_retransmit_without_sack() -> None:
    p = established(BASIC.replace(mss=100, congestion_control="newreno"))
    p.conn.send(bytes(1000))
    sent = p.recv()
    assert len(sent) == 10
    for _ in range(2):
        p.send(ACK, PEER_ISS + 1, ISS + 1)  # segment ISS+1 is missing
    limited = p.recv()
    assert len(limited) <= 2 and all(s.seq >= ISS + 1001 for s in limited)  # limited transmit
    p.send(ACK, PEER_ISS + 1, ISS + 1)
    again = p.recv()
    assert again and again[0].seq == ISS + 1 and len(again[0].payload) == 100
    assert p.conn.stats.fast_retransmits == 1 and p.conn.stats.timeouts == 0


def test_partial_ack_retransmits_the_next_hole_at_once() -> None:
    p = established(BASIC.replace(mss=100, congestion_control="newreno"))
    p.conn.send(bytes(1000))
    p.recv()
    for _ in range(3):
        p.send(ACK, PEER_ISS + 1, ISS + 1)
    p.recv()
    p.send(ACK, PEER_ISS + 1, ISS + 301)  # a partial ACK: ISS+301 is missing as well
    resent = p.recv()
    assert resent and resent[0].seq == ISS + 301
    assert p.conn.stats.timeouts == 0


def test_lossy_transfer_without_sack_relies_on_fast_retransmit_not_timeouts() -> None:
    path = Impairment(loss=0.02, delay_s=0.01)
    sim = Sim(Config(sack=False), up=path, down=path, seed=0)
    payload = os.urandom(1_000_000)
    sim.client.to_send = payload
    sim.connect()
    sim.run(lambda: len(sim.server.received) >= len(payload), max_time=600)
    stats = sim.client.conn.stats
    assert sim.server.received == payload
    assert stats.fast_retransmits >= 5 * stats.timeouts


# -- spurious retransmissions -------------------------------------------------------------------

@pytest.mark.parametrize("timestamps", [True, False])
def test_reordering_is_not_loss_and_spurious_reductions_are_undone(timestamps: bool) -> None:
    """Heavy reordering with no loss: RACK learns the reordering window, and any window
    reduction it caused is undone (Eifel with timestamps, DSACK without)."""
    path = Impairment(delay_s=0.01, reorder=0.2, reorder_delay_s=0.008)
    sim = Sim(Config(timestamps=timestamps), up=path, down=path, seed=2)
    payload = os.urandom(2_000_000)
    sim.client.to_send = payload
    sim.connect()
    sim.run(lambda: len(sim.server.received) >= len(payload), max_time=600)
    stats = sim.client.conn.stats
    assert sim.server.received == payload
    assert sim.client.conn.recovery.reordering_seen
    assert stats.loss_episodes == 0 or stats.spurious_undos > 0
    assert stats.retransmitted_segments <= 0.05 * stats.segments_sent


# -- pacing and large windows -------------------------------------------------------------------

def received_all(sim: Sim, size: int) -> bool:
    return len(sim.server.received) >= size


def test_pacing_spreads_a_window_over_the_round_trip() -> None:
    """The second flight (after the first ACKs) leaves over much of the RTT when paced, in
    one burst when not: its ACKs came back together, as the first flight left together."""
    spans = {}
    for pacing in (True, False):
        path = Impairment(delay_s=0.05)
        sim = Sim(Config(pacing=pacing), up=path, down=path, seed=3)
        sim.client.to_send = os.urandom(1_000_000)
        sim.connect()
        sim.run(partial(received_all, sim, 1_000_000), max_time=100)
        times = [t for t, who, seg in sim.wire if who == "client" and seg.payload]
        second_flight = [t for t in times if 0.15 <= t < 0.25]  # one RTT after the first
        spans[pacing] = max(second_flight) - min(second_flight)
    assert spans[True] >= 0.02
    assert spans[False] <= 0.005


def test_one_connection_keeps_16_mib_in_flight() -> None:
    """A 1 Gbit/s path with a 200 ms RTT holds 25 MB; the window must grow past 16 MiB."""
    big = Config(recv_buffer_bytes=32 * 2**20, send_buffer_bytes=32 * 2**20, mss=8000, pacing=False)
    path = Impairment(delay_s=0.1, rate_bps=1e9)
    sim = Sim(big, up=path, down=Impairment(delay_s=0.1), seed=4, interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    size = 80_000_000
    sim.client.to_send = bytes(size)
    sim.connect()
    peak = 0
    while len(sim.server.received) < size and sim.now < 60:
        sim.step()
        peak = max(peak, sim.client.conn.tx.nxt - sim.client.conn.tx.una)
    assert peak >= 16 * 2**20
    assert sim.server.conn.rx.window > 16 * 2**20 or len(sim.server.received) == size


# -- keepalive and user timeout -----------------------------------------------------------------

def test_keepalive_probes_an_idle_connection_and_the_peer_answers() -> None:
    config = Config(keepalive_s=5.0, keepalive_interval_s=1.0, keepalive_probes=3)
    sim = established_pair(Sim(config, down=Impairment(delay_s=0.01), up=Impairment(delay_s=0.01)))
    sim.run_for(60.0)
    assert sim.client.conn.state is S.ESTABLISHED and sim.client.failed is None
    assert sim.server.conn.state is S.ESTABLISHED and sim.server.failed is None
    probes = sim.client.conn.stats.keepalive_probes + sim.server.conn.stats.keepalive_probes
    assert probes >= 10  # about one per keepalive_s of silence, from one side or the other


def test_keepalive_detects_a_dead_peer_on_an_idle_connection() -> None:
    config = Config(keepalive_s=5.0, keepalive_interval_s=1.0, keepalive_probes=3)
    sim = established_pair(Sim(config, seed=1))
    dead_at = sim.now
    sim.up = sim.down = None  # type: ignore[assignment]
    sim.intercept = lambda sender, seg: True  # the network (or the peer) is gone
    sim.run(lambda: sim.client.failed is not None, max_time=60)
    assert sim.client.failed is CloseReason.TIMED_OUT
    assert sim.now - dead_at == pytest.approx(5.0 + 3 * 1.0, abs=0.1)


def test_user_timeout_bounds_how_long_data_may_stay_unacknowledged() -> None:
    config = Config(user_timeout_s=3.0, retries=100, rto_max_s=60.0)
    sim = established_pair(Sim(config, seed=2))
    sim.intercept = lambda sender, seg: sender == "server"  # ACKs never come back
    sent_at = sim.now
    sim.client.to_send = b"x" * 10_000
    sim.flush()
    sim.run(lambda: sim.client.failed is not None, max_time=60)
    assert sim.client.failed is CloseReason.TIMED_OUT
    assert sim.now - sent_at == pytest.approx(3.0, abs=0.05)


# -- PAWS -------------------------------------------------------------------------------------

def test_paws_drops_a_segment_with_an_old_timestamp_and_acknowledges() -> None:
    """RFC 7323 5: a segment whose TSval is older than TS.Recent is an old duplicate (perhaps
    from before the sequence numbers wrapped): it is dropped, and answered with an ACK."""
    p = Peer(FULL.replace(delayed_ack_s=0.0))
    p.conn.connect(0.0)
    syn = p.recv_one()
    assert syn.timestamps is not None
    ours = syn.timestamps[0]
    p.send(SYN | ACK, PEER_ISS, ISS + 1, timestamps=(1000, ours), sack_permitted=True)
    p.recv_one()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"new", timestamps=(2000, ours))
    assert p.recv_one().ack == PEER_ISS + 4
    p.send(ACK, PEER_ISS + 4, ISS + 1, b"stale", timestamps=(1500, ours))  # in window, but old
    ack = p.recv_one()
    assert ack.ack == PEER_ISS + 4  # not accepted
    assert ack.timestamps is not None and ack.timestamps[1] == 2000  # TS.Recent unchanged
    assert p.conn.stats.paws_rejected == 1


def test_keepalive_leaves_a_connection_with_data_in_flight_to_its_retransmissions() -> None:
    """An outage longer than keepalive's budget must not kill a sender whose data is in flight:
    the retransmission timer, with `retries`, is what watches it (as Linux's keepalive)."""
    config = Config(keepalive_s=1.0, keepalive_interval_s=0.2, keepalive_probes=2, retries=15)
    path = Impairment(delay_s=0.005, rate_bps=10e6, queue_bytes=1_000_000)
    sim = established_pair(Sim(config, server_config=Config(), up=path, down=path, seed=1))
    payload = bytes(2_000_000)
    sim.client.to_send = payload
    sim.flush()
    sim.run_for(0.5)
    assert 0 < len(sim.server.received) < len(payload)
    sim.intercept = lambda _name, _seg: True  # an outage: nothing gets through either way
    sim.run_for(20.0)
    assert sim.client.failed is None and sim.client.conn.state is State.ESTABLISHED
    assert sim.client.conn.stats.keepalive_probes == 0
    sim.intercept = None
    sim.run(lambda: len(sim.server.received) == len(payload), max_time=120.0)
    assert sim.server.received == payload
