"""SYN cookies at the core: the cookie's arithmetic, and connections opened by one in the
simulator (the endpoint's use of them is tested in test_streams.py and test_flood.py)."""

from __future__ import annotations

import os
import random

import pytest
from sim import Sim

from udptcp.config import Config
from udptcp.core import Connection, State, syncookies
from udptcp.core.syncookies import COOKIE_MSS_TABLE, COOKIE_PERIOD_S, CookieGrant
from udptcp.wire import Options, Segment, decode_segment

SECRET = bytes(range(16))
SERVER = ("10.0.0.1", 4000)
CLIENT = ("10.0.0.2", 50000)


def cookie_handshake(
    client_config: Config, server_config: Config, now: float = 100.0,
) -> tuple[Connection, Connection, CookieGrant]:
    """A client's SYN answered by a cookie, its ACK turned into a server connection."""
    client = Connection(client_config, isn=123456)
    client.connect(now)
    [syn] = client.datagrams_to_send(now)
    _flags, seq, _ack, _wnd, _payload, ts, opts = decode_segment(syn)  # as the listener does
    answer = syncookies.syn_ack(
        SECRET, SERVER, CLIENT, seq, opts, ts[0] if ts is not None else None,
        announced_mss=server_config.announced_mss, sack=server_config.sack,
        timestamps=server_config.timestamps, window=server_config.recv_buffer_bytes, now=now,
    )
    now += 0.03
    client.receive_datagram(answer, now)
    assert client.state is State.ESTABLISHED
    [ack] = client.datagrams_to_send(now)
    now += 0.02
    ack_seg = Segment.decode(ack)
    grant = syncookies.grant(
        SECRET, SERVER, CLIENT, ack_seg.seq, ack_seg.ack,
        ack_seg.timestamps[1] if ack_seg.timestamps else None, now,
    )
    assert grant is not None
    server = Connection(server_config, isn=grant.isn)
    server.listen()
    server.accept_cookie(grant, now)
    server.receive_datagram(ack, now)
    assert server.state is State.ESTABLISHED
    return client, server, grant


@pytest.mark.parametrize("options", [True, False])
def test_a_connection_opened_by_a_cookie_carries_data_both_ways(options: bool) -> None:
    config = Config(sack=options, timestamps=options, msl_s=1.0)
    client, server, grant = cookie_handshake(config, config)
    assert (grant.sack, grant.timestamps, grant.mtu_probes) == (options, options, True)
    assert server.sack_ok is client.sack_ok is options
    assert server.ts_ok is client.ts_ok is options
    if options:  # the echoed timestamp dates our SYN-ACK: the handshake's RTT sample
        assert server.rtt.srtt_s == pytest.approx(0.05, abs=1e-5)
    else:
        assert server.rtt.srtt_s is None
    sim = Sim(config, seed=3)
    sim.now = 100.05
    sim.client.conn, sim.server.conn = client, server
    sim.client.established = sim.server.established = True
    up, down = os.urandom(300_000), os.urandom(200_000)
    sim.client.to_send, sim.server.to_send = up, down
    sim.flush()
    sim.run(lambda: len(sim.server.received) == len(up) and len(sim.client.received) == len(down),
            max_time=200)
    assert bytes(sim.server.received) == up and bytes(sim.client.received) == down


@pytest.mark.parametrize(("announced", "remembered"), [
    (None, 536), (536, 536), (1000, 536), (1380, 1380), (1460, 1460), (9000, 8960),
    (65447, 65447), (30, 64),
])
def test_the_cookie_remembers_the_largest_mss_of_its_table_at_most_the_peers(
    announced: int | None, remembered: int
) -> None:
    client_config = Config(mss=announced) if announced and announced >= 64 else Config(mss=64)
    client = Connection(client_config, isn=1)
    client.connect(0.0)
    seg = Segment.decode(client.datagrams_to_send(0.0)[0])
    opts = Options(mss=announced, sack_permitted=True)
    answer = Segment.decode(syncookies.syn_ack(
        SECRET, SERVER, CLIENT, seg.seq, opts, None,
        announced_mss=1380, sack=True, timestamps=True, window=65535, now=0.0,
    ))
    grant = syncookies.grant(SECRET, SERVER, CLIENT, seg.seq + 1, answer.seq + 1, None, 1.0)
    assert grant is not None and grant.peer_mss == remembered
    assert remembered in COOKIE_MSS_TABLE


def _cookie(peer_isn: int, now: float) -> int:
    return syncookies.make_cookie(SECRET, SERVER, CLIENT, peer_isn, now, 0b101101)


def test_a_cookie_checks_out_only_for_its_addresses_key_isn_and_time() -> None:
    cookie = _cookie(777, 10.0)
    assert syncookies.check_cookie(SECRET, SERVER, CLIENT, 777, cookie, 10.0) == 0b101101
    assert syncookies.check_cookie(SECRET, SERVER, CLIENT, 777, cookie, 10.0 + COOKIE_PERIOD_S) == 0b101101
    assert syncookies.check_cookie(SECRET, SERVER, CLIENT, 777, cookie, 10.0 + 2 * COOKIE_PERIOD_S) is None
    assert syncookies.check_cookie(SECRET, SERVER, CLIENT, 777, cookie, 10.0 - COOKIE_PERIOD_S) is None
    assert syncookies.check_cookie(SECRET, SERVER, CLIENT, 778, cookie, 10.0) is None
    assert syncookies.check_cookie(SECRET, SERVER, ("10.0.0.2", 50001), 777, cookie, 10.0) is None
    assert syncookies.check_cookie(SECRET, ("10.0.0.1", 4001), CLIENT, 777, cookie, 10.0) is None
    assert syncookies.check_cookie(bytes(16), SERVER, CLIENT, 777, cookie, 10.0) is None


def test_guessed_cookies_do_not_pass() -> None:
    """A forger who never saw the SYN-ACK must guess: a cookie passes only with the counter of
    the last two ticks (2 in 256) and 18 bits of hash right, so 50,000 guesses find nothing."""
    rng = random.Random(1)
    passed = [
        guess for guess in (rng.getrandbits(32) for _ in range(50_000))
        if syncookies.check_cookie(SECRET, SERVER, CLIENT, 777, guess, 10.0) is not None
    ]
    assert passed == []
