"""Memory bounded as a whole (``memory_limit_bytes``, in the spirit of Linux's tcp_mem): the
core's behaviour under pressure, in the simulator, and an endpoint keeping its connections'
buffers near the limit over loopback."""

from __future__ import annotations

import asyncio
import os

from peer import ACK, BASIC, ISS, PEER_ISS, PEER_WINDOW_BYTES, established
from sim import Sim, established_pair

import udptcp
from udptcp.config import Config
from udptcp.core import PRESSURE_FLOOR_BYTES, PRESSURE_LOW_WATER_BYTES, State
from udptcp.endpoint import Endpoint
from udptcp.netem import Impairment

WAIT_S = 30.0


def test_under_pressure_out_of_order_data_is_refused_and_the_window_stops_growing() -> None:
    p = established()
    p.conn.set_memory_pressure(True)
    p.send(ACK, PEER_ISS + 1 + 1000, ISS + 1, b"x" * 500)  # out of order: not kept
    [ack] = p.recv()
    assert ack.ack == PEER_ISS + 1 and p.conn.rx.ooo_bytes == 0
    assert p.conn.rx.pressure_dropped == 1
    window = ack.window
    for i in range(3):  # in order, read at once: taken
        p.send(ACK, PEER_ISS + 1 + 1000 * i, ISS + 1, b"y" * 1000)
    acks = p.recv()
    assert acks[-1].ack == PEER_ISS + 1 + 3000
    assert acks[-1].window == window - 3000  # the right edge did not move
    p.conn.set_memory_pressure(False)
    [update] = p.recv()  # pressure over: the window reopens, and the peer hears of it
    assert update.window == window and update.ack == PEER_ISS + 1 + 3000


def test_under_pressure_a_reading_receivers_window_keeps_reopening_within_the_floor() -> None:
    """In-order data read at once costs nothing: past the window advertised when pressure
    began, the edge moves again, but only as far as the floor (``PRESSURE_FLOOR_BYTES``)."""
    p = established(BASIC.replace(recv_buffer_bytes=8 * PRESSURE_FLOOR_BYTES))
    p.conn.set_memory_pressure(True)
    size, sent = 1000, 0
    while sent < 4 * 8 * PRESSURE_FLOOR_BYTES:  # four times the window, so it must reopen
        p.send(ACK, PEER_ISS + 1 + sent, ISS + 1, b"z" * size)
        sent += size
        [ack] = p.recv()
        assert ack.ack == PEER_ISS + 1 + sent, "in-order data read at once is taken"
        assert ack.window > 0
    assert PRESSURE_LOW_WATER_BYTES <= ack.window <= PRESSURE_FLOOR_BYTES
    assert p.conn.rx.pressure_dropped == 0 and p.conn.buffered_bytes == 0


def test_under_pressure_a_paused_reader_keeps_nothing_more() -> None:
    p = established()
    p.conn.pause_reading()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"a" * 100)
    p.recv()
    p.conn.set_memory_pressure(True)
    p.send(ACK, PEER_ISS + 101, ISS + 1, b"b" * 100)
    [ack] = p.recv()
    assert ack.ack == PEER_ISS + 101 and p.conn.buffered_bytes == 100
    p.conn.set_memory_pressure(False)
    p.send(ACK, PEER_ISS + 101, ISS + 1, b"b" * 100, window=PEER_WINDOW_BYTES)
    assert p.conn.buffered_bytes == 200


def test_a_lossy_transfer_into_a_receiver_under_pressure_completes_keeping_nothing_aside() -> None:
    """Refused segments are resent: the data arrives exactly once and in order, and the
    receiver never holds out-of-order data."""
    impaired = Impairment(loss=0.03, reorder=0.05, delay_s=0.01)
    sim = established_pair(Sim(Config(), up=impaired, down=Impairment(delay_s=0.01), seed=5))
    sim.server.conn.set_memory_pressure(True)
    data = os.urandom(400_000)
    sim.client.to_send = data
    sim.flush()
    peak_ooo = 0

    def done() -> bool:
        nonlocal peak_ooo
        peak_ooo = max(peak_ooo, sim.server.conn.rx.ooo_bytes)
        return len(sim.server.received) >= len(data)

    sim.run(done, max_time=600)
    assert bytes(sim.server.received) == data
    assert peak_ooo == 0 and sim.server.conn.rx.pressure_dropped > 0


def test_a_connection_that_times_out_lets_its_buffers_go_at_once() -> None:
    """A peer gone silent with our data queued, its own held for a paused reader and more out
    of order: once the connection gives up (CLOSED), it keeps none of it, even while something
    (an application's exception, in a reference cycle) still holds the connection object."""
    p = established(BASIC.replace(user_timeout_s=5.0))
    p.conn.pause_reading()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"a" * 1000)  # held for the paused reader
    p.send(ACK, PEER_ISS + 2001, ISS + 1, b"b" * 1000)  # out of order
    p.conn.send(bytes(200_000))
    p.recv()
    assert p.conn.buffered_bytes == 202_000 and p.conn.rx.ooo is not None
    p.advance(60.0)  # nothing more from the peer: retransmissions, then the user timeout
    assert p.is_in(State.CLOSED)
    tx, rx = p.conn.tx, p.conn.rx
    assert p.conn.buffered_bytes == 0 and p.conn.send_buffered == 0
    assert tx.buf.size == 0 and not tx.recs and not tx.tsorted and tx.sacked is None
    assert rx.held is None and rx.ooo is None and rx.ooo_bytes == 0
    assert tx.data_end == ISS + 1 + 200_000  # the sequence numbers (and statistics) stay


async def test_an_endpoint_keeps_its_connections_buffers_near_the_limit() -> None:
    """Eight clients each send a megabyte to an echo server and read nothing back for a
    while: without a cap the server would keep all 8 MB; with a 1 MiB limit its writers pause,
    its windows stop growing, and it keeps about the limit. Then every client gets its data."""
    limit = 1 << 20
    clients, size = 8, 1_000_000

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
        writer.close()

    server = await udptcp.start_server(echo, "127.0.0.1", 0, memory_limit_bytes=limit, msl_s=0.05)
    endpoint: Endpoint = server.endpoints[0]
    peaks: list[int] = []
    charge = endpoint.charge

    def recording(delta_bytes: int) -> None:
        charge(delta_bytes)
        peaks.append(endpoint.buffered_bytes)

    endpoint.charge = recording  # type: ignore[method-assign]
    port = server.sockets[0].getsockname()[1]
    all_sent = asyncio.Event()
    sent = 0

    async def one() -> bytes:
        nonlocal sent
        reader, writer = await udptcp.open_connection(
            "127.0.0.1", port, recv_buffer_bytes=65536, msl_s=0.05
        )
        payload = os.urandom(size)
        writer.write(payload)
        writer.write_eof()
        sent += 1
        if sent == clients:
            all_sent.set()
        await all_sent.wait()  # reading starts once every client has written
        back = await reader.read()
        writer.close()
        return back if back == payload else b"mismatch"

    results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(clients))), WAIT_S)
    assert all(len(r) == size for r in results)
    assert endpoint.counters.memory_pressure_events >= 1
    assert max(peaks) <= limit + clients * 2 * 65536  # the limit, plus what was in flight
    server.close()
    await server.wait_closed()
    assert endpoint.buffered_bytes == 0  # every connection gave back what it was charged


async def test_under_sustained_pressure_a_new_connection_still_moves_both_ways() -> None:
    """Peers that never read (windows closed, probes answered: kept alive by design) hold an
    endpoint under memory pressure for good. Each connection keeps a floor, as Linux's
    tcp_wmem[0]/tcp_rmem[0]: a connection made afterwards still sends (its ``drain()``
    returns) and gets its echo back, more than a receive window's worth each way."""
    limit = 1 << 20
    hogged = asyncio.Event()
    hogs = 2

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hogs
        if await reader.readexactly(4) == b"hog!":  # queue more than the limit, for good
            writer.write(b"h" * limit)
            hogs -= 1
            if not hogs:
                hogged.set()
            await reader.read()
            return
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await udptcp.start_server(
        serve, "127.0.0.1", 0, memory_limit_bytes=limit, recv_buffer_bytes=65536, msl_s=0.05
    )
    endpoint: Endpoint = server.endpoints[0]
    port = server.sockets[0].getsockname()[1]
    hog_transports = []
    for _ in range(hogs):
        _, hog = await udptcp.open_connection("127.0.0.1", port, recv_buffer_bytes=65536, msl_s=0.05)
        transport = hog.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()  # never reads: its window closes
        hog.write(b"hog!")
        hog_transports.append(hog)
    await asyncio.wait_for(hogged.wait(), WAIT_S)
    assert endpoint.memory_pressure

    reader, writer = await udptcp.open_connection("127.0.0.1", port, msl_s=0.05)
    writer.write(b"echo")
    payload = os.urandom(4 * 65536)  # four times the server's receive window

    async def send() -> None:
        for start in range(0, len(payload), 2000):
            writer.write(payload[start : start + 2000])
            await writer.drain()

    async def receive() -> bytes:
        return await reader.readexactly(len(payload))

    sender = asyncio.ensure_future(send())
    back = await asyncio.wait_for(receive(), WAIT_S)
    await asyncio.wait_for(sender, WAIT_S)
    assert back == payload
    assert endpoint.memory_pressure, "the peers that never read held the pressure throughout"
    assert endpoint.buffered_bytes >= limit * 3 // 4
    writer.close()
    for hog in hog_transports:
        hog.transport.abort()
    server.close()
    await asyncio.wait_for(server.wait_closed(), WAIT_S)
