"""Real libraries over udptcp with unmodified application code: aiohttp's server and client
(examples/aiohttp_udptcp.py), plain and over TLS, a WebSocket and a 50 MB streamed response;
an asyncssh session and a 10 MB SFTP transfer (examples/asyncssh_udptcp.py)."""

from __future__ import annotations

import hashlib
import os
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme

aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed (pip install '.[test]')")
from aiohttp import web  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
from aiohttp_udptcp import UdptcpConnector, serve  # noqa: E402
from recorders import QUICK, wait  # noqa: E402

BIG_BYTES = 50 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
PATTERN = bytes(range(256)) * (CHUNK_BYTES // 256)


async def hello(request: web.Request) -> web.Response:
    assert request.transport is not None
    cid = request.transport.get_extra_info("cid")  # a udptcp connection's id: no TCP here
    return web.Response(text=f"hello {request.query.get('name', '')} on {len(cid)}")


async def big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = BIG_BYTES
    await response.prepare(request)
    for _ in range(BIG_BYTES // CHUNK_BYTES):
        await response.write(PATTERN)
    await response.write_eof()
    return response


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data.upper())
    return ws


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.fixture(params=["http", "https"])
async def site(request: pytest.FixtureRequest, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
               ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    app = web.Application()
    app.add_routes([web.get("/", hello), web.get("/big", big), web.get("/ws", websocket)])
    tls = request.param == "https"
    runner, server = await serve(app, "127.0.0.1", 0, ssl=contexts[0] if tls else None, **QUICK)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{request.param}://127.0.0.1:{port}", {"ssl_context": contexts[1] if tls else None, **QUICK}
    finally:
        server.close()
        await runner.cleanup()
        server.abort_clients()
        await wait(server.wait_closed())


async def test_aiohttp_requests_websocket_and_a_50_mb_stream(site: tuple[str, dict[str, Any]]) -> None:
    url, options = site
    async with aiohttp.ClientSession(connector=UdptcpConnector(**options)) as session:
        for name in ("a", "b"):  # the second request reuses the kept-alive connection
            async with session.get(f"{url}/", params={"name": name}) as response:
                assert response.status == 200 and await response.text() == f"hello {name} on 6"
        async with session.ws_connect(f"{url}/ws") as ws:
            await ws.send_str("over udptcp")
            assert (await wait(ws.receive())).data == "OVER UDPTCP"
        digest, size = hashlib.sha256(), 0
        async with session.get(f"{url}/big") as response:
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        expected = hashlib.sha256(PATTERN * (BIG_BYTES // CHUNK_BYTES)).hexdigest()
        assert size == BIG_BYTES and digest.hexdigest() == expected


async def test_asyncssh_session_and_a_10_mb_sftp_transfer(tmp_path: Path) -> None:
    pytest.importorskip("asyncssh", reason="asyncssh is not installed (pip install '.[test]')")
    import asyncssh
    from asyncssh_udptcp import SshNetwork

    class NoAuth(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return False  # this test's server lets anyone in

    def run(process: Any) -> None:
        process.stdout.write(f"ran {process.command} on {process.get_extra_info('peername')[0]}\n")
        process.exit(0)

    served = tmp_path / "served"
    served.mkdir()
    network = SshNetwork(**QUICK)
    server = await asyncssh.listen(
        "127.0.0.1", 0, tunnel=network, server_factory=NoAuth, process_factory=run,
        server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        sftp_factory=lambda channel: asyncssh.SFTPServer(channel, chroot=str(served).encode()),
    )
    port = server.sockets[0].getsockname()[1]
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(10 * 1024 * 1024))
    try:
        async with asyncssh.connect("127.0.0.1", port, tunnel=network, known_hosts=None,
                                    username="tester", client_keys=None) as conn:
            result = await wait(conn.run("uptime"))
            assert (result.exit_status, result.stdout) == (0, "ran uptime on 127.0.0.1\n")
            async with conn.start_sftp_client() as sftp:
                await wait(sftp.put(str(source), "up.bin"))
                await wait(sftp.get("up.bin", str(tmp_path / "back.bin")))
        assert (served / "up.bin").read_bytes() == source.read_bytes()
        assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    finally:
        server.close()
        await wait(server.wait_closed())
