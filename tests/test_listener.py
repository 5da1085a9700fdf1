"""The listener under pressure, in one process over loopback: SYN cookies once the half-open
connections fill the backlog, an accept queue bounded apart from them, and no client that
completed its handshake ever reset for it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

import udptcp
from udptcp.wire import Flags, Segment, encode_datagram

QUICK: dict[str, Any] = {"msl_s": 0.05, "rto_min_s": 0.05}
WAIT_S = 20.0


async def until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Poll ``condition`` (counters notify nobody) until it holds or ``timeout_s`` passes."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read())
    writer.write_eof()
    await writer.drain()
    writer.close()


async def echo_once(port: int, message: bytes) -> bytes:
    reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
    writer.write(message)
    writer.write_eof()
    data = await reader.read()
    writer.close()
    return data


async def test_a_burst_beyond_the_backlog_is_served_by_syn_cookies_without_a_reset() -> None:
    """Before cookies, a burst larger than the backlog evicted half-open connections whose
    clients already believed they were connected: their first write met a RST."""
    count = 120
    async with await udptcp.start_server(echo, "127.0.0.1", 0, backlog=8, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        results = await asyncio.wait_for(
            asyncio.gather(*(echo_once(port, b"%d" % i) for i in range(count))), WAIT_S
        )
        counters = server.endpoints[0].counters
    assert results == [b"%d" % i for i in range(count)]
    assert counters.syn_cookies_sent > 0 and counters.syn_cookies_accepted > 0
    assert counters.resets_sent == 0 and counters.cookies_invalid == 0


async def test_a_full_accept_queue_drops_final_acks_and_the_clients_get_in_later() -> None:
    """Nobody accepts yet: two connections fill the queue (backlog 2); the others' last ACKs
    are dropped, their SYN-ACKs resent, and once serving starts every client is served."""
    server = await udptcp.start_server(
        echo, "127.0.0.1", 0, backlog=2, start_serving=False, rto_initial_s=0.2, **QUICK
    )
    port = server.sockets[0].getsockname()[1]
    endpoint = server.endpoints[0]
    tasks = [asyncio.create_task(echo_once(port, b"client %d" % i)) for i in range(6)]
    assert await until(
        lambda: endpoint.counters.acks_dropped_accept_queue + endpoint.counters.syns_dropped_backlog
        >= 4
    )
    assert not any(task.done() for task in tasks)
    await server.start_serving()
    results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    assert results == [b"client %d" % i for i in range(6)]
    assert endpoint.counters.resets_sent == 0
    server.close()
    await server.wait_closed()


async def test_a_stranger_ack_with_a_forged_cookie_is_dropped_and_opens_nothing() -> None:
    async with await udptcp.start_server(echo, "127.0.0.1", 0, backlog=1, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        endpoint = server.endpoints[0]
        flooders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for n, flooder in enumerate(flooders):  # the first fills the one half-open place,
                flooder.sendto(Segment(flags=Flags.SYN, seq=n, ack=0, window=65535).encode(),
                               ("127.0.0.1", port))  # the second gets a cookie
            assert await until(lambda: endpoint.counters.syn_cookies_sent == 1)
            other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            other.bind(("127.0.0.1", 0))
            other.setblocking(False)
            try:
                other.sendto(Segment(flags=Flags.ACK, seq=2, ack=12345, window=65535).encode(),
                             ("127.0.0.1", port))
                assert await until(lambda: endpoint.counters.cookies_invalid == 1)
                with pytest.raises(BlockingIOError):
                    other.recv(2048)  # no RST: dropped (see Listener.on_ack), nothing opened
            finally:
                other.close()
            assert len(endpoint.connections) == 1  # the half-open one only
        finally:
            for flooder in flooders:
                flooder.close()


async def test_syns_whose_options_are_malformed_are_dropped_and_counted_and_keep_no_state() -> None:
    """The endpoint reads only a stranger's header before handing its SYN to the listener:
    the options are checked there too, or each such SYN would leave a connection in LISTEN
    that no backlog counts and no timer ends."""
    bad_sack_option = bytes([5, 3, 0, 1])  # SACK with a length of 3: no such option
    async with await udptcp.start_server(echo, "127.0.0.1", 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        endpoint = server.endpoints[0]
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
        try:
            for n, sender in enumerate(senders):
                sender.sendto(encode_datagram(Flags.SYN, n, 0, 65535, options=bad_sack_option),
                              ("127.0.0.1", port))
            assert await until(lambda: endpoint.counters.dropped_malformed == len(senders))
            assert endpoint.connections == []
            assert await echo_once(port, b"still serving") == b"still serving"
        finally:
            for sender in senders:
                sender.close()
