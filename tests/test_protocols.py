"""create_connection/create_server: asyncio's Protocol API over loopback, on both loops,
over IPv4 and IPv6; and the closing fixes found with it (close after write_eof, abort_clients)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex, TypeVar, cast

import pytest

import udptcp
from udptcp.core import State
from udptcp.server import Server
from udptcp.transport import MAX_DELIVERY_BYTES, StreamTransport
from udptcp.udpsocket import RECEIVE_BUFFER_BYTES

QUICK: dict[str, Any] = {"msl_s": 0.05, "rto_min_s": 0.05}
WAIT_S = 20.0
"""Bound on every wait for something the code under test must do; reached only on failure."""
STILL_BLOCKED_S = 1.0
"""How long something must keep not happening, as evidence that it is held back."""


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")),
]


class Recorder(asyncio.Protocol):
    """Records every callback, in order; ``keep_open`` is what ``eof_received`` returns."""

    def __init__(self, keep_open: bool = False) -> None:
        self.keep_open = keep_open
        self.events: list[str] = []
        self.data = bytearray()
        self.types: set[type] = set()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.eof = asyncio.Event()
        self.made = asyncio.Event()
        self.received = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.events.append("made")
        self.made.set()

    def data_received(self, data: bytes) -> None:
        if self.events[-1] != "data":
            self.events.append("data")
        self.types.add(type(data))
        self.data += data
        self.received.set()

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set()
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


P = TypeVar("P", bound=asyncio.BaseProtocol)


def recording(make: Callable[[], P]) -> tuple[list[P], Callable[[], P]]:
    """A protocol factory that keeps every protocol it makes, in order, for the test to inspect."""
    made: list[P] = []

    def factory() -> P:
        made.append(make())
        return made[-1]

    return made, factory


async def serve(factory: Callable[[], asyncio.BaseProtocol], host: str, **options: Any) -> tuple[Server, int]:
    server = await udptcp.create_server(factory, host, 0, **{**QUICK, **options})
    return server, server.sockets[0].getsockname()[1]


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, WAIT_S)


@pytest.mark.parametrize("host", HOSTS)
async def test_callbacks_and_a_half_open_connection_kept_by_eof_received(host: str) -> None:
    """eof_received returning True keeps the connection: the server answers after the client's
    FIN, then closes; each side sees made, data, eof, lost, in that order."""
    servers, factory = recording(lambda: Recorder(keep_open=True))

    server, port = await serve(factory, host)
    async with server:
        transport, client = await udptcp.create_connection(Recorder, host, port, **QUICK)
        assert client.events == ["made"] and client.transport is transport
        assert transport.get_extra_info("peername")[:2] == (host, port)
        assert transport.get_extra_info("sockname")[0] == host
        assert transport.can_write_eof()
        transport.write(b"request")
        transport.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"more")
        await wait(_until(lambda: bool(servers)))
        peer = servers[0]
        await wait(peer.eof.wait())
        assert bytes(peer.data) == b"request" and peer.events == ["made", "data", "eof"]
        assert peer.transport is not None and not peer.transport.is_closing()
        peer.transport.write(b"reply after your FIN")
        peer.transport.close()
        assert await wait(client.lost) is None
        assert client.events == ["made", "data", "eof", "lost"]
        assert bytes(client.data) == b"reply after your FIN"
        assert await wait(peer.lost) is None


@pytest.mark.parametrize("mss", [1380, None], ids=["mss1380", "discovered"])
async def test_data_received_is_given_bytes(mss: int | None) -> None:
    """asyncio's contract: ``data_received`` gets bytes (a protocol may ``split`` or ``decode``
    them), whether the data came in one segment, a batch, or a coalesced (GRO) datagram."""
    received, factory = recording(Recorder)

    server, port = await serve(factory, "127.0.0.1")
    async with server:
        _, writer = await udptcp.open_connection("127.0.0.1", port, mss=mss, **QUICK)
        expected = 0

        def arrived() -> bool:
            return bool(received) and len(received[0].data) >= expected

        for size in (1, 100, 1380, 5000, 200_000):
            writer.write(b"x" * size)
            expected += size
            await wait(_until(arrived))
        writer.close()
        await writer.wait_closed()
        assert received[0].types == {bytes}


class ReaderProtocol(asyncio.StreamReaderProtocol):
    """A subclass of asyncio's StreamReaderProtocol: it may keep what it is given, so it gets
    bytes, as every protocol but asyncio's own (which copies at once) does."""


class Reader(asyncio.StreamReader):
    """Notes the types its protocol feeds it."""

    def __init__(self) -> None:
        super().__init__(limit=16 * 1024)
        self.types: set[type] = set()

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        self.types.add(type(data))
        super().feed_data(data)


@pytest.mark.parametrize("subclass", [False, True], ids=["asyncio's", "subclass"])
async def test_a_stream_reader_gets_large_segments_intact_whatever_it_reads_at_a_time(subclass: bool) -> None:
    """asyncio's own StreamReaderProtocol is handed views of large segments (it copies them
    into its reader's buffer at once): what the reader reads, slowly and in odd sizes while
    the sender outruns it, is the stream."""
    loop = asyncio.get_running_loop()
    data = os.urandom(3 * MAX_DELIVERY_BYTES + 12345)
    got: asyncio.Future[bytes] = loop.create_future()

    async def read_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunks = []
        while piece := await reader.read(7919):
            chunks.append(piece)
            if len(chunks) % 16 == 0:
                await asyncio.sleep(0)  # let the sender run ahead: the reader pauses and resumes
        got.set_result(b"".join(chunks))
        writer.close()

    readers: list[Reader] = []

    def factory() -> asyncio.StreamReaderProtocol:
        readers.append(Reader())
        kind = ReaderProtocol if subclass else asyncio.StreamReaderProtocol
        return kind(readers[-1], read_all)

    server, port = await serve(factory, "127.0.0.1")
    async with server:
        _, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        writer.write(data)
        writer.write_eof()
        assert await wait(got) == data
        writer.close()
        await writer.wait_closed()
    # Segments of 64 KiB: views (what a pause held and the first, smaller segments are bytes).
    assert readers[0].types == {bytes} if subclass else memoryview in readers[0].types


def buffered(reader: asyncio.StreamReader) -> int:
    """What a StreamReader holds (asyncio has no public way to ask)."""
    return len(reader._buffer)  # type: ignore[attr-defined]


@pytest.mark.parametrize("subclass", [False, True], ids=["asyncio's", "subclass"])
async def test_a_paused_stream_reader_gets_the_rest_of_the_pass_only_if_asyncios(subclass: bool) -> None:
    """A StreamReader pauses its transport once it buffers twice its limit. asyncio's own
    StreamReaderProtocol still gets the rest of the pass it paused in (its reader only appends,
    and a hold would copy the views once more), but nothing of a later pass until it resumes;
    any other protocol gets nothing more once it paused (it may count on that)."""
    readers: list[asyncio.StreamReader] = []
    go = asyncio.Event()

    async def read_later(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        writer.close()

    def factory() -> asyncio.StreamReaderProtocol:
        readers.append(asyncio.StreamReader(limit=1))
        kind = ReaderProtocol if subclass else asyncio.StreamReaderProtocol
        return kind(readers[-1], read_later)

    server, port = await serve(factory, "127.0.0.1")
    async with server:
        _, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        await wait(_until(lambda: bool(server.endpoints[0].connections) and bool(readers)))
        ours = server.endpoints[0].connections[0]
        segment = os.urandom(60_000)
        try:
            view, copy = memoryview(segment), segment
            # One pass over MAX_DELIVERY_BYTES: views of the wake-up's datagrams, and bytes the
            # core had kept (out-of-order data a hole's fill released, say).
            one_pass: list[bytes | memoryview] = [view, view, view, view, view, copy, view, copy]
            ours._deliver(one_pass)
            assert not ours.is_reading()
            if subclass:  # bytes up to MAX_DELIVERY_BYTES, one call; the rest waits
                assert buffered(readers[0]) == 240_000 and ours._held_bytes == 240_000
            else:  # a first piece of views, then past the pause views only, up to the bytes
                assert buffered(readers[0]) == 300_000 and ours._held_bytes == 180_000
            ours._deliver([view])  # the next pass, while still paused
            assert buffered(readers[0]) == (240_000 if subclass else 300_000)
            assert ours._held_bytes == (300_000 if subclass else 240_000)
        finally:
            go.set()
            ours.abort()
            writer.close()


async def test_a_stream_reader_resuming_after_a_long_pause_is_not_handed_the_window() -> None:
    """A StreamReader that reads nothing for a while leaves megabytes held in the core. When
    it reads again, that comes up in pieces it can pause between: its buffer never holds more
    than twice its limit, one piece (MAX_DELIVERY_BYTES) and one wake-up's read, however much
    waits (the rest of a pass goes to it only while that is the wake-up's own datagrams)."""
    size, limit = 3 * 1024 * 1024, 64 * 1024
    loop = asyncio.get_running_loop()
    go, got = asyncio.Event(), loop.create_future()
    readers: list[asyncio.StreamReader] = []
    peaks: list[int] = []

    async def read_later(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        data = bytearray()
        while piece := await reader.read(limit):
            data += piece
            peaks.append(buffered(reader) + len(piece))
        got.set_result(bytes(data))
        writer.close()

    def factory() -> asyncio.StreamReaderProtocol:
        readers.append(asyncio.StreamReader(limit=limit))
        return asyncio.StreamReaderProtocol(readers[-1], read_later)

    server, port = await serve(factory, "127.0.0.1", recv_buffer_bytes=4 * size)
    async with server:
        payload = os.urandom(size)
        _, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        writer.write(payload)
        writer.write_eof()
        try:
            await wait(_until(lambda: bool(server.endpoints[0].connections) and bool(readers)))
            ours = server.endpoints[0].connections[0]
            await wait(_until(lambda: buffered(readers[0]) + ours.conn.rx.held_bytes == size))
            assert ours.conn.rx.held_bytes > size // 2  # most of it waits in the core
        finally:
            go.set()  # also on failure: the handler must end for the server to close
        assert await wait(got) == payload
        assert max(peaks) <= 2 * limit + MAX_DELIVERY_BYTES + RECEIVE_BUFFER_BYTES
        writer.close()
        await writer.wait_closed()


async def test_a_new_state_rearms_the_drivers_timer_for_its_own_deadline() -> None:
    """The driver keeps an armed timer when the core's next deadline moves later (cheaper than
    a re-arm for every ACK: the timer fires, finds nothing due and re-arms), but a new state's
    timers replace the old ones for good: in TIME_WAIT the one timer is 2*MSL's, not the FIN's
    retransmission timeout, which would wake the connection once for nothing."""
    peers, factory = recording(Recorder)
    server, port = await serve(factory, "127.0.0.1", msl_s=0.5)
    async with server:
        transport, client = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        await wait(_until(lambda: bool(peers) and peers[0].transport is not None))
        ours = cast(StreamTransport, peers[0].transport)
        ours.close()  # the server closes first: TIME_WAIT stays with it
        await wait(client.eof.wait())
        transport.close()
        await wait(_until(lambda: ours.conn.state is State.TIME_WAIT))
        assert set(ours.conn.timers.pending()) == {"CLOSE"}
        assert ours._timer_at == ours.conn.get_timer()


async def test_eof_received_returning_false_closes_the_transport() -> None:
    server, port = await serve(Recorder, "127.0.0.1")
    async with server:
        transport, client = await udptcp.create_connection(
            lambda: Recorder(keep_open=True), "127.0.0.1", port, **QUICK
        )
        transport.write_eof()
        # The server's protocol returns False: its transport closes, so our side sees its FIN.
        await wait(client.eof.wait())
        transport.close()
        assert await wait(client.lost) is None


class Collector(asyncio.BufferedProtocol):
    """A BufferedProtocol with a small buffer, so that one delivery takes many buffers."""

    BUFFER_BYTES = 1000

    def __init__(self) -> None:
        self.buffer = bytearray(self.BUFFER_BYTES)
        self.data = bytearray()
        self.calls = 0
        self.done = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.calls += 1
        self.data += self.buffer[:nbytes]

    def eof_received(self) -> bool:
        self.done.set_result(bytes(self.data))
        return False


@pytest.mark.parametrize("host", HOSTS)
async def test_buffered_protocol_gets_every_byte_through_its_own_buffer(host: str) -> None:
    payload = os.urandom(1_000_000)

    def sender() -> Recorder:
        protocol = Recorder()
        protocol.made = asyncio.Event()
        return protocol

    senders, factory = recording(sender)

    server, port = await serve(factory, host)
    async with server:
        transport, collector = await udptcp.create_connection(Collector, host, port, **QUICK)
        await wait(_until(lambda: bool(senders) and senders[0].transport is not None))
        peer_transport = senders[0].transport
        assert peer_transport is not None
        peer_transport.write(payload)
        peer_transport.write_eof()
        assert await wait(collector.done) == payload
        assert collector.calls >= len(payload) // Collector.BUFFER_BYTES
        transport.close()


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (callers bound the wait)."""
    while not condition():
        await asyncio.sleep(0)


async def test_pause_and_resume_writing_at_the_write_buffer_limits() -> None:
    release = asyncio.Event()

    class Slow(Recorder):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            cast(asyncio.Transport, transport).pause_reading()
            asyncio.get_running_loop().create_task(self._later())

        async def _later(self) -> None:
            await release.wait()
            assert self.transport is not None
            self.transport.resume_reading()

    server, port = await serve(Slow, "127.0.0.1", recv_buffer_bytes=256_000)
    async with server:
        transport, client = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        with pytest.raises(ValueError, match="must be >= low"):
            transport.set_write_buffer_limits(high=10, low=20)
        transport.set_write_buffer_limits(high=200_000)
        assert transport.get_write_buffer_limits() == (50_000, 200_000)
        transport.write(os.urandom(1_000_000))
        assert client.events == ["made", "pause_writing"]  # at once, within write()
        assert transport.get_write_buffer_size() == 1_000_000
        await asyncio.sleep(STILL_BLOCKED_S)  # evidence: nothing may change meanwhile
        assert client.events == ["made", "pause_writing"]
        assert transport.get_write_buffer_size() > 200_000
        release.set()
        await wait(_until(lambda: "resume_writing" in client.events))
        assert transport.get_write_buffer_size() <= 50_000
        transport.close()
        assert await wait(client.lost) is None


async def test_pause_reading_closes_the_window_and_resume_reading_delivers_in_order() -> None:
    peers, factory = recording(Recorder)

    server, port = await serve(factory, "127.0.0.1", recv_buffer_bytes=256_000)
    async with server:
        transport, client = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        await wait(_until(lambda: bool(peers) and peers[0].transport is not None))
        peer = peers[0]
        assert peer.transport is not None
        peer.transport.pause_reading()
        assert not peer.transport.is_reading()
        payload = os.urandom(2_000_000)
        transport.write(payload)
        transport.write_eof()
        await asyncio.sleep(STILL_BLOCKED_S)  # evidence: nothing may be delivered meanwhile
        assert peer.events == ["made"] and not peer.data
        stats = transport.get_extra_info("stats")
        assert stats["peer_window_bytes"] == 0, "the paused reader's window stayed open"
        assert stats["bytes_acked"] <= 256_000
        peer.transport.resume_reading()
        await wait(peer.eof.wait())
        assert bytes(peer.data) == payload and peer.events[:3] == ["made", "data", "eof"]
        await wait(client.eof.wait())  # the peer's protocol returned False: it closed
        transport.close()


async def test_pausing_inside_data_received_holds_the_rest_of_the_delivery() -> None:
    """Data the core delivered after the protocol paused reading waits for resume_reading."""

    class PauseAtOnce(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            assert self.transport is not None
            self.transport.pause_reading()

    peers, factory = recording(PauseAtOnce)

    server, port = await serve(factory, "127.0.0.1")
    async with server:
        transport, _ = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        transport.write(b"first")
        await wait(_until(lambda: bool(peers) and bool(peers[0].data)))
        transport.write(b"second")
        transport.write_eof()
        peer = peers[0]
        await asyncio.sleep(STILL_BLOCKED_S)  # evidence: nothing may be delivered meanwhile
        assert bytes(peer.data) == b"first" and "eof" not in peer.events
        assert peer.transport is not None
        while "eof" not in peer.events:
            peer.transport.resume_reading()  # data_received pauses again each time
            await wait(_until(lambda: not peer.transport.is_reading() or "eof" in peer.events))  # type: ignore[union-attr]
        assert bytes(peer.data) == b"firstsecond"
        transport.close()


async def test_resuming_after_a_long_pause_delivers_in_pieces_that_a_new_pause_stops() -> None:
    """What a paused reader's window held goes up in pieces of at most MAX_DELIVERY_BYTES: a
    protocol that pauses again once it has enough gets at most one piece more, not the whole
    window in one call, and what waits still counts against the endpoint's memory limit."""
    size, enough = 1_500_000, 65536

    class Limited(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[int] = []
            self.limit = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            cast(asyncio.Transport, transport).pause_reading()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.sizes.append(len(data))
            if len(self.data) >= self.limit:
                assert self.transport is not None
                self.transport.pause_reading()

    peers, factory = recording(Limited)

    server, port = await serve(factory, "127.0.0.1", recv_buffer_bytes=2_000_000)
    async with server:
        endpoint = server.endpoints[0]
        transport, _ = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        payload = os.urandom(size)
        transport.write(payload)
        transport.write_eof()
        await wait(_until(lambda: bool(peers) and peers[0].transport is not None))
        peer = peers[0]
        ours = cast(StreamTransport, peer.transport)
        await wait(_until(lambda: ours.conn.rx.held_bytes == size))  # all of it, held
        peer.limit = enough
        ours.resume_reading()
        await wait(_until(lambda: not ours.is_reading()))
        assert peer.sizes and max(peer.sizes) <= MAX_DELIVERY_BYTES
        assert enough <= len(peer.data) < enough + MAX_DELIVERY_BYTES
        assert endpoint.buffered_bytes == size - len(peer.data)  # the rest, still counted
        peer.limit = size
        while "eof" not in peer.events:
            ours.resume_reading()
            await wait(_until(lambda: not ours.is_reading() or "eof" in peer.events))
        assert bytes(peer.data) == payload and max(peer.sizes) <= MAX_DELIVERY_BYTES
        assert endpoint.buffered_bytes == 0
        transport.close()


async def test_abort_resets_the_peer_and_ends_both_sides() -> None:
    peers, factory = recording(Recorder)

    server, port = await serve(factory, "::1" if _has_ipv6_loopback() else "127.0.0.1")
    async with server:
        host = server.sockets[0].getsockname()[0]
        transport, client = await udptcp.create_connection(Recorder, host, port, **QUICK)
        transport.write(b"x")
        await wait(_until(lambda: bool(peers) and bool(peers[0].data)))
        transport.write(b"discarded" * 1000)
        transport.abort()
        assert transport.is_closing()
        assert await wait(client.lost) is None
        assert isinstance(await wait(peers[0].lost), ConnectionResetError)


async def test_a_failing_protocol_factory_resets_the_connection_and_is_reported() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    def broken() -> asyncio.Protocol:
        raise RuntimeError("factory bug")

    try:
        server, port = await serve(broken, "127.0.0.1")
        async with server:
            _, client = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
            assert isinstance(await wait(client.lost), ConnectionResetError)
            assert "factory bug" in str(reported[0]["exception"])
    finally:
        loop.set_exception_handler(None)


@pytest.mark.parametrize("host", HOSTS)
async def test_close_after_an_acknowledged_write_eof_returns_at_once(host: str) -> None:
    """As close() after shutdown(SHUT_WR) with kernel TCP: the application is done at once,
    the endpoint keeps the orphaned connection in FIN_WAIT_2, and data the peer still sends
    is answered with RST."""
    send_late = asyncio.Event()
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def lingering_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until our FIN
        writer.write(b"seen your FIN")
        await send_late.wait()
        writer.write(b"late data")
        try:
            await reader.read()
            await writer.drain()
            await writer.wait_closed()
            outcome.set_result(None)
        except ConnectionError as exc:
            outcome.set_result(exc)

    server = await udptcp.start_server(lingering_peer, host, 0, **QUICK)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection(host, port, fin_wait_2_timeout_s=60.0, **QUICK)
        writer.write_eof()
        assert await wait(reader.readexactly(13)) == b"seen your FIN"  # it carries the ACK of our FIN
        assert writer.get_extra_info("state") is udptcp.State.FIN_WAIT_2
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), STILL_BLOCKED_S)
        except TimeoutError:
            writer.transport.abort()  # lets the server's handler, and so the server, end
            raise
        transport = cast(StreamTransport, writer.transport)
        assert transport.conn.state is udptcp.State.FIN_WAIT_2
        assert transport in transport._endpoint.connections, "the orphan must stay with its endpoint"
        send_late.set()
        assert isinstance(await wait(outcome), ConnectionError), "late data must be answered with RST"
        await wait(_until(lambda: transport.conn.state is udptcp.State.CLOSED))


async def test_abort_clients_leaves_time_wait_to_its_timer() -> None:
    async def close_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(1) == b"c":
            writer.close()  # this side closes first, so its connection ends in TIME_WAIT

    server = await udptcp.start_server(close_first, "127.0.0.1", 0, msl_s=30.0, shutdown_linger_s=0.0)
    port = server.sockets[0].getsockname()[1]
    closing_reader, closing_writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
    open_reader, open_writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
    closing_writer.write(b"c")
    open_writer.write(b"o")
    assert await wait(closing_reader.read()) == b""
    closing_writer.close()
    await wait(closing_writer.wait_closed())
    endpoint = server.endpoints[0]

    def states() -> list[udptcp.State]:
        return sorted((t.conn.state for t in endpoint.connections), key=lambda s: s.name)

    await wait(_until(lambda: states() == [udptcp.State.ESTABLISHED, udptcp.State.TIME_WAIT]))
    server.abort_clients()
    assert states() == [udptcp.State.TIME_WAIT]
    with pytest.raises(ConnectionResetError):
        await wait(open_reader.read())
    open_writer.close()
    server.close()
    await wait(server.wait_closed())


async def test_network_object_carries_its_options_to_both_calls() -> None:
    """The object handed to libraries with a create_connection hook (asyncssh's tunnel=)."""
    network = udptcp.Network(msl_s=0.05, rto_min_s=0.05)
    peers, factory = recording(Recorder)

    server = await network.create_server(factory, "127.0.0.1", 0, backlog=8)
    async with server:
        assert server.endpoints[0].config.msl_s == 0.05 and server.endpoints[0].config.backlog == 8
        port = server.sockets[0].getsockname()[1]
        transport, client = await network.create_connection(Recorder, "127.0.0.1", port)
        assert cast(StreamTransport, transport).conn.config.rto_min_s == 0.05
        transport.write(b"via the hook")
        await wait(_until(lambda: bool(peers) and bytes(peers[0].data) == b"via the hook"))
        transport.close()
        assert await wait(client.lost) is None
