"""The initial congestion window follows the negotiated MSS (RFC 6928), in the simulator."""

from __future__ import annotations

import pytest
from sim import LOOPBACK_DATAGRAM_BYTES, Sim

from udptcp.config import Config
from udptcp.core.congestion.base import initial_window_bytes
from udptcp.netem import Impairment

ONE_WAY_DELAY_S = 0.05


def first_flight_bytes(client: Config, server: Config) -> int:
    """Payload octets the server sends before the first ACK of its data can come back.

    The client asks for nothing; the server writes a megabyte as soon as it is established,
    with pacing off so that the whole first window leaves at once.
    """
    sim = Sim(client, server_config=server, up=Impairment(delay_s=ONE_WAY_DELAY_S),
              down=Impairment(delay_s=ONE_WAY_DELAY_S), seed=1,
              interface_mtu_bytes=LOOPBACK_DATAGRAM_BYTES)
    sim.server.to_send = bytes(1_000_000)
    sim.connect()
    sim.run(lambda: bool(sim.server.conn.stats.bytes_sent), max_time=10)
    first_at = sim.now
    sim.run_for(ONE_WAY_DELAY_S)  # less than a round trip: no ACK of the data is back yet
    return sum(len(seg.payload) for at, name, seg in sim.wire if name == "server" and at >= first_at)


@pytest.mark.parametrize(
    ("peer_mss", "expected"),
    [(536, 5360), (1000, 10000), (1380, 13800), (8000, 16000)],
)
def test_first_flight_is_rfc6928s_window_of_the_peers_mss(peer_mss: int, expected: int) -> None:
    """min(10*MSS, max(2*MSS, 14600)) of the MSS the handshake settled, not of our own MSS."""
    server = Config(pacing=False, mss=8000)
    assert first_flight_bytes(Config(pacing=False, mss=peer_mss), server) == expected


def test_the_segment_count_option_is_respected() -> None:
    server = Config(pacing=False, mss=1000, initial_window_segments=4)
    assert first_flight_bytes(Config(pacing=False, mss=1000), server) == 4000


@pytest.mark.parametrize("cc", ["newreno", "cubic", "bbr"])
def test_every_controller_takes_the_window_from_the_handshake(cc: str) -> None:
    sim = Sim(Config(mss=536), server_config=Config(mss=4000, congestion_control=cc))
    sim.connect()
    sim.run(lambda: sim.server.established, max_time=10)
    assert sim.server.conn.cc.cwnd == initial_window_bytes(536, 10) == 5360
    assert sim.server.conn.cc.mss == 536


def test_formula_at_its_corners() -> None:
    assert initial_window_bytes(1460, 10) == 14600
    assert initial_window_bytes(2000, 10) == 14600  # capped at 14600 ...
    assert initial_window_bytes(9000, 10) == 18000  # ... but never below two segments
    assert initial_window_bytes(100, 1) == 100
