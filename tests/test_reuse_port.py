"""``start_server(reuse_port=True)`` in one process: servers sharing a port, each connection on a
socket of its own, and ``sock=``. Between processes: ``test_workers.py``."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from echoes import close_all, echo_round

import udptcp
from udptcp.endpoint import ConnectionSocket, Endpoint
from udptcp.transport import StreamTransport
from udptcp.wire import Flags, Segment

QUICK: dict[str, Any] = {"msl_s": 0.05, "rto_min_s": 0.05}
WAIT_S = 20.0
"""Bound on every wait for something the code under test must do; reached only on failure."""

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def echo_recording(served: list[object]) -> Handler:
    """An echo handler that records the peer of every connection it serves."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(writer.get_extra_info("peername"))
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    return echo


async def test_servers_sharing_a_port_spread_connections_that_stay_through_joins_and_leaves() -> None:
    """Two servers on one port (one process, as two workers would be): new peers spread over
    both; a third joining and one leaving (close) move no established connection, and the
    one that left keeps serving its own until they end."""
    served: dict[str, list[object]] = {"a": [], "b": [], "c": []}
    first = await udptcp.start_server(echo_recording(served["a"]), "127.0.0.1", 0, reuse_port=True, **QUICK)
    port = first.sockets[0].getsockname()[1]
    second = await udptcp.start_server(echo_recording(served["b"]), "127.0.0.1", port, reuse_port=True,
                                       **QUICK)
    streams = [await udptcp.open_connection("127.0.0.1", port, **QUICK) for _ in range(16)]
    await echo_round(streams, "before")
    assert served["a"] and served["b"]  # both served some (each alone: 1 in 2**16)
    assert len(served["a"]) + len(served["b"]) == 16
    third = await udptcp.start_server(echo_recording(served["c"]), "127.0.0.1", port, reuse_port=True,
                                      **QUICK)
    await echo_round(streams, "joined")
    second.close()  # its listening socket leaves the group now; its connections go on
    await echo_round(streams, "left")
    newcomer = await udptcp.open_connection("127.0.0.1", port, **QUICK)  # not refused by the leaver
    await echo_round([newcomer], "new")
    await close_all([*streams, newcomer])
    for server in (first, second, third):
        server.close()
        await asyncio.wait_for(server.wait_closed(), WAIT_S)
    assert all(ep.counters.resets_sent == 0 for s in (first, second, third) for ep in s.endpoints)


async def test_each_connection_has_its_own_connected_socket_only_with_reuse_port() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer)
        await reader.read()
        writer.close()

    for reuse_port in (False, True):
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        async with await udptcp.start_server(hold, "127.0.0.1", 0, reuse_port=reuse_port, **QUICK) as server:
            port = server.sockets[0].getsockname()[1]
            clients = [await udptcp.open_connection("127.0.0.1", port, **QUICK) for _ in range(3)]
            sockets = [(await asyncio.wait_for(accepted.get(), WAIT_S)).get_extra_info("socket")
                       for _ in clients]
            if reuse_port:
                assert len({id(s) for s in sockets}) == 3 and server.sockets[0] not in sockets
                peers = {s.getpeername() for s in sockets}
                assert peers == {w.get_extra_info("sockname") for _, w in clients}
                assert {s.getsockname() for s in sockets} == {("127.0.0.1", port)}
                assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in sockets)
            else:
                assert all(s is server.sockets[0] for s in sockets)  # one socket for all, as before
            await close_all(clients)


@pytest.mark.parametrize("closes_first", ["client", "server"])
async def test_a_connections_socket_is_closed_when_the_connection_is_forgotten(closes_first: str) -> None:
    """After LAST_ACK (the client closed first) or TIME_WAIT (the server did), not before."""
    states: asyncio.Queue[tuple[StreamTransport, udptcp.State]] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        assert isinstance(transport, StreamTransport)
        if closes_first == "server":
            writer.close()
        else:
            await reader.read()
            writer.close()
        await writer.wait_closed()
        states.put_nowait((transport, transport.conn.state))

    async with await udptcp.start_server(serve, "127.0.0.1", 0, reuse_port=True, **QUICK) as server:
        endpoint = server.endpoints[0]
        reader, writer = await udptcp.open_connection("127.0.0.1", server.sockets[0].getsockname()[1],
                                                      **QUICK)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
        transport, state = await asyncio.wait_for(states.get(), WAIT_S)
        own = transport.outlet
        assert isinstance(own, ConnectionSocket)
        if closes_first == "server":
            assert state is udptcp.State.TIME_WAIT and own.socket.fileno() != -1  # kept for 2*MSL
        assert await endpoint.wait_until(lambda: not endpoint.connections, WAIT_S)
        # forget() closed it; the file descriptor goes with the loop turn that follows, which
        # ran before this task resumed (callbacks run in the order they were scheduled).
        assert own.socket.fileno() == -1
        assert server.sockets[0].fileno() != -1  # the listening socket stays
        writer.close()


async def test_datagrams_queued_on_the_listening_socket_reach_the_connection() -> None:
    """A SYN, its retransmission, the handshake's ACK and data, all sent before the server reads
    any of them, so that all wait on the listening socket while the connection gets its own:
    one connection, the data delivered, no RST."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    checked = asyncio.Event()
    accepted: list[object] = []

    async def read_some(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        got.set_result(await reader.readexactly(5))
        await checked.wait()
        writer.transport.abort()  # the hand-driven peer would never acknowledge a FIN

    async with await udptcp.start_server(read_some, "127.0.0.1", 0, reuse_port=True, **QUICK) as server:
        endpoint = server.endpoints[0]
        assert endpoint.listener is not None
        endpoint.listener.next_isn = 5000  # the ISN the SYN-ACK will carry, so the ACK can precede it
        peer = RawPeer(server.sockets[0].getsockname())
        try:
            syn = Segment(flags=Flags.SYN, seq=100, ack=0, window=65535)
            peer.send(syn)
            peer.send(syn)  # a retransmission
            peer.send(Segment(flags=Flags.ACK, seq=101, ack=5001, window=65535))
            peer.send(Segment(flags=Flags.ACK | Flags.PSH, seq=101, ack=5001, window=65535, payload=b"hello"))
            assert await asyncio.wait_for(got, WAIT_S) == b"hello"
            replies = peer.drain()  # the answers to the four, sent as the batch was read
            checked.set()
        finally:
            peer.close()
    assert len(accepted) == 1
    assert not [r for r in replies if r.flags & Flags.RST]
    assert endpoint.counters.resets_sent == 0


async def test_a_syn_whose_socket_cannot_be_opened_is_dropped_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Out of file descriptors, say: the SYN is dropped (the client retries) and the log says
    what to do."""
    real = Endpoint._socket_to
    failures = [OSError(errno.EMFILE, "Too many open files")]

    def fail_once(self: Endpoint, peer: tuple[object, ...]) -> socket.socket:
        if failures:
            raise failures.pop()
        return real(self, peer)

    monkeypatch.setattr(Endpoint, "_socket_to", fail_once)
    async with await udptcp.start_server(echo_recording([]), "127.0.0.1", 0, reuse_port=True,
                                         **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        with caplog.at_level("WARNING", logger="udptcp"):
            reader, writer = await asyncio.wait_for(
                udptcp.open_connection("127.0.0.1", port, rto_initial_s=0.2, **QUICK), WAIT_S
            )
        await echo_round([(reader, writer)], "after a retry")
        await close_all([(reader, writer)])
    assert server.endpoints[0].counters.syns_dropped_no_socket == 1
    assert "ulimit -n" in caplog.text


async def test_reuse_port_where_the_platform_has_no_so_reuseport_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    with pytest.raises(ValueError, match="reuse_port=True needs SO_REUSEPORT"):
        await udptcp.start_server(echo_recording([]), "127.0.0.1", 0, reuse_port=True)


async def test_sharing_a_port_needs_reuse_port_on_every_server() -> None:
    async with await udptcp.start_server(echo_recording([]), "127.0.0.1", 0, reuse_port=True) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1:"):
            await udptcp.start_server(echo_recording([]), "127.0.0.1", port)
    async with await udptcp.start_server(echo_recording([]), "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(OSError, match="every one of them has SO_REUSEPORT"):
            await udptcp.start_server(echo_recording([]), "127.0.0.1", port, reuse_port=True)


async def test_start_server_on_a_socket_of_the_applications() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    served: list[object] = []
    async with await udptcp.start_server(echo_recording(served), sock=sock, reuse_port=True,
                                         **QUICK) as server:
        assert server.sockets == (sock,)
        stream = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        await echo_round([stream], "mine")
        await close_all([stream])
        assert len(served) == 1
    assert sock.fileno() == -1  # the server owned it


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "message"),
    [
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), {"port": 1}, ValueError, "not both"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), {}, ValueError, "must be bound"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), {}, ValueError, "UDP socket"),
        (lambda: _bound(reuse_port=False), {"reuse_port": True}, ValueError, "sock has no SO_REUSEPORT"),
        (lambda: 3, {}, TypeError, "sock must be a socket.socket"),
    ],
)
async def test_a_wrong_sock_says_what_is_wrong(
    make: Callable[[], socket.socket], kwargs: dict[str, object], error: type, message: str
) -> None:
    sock = make()
    try:
        with pytest.raises(error, match=message):
            await udptcp.start_server(echo_recording([]), sock=sock, **kwargs)  # type: ignore[arg-type]
    finally:
        if isinstance(sock, socket.socket):
            sock.close()


def _bound(*, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
    sock.bind(("127.0.0.1", 0))
    return sock


class RawPeer:
    """A plain UDP socket sending hand-made segments to one address, blocking-free."""

    def __init__(self, server: tuple[str, int]) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.connect(server)
        self._sock.setblocking(False)

    def send(self, segment: Segment) -> None:
        self._sock.send(segment.encode())

    def drain(self) -> list[Segment]:
        """Every segment received so far."""
        replies = []
        while True:
            try:
                replies.append(Segment.decode(self._sock.recv(65535)))
            except BlockingIOError:
                return replies

    def close(self) -> None:
        self._sock.close()
