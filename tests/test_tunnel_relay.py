"""``udptcp.tunnel`` in one process, on each event loop: the relay as a library, both tunnel
sides chained, and what their counters say (between processes: ``test_tunnel.py``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import pytest

from udptcp import Config
from udptcp.tunnel import Tunnel, tcp_carrier, udptcp_carrier

QUICK = Config(msl_s=0.05, rto_min_s=0.05, shutdown_linger_s=0.5)
WAIT_S = 20.0


async def chain(target_port: int) -> tuple[Tunnel, Tunnel, int]:
    """tunnel client (TCP in, udptcp out) -> tunnel server (udptcp in, TCP out) -> target."""
    far = Tunnel(udptcp_carrier(QUICK), tcp_carrier(), ("127.0.0.1", target_port))
    far_port = (await far.listen("127.0.0.1", 0)).sockets[0].getsockname()[1]
    near = Tunnel(tcp_carrier(), udptcp_carrier(QUICK), ("127.0.0.1", far_port))
    near_port = (await near.listen("127.0.0.1", 0)).sockets[0].getsockname()[1]
    return near, far, near_port


async def test_chained_tunnels_carry_a_half_closed_exchange_and_count_it() -> None:
    request = os.urandom(2_000_000)

    async def target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(hashlib.sha256(await reader.read()).digest())
        writer.close()

    srv = await asyncio.start_server(target, "127.0.0.1", 0)
    near, far, port = await chain(srv.sockets[0].getsockname()[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), WAIT_S) == hashlib.sha256(request).digest()
    writer.close()
    await asyncio.wait_for(asyncio.gather(near.stop(), far.stop()), WAIT_S)
    for tunnel in (near, far):
        assert (tunnel.stats.connections, tunnel.stats.failed, tunnel.stats.resets) == (1, 0, 0)
        assert (tunnel.stats.bytes_to_target, tunnel.stats.bytes_from_target) == (len(request), 32)
        assert tunnel.active == 0
    srv.close()


async def test_stopping_resets_an_open_relay_after_the_grace() -> None:
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(reader)

    srv = await asyncio.start_server(target, "127.0.0.1", 0)
    near, far, port = await chain(srv.sockets[0].getsockname()[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    target_reader = await asyncio.wait_for(accepted.get(), WAIT_S)
    assert near.active == far.active == 1
    await asyncio.wait_for(near.stop(grace_s=0.0), WAIT_S)
    assert near.stats.resets == 1
    for end in (reader, target_reader):
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(end.read(), WAIT_S)
    writer.close()
    await asyncio.wait_for(far.stop(), WAIT_S)
    assert far.stats.resets == 1
    srv.close()


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("127.0.0.1:9000", TypeError, "target must be a (host, port) tuple"),
        (("127.0.0.1", 0), ValueError, "port must be the port the server listens on, in [1, 65535], got 0"),
        ((9000, "127.0.0.1"), TypeError, "host must be a str, the server's name or address, got int 9000"),
    ],
)
def test_a_wrong_target_is_named_when_the_tunnel_is_made(target: object, error: type, message: str) -> None:
    """Not at each accepted connection, where it would fail every one of them."""
    with pytest.raises(error, match=re.escape(message)):
        Tunnel(tcp_carrier(), udptcp_carrier(QUICK), target)  # type: ignore[arg-type]
