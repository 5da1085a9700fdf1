"""create_connection/create_server: asyncio's Protocol API over loopback, on both loops,
over IPv4 and IPv6; and the closing fixes found with it (close after write_eof, abort_clients).
Reading (data_received, pause_reading) is in test_reading.py."""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

import pytest
from recorders import (
    HOSTS,
    QUICK,
    STILL_BLOCKED_S,
    Recorder,
    has_ipv6_loopback,
    recording,
    serve,
    until,
    wait,
)

import udptcp
from udptcp.core import State
from udptcp.transport import StreamTransport


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
        await wait(until(lambda: bool(servers)))
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


async def test_a_new_state_rearms_the_drivers_timer_for_its_own_deadline() -> None:
    """The driver keeps an armed timer when the core's next deadline moves later (cheaper than
    a re-arm for every ACK: the timer fires, finds nothing due and re-arms), but a new state's
    timers replace the old ones for good: in TIME_WAIT the one timer is 2*MSL's, not the FIN's
    retransmission timeout, which would wake the connection once for nothing."""
    peers, factory = recording(Recorder)
    server, port = await serve(factory, "127.0.0.1", msl_s=0.5)
    async with server:
        transport, client = await udptcp.create_connection(Recorder, "127.0.0.1", port, **QUICK)
        await wait(until(lambda: bool(peers) and peers[0].transport is not None))
        ours = cast(StreamTransport, peers[0].transport)
        ours.close()  # the server closes first: TIME_WAIT stays with it
        await wait(client.eof.wait())
        transport.close()
        await wait(until(lambda: ours.conn.state is State.TIME_WAIT))
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
        await wait(until(lambda: "resume_writing" in client.events))
        assert transport.get_write_buffer_size() <= 50_000
        transport.close()
        assert await wait(client.lost) is None


async def test_abort_resets_the_peer_and_ends_both_sides() -> None:
    peers, factory = recording(Recorder)

    server, port = await serve(factory, "::1" if has_ipv6_loopback() else "127.0.0.1")
    async with server:
        host = server.sockets[0].getsockname()[0]
        transport, client = await udptcp.create_connection(Recorder, host, port, **QUICK)
        transport.write(b"x")
        await wait(until(lambda: bool(peers) and bool(peers[0].data)))
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
        await wait(until(lambda: transport.conn.state is udptcp.State.CLOSED))


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

    await wait(until(lambda: states() == [udptcp.State.ESTABLISHED, udptcp.State.TIME_WAIT]))
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
        await wait(until(lambda: bool(peers) and bytes(peers[0].data) == b"via the hook"))
        transport.close()
        assert await wait(client.lost) is None
