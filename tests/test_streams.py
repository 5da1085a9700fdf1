"""The asyncio layer over real loopback sockets, on the stock loop and on uvloop."""

from __future__ import annotations

import array
import asyncio
import gc
import os
import re
import socket
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

import udptcp
from udptcp.transport import StreamTransport
from udptcp.wire import VERSION, Flags, Segment

QUICK: dict[str, Any] = {"msl_s": 0.05, "rto_min_s": 0.05}
"""Short TIME_WAIT and timers, so that tests end quickly."""
WAIT_S = 20.0
"""Bound on every wait for something the code under test must do; reached only on failure."""
STILL_BLOCKED_S = 1.0
"""How long drain() must stay blocked while the peer reads nothing, as evidence that it blocks."""


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await udptcp.start_server(echo, "127.0.0.1", 0, **QUICK)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_echo_roundtrip_and_reader_api(echo_port: int) -> None:
    reader, writer = await udptcp.open_connection("127.0.0.1", echo_port, **QUICK)
    writer.writelines([b"line one\n", b"line two\n", b"tail:", b"12345"])
    assert writer.can_write_eof()
    writer.write_eof()
    assert await reader.readline() == b"line one\n"
    assert await reader.readuntil(b"\n") == b"line two\n"
    assert await reader.readexactly(5) == b"tail:"
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await reader.readexactly(10)
    assert info.value.partial == b"12345"
    assert reader.at_eof()
    writer.close()
    await writer.wait_closed()
    assert writer.get_extra_info("state") is udptcp.State.TIME_WAIT


async def test_get_extra_info(echo_port: int) -> None:
    reader, writer = await udptcp.open_connection("127.0.0.1", echo_port, **QUICK)
    assert writer.get_extra_info("peername") == ("127.0.0.1", echo_port)
    assert writer.get_extra_info("sockname")[0] == "127.0.0.1"
    assert writer.get_extra_info("state") is udptcp.State.ESTABLISHED
    writer.write(b"x" * 100_000)
    await writer.drain()
    assert len(await reader.readexactly(100_000)) == 100_000
    stats = writer.get_extra_info("stats")
    assert stats["bytes_sent"] == 100_000 and stats["srtt_s"] is not None
    assert stats["congestion_control"] == "cubic" and stats["sack"] and stats["timestamps"]
    assert writer.get_extra_info("no such key", "default") == "default"
    writer.close()
    await writer.wait_closed()


async def test_large_transfer_is_exact(echo_port: int) -> None:
    payload = os.urandom(3_000_000)
    reader, writer = await udptcp.open_connection("127.0.0.1", echo_port, **QUICK)

    async def send() -> None:
        for i in range(0, len(payload), 100_000):
            writer.write(payload[i : i + 100_000])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    echoed = await asyncio.wait_for(reader.read(), WAIT_S)
    await sender
    assert echoed == payload
    writer.close()
    await writer.wait_closed()


async def test_drain_blocks_while_the_peer_does_not_read() -> None:
    release = asyncio.Event()
    got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        got.set_result(len(await reader.read()))
        writer.close()

    async with await udptcp.start_server(slow, "127.0.0.1", 0, recv_buffer_bytes=256_000,
                                         **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await udptcp.open_connection("127.0.0.1", port, send_buffer_bytes=200_000, **QUICK)
        writer.write(os.urandom(2_000_000))
        drain = asyncio.create_task(writer.drain())
        # No event marks "will never return"; a drain() still pending after STILL_BLOCKED_S,
        # while the peer reads nothing and the write buffer is still over its limit, is the
        # evidence. (Without flow control, 2 MB over loopback drains in well under that.)
        done, _ = await asyncio.wait([drain], timeout=STILL_BLOCKED_S)
        assert not done, f"drain() returned within {STILL_BLOCKED_S} s although the peer reads nothing"
        assert writer.transport.get_write_buffer_size() > 200_000
        release.set()
        await asyncio.wait_for(drain, WAIT_S)
        writer.write_eof()
        assert await asyncio.wait_for(got, WAIT_S) == 2_000_000
        writer.close()
        await writer.wait_closed()


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (callers bound the wait)."""
    while not condition():
        await asyncio.sleep(0)


async def test_readexactly_far_beyond_the_readers_limit_completes() -> None:
    """StreamReader pauses reading past twice its limit, and to wait for more it resumes
    reading and only then waits: data delivered from within resume_reading would pause it
    again before it waits, for ever. Whatever the transport holds arrives in a later pass."""
    size = 4_000_000
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.set_result(await reader.readexactly(size))
        writer.close()

    async with await udptcp.start_server(take, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        payload = os.urandom(size)
        writer.write(payload)
        try:
            assert await asyncio.wait_for(got, WAIT_S) == payload
        finally:
            writer.transport.abort()  # a stuck server connection must not hold up the close


async def test_drain_waiters_in_a_list_wake_on_resume_and_fail_on_reset() -> None:
    """udptcp's stream protocols keep drain() waiters in a list, not asyncio's deque (700
    octets less per connection): waiters wake together once the peer reads, and fail together
    when the connection is reset."""
    release, reset = asyncio.Event(), asyncio.Event()
    server_waiters: list[object] = []

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_waiters.append(writer._protocol._drain_waiters)  # type: ignore[attr-defined]
        await release.wait()
        await reader.readexactly(2_000_000)
        await reset.wait()
        writer.transport.abort()

    async with await udptcp.start_server(slow, "127.0.0.1", 0, recv_buffer_bytes=256_000,
                                         **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await udptcp.open_connection("127.0.0.1", port, send_buffer_bytes=200_000, **QUICK)
        waiters = writer._protocol._drain_waiters  # type: ignore[attr-defined]
        writer.write(os.urandom(2_000_000))
        drains = [asyncio.create_task(writer.drain()) for _ in range(2)]
        await asyncio.wait_for(_until(lambda: len(waiters) == 2), WAIT_S)
        assert type(waiters) is list and [type(w) for w in server_waiters] == [list]
        release.set()
        await asyncio.wait_for(asyncio.gather(*drains), WAIT_S)
        assert waiters == []
        writer.write(os.urandom(2_000_000))
        drains = [asyncio.create_task(writer.drain()) for _ in range(2)]
        await asyncio.wait_for(_until(lambda: len(waiters) == 2), WAIT_S)
        reset.set()
        results = await asyncio.wait_for(asyncio.gather(*drains, return_exceptions=True), WAIT_S)
        assert all(isinstance(r, ConnectionResetError) for r in results), results
        writer.close()


async def test_server_reply_after_half_close(echo_port: int) -> None:
    async def reply_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()
        writer.write(b"got " + str(len(request)).encode())
        writer.close()

    async with await udptcp.start_server(reply_after_eof, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        writer.write(b"x" * 50_000)
        writer.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            writer.write(b"more")
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b"got 50000"
        writer.close()
        await writer.wait_closed()


async def test_peer_abort_resets_reader() -> None:
    async def abort(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        writer.transport.abort()

    async with await udptcp.start_server(abort, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        writer.write(b"!")
        with pytest.raises(ConnectionResetError, match="reset by peer"):
            await asyncio.wait_for(reader.read(), WAIT_S)
        writer.close()


async def test_refused_when_no_socket_is_there() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError, match="refused"):
        await asyncio.wait_for(udptcp.open_connection("127.0.0.1", port, **QUICK), WAIT_S)


async def test_refused_by_rst_from_endpoint_without_listener() -> None:
    accepted = asyncio.Event()

    async def accept_then_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await echo(reader, writer)

    server = await udptcp.start_server(accept_then_echo, "127.0.0.1", 0, **QUICK)
    port = server.sockets[0].getsockname()[1]
    endpoint = server.endpoints[0]
    reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
    await asyncio.wait_for(accepted.wait(), WAIT_S)
    server.close()  # the socket stays open for the accepted connection
    with pytest.raises(ConnectionRefusedError, match="refused"):
        await asyncio.wait_for(udptcp.open_connection("127.0.0.1", port, **QUICK), WAIT_S)
    assert endpoint.counters.resets_sent == 1
    writer.write_eof()
    assert await reader.read() == b""
    writer.close()
    await server.wait_closed()


async def test_connect_to_silent_port_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        with pytest.raises(TimeoutError, match="no answer to 2 SYNs"):
            await asyncio.wait_for(
                udptcp.open_connection("127.0.0.1", port, syn_retries=1, rto_initial_s=0.1,
                                       rto_min_s=0.05),
                WAIT_S,
            )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"port": 70000}, ValueError, "port must be in [0, 65535], got 70000"),
        ({"port": -1}, ValueError, "port must be in [0, 65535], got -1"),
        ({"port": "http"}, ValueError, "port must be an int in [0, 65535] or a str of its digits, got 'ht"),
        ({"port": 1.5}, TypeError, "port must be an int in [0, 65535] or a str of its digits, got float"),
        ({"port": True}, TypeError, "got bool True"),
        ({"port": None}, ValueError, "port must be given"),
        ({"port": 0}, ValueError, "port must be the port the server listens on, in [1, 65535], got 0"),
        ({"host": 123, "port": 1}, TypeError, "host must be a str, the server's name or address, got int"),
        ({"host": b"127.0.0.1", "port": 1}, ConnectionRefusedError, "nothing listens"),  # as asyncio
        ({"host": b"\xff", "port": 1}, ValueError, "host must be a name or address in ASCII"),
        ({"host": None, "port": 1}, ValueError, "host must be given"),
        ({"host": "", "port": 1}, ValueError, "host must be the server's name or address"),
        ({"port": 1, "family": "x"}, TypeError, "family must be 0 (either), socket.AF_INET or"),
        ({"port": 1, "family": socket.AF_UNIX}, ValueError, "family must be 0 (either)"),
        ({"port": 1, "local_addr": "x"}, TypeError, "local_addr must be a (host, port) tuple"),
        ({"port": 1, "limit": 0}, ValueError, "limit must be positive"),
        ({"port": 1, "msl": 1.0}, TypeError, "did you mean 'msl_s'"),
        ({"port": 1, "mss": 10}, ValueError, "mss must be at least 64"),
        ({"port": 1, "rto_min_s": "fast"}, TypeError, "rto_min_s must be a number"),
        ({"port": 1, "msl_s": 1}, ConnectionRefusedError, "nothing listens"),  # valid: it connects
        ({"port": 1, "msl_s": True}, TypeError, "msl_s must be a number"),  # not the 1 just before
        ({"port": 1, "msl_s": [1]}, TypeError, "msl_s must be a number"),
    ],
)
async def test_bad_arguments_say_which_and_why(kwargs: dict[str, object], error: type,
                                               message: str) -> None:
    arguments = {"host": "127.0.0.1", **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        await udptcp.open_connection(**arguments)  # type: ignore[arg-type]
    if "limit" in arguments:
        return  # the stream reader's, which protocols have not
    with pytest.raises(error, match=re.escape(message)):  # the same checks, for protocols
        await udptcp.create_connection(asyncio.Protocol, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"host": 5}, TypeError, "host must be a str, a sequence of str or None (every interface), got int"),
        ({"host": b"127.0.0.1"}, TypeError, "got bytes b'127.0.0.1'"),
        ({"host": ["127.0.0.1", 5]}, TypeError, "host must be a str or a sequence of str, got int 5"),
        ({"host": []}, ValueError, "host must name at least one address to listen on"),
        ({"port": "http"}, ValueError, "port must be an int in [0, 65535] or a str of its digits, got 'h"),
        ({"port": -3}, ValueError, "port must be in [0, 65535], got -3"),
        ({"port": 1.5}, TypeError, "got float 1.5"),
    ],
)
async def test_bad_server_arguments_say_which_and_why(kwargs: dict[str, object], error: type,
                                                      message: str) -> None:
    arguments = {"host": "127.0.0.1", "port": 0, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        await udptcp.start_server(echo, **arguments)  # type: ignore[arg-type]
    with pytest.raises(error, match=re.escape(message)):
        await udptcp.create_server(asyncio.Protocol, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "port"), [(None, 0), ("", 0), (["127.0.0.1"], "0"), (("127.0.0.1",), None)]
)
async def test_server_hosts_and_ports_asyncio_takes_are_taken(host: object, port: object) -> None:
    server = await udptcp.start_server(echo, host, port)  # type: ignore[arg-type]
    async with server:
        assert server.sockets and all(s.getsockname()[1] != 0 for s in server.sockets)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text", "data must be bytes, bytearray or memoryview, not str: encode it first"),
        (None, "data must be bytes, bytearray or memoryview, not NoneType"),
        (array.array("i", [1, 2]), "not array: pass another buffer (an array...) as memoryview(data).cast("),
    ],
)
async def test_writing_what_is_not_bytes_says_what_is_taken(echo_port: int, data: object,
                                                            message: str) -> None:
    """Refused as asyncio's own transports refuse it (an array too), and the connection goes on."""
    reader, writer = await udptcp.open_connection("127.0.0.1", echo_port, **QUICK)  # short TIME_WAIT
    with pytest.raises(TypeError, match=re.escape(message)):
        writer.write(data)  # type: ignore[arg-type]
    writer.write(memoryview(array.array("B", b"ok")).cast("B"))
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b"ok"
    writer.close()
    await writer.wait_closed()


def _malformed_datagrams() -> list[bytes]:
    """One datagram for each way decoding fails before any connection sees it."""
    valid = Segment(flags=Flags.ACK, seq=1, ack=1, window=65535, payload=b"data").encode()
    bad_checksum = valid[:-1] + bytes([valid[-1] ^ 0xFF])
    wrong_version = bytes([VERSION + 1]) + valid[1:]
    return [b"", b"\x01" * 5, valid[:19], bad_checksum, wrong_version]


async def test_malformed_datagrams_are_dropped_and_counted() -> None:
    """Junk from a stranger is counted by the endpoint; junk from a peer by its connection."""
    stats: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def read_then_report(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(2) == b"ok"
        stats.set_result(writer.get_extra_info("stats"))
        writer.transport.abort()

    async with await udptcp.start_server(read_then_report, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        endpoint = server.endpoints[0]
        junk = _malformed_datagrams()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            for datagram in junk:
                stranger.sendto(datagram, ("127.0.0.1", port))
        # A peer that completes the handshake, then sends junk before its first data: loopback
        # keeps one socket's datagrams in order, so the server has seen the junk by the data.
        raw = await RawPeer.open(port)
        raw.send(Segment(flags=Flags.SYN, seq=1000, ack=0, window=65535))
        synack = await raw.receive()
        assert synack.flags == Flags.SYN | Flags.ACK and synack.ack == 1001
        raw.send(Segment(flags=Flags.ACK, seq=1001, ack=synack.seq + 1, window=65535))
        peer_junk = [datagram for datagram in junk if datagram]  # asyncio sends no empty datagram
        for datagram in peer_junk:
            raw.send_raw(datagram)
        raw.send(Segment(flags=Flags.ACK | Flags.PSH, seq=1001, ack=synack.seq + 1, window=65535,
                         payload=b"ok"))
        connection_stats = await asyncio.wait_for(stats, WAIT_S)
        raw.close()
    assert connection_stats["dropped_malformed"] == len(peer_junk)
    assert endpoint.counters.dropped_malformed == len(junk)  # the stranger's, not the peer's


async def test_old_duplicate_syn_is_never_accepted_and_is_forgotten_after_rst() -> None:
    accepted: list[object] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    server = await udptcp.start_server(record, "127.0.0.1", 0, **QUICK)
    port = server.sockets[0].getsockname()[1]
    endpoint = server.endpoints[0]
    raw = await RawPeer.open(port)
    stale = Segment(flags=Flags.SYN, seq=123456, ack=0, window=65535)
    raw.send(stale)
    synack = await raw.receive()
    assert synack.flags == Flags.SYN | Flags.ACK and synack.ack == 123457
    assert len(endpoint.connections) == 1 and not accepted
    raw.send(Segment(flags=Flags.RST, seq=synack.ack, ack=0, window=0))  # "not my SYN"
    assert await endpoint.wait_until(lambda: not endpoint.connections, WAIT_S)
    raw.close()
    assert accepted == []
    server.close()
    await server.wait_closed()


async def test_one_server_socket_serves_a_thousand_connections() -> None:
    count = 1000
    peak = 0

    async def hold_then_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal peak
        peak = max(peak, len(server.endpoints[0].connections))
        await echo(reader, writer)

    server = await udptcp.start_server(hold_then_echo, "127.0.0.1", 0, backlog=count, **QUICK)
    port = server.sockets[0].getsockname()[1]

    async def one(i: int) -> bytes:
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        writer.write(b"%d" % i)
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data

    async with server:
        results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 120)
    assert results == [b"%d" % i for i in range(count)]
    assert len(server.sockets) == 1 and peak > count // 2  # one socket held them at once
    assert server.endpoints[0].counters.syns_dropped_backlog == 0


async def test_a_syn_flood_does_not_lock_a_real_client_out() -> None:
    """SYNs from many ports that never complete fill the backlog; a real client still gets in."""
    async with await udptcp.start_server(echo, "127.0.0.1", 0, backlog=8, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        flooders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(40)]
        try:
            for n, sock in enumerate(flooders):
                sock.sendto(Segment(flags=Flags.SYN, seq=n, ack=0, window=65535).encode(),
                            ("127.0.0.1", port))
            reader, writer = await asyncio.wait_for(
                udptcp.open_connection("127.0.0.1", port, msl_s=0.1), 5.0
            )
            writer.write(b"still served")
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5.0) == b"still served"
            writer.close()
            await writer.wait_closed()
        finally:
            for sock in flooders:
                sock.close()


async def test_time_wait_is_kept_after_close_then_ends() -> None:
    async with await udptcp.start_server(echo, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, msl_s=0.3)
        writer.write_eof()
        await reader.read()
        writer.close()
        await writer.wait_closed()  # returns at once, as asyncio's does
        assert writer.get_extra_info("state") is udptcp.State.TIME_WAIT
        started = asyncio.get_running_loop().time()
        # The client's endpoint wakes its waiters when TIME_WAIT ends and it forgets the connection.
        client_endpoint = cast(StreamTransport, writer.transport)._endpoint
        assert await client_endpoint.wait_until(
            lambda: writer.get_extra_info("state") is udptcp.State.CLOSED, WAIT_S
        )
        assert asyncio.get_running_loop().time() - started >= 0.5  # 2 * MSL, less what passed


async def test_an_ended_client_connection_is_freed_without_the_cycle_collector() -> None:
    """A client's connection has an endpoint and a socket of its own: once it is over, they go
    by reference counting alone. A client opening thousands of connections would otherwise
    leave them all to the cycle collector, whose full runs then cost more than the set-ups."""
    async with await udptcp.start_server(echo, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        endpoint = cast(StreamTransport, writer.transport)._endpoint
        freed = asyncio.Event()
        weakref.finalize(endpoint, freed.set)
        gc.disable()
        try:
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(asyncio.shield(endpoint.closed), WAIT_S)  # after TIME_WAIT
            del reader, writer, endpoint
            await asyncio.wait_for(freed.wait(), WAIT_S)
        finally:
            gc.enable()


class RawPeer(asyncio.DatagramProtocol):
    """A hand-driven peer: sends crafted segments, queues what comes back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, port: int) -> RawPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, remote_addr=("127.0.0.1", port))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    def send(self, segment: Segment) -> None:
        self.send_raw(segment.encode())

    def send_raw(self, datagram: bytes) -> None:
        """Send raw octets, valid or not."""
        assert self.transport is not None
        self.transport.sendto(datagram)

    async def receive(self) -> Segment:
        return Segment.decode(await asyncio.wait_for(self.received.get(), WAIT_S))

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


async def test_write_after_peer_closed_and_reset_is_a_broken_pipe() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # full close: more data from the client will be answered by RST

    async with await udptcp.start_server(close_at_once, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # the server's FIN
        writer.write(b"anyone there?")
        # The server answers the data with RST; the connection is lost with the error.
        with pytest.raises(BrokenPipeError, match="the peer closed it"):
            await asyncio.wait_for(writer.wait_closed(), WAIT_S)
        with pytest.raises(BrokenPipeError, match="the peer closed it"):
            await writer.drain()
        writer.close()


async def test_logging_is_silent_unless_configured(echo_port: int, capfd: pytest.CaptureFixture[str]
                                                   ) -> None:
    import io
    import json
    import logging

    from udptcp import log

    reader, writer = await udptcp.open_connection("127.0.0.1", echo_port, **QUICK)
    writer.write_eof()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    out, err = capfd.readouterr()
    assert out == "" and err == ""

    stream = io.StringIO()
    log.configure("debug", json=True, stream=stream)
    try:
        reader, writer = await udptcp.open_connection("127.0.0.1", echo_port, **QUICK)
        writer.write_eof()
        await reader.read()
        writer.close()
        await writer.wait_closed()
    finally:
        logging.getLogger("udptcp").handlers.clear()
        logging.getLogger("udptcp").addHandler(logging.NullHandler())
        logging.getLogger("udptcp").setLevel(logging.NOTSET)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    changes = [r for r in records if r["event"] == "state change"]
    cid = writer.get_extra_info("cid")
    mine = [(r["old"], r["new"]) for r in changes if r["cid"] == cid]
    assert mine[:2] == [("CLOSED", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED")]
    assert ("FIN_WAIT_2", "TIME_WAIT") in mine
    assert all(r["peer"] == f"127.0.0.1:{echo_port}" and "local" in r for r in changes if r["cid"] == cid)
