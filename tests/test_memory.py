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
from udptcp.core import State
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
