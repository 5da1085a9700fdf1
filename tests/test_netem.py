"""The impairment model, its spec syntax, the relay over loopback, and ``python -m udptcp.netem``.

The model is checked statistically with fixed seeds (so the checks are exact reruns, not
flaky draws); the relay with plain asyncio sockets on both sides, synchronised on arrivals;
the CLI as a real subprocess, because its contract is its output and exit status.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path as FsPath
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from udptcp.netem import Impairment, Path, make_paths
from udptcp.netem.impair import FLAG_NAMES
from udptcp.netem.relay import Relay, start_relay
from udptcp.netem.spec import KEYS, format_spec, parse_spec
from udptcp.wire import Flags, MalformedSegment, Segment, decode_datagram

REPO_ROOT = FsPath(__file__).resolve().parent.parent
WAIT_S = 5.0
PROCESS_WAIT_S = 15.0
LOCALHOST = "127.0.0.1"

# -- the spec syntax -----------------------------------------------------------------------------


def test_parse_full_spec() -> None:
    spec = parse_spec(
        "loss=5%,delay=10ms,jitter=2ms,duplicate=0.05,reorder=5%,corrupt=1%,drop-flags=FIN:2,"
        "drop-fin-ack=1,drop-every=10,rate=50mbit,queue=64kb,ge=0.01:0.3:1.0"
    )
    assert spec == Impairment(
        loss=0.05, delay_s=0.01, jitter_s=0.002, duplicate=0.05, reorder=0.05, corrupt=0.01,
        drop_flags={"FIN": 2}, drop_fin_ack=1, drop_every=10, rate_bps=50e6, queue_bytes=64_000,
        ge_p=0.01, ge_r=0.3, ge_loss=1.0,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Impairment()),
        ("none", Impairment()),
        (" loss = 5% , ", Impairment(loss=0.05)),
        ("loss=0.05", Impairment(loss=0.05)),
        ("LOSS=100%", Impairment(loss=1.0)),
        ("delay=250us", Impairment(delay_s=0.00025)),
        ("delay=1.5s,jitter=.5ms", Impairment(delay_s=1.5, jitter_s=0.0005)),
        ("reorder=10%,reorder-delay=5ms", Impairment(reorder=0.1, reorder_delay_s=0.005)),
        ("reorder_delay=5ms", Impairment(reorder_delay_s=0.005)),
        ("rate=800bit", Impairment(rate_bps=800.0)),
        ("rate=1.5kbit", Impairment(rate_bps=1500.0)),
        ("rate=2gbit", Impairment(rate_bps=2e9)),
        ("rate=1mbit,queue=1500b", Impairment(rate_bps=1e6, queue_bytes=1500)),
        ("rate=1mbit,queue=64kib", Impairment(rate_bps=1e6, queue_bytes=65_536)),
        ("rate=1mbit,queue=1.5kb", Impairment(rate_bps=1e6, queue_bytes=1500)),
        ("rate=1mbit,queue=2mb", Impairment(rate_bps=1e6, queue_bytes=2_000_000)),
        ("rate=1mbit,queue=1mib", Impairment(rate_bps=1e6, queue_bytes=1 << 20)),
        ("ge=1%:30%", Impairment(ge_p=0.01, ge_r=0.3)),
        ("drop-flags=fin", Impairment(drop_flags={"FIN": 1})),
        ("drop-flags=SYN:1+FIN:3", Impairment(drop_flags={"SYN": 1, "FIN": 3})),
    ],
)
def test_parse_good_specs(text: str, expected: Impairment) -> None:
    assert parse_spec(text) == expected


def test_later_specs_override_earlier_keys() -> None:
    assert parse_spec("loss=5%,delay=10ms", "loss=1%") == Impairment(loss=0.01, delay_s=0.01)
    assert parse_spec("queue=10kb", "rate=1mbit") == Impairment(rate_bps=1e6, queue_bytes=10_000)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("los=5%", ["unknown key 'los'", "did you mean 'loss'?", "accepted keys: loss, ge,"]),
        ("dealy=5ms", ["did you mean 'delay'?"]),
        ("loss", ["'loss' is not key=value"]),
        ("delay=10", ["delay='10'", "missing unit", "us, ms or s", "bare number"]),
        ("delay=10msec", ["unknown unit 'msec'", "did you mean 'ms'?"]),
        ("jitter=-1ms", ["jitter='-1ms'", "must not be negative"]),
        ("delay=2h", ["unknown unit 'h'"]),
        ("delay=3601s", ["too long"]),
        ("loss=5", ["loss='5'", "more than certain", "did you mean 5%?", "percentage (5%)"]),
        ("loss=150%", ["more than certain"]),
        ("loss=lots", ["loss='lots'", "not a number"]),
        ("loss=nan", ["not a number"]),
        ("corrupt=5x", ["unknown unit 'x'"]),
        ("rate=10mbps", ["'mbps' is ambiguous", "did you mean 'mbit'?"]),
        ("rate=10", ["rate='10'", "missing unit", "bit, kbit, mbit or gbit"]),
        ("rate=1mbit,queue=64", ["queue='64'", "missing unit", "kib"]),
        ("rate=1mbit,queue=1.5b", ["not a whole number of octets"]),
        ("queue=64kb", ["queue='64kb'", "rate limit"]),
        ("drop-every=1.5", ["drop-every='1.5'", "not a whole number"]),
        ("drop-flags=FIM:2", ["unknown flag 'FIM'", "did you mean 'FIN'?", "FIN, SYN, RST, ACK"]),
        ("drop-flags=FIN:x", ["count 'x' of FIN"]),
        ("ge=0.1", ["ge='0.1'", "1 field instead of 2 or 3"]),
        ("ge=0.1:2", ["'2' is not a probability"]),
        ("loss=1%,loss=2%", ["loss is given twice ('1%' and '2%')"]),
    ],
)
def test_bad_specs_say_what_is_wrong_and_what_is_accepted(text: str, fragments: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        parse_spec(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_format_spec_reads_back() -> None:
    assert format_spec(Impairment()) == "none"
    text = "loss=0.05,ge=0.01:0.3:1.0,drop-flags=FIN:2,delay=10ms,jitter=250us,rate=50mbit,queue=64kib"
    assert format_spec(parse_spec(text)) == text
    assert [part.split("=")[0] for part in text.split(",")] == [k for k in KEYS if k in text]


_probabilities = st.floats(0.0, 1.0)
_durations = st.floats(0.0, 3600.0)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        Impairment,
        loss=_probabilities, ge_p=_probabilities, ge_r=_probabilities, ge_loss=_probabilities,
        drop_every=st.integers(0, 10**6),
        drop_flags=st.dictionaries(st.sampled_from(sorted(FLAG_NAMES)), st.integers(0, 9)),
        drop_fin_ack=st.integers(0, 9), delay_s=_durations, jitter_s=_durations,
        reorder=_probabilities, reorder_delay_s=_durations, duplicate=_probabilities,
        corrupt=_probabilities, rate_bps=st.floats(1.0, 1e12), queue_bytes=st.integers(0, 1 << 30),
    )
)
def test_format_spec_round_trips_exactly(impairment: Impairment) -> None:
    assert parse_spec(format_spec(impairment)) == impairment


# -- the model -----------------------------------------------------------------------------------

N = 10_000


def _segment(flags: Flags, seq: int = 1000, ack: int = 0, payload: bytes = b"") -> bytes:
    return Segment(flags=flags, seq=seq, ack=ack, window=65_535, payload=payload).encode()


def _path(spec: Impairment, seed: int = 1) -> Path:
    return make_paths(spec, Impairment(), seed)[0]


def test_random_loss_rate_is_near_the_setting() -> None:
    path = _path(Impairment(loss=0.1))
    delivered = sum(len(path.process(b"x" * 100, i * 1e-3)) for i in range(N))
    assert path.counters.dropped_random == N - delivered
    assert abs(path.counters.dropped_random / N - 0.1) < 0.01  # 3.3 sigma


def test_duplicates_and_corruption() -> None:
    path = _path(Impairment(duplicate=0.05, corrupt=0.02), seed=3)
    data = _segment(Flags.ACK, payload=b"p" * 200)
    out = [copy for i in range(N) for _, copy in path.process(data, float(i))]
    counters = path.counters
    assert len(out) == N + counters.duplicated == counters.delivered
    assert abs(counters.duplicated - 0.05 * N) < 75
    assert abs(counters.corrupted - 0.02 * len(out)) < 50
    damaged = [copy for copy in out if copy != data]
    assert len(damaged) == counters.corrupted
    for copy in damaged:
        assert len(copy) == len(data)
        assert sum(bin(a ^ b).count("1") for a, b in zip(copy, data, strict=True)) == 1
        with pytest.raises(MalformedSegment):
            decode_datagram(copy)


def _mean_drop_run(path: Path) -> tuple[float, float]:
    runs, run = [], 0
    for i in range(N):
        if path.process(b"x", i * 1e-3):
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    dropped = path.counters.received - path.counters.delivered
    return dropped / N, sum(runs) / len(runs)


def test_gilbert_elliott_drops_in_bursts() -> None:
    burst_rate, burst_run = _mean_drop_run(_path(Impairment(ge_p=0.01, ge_r=0.1), seed=5))
    random_rate, random_run = _mean_drop_run(_path(Impairment(loss=0.09), seed=5))
    assert 0.05 < burst_rate < 0.15 and 0.07 < random_rate < 0.11  # both near p / (p + r)
    assert burst_run > 5  # the bad state lasts 1 / ge_r = 10 datagrams on average
    assert random_run < 1.2


def test_rate_limit_spaces_deliveries_and_tail_drops() -> None:
    path = _path(Impairment(rate_bps=1e6, queue_bytes=5000))
    size, serialise_s = 1000, 1000 * 8 / 1e6
    burst = [path.process(bytes(size), 0.0) for _ in range(8)]
    times = [deliveries[0][0] for deliveries in burst if deliveries]
    assert times == pytest.approx([serialise_s * k for k in range(1, 6)])
    assert path.counters.dropped_queue == 3 and all(not d for d in burst[5:])
    # Two datagrams have left by t = 16 ms: room for two more, behind the other three.
    later = [path.process(bytes(size), 2 * serialise_s) for _ in range(3)]
    times = [at for deliveries in later for at, _ in deliveries]
    assert times == pytest.approx([6 * serialise_s, 7 * serialise_s])
    assert not later[2] and path.counters.dropped_queue == 4


def test_drop_flags_drops_exactly_the_first_n() -> None:
    path = _path(Impairment(drop_flags={"FIN": 2}))
    sent = [
        _segment(Flags.ACK, payload=b"data"),
        _segment(Flags.FIN | Flags.ACK),
        _segment(Flags.ACK, seq=1001),
        _segment(Flags.FIN | Flags.ACK),
        _segment(Flags.FIN | Flags.ACK),
        _segment(Flags.FIN | Flags.ACK),
    ]
    assert [bool(path.process(data, 0.0)) for data in sent] == [True, False, True, False, True, True]
    assert path.counters.dropped_flag == 2


def test_drop_every_drops_exactly_each_nth_datagram() -> None:
    path = _path(parse_spec("drop-every=3"))
    passed = [bool(path.process(_segment(Flags.ACK, seq=1000 + i), i * 1e-3)) for i in range(12)]
    assert [i + 1 for i, ok in enumerate(passed) if not ok] == [3, 6, 9, 12]
    assert path.counters.dropped_every == 4 == path.counters.dropped
    assert path.counters.delivered == 8


def test_drop_every_counts_with_the_other_drops_and_zero_never_drops() -> None:
    """Every datagram offered counts, even one another rule dropped, as a fixed pattern should."""
    path = _path(Impairment(drop_every=2, drop_flags={"SYN": 1}))
    sent = [_segment(Flags.SYN), _segment(Flags.ACK), _segment(Flags.ACK), _segment(Flags.ACK)]
    assert [bool(path.process(data, 0.0)) for data in sent] == [False, False, True, False]
    assert (path.counters.dropped_flag, path.counters.dropped_every) == (1, 2)
    never = _path(Impairment(drop_every=0))
    assert all(never.process(b"x", i * 1e-3) for i in range(100))


def test_drop_fin_ack_drops_the_ack_of_the_other_directions_fin() -> None:
    up, down = make_paths(Impairment(drop_fin_ack=1), Impairment(), seed=0)
    fin_end = 5000 + 3 + 1  # the server's FIN carries three octets, then takes one number itself

    def up_passes(flags: Flags, ack: int, payload: bytes = b"") -> bool:
        return bool(up.process(_segment(flags, seq=77, ack=ack, payload=payload), 0.0))

    assert up_passes(Flags.ACK, fin_end)  # no FIN seen yet
    assert down.process(_segment(Flags.FIN | Flags.ACK, seq=5000, ack=77, payload=b"bye"), 0.0)
    assert up_passes(Flags.ACK, fin_end - 1)  # acknowledges the data, not the FIN
    assert up_passes(Flags.ACK, fin_end, b"more")  # carries data: not the last ACK
    assert up_passes(Flags.FIN | Flags.ACK, fin_end)  # not a pure ACK
    assert not up_passes(Flags.ACK, fin_end)
    assert up_passes(Flags.ACK, fin_end)  # only the first one
    assert up.counters.dropped_fin_ack == 1 and down.counters.dropped == 0


def test_delay_jitter_and_reorder_bounds() -> None:
    path = _path(Impairment(delay_s=0.01, jitter_s=0.005, reorder=0.1, reorder_delay_s=0.02), seed=9)
    held = 0
    for i in range(N):
        now = i * 1e-3
        ((at, _),) = path.process(b"x", now)
        extra = at - now - 0.01
        assert 0 <= extra <= 0.005 or 0.02 <= extra <= 0.025
        held += extra >= 0.02
    assert held == path.counters.reordered
    assert abs(held - 0.1 * N) < 100


def test_same_seed_same_run_other_seed_other_run() -> None:
    spec = Impairment(loss=0.2, jitter_s=0.01, duplicate=0.1, corrupt=0.1)

    def run(seed: int) -> list[list[tuple[float, bytes]]]:
        path = _path(spec, seed)
        return [path.process(bytes([i % 256]) * 40, i * 1e-3) for i in range(500)]

    assert run(11) == run(11)
    assert run(11) != run(12)


# -- the relay over loopback ---------------------------------------------------------------------


class Peer(asyncio.DatagramProtocol):
    """A plain UDP socket: records each arrival with its loop time, echoes when asked to."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.arrivals: list[tuple[bytes, tuple[Any, ...], float]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.arrivals.append((data, addr, asyncio.get_running_loop().time()))
        if self.echo:
            self.send(data, addr)
        for count, future in self._waiters:
            if len(self.arrivals) >= count and not future.done():
                future.set_result(None)

    def send(self, data: bytes, addr: tuple[Any, ...]) -> float:
        assert self._transport is not None
        self._transport.sendto(data, addr)
        return asyncio.get_running_loop().time()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` datagrams have arrived in all (a timeout fails the test)."""
        if len(self.arrivals) < count:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((count, future))
            await asyncio.wait_for(future, WAIT_S)

    @property
    def data(self) -> list[bytes]:
        return [data for data, _, _ in self.arrivals]

    @property
    def port(self) -> int:
        assert self._transport is not None
        port: int = self._transport.get_extra_info("sockname")[1]
        return port


PeerFactory = Callable[..., Awaitable[Peer]]
RelayFactory = Callable[..., Awaitable[Relay]]


@pytest.fixture
async def open_peer() -> AsyncIterator[PeerFactory]:
    transports: list[asyncio.BaseTransport] = []

    async def make(echo: bool = False) -> Peer:
        transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: Peer(echo), local_addr=(LOCALHOST, 0)
        )
        transports.append(transport)
        return peer

    yield make
    for transport in transports:
        transport.close()


@pytest.fixture
async def open_relay() -> AsyncIterator[RelayFactory]:
    relays: list[Relay] = []

    async def make(server: Peer, **options: Any) -> Relay:
        relay = await start_relay(LOCALHOST, 0, LOCALHOST, server.port, **options)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.close()
        await relay.wait_closed()


async def test_echo_through_the_relay(open_peer: PeerFactory, open_relay: RelayFactory) -> None:
    server, client = await open_peer(echo=True), await open_peer()
    relay = await open_relay(server)
    assert relay.address[0] == LOCALHOST and relay.address[1] > 0
    messages = [f"hello {i}".encode() for i in range(20)]
    for message in messages:
        client.send(message, relay.address)
    await client.wait_for(len(messages))
    assert client.data == messages and server.data == messages
    assert {addr for _, addr, _ in client.arrivals} == {relay.address}
    assert relay.delivery["up"].sent == relay.delivery["down"].sent == 20
    lines = relay.summary().splitlines()
    assert lines[0].startswith("flows: opened=1, active=1")
    assert lines[1] == "up (client -> server): received=20, delivered=20; relay: sent=20"
    assert lines[2] == "down (server -> client): received=20, delivered=20; relay: sent=20"


async def test_each_client_gets_its_own_upstream_socket(
    open_peer: PeerFactory, open_relay: RelayFactory
) -> None:
    server, alice, bob = await open_peer(echo=True), await open_peer(), await open_peer()
    relay = await open_relay(server)
    for i in range(3):
        alice.send(b"alice %d" % i, relay.address)
        bob.send(b"bob %d" % i, relay.address)
    await alice.wait_for(3)
    await bob.wait_for(3)
    assert alice.data == [b"alice 0", b"alice 1", b"alice 2"]
    assert bob.data == [b"bob 0", b"bob 1", b"bob 2"]
    sources = {data.split()[0]: addr for data, addr, _ in server.arrivals}
    assert len(set(sources.values())) == 2
    assert relay.address not in sources.values() and relay.active_flows == 2


async def test_delay_is_applied_each_way(open_peer: PeerFactory, open_relay: RelayFactory) -> None:
    server, client = await open_peer(echo=True), await open_peer()
    up, down = Impairment(delay_s=0.04), Impairment(delay_s=0.02)
    relay = await open_relay(server, up=up, down=down)
    sent_at = [client.send(b"%d" % i, relay.address) for i in range(5)]
    await client.wait_for(5)
    slack = 0.003  # uvloop keeps time in whole milliseconds
    for i, start in enumerate(sent_at):
        at_server = next(t for data, _, t in server.arrivals if data == b"%d" % i)
        back = next(t for data, _, t in client.arrivals if data == b"%d" % i)
        assert 0.04 - slack <= at_server - start < 0.04 + 0.2
        assert 0.06 - slack <= back - start < 0.06 + 0.25


async def test_loss_follows_the_seeded_model(open_peer: PeerFactory, open_relay: RelayFactory) -> None:
    up, seed = Impairment(loss=0.3), 7
    model = make_paths(up, Impairment(), seed)[0]  # flow 0 uses seed + 0
    messages = [b"m%03d" % i for i in range(200)]
    passes = [bool(model.process(message, 0.0)) for message in messages]
    # End on a datagram that gets through, so that its arrival proves all were processed.
    last = max(i for i, ok in enumerate(passes) if ok)
    messages, passes = messages[: last + 1], passes[: last + 1]
    expected = [message for message, ok in zip(messages, passes, strict=True) if ok]
    server, client = await open_peer(), await open_peer()
    relay = await open_relay(server, up=up, seed=seed)
    for message in messages:
        client.send(message, relay.address)
    await server.wait_for(len(expected))
    assert server.data == expected
    totals = relay.path_totals("up")
    assert totals.received == len(messages)
    assert totals.dropped_random == len(messages) - len(expected) > 30
    assert f"dropped_random={totals.dropped_random}" in relay.summary()


async def test_flow_limit_refuses_new_clients(open_peer: PeerFactory, open_relay: RelayFactory) -> None:
    server, alice, bob = await open_peer(echo=True), await open_peer(), await open_peer()
    relay = await open_relay(server, max_flows=1)
    alice.send(b"a1", relay.address)
    await alice.wait_for(1)
    bob.send(b"b1", relay.address)
    alice.send(b"a2", relay.address)  # the front socket is FIFO: once a2 is back, b1 was handled
    await alice.wait_for(2)
    assert bob.data == [] and server.data == [b"a1", b"a2"]
    assert relay.datagrams_refused == 1 and "refused_datagrams=1" in relay.summary()


async def test_pending_deliveries_are_capped(open_peer: PeerFactory, open_relay: RelayFactory) -> None:
    server, client = await open_peer(), await open_peer()
    relay = await open_relay(server, up=Impairment(delay_s=0.1), max_pending=10)
    for i in range(30):
        client.send(b"%d" % i, relay.address)
    await server.wait_for(10)  # the burst is read long before the first delivery is due
    assert server.data == [b"%d" % i for i in range(10)]
    counters = relay.delivery["up"]
    assert counters.sent == 10 and counters.dropped_pending_full == 20
    assert "dropped_pending_full=20" in relay.summary()


async def test_idle_flows_are_closed(open_peer: PeerFactory, open_relay: RelayFactory) -> None:
    server, client = await open_peer(echo=True), await open_peer()
    idle_s = 0.1
    relay = await open_relay(server, idle_timeout_s=idle_s)
    client.send(b"first", relay.address)
    await client.wait_for(1)
    await asyncio.sleep(idle_s * 4)  # the idle timeout is what is under test
    assert relay.active_flows == 0 and relay.flows_closed_idle == 1
    client.send(b"second", relay.address)
    await client.wait_for(2)
    first_source, second_source = (addr for _, addr, _ in server.arrivals)
    assert first_source != second_source  # a new flow, with a new upstream socket
    assert relay.flows_opened == 2
    assert relay.path_totals("up").received == 2  # the closed flow's counters are kept


# -- the command line ----------------------------------------------------------------------------


async def _netem(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "udptcp.netem", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
    )


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), PROCESS_WAIT_S)).decode()


async def _finish(process: asyncio.subprocess.Process) -> tuple[str, str]:
    try:
        out, err = await asyncio.wait_for(process.communicate(), PROCESS_WAIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode(), err.decode()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_cli_relays_then_summarises_on_a_signal(open_peer: PeerFactory, stop_signal: int) -> None:
    server, client = await open_peer(echo=True), await open_peer()
    process = await _netem(
        "--target", f"{LOCALHOST}:{server.port}", "--both", "loss=1%,delay=5ms", "--up", "loss=0%",
        "--seed", "3",
    )
    try:
        first = await _line(process)
        match = re.fullmatch(rf"relaying 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:{server.port}\n", first)
        assert match, first
        assert await _line(process) == "up: delay=5ms\n"
        assert await _line(process) == "down: loss=0.01,delay=5ms\n"
        client.send(b"ping", (LOCALHOST, int(match.group(1))))
        await client.wait_for(1)
        process.send_signal(stop_signal)
    finally:
        out, err = await _finish(process)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("flows: opened=1, active=0, closed_idle=0"), out
    assert re.match(r"up \(client -> server\): received=1, delivered=1, .*relay: sent=1$", lines[1]), out
    assert re.match(r"down \(server -> client\): received=1, delivered=1, .*relay: sent=1$", lines[2]), out
    assert client.data == [b"ping"]


async def test_cli_stops_after_duration() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = await _netem("--target", f"{LOCALHOST}:9", "--duration", "0.3")
    out, err = await _finish(process)
    assert process.returncode == 0, err
    assert loop.time() - started >= 0.3
    lines = out.splitlines()
    assert lines[0].startswith("relaying 127.0.0.1:") and lines[1:3] == ["up: none", "down: none"]
    assert lines[3].startswith("flows: opened=0")
    assert lines[4:] == ["up (client -> server): nothing; relay: nothing",
                         "down (server -> client): nothing; relay: nothing"]


async def test_cli_rejects_a_bad_spec_with_exit_status_2() -> None:
    process = await _netem("--target", f"{LOCALHOST}:9", "--up", "los=5%")
    out, err = await _finish(process)
    assert process.returncode == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "--up: unknown key 'los'" in err and "did you mean 'loss'?" in err


async def test_cli_rejects_a_queue_without_rate_in_the_merged_direction() -> None:
    process = await _netem("--target", f"{LOCALHOST}:9", "--both", "queue=10kb", "--up", "rate=1mbit")
    out, err = await _finish(process)
    assert process.returncode == 2 and out == ""
    assert err.startswith("udptcp netem: error: down: queue='10kb'"), err


async def test_cli_reports_a_front_address_in_use_with_exit_status_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOCALHOST, 0))
        port = taken.getsockname()[1]
        process = await _netem("--listen", f"{LOCALHOST}:{port}", "--target", f"{LOCALHOST}:9")
        out, err = await _finish(process)
    assert process.returncode == 1 and out == ""
    assert err.startswith(f"udptcp netem: error: cannot relay 127.0.0.1:{port} -> 127.0.0.1:9:"), err
