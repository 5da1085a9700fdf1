"""Reading through asyncio's protocol API: what data_received and a BufferedProtocol are given,
asyncio's StreamReader fed views, and pause_reading/resume_reading holding what arrives."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import SupportsIndex, cast

import pytest
from recorders import HOSTS, QUICK, STILL_BLOCKED_S, Recorder, recording, serve, until, wait

import udptcp
from udptcp.transport import MAX_DELIVERY_BYTES, StreamTransport
from udptcp.udpsocket import RECEIVE_BUFFER_BYTES


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
            await wait(until(arrived))
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
        await wait(until(lambda: bool(server.endpoints[0].connections) and bool(readers)))
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
            await wait(until(lambda: bool(server.endpoints[0].connections) and bool(readers)))
            ours = server.endpoints[0].connections[0]
            await wait(until(lambda: buffered(readers[0]) + ours.conn.rx.held_bytes == size))
            assert ours.conn.rx.held_bytes > size // 2  # most of it waits in the core
        finally:
            go.set()  # also on failure: the handler must end for the server to close
        assert await wait(got) == payload
        assert max(peaks) <= 2 * limit + MAX_DELIVERY_BYTES + RECEIVE_BUFFER_BYTES
        writer.close()
        await writer.wait_closed()


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
        await wait(until(lambda: bool(senders) and senders[0].transport is not None))
        peer_transport = senders[0].transport
        assert peer_transport is not None
        peer_transport.write(payload)
        peer_transport.write_eof()
        assert await wait(collector.done) == payload
        assert collector.calls >= len(payload) // Collector.BUFFER_BYTES
        transport.close()


async def test_pause_reading_closes_the_window_and_resume_reading_delivers_in_order() -> None:
    peers, factory = recording(Recorder)

    server, port = await serve(factory, "127.0.0.1", recv_buffer_bytes=256_000)
    async with server:
        transport, client = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        await wait(until(lambda: bool(peers) and peers[0].transport is not None))
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
        await wait(until(lambda: bool(peers) and bool(peers[0].data)))
        transport.write(b"second")
        transport.write_eof()
        peer = peers[0]
        await asyncio.sleep(STILL_BLOCKED_S)  # evidence: nothing may be delivered meanwhile
        assert bytes(peer.data) == b"first" and "eof" not in peer.events
        assert peer.transport is not None
        while "eof" not in peer.events:
            peer.transport.resume_reading()  # data_received pauses again each time
            await wait(until(lambda: not peer.transport.is_reading() or "eof" in peer.events))  # type: ignore[union-attr]
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
        await wait(until(lambda: bool(peers) and peers[0].transport is not None))
        peer = peers[0]
        ours = cast(StreamTransport, peer.transport)
        await wait(until(lambda: ours.conn.rx.held_bytes == size))  # all of it, held
        peer.limit = enough
        ours.resume_reading()
        await wait(until(lambda: not ours.is_reading()))
        assert peer.sizes and max(peer.sizes) <= MAX_DELIVERY_BYTES
        assert enough <= len(peer.data) < enough + MAX_DELIVERY_BYTES
        assert endpoint.buffered_bytes == size - len(peer.data)  # the rest, still counted
        peer.limit = size
        while "eof" not in peer.events:
            ours.resume_reading()
            await wait(until(lambda: not ours.is_reading() or "eof" in peer.events))
        assert bytes(peer.data) == payload and max(peer.sizes) <= MAX_DELIVERY_BYTES
        assert endpoint.buffered_bytes == 0
        transport.close()
