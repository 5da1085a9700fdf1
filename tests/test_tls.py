"""TLS over udptcp (asyncio's SSL layer over our transport), on both loops, with a CA made
in the test by trustme: streams, protocols, STARTTLS, verification, the close and failures."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import procs
import pytest
import trustme
from recorders import HOSTS, QUICK, Recorder, until, wait

import udptcp
from udptcp import tls
from udptcp.transport import StreamTransport


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_ctx(ca: trustme.CA) -> Iterator[ssl.SSLContext]:
    with ca.cert_pem.tempfile() as cafile:
        yield tls.client_context(cafile)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("host", HOSTS)
async def test_streams_over_tls_13_with_the_certificate_verified(
    host: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async with await udptcp.start_server(echo, host, 0, ssl=server_ctx, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection(host, port, ssl=client_ctx, **QUICK)
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.3"
        assert writer.get_extra_info("cipher")[1] == "TLSv1.3"
        assert writer.get_extra_info("peercert")["subjectAltName"]
        assert writer.get_extra_info("peername")[:2] == (host, port)  # from udptcp's transport
        payload = os.urandom(3_000_000)  # past every buffer's limit: flow control through TLS
        writer.write(payload)
        drain = asyncio.create_task(writer.drain())
        received = await wait(reader.readexactly(len(payload)))
        await wait(drain)
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        writer.close()
        await wait(writer.wait_closed())


async def test_ssl_true_verifies_against_the_system_cas(server_ctx: ssl.SSLContext) -> None:
    async with await udptcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await wait(udptcp.open_connection("127.0.0.1", port, ssl=True, **QUICK))


async def test_a_wrong_host_name_fails_verification(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async with await udptcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            await wait(udptcp.open_connection("127.0.0.1", port, ssl=client_ctx,
                                              server_hostname="elsewhere.example", **QUICK))
        # and with checking off (insecure), the same server is reached
        insecure = tls.client_context(verify=False)
        reader, writer = await udptcp.open_connection("127.0.0.1", port, ssl=insecure, **QUICK)
        writer.write(b"hi")
        assert await wait(reader.readexactly(2)) == b"hi"
        writer.close()
        await wait(writer.wait_closed())


async def test_ssl_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
        await udptcp.open_connection("127.0.0.1", 1, server_hostname="x")
    with pytest.raises(TypeError, match=r"ssl must be an ssl\.SSLContext"):
        await udptcp.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True)  # type: ignore[arg-type]


async def test_protocol_over_tls_and_the_close_is_close_notify_then_fin(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """The client's close sends close_notify first: the server's protocol sees the end of the
    TLS stream while udptcp's connection under it is still ESTABLISHED (no FIN yet)."""
    state_at_eof: list[udptcp.State] = []

    class Server(Recorder):
        def eof_received(self) -> bool:
            assert self.transport is not None
            state_at_eof.append(self.transport.get_extra_info("state"))
            return super().eof_received()

    peers: list[Server] = []

    def factory() -> Server:
        peers.append(Server())
        return peers[-1]

    server = await udptcp.create_server(factory, "127.0.0.1", 0, ssl=server_ctx, **QUICK)
    async with server:
        port = server.sockets[0].getsockname()[1]
        transport, client = await udptcp.create_connection(
            Recorder, "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost", **QUICK
        )
        assert client.events == ["made"]  # after the handshake, as asyncio does
        assert transport.get_extra_info("sslcontext") is client_ctx
        assert isinstance(transport.get_extra_info("ssl_object"), ssl.SSLObject)
        assert not transport.can_write_eof()  # TLS 1.3 over asyncio has no half-close
        transport.write(b"over tls")
        await wait(until(lambda: bool(peers) and bytes(peers[0].data) == b"over tls"))
        transport.close()
        assert await wait(client.lost) is None
        assert await wait(peers[0].lost) is None
        assert state_at_eof == [udptcp.State.ESTABLISHED]
        assert peers[0].events == ["made", "data", "eof", "lost"]


@pytest.mark.parametrize("host", HOSTS)
async def test_starttls_upgrades_an_open_connection(
    host: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    upgraded: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def starttls_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO AHEAD\n")
        await writer.start_tls(server_ctx)
        upgraded.set_result(writer.get_extra_info("ssl_object").version())
        await echo(reader, writer)

    async with await udptcp.start_server(starttls_server, host, 0, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection(host, port, **QUICK)
        assert writer.get_extra_info("ssl_object") is None
        writer.write(b"STARTTLS\n")
        assert await wait(reader.readline()) == b"GO AHEAD\n"
        await wait(writer.start_tls(client_ctx, server_hostname="localhost"))
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        assert await wait(upgraded) == "TLSv1.3"
        writer.write(b"secret")
        assert await wait(reader.readexactly(6)) == b"secret"
        writer.close()
        await wait(writer.wait_closed())


async def test_a_reset_during_the_handshake_fails_it_at_once(client_ctx: ssl.SSLContext) -> None:
    """A peer that resets instead of answering the ClientHello: ConnectionResetError, no hang."""

    class ResetOnHello(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            self.transport.abort()

    server = await udptcp.create_server(ResetOnHello, "127.0.0.1", 0, **QUICK)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises((ConnectionResetError, ssl.SSLError)):
            await wait(udptcp.open_connection("127.0.0.1", port, ssl=client_ctx,
                                              server_hostname="localhost", **QUICK))


async def test_a_fin_during_the_handshake_fails_it_at_once(client_ctx: ssl.SSLContext) -> None:
    class CloseOnHello(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            self.transport.close()

    server = await udptcp.create_server(CloseOnHello, "127.0.0.1", 0, **QUICK)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionResetError):
            await wait(udptcp.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx,
                                                server_hostname="localhost", **QUICK))


async def test_a_silent_peer_fails_the_handshake_at_its_timeout(client_ctx: ssl.SSLContext) -> None:
    server = await udptcp.create_server(asyncio.Protocol, "127.0.0.1", 0, **QUICK)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionAbortedError, match="handshake"):
            await wait(udptcp.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost",
                                              ssl_handshake_timeout=0.5, **QUICK))
        server.abort_clients()


async def test_a_client_without_tls_is_dropped_by_a_tls_server(server_ctx: ssl.SSLContext) -> None:
    async with await udptcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx, **QUICK) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **QUICK)
        writer.write(b"GET / HTTP/1.0\r\n\r\n" * 20)
        with pytest.raises(ConnectionResetError):
            await wait(reader.read())
        assert cast(StreamTransport, writer.transport).is_closing()


def test_client_context_defaults() -> None:
    context = tls.client_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3
    assert tls.client_context(verify=False).verify_mode is ssl.CERT_NONE



@pytest.fixture(scope="module")
def pem_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(the server's certificate and key, the CA) as PEM files, for the command line."""
    folder = tmp_path_factory.mktemp("pem")
    server_pem, ca_pem = folder / "server.pem", folder / "ca.pem"
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    return str(server_pem), str(ca_pem)


@pytest.mark.process
def test_cli_echo_and_netcat_over_tls(pem_files: tuple[str, str]) -> None:
    server_pem, ca_pem = pem_files
    with procs.server(["echo-server", "--tls-cert", server_pem]) as (_, host, port):
        done = procs.run(["echo-client", "--tls-ca", ca_pem, host, str(port), "over tls"],
                         capture_output=True, text=True)
        assert (done.returncode, done.stdout) == (0, "over tls"), done.stderr
        piped = procs.run(["echo-client", "--insecure", host, str(port)], input=b"x" * 300_000,
                          capture_output=True)
        assert piped.returncode == 0 and piped.stdout == b"x" * 300_000, piped.stderr
        untrusted = procs.run(["echo-client", "--tls", host, str(port), "x"], capture_output=True, text=True)
        assert untrusted.returncode == 1 and "--tls-ca" in untrusted.stderr
    listen = ["listen", "--tls-cert", server_pem, "0"]
    with procs.server(listen, first_line_on_stderr=True) as (_, host, port):
        sent = procs.run(["connect", "--tls-ca", ca_pem, host, str(port)], input=b"netcat over tls\n",
                         capture_output=True)
        assert sent.returncode == 0, sent.stderr


@pytest.mark.process
def test_cli_rejects_unusable_tls_files(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    done = procs.run(["echo-server", "--tls-cert", missing], capture_output=True, text=True)
    assert done.returncode == 2 and "cannot load --tls-cert" in done.stderr
    done = procs.run(["echo-client", "--tls-ca", missing, "127.0.0.1", "1", "x"],
                     capture_output=True, text=True)
    assert done.returncode == 2 and "cannot load --tls-ca" in done.stderr
