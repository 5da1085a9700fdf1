"""The socket udptcp drives itself: batches per wake-up, GSO sends, GRO receives, one pass per batch.

Real sockets on loopback, on the stock loop and on uvloop. GSO and GRO are Linux's; where the
kernel lacks them the tests of the offloads skip and the plain path is tested instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from peer import PEER_ISS
from recorders import until

import udptcp
from udptcp.config import Config
from udptcp.core import State
from udptcp.endpoint import Endpoint, bind, make_socket
from udptcp.transport import StreamTransport
from udptcp.udpsocket import (
    MAX_BYTES_PER_WAKEUP,
    MAX_DATAGRAMS_PER_WAKEUP,
    MAX_UDP_PAYLOAD_BYTES,
    UdpSocket,
    _receive_buffer,
    enable_gro,
    receive_capacity_bytes,
    supports_gso,
)
from udptcp.wire import ACK, SYN, Segment

WAIT_S = 10.0
"""Bound on every wait; reached only on failure."""
SEGMENT_BYTES = 1000


def _offloads() -> tuple[bool, bool]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        return supports_gso(probe), enable_gro(probe)


GSO, GRO = _offloads()
needs_offloads = pytest.mark.skipif(not (GSO and GRO), reason="this kernel has no UDP GSO/GRO")


class Sink:
    """Records what a UdpSocket reports, and wakes a waiter after ``expected`` datagrams."""

    def __init__(self, expected: int) -> None:
        self.batches: list[list[bytes]] = []
        self.too_big: list[int] = []
        self.expected = expected
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagrams_received(self, batch: list[tuple[bytes | memoryview, Any]]) -> None:
        self.batches.append([bytes(data) for data, _ in batch])
        if sum(len(b) for b in self.batches) >= self.expected and not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc: Exception) -> None:
        raise AssertionError(f"unexpected socket error {exc!r}")

    def datagram_too_big(self, peer: Any, size: int) -> None:
        self.too_big.append(size)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A sending and a receiving non-blocking UDP socket on loopback, connected to each other."""
    sender, receiver = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    for sock in (sender, receiver):
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
    sender.connect(receiver.getsockname())
    receiver.connect(sender.getsockname())
    yield sender, receiver
    sender.close()
    receiver.close()


def _datagrams(count: int, last_bytes: int) -> list[bytes]:
    """``count`` equal datagrams, numbered in their first octet, then a shorter last one."""
    equal = [bytes([i]) * SEGMENT_BYTES for i in range(count)]
    return [*equal, bytes([count]) * last_bytes]


@needs_offloads
async def test_a_gso_burst_arrives_as_its_datagrams_split_from_gro(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender_sock, receiver_sock = pair
    sent = _datagrams(20, 300)
    sink = Sink(len(sent))
    loop = asyncio.get_running_loop()
    receiver = UdpSocket(loop, receiver_sock, sink)
    sender = UdpSocket(loop, sender_sock, Sink(0))
    assert sender.gso and receiver.gro
    sender.send_batch(sent, None)
    await asyncio.wait_for(sink.done, WAIT_S)
    received = [d for batch in sink.batches for d in batch]
    assert received == sent  # every datagram, whole, in order: the kernel's coalescing undone
    assert len(sink.batches) < len(sent)  # and not one wake-up per datagram
    receiver.close()
    sender.close()


async def test_without_offloads_each_datagram_still_arrives_whole(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender_sock, receiver_sock = pair
    sent = _datagrams(10, 50)
    sink = Sink(len(sent))
    loop = asyncio.get_running_loop()
    receiver = UdpSocket(loop, receiver_sock, sink, gso=False, gro=False)
    sender = UdpSocket(loop, sender_sock, Sink(0), gso=False, gro=False)
    assert receiver.io_path == "own socket (recvfrom, sendto)"
    sender.send_batch(sent, None)
    await asyncio.wait_for(sink.done, WAIT_S)
    assert [d for batch in sink.batches for d in batch] == sent
    receiver.close()
    sender.close()


async def test_one_wake_up_reads_at_most_its_bound(pair: tuple[socket.socket, socket.socket]) -> None:
    sender_sock, receiver_sock = pair
    total = 3 * MAX_DATAGRAMS_PER_WAKEUP
    for i in range(total):  # queued in the kernel before anyone reads
        sender_sock.send(i.to_bytes(2, "big"))
    sink = Sink(total)
    receiver = UdpSocket(asyncio.get_running_loop(), receiver_sock, sink, gro=False)
    await asyncio.wait_for(sink.done, WAIT_S)
    assert all(len(batch) <= MAX_DATAGRAMS_PER_WAKEUP for batch in sink.batches)
    assert len(sink.batches) >= 3
    assert [int.from_bytes(d, "big") for b in sink.batches for d in b] == list(range(total))
    receiver.close()


async def test_one_wake_up_reads_at_most_its_bound_in_octets(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender_sock, receiver_sock = pair
    receiver_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MAX_BYTES_PER_WAKEUP)
    big = 60_000
    total = 3 * MAX_BYTES_PER_WAKEUP // big
    for i in range(total):  # large datagrams: far fewer of them than the count bound
        sender_sock.send(bytes([i]) * big)
    sink = Sink(total)
    receiver = UdpSocket(asyncio.get_running_loop(), receiver_sock, sink, gro=False)
    await asyncio.wait_for(sink.done, WAIT_S)
    # each wake-up stops once it has read the bound: its data is one ACK's worth
    assert all(sum(map(len, batch)) < MAX_BYTES_PER_WAKEUP + MAX_UDP_PAYLOAD_BYTES for batch in sink.batches)
    assert len(sink.batches) >= 3
    assert [d[0] for b in sink.batches for d in b] == list(range(total))
    receiver.close()


# -- the endpoint: one pass over each connection per batch -------------------------------------

class Recorder(asyncio.Protocol):
    """Counts ``data_received`` calls."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.calls.append(bytes(data))


Listening = tuple[Endpoint, socket.socket, asyncio.Event]


@pytest.fixture
async def listening() -> AsyncIterator[Listening]:
    """A listening endpoint, a raw UDP socket as its peer, and an event set on accept."""
    config = Config(sack=False, timestamps=False, pacing=False, delayed_ack_s=0.2)
    accepted = asyncio.Event()
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Held until the test ends: a StreamWriter collected as garbage closes its transport,
        # and data arriving after that close is answered with a reset.
        streams.append((reader, writer))
        accepted.set()

    server = await udptcp.start_server(on_accept, "127.0.0.1", 0, config=config)
    endpoint = server.endpoints[0]
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    assert endpoint.local_addr is not None
    peer.connect(endpoint.local_addr)
    peer.settimeout(WAIT_S)
    yield endpoint, peer, accepted
    peer.close()
    server.close()
    server.abort_clients()


async def _accept(listening: Listening) -> tuple[StreamTransport, int]:
    """Open a connection from the raw peer by hand; its transport on our side and our ISS."""
    endpoint, peer, accepted = listening
    peer.send(Segment(SYN, PEER_ISS, 0, 65535).encode())
    synack = Segment.decode(await asyncio.to_thread(peer.recv, 2048))
    peer.send(Segment(ACK, PEER_ISS + 1, synack.seq + 1, 65535).encode())
    await asyncio.wait_for(accepted.wait(), WAIT_S)
    return endpoint.connections[0], synack.seq


async def test_a_batch_of_data_makes_one_ack_and_one_delivery(listening: Listening) -> None:
    endpoint, peer, _ = listening
    transport, iss = await _accept(listening)
    recorder = Recorder()
    transport.set_protocol(recorder)
    assert transport.conn.state is State.ESTABLISHED
    pieces = [bytes([i]) * 100 for i in range(10)]
    seq = PEER_ISS + 1
    batch: list[tuple[bytes | memoryview, Any]] = []
    for piece in pieces:
        batch.append((Segment(ACK, seq, iss + 1, 65535, piece).encode(), peer.getsockname()))
        seq += len(piece)
    endpoint.datagrams_received(batch)  # as one wake-up of the socket hands them over
    ack = Segment.decode(await asyncio.to_thread(peer.recv, 2048))
    assert ack.flags == ACK and ack.ack == seq  # one ACK covers the whole batch
    assert recorder.calls == [b"".join(pieces)]  # one delivery, the pieces joined in order
    peer.settimeout(0.2)
    with pytest.raises(TimeoutError):
        peer.recv(2048)  # and no second ACK for the same data


async def test_a_write_to_an_idle_connection_leaves_before_write_returns(listening: Listening) -> None:
    _, peer, _ = listening
    transport, _ = await _accept(listening)
    peer.setblocking(False)  # the loop cannot run while this test does not await
    transport.write(b"ping")
    first = Segment.decode(peer.recv(2048))  # already sent: no loop turn has passed
    assert first.payload == b"ping"
    transport.write(b"a")
    transport.write(b"b")
    with pytest.raises(BlockingIOError):
        peer.recv(2048)  # "ping" is in flight: these wait for the turn's end
    peer.settimeout(WAIT_S)
    joined = Segment.decode(await asyncio.to_thread(peer.recv, 2048))
    assert joined.payload == b"ab"  # one burst for the turn's writes


class Echo(asyncio.Protocol):
    """Writes back what it receives, from inside ``data_received``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def test_a_reply_written_in_data_received_is_one_datagram_with_the_ack(
    listening: Listening,
) -> None:
    _, peer, _ = listening
    transport, iss = await _accept(listening)
    echo = Echo()
    echo.connection_made(transport)
    transport.set_protocol(echo)
    peer.send(Segment(ACK, PEER_ISS + 1, iss + 1, 65535, b"q").encode())
    reply = Segment.decode(await asyncio.to_thread(peer.recv, 2048))
    assert reply.payload == b"q" and reply.ack == PEER_ISS + 2  # the answer carries the ACK
    peer.settimeout(0.3)  # longer than the delayed ACK (0.2 s)
    with pytest.raises(TimeoutError):
        peer.recv(2048)  # and no ACK of its own follows


async def test_the_window_advertised_is_what_the_socket_can_queue() -> None:
    """A window beyond the socket's receive queue invites bursts the kernel drops."""
    config = Config(socket_buffer_bytes=200_000)  # recv_buffer_bytes: 16 MiB by default
    server = await udptcp.start_server(lambda r, w: None, "127.0.0.1", 0, config=config)
    endpoint = server.endpoints[0]
    capacity = receive_capacity_bytes(endpoint.socket)
    assert capacity < config.recv_buffer_bytes
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert endpoint.local_addr is not None
        peer.connect(endpoint.local_addr)
        peer.settimeout(WAIT_S)
        peer.send(Segment(SYN, PEER_ISS, 0, 65535).encode())
        synack = Segment.decode(await asyncio.to_thread(peer.recv, 2048))
        assert synack.flags == SYN | ACK and synack.window == capacity
    finally:
        peer.close()
        server.close()
        server.abort_clients()


async def test_bind_uses_its_own_socket_where_the_loop_can_watch_one() -> None:
    loop = asyncio.get_running_loop()
    endpoint = Endpoint(Config(), loop)
    await bind(endpoint, make_socket(socket.AF_INET, Config()))
    assert endpoint.io_path.startswith("own socket")
    endpoint.close()
    await asyncio.wait_for(endpoint.closed, WAIT_S)


async def test_a_datagram_over_the_interface_mtu_is_reported_not_fragmented() -> None:
    """With don't-fragment set (path-MTU discovery), the kernel refuses what the interface
    cannot carry whole: the socket reports the size, and sends the datagrams after it."""
    sender = make_socket(socket.AF_INET, Config())
    receiver_sock = make_socket(socket.AF_INET, Config())
    receiver_sock.bind(("127.0.0.1", 0))
    sender.connect(receiver_sock.getsockname())
    sink = Sink(1)
    loop = asyncio.get_running_loop()
    udp = UdpSocket(loop, sender, sink)
    receiver = UdpSocket(loop, receiver_sock, received := Sink(1))
    too_big = 70_000  # more than any UDP datagram: refused on every interface
    udp.send_batch([b"x" * too_big, b"after"], None)
    await asyncio.wait_for(received.done, WAIT_S)
    assert sink.too_big == [too_big]
    assert received.batches == [[b"after"]]
    udp.close()
    receiver.close()


class ErrorSink(Sink):
    """A Sink that expects ICMP errors, and counts them."""

    def __init__(self) -> None:
        super().__init__(0)
        self.errors = 0

    def error_received(self, exc: Exception) -> None:
        self.errors += 1


async def test_a_socket_error_leaves_the_receive_buffer_free_for_the_next_wake_up() -> None:
    """Each ICMP error a connected socket reads is reported without the frame that read it: a
    traceback would keep a view of the receive buffer, pinned until a collection, and every
    following wake-up would read into a new 576 KiB buffer."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now: each datagram draws port unreachable
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect(("127.0.0.1", port))
    sink = ErrorSink()
    udp = UdpSocket(asyncio.get_running_loop(), sock, sink)
    gc.disable()  # a reference cycle must not be what frees the buffer
    try:
        buffers = set()
        for _ in range(MAX_SENDS):  # a send may take the error itself (uvloop): try again
            errors = sink.errors
            udp.send_batch([b"x"], None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until(lambda: sink.errors > errors), ERROR_WAIT_S)  # noqa: B023
                buffers.add(id(_receive_buffer()))
            if sink.errors >= ERRORS:
                break
        assert sink.errors >= ERRORS
        assert len(buffers) == 1
    finally:
        gc.enable()
        udp.close()


ERRORS = 5
MAX_SENDS = 50
ERROR_WAIT_S = 0.5
"""How long one send's ICMP error is waited for (it comes back in well under a millisecond)."""
