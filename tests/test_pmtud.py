"""Path-MTU discovery (RFC 8899's DPLPMTUD with padding probes), in the simulator and on its own.

The simulator's interface refuses datagrams above its MTU at once, as a kernel does for a
socket with don't-fragment set (``interface_mtu_bytes``); a hop of a smaller MTU on the path
drops them silently (``Impairment.mtu_bytes``). Both ends are udptcp cores.
"""

from __future__ import annotations

import os
from dataclasses import replace

from peer import ACK, ISS, PEER_ISS, established
from sim import LOOPBACK_DATAGRAM_BYTES, Sim

from udptcp.config import DEFAULT_MSS, MAX_MSS, Config
from udptcp.core import DataReceived, congestion
from udptcp.core.negotiated import Negotiated
from udptcp.core.pacing import Pacer
from udptcp.core.pmtud import (
    BASE_DATAGRAM_BYTES,
    MAX_PROBES,
    START_DATAGRAM_BYTES,
    PathMtu,
    segment_bytes,
)
from udptcp.core.sender import Sender
from udptcp.core.timers import Timer, Timers
from udptcp.netem import Impairment
from udptcp.wire import Segment

JUMBO_DATAGRAM_BYTES = 8972
"""A 9000-octet link's UDP payload over IPv4."""
ETHERNET_DATAGRAM_BYTES = 1472
DELAY_S = 0.005
RATE_BPS = 100e6
"""Slow enough that a transfer outlasts a search (each lost probe waits an RTO, 0.2 s at least)."""
SIZE_BYTES = 4_000_000


def transfer(sim: Sim, size: int = SIZE_BYTES, seed: int = 1) -> bytes:
    """Send ``size`` random octets client to server; returns them (the server must hold them)."""
    payload = os.urandom(size) if seed else bytes(size)
    sim.client.to_send = payload
    sim.connect()
    sim.run(lambda: len(sim.server.received) >= size, max_time=300)
    assert bytes(sim.server.received) == payload
    return payload


def probes(sim: Sim) -> list[Segment]:
    return [seg for seg in sim.segments("client") if seg.mtu_probe is not None]


def largest_payload(sim: Sim) -> int:
    return max(len(seg.payload) for seg in sim.segments("client") if seg.mtu_probe is None)


def path(mtu_bytes: int = 0, rate_bps: float = 0.0) -> Impairment:
    return Impairment(delay_s=DELAY_S, mtu_bytes=mtu_bytes, rate_bps=rate_bps)


# -- in the simulator ----------------------------------------------------------------------------

def test_on_a_loopback_sized_path_segments_grow_to_64_kib() -> None:
    sim = Sim(Config(), up=path(), down=path(), interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    transfer(sim)
    assert sim.client.conn.tx.max_seg == MAX_MSS
    assert largest_payload(sim) == MAX_MSS
    (probe,) = probes(sim)  # one probe, answered at once
    assert sim.largest_datagram_bytes["client"] == LOOPBACK_DATAGRAM_BYTES
    assert not bytes(probe.payload).strip(b"\0")  # padding only
    assert sim.client.conn.stats.retransmitted_segments == 0


def test_behind_a_1500_octet_interface_no_probe_leaves_and_segments_stay_at_1380() -> None:
    sim = Sim(Config(), up=path(), down=path())  # the simulator's interface: Ethernet
    transfer(sim)
    assert probes(sim) == []  # the interface refused the large probes at once
    assert sim.client.conn.tx.max_seg == DEFAULT_MSS
    assert sim.largest_datagram_bytes["client"] <= ETHERNET_DATAGRAM_BYTES


def test_a_jumbo_hop_is_found_after_the_larger_probes_are_lost() -> None:
    sim = Sim(Config(), up=path(JUMBO_DATAGRAM_BYTES, RATE_BPS), down=path(),
              interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    transfer(sim, 20_000_000)
    sizes = [len(Segment.encode(p)) for p in probes(sim)]
    assert sizes[:MAX_PROBES] == [LOOPBACK_DATAGRAM_BYTES] * MAX_PROBES  # lost three times
    assert sim.client.conn.tx.max_seg == segment_bytes(8952)
    assert sim.client.conn.stats.retransmitted_segments == 0  # probe loss is no data loss


def test_when_the_path_mtu_drops_mid_transfer_segments_shrink_and_the_data_arrives() -> None:
    sim = Sim(Config(), up=path(rate_bps=RATE_BPS), down=path(), seed=3,
              interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    payload = os.urandom(40_000_000)
    sim.client.to_send = payload
    sim.connect()
    sim.run(lambda: sim.client.conn.tx.max_seg == MAX_MSS and len(sim.server.received) > 1_000_000,
            max_time=60)
    sim.up.spec = replace(sim.up.spec, mtu_bytes=ETHERNET_DATAGRAM_BYTES)  # a route change
    sim.run(lambda: len(sim.server.received) >= len(payload), max_time=600)
    assert bytes(sim.server.received) == payload
    assert sim.client.conn.tx.max_seg == DEFAULT_MSS  # found again by probing from the base
    assert not sim.client.failed


def test_a_black_hole_from_the_start_falls_back_to_the_ipv6_minimum() -> None:
    """A path that drops anything above 1280-octet packets, with no error: a black hole."""
    sim = Sim(Config(rto_min_s=0.05), up=path(1252), down=path(), seed=5)
    transfer(sim, 300_000)
    assert sim.client.conn.tx.max_seg == segment_bytes(BASE_DATAGRAM_BYTES)


def test_a_fixed_mss_sends_no_probes() -> None:
    sim = Sim(Config(mss=DEFAULT_MSS), up=path(), down=path(), interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    transfer(sim, 1_000_000)
    assert probes(sim) == []
    assert sim.client.conn.tx.max_seg == DEFAULT_MSS


# -- the peer's side: answering a probe -----------------------------------------------------------

def test_a_probe_is_answered_at_once_and_takes_no_sequence_space() -> None:
    p = established()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"\0" * 4000, mtu_probe=77)
    answer = p.recv_one()
    assert answer.mtu_probe_ack == 77
    assert answer.ack == PEER_ISS + 1  # the padding is not data
    assert p.taken(DataReceived) == []
    assert p.conn.stats.bytes_received == 0


# -- PathMtu alone --------------------------------------------------------------------------------

def path_mtu(timers: Timers) -> PathMtu:
    return PathMtu(timers, Sender(), congestion.create("cubic", DEFAULT_MSS, 10), Pacer(DEFAULT_MSS),
                   Negotiated(ts_offset=0))


def test_the_search_tries_candidates_from_the_largest_and_gives_up_after_max_probes() -> None:
    timers = Timers()
    mtu = path_mtu(timers)
    mtu.start(0.0)
    now = 0.0
    for _ in range(MAX_PROBES):
        assert mtu.probe_due
        _, size = mtu.next_probe(now, 0.3)
        assert size == LOOPBACK_DATAGRAM_BYTES
        deadline = timers.deadline(Timer.PATH_MTU)
        assert deadline is not None
        now = deadline
        timers.fire(Timer.PATH_MTU, now)
        mtu.on_timer(now)
    probe_id, size = mtu.next_probe(now, 0.3)
    assert size == 8952
    assert mtu.on_probe_acked(probe_id, now)
    assert mtu.datagram_bytes == 8952 and not mtu.searching
    assert timers.deadline(Timer.PATH_MTU) is not None  # looking for more, much later


def test_an_answer_to_an_older_probe_raises_nothing() -> None:
    mtu = path_mtu(Timers())
    mtu.start(0.0)
    first, _ = mtu.next_probe(0.0, 0.3)
    mtu.next_probe(1.0, 0.3)
    assert not mtu.on_probe_acked(first, 1.1)
    assert mtu.datagram_bytes == START_DATAGRAM_BYTES


def test_a_refused_data_size_shrinks_to_what_the_interface_takes() -> None:
    mtu = path_mtu(Timers())
    mtu.datagram_bytes = 8952
    assert mtu.on_too_big(8952, 0.0)
    assert BASE_DATAGRAM_BYTES <= mtu.datagram_bytes < 8952


def test_a_probe_ack_counts_only_in_the_window_and_only_for_its_probe() -> None:
    """A forged probe ACK must not raise the size (a sender that believed it would send
    datagrams the path drops): one outside the window, or with another identifier, is
    ignored. Identifiers start from the ISN, unknown off the path: not at 1."""
    sim = Sim(Config(), up=path(), down=path(), interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    sim.intercept = lambda name, seg: name == "client" and seg.mtu_probe is not None  # all lost
    sim.client.to_send = bytes(SIZE_BYTES)
    sim.connect()
    sim.run(lambda: bool(probes(sim)), max_time=10)
    client, server = sim.client.conn, sim.server.conn
    probe_id = probes(sim)[-1].mtu_probe
    assert probe_id is not None and probe_id != 1
    before = client.pmtu.datagram_bytes

    def probe_ack(seq: int, probe: int) -> bytes:
        return Segment(flags=ACK, seq=seq & 0xFFFFFFFF, ack=client.tx.una & 0xFFFFFFFF,
                       window=65535, mtu_probe_ack=probe).encode()

    sim.inject(sim.client, probe_ack(server.tx.nxt + 2**31, probe_id))  # far outside the window
    sim.inject(sim.client, probe_ack(server.tx.nxt, probe_id + 1))  # not the probe's identifier
    assert client.pmtu.datagram_bytes == before
    sim.inject(sim.client, probe_ack(server.tx.nxt, probe_id))  # the real answer, in the window
    assert client.pmtu.datagram_bytes > before
