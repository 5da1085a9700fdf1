"""``udptcp tunnel`` between real processes: TCP program -> tunnel client -> (udptcp) -> tunnel
server -> TCP server, each tunnel side a process of its own, on each event loop.

Python's ``http.server`` (a process serving a temporary folder) is fetched through it with
``urllib``; the half-close and reset tests use a TCP server in the test process, which sees
exactly what arrives at the far end: the data, its EOF, or a reset.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import shutil
import socket
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import trustme
from procs import ENV, first_line, summary, tunnel

pytestmark = pytest.mark.process

LOOPS = ["asyncio", *(["uvloop"] if importlib.util.find_spec("uvloop") else [])]
WAIT_S = 20.0
BIG_BYTES = 20_000_000
PARALLEL = 20
LINGER_RESET = struct.pack("ii", 1, 0)
HTTP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """``python -m http.server`` serving a folder with a 20 MB file and small ones."""
    root = tmp_path_factory.mktemp("www")
    (root / "big.bin").write_bytes(os.urandom(BIG_BYTES))
    for i in range(PARALLEL):
        (root / f"small{i}.bin").write_bytes(os.urandom(10_000 + 997 * i))
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV,
    )
    try:
        assert proc.stdout is not None
        line = first_line(proc.stdout, proc, "http.server")  # "Serving HTTP on 127.0.0.1 port N ..."
        yield root, int(line.split(" port ")[1].split()[0])
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module", params=LOOPS)
def http_tunnel(request: pytest.FixtureRequest, www: tuple[Path, int]) -> Iterator[tuple[Path, int]]:
    """The tunnel in front of ``www``, on one loop; yields (its folder, the tunnel's port)."""
    root, port = www
    with tunnel(port, request.param) as (_, _, near_port):
        yield root, near_port


def fetch(port: int, name: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=HTTP_TIMEOUT_S) as reply:
        data: bytes = reply.read()
        return data


def test_a_large_file_arrives_whole(http_tunnel: tuple[Path, int]) -> None:
    root, port = http_tunnel
    assert hashlib.sha256(fetch(port, "big.bin")).digest() == hashlib.sha256(
        (root / "big.bin").read_bytes()).digest()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_fetches_a_large_file(http_tunnel: tuple[Path, int], tmp_path: Path) -> None:
    root, port = http_tunnel
    out = tmp_path / "big.bin"
    subprocess.run(["curl", "--silent", "--show-error", "--fail", "--max-time", str(HTTP_TIMEOUT_S),
                    "--output", str(out), f"http://127.0.0.1:{port}/big.bin"], check=True,
                   timeout=HTTP_TIMEOUT_S + 5)
    assert out.read_bytes() == (root / "big.bin").read_bytes()


def test_a_tls_tunnel_carries_a_large_file(www: tuple[Path, int], tmp_path: Path) -> None:
    """--tls-cert on the tunnel server, --tls-ca on the client: the hop is TLS 1.3, verified."""
    root, port = www
    ca = trustme.CA()
    server_pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    with tunnel(port, LOOPS[-1], server_options=["--tls-cert", str(server_pem)],
                client_options=["--tls-ca", str(ca_pem)]) as (_, _, near_port):
        data = fetch(near_port, "big.bin")
    assert hashlib.sha256(data).digest() == hashlib.sha256((root / "big.bin").read_bytes()).digest()


def test_parallel_fetches_each_get_their_own_file(http_tunnel: tuple[Path, int]) -> None:
    """Twenty connections at once, twenty udptcp connections: none mixes up another's bytes."""
    root, port = http_tunnel
    names = [f"small{i}.bin" for i in range(PARALLEL)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        bodies = list(pool.map(lambda name: fetch(port, name), names))
    assert bodies == [(root / name).read_bytes() for name in names]


@pytest.mark.parametrize("loop", LOOPS)
async def test_half_close_is_carried_both_ways(loop: str) -> None:
    """First the client half-closes: the target answers only once that EOF arrived, and the
    client reads the answer after its EOF. Then the target half-closes first: the client reads
    to that EOF and only then sends, and the target still receives it. Both tunnel sides count
    the bytes each way."""
    request = os.urandom(1_000_000)
    greeting, late = b"greeting, then my EOF", b"sent after your EOF"
    received: asyncio.Queue[bytes] = asyncio.Queue()
    accepted = 0

    async def target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == 1:  # the client's EOF first
            data = await reader.read()
            received.put_nowait(data)
            writer.write(hashlib.sha256(data).digest())
        else:  # ours first
            writer.write(greeting)
            writer.write_eof()
            received.put_nowait(await reader.read())
        writer.close()

    srv = await asyncio.start_server(target, "127.0.0.1", 0)
    with tunnel(srv.sockets[0].getsockname()[1], loop) as (near, far, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == hashlib.sha256(request).digest()
        assert await asyncio.wait_for(received.get(), WAIT_S) == request
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), WAIT_S) == greeting
        writer.write(late)
        writer.write_eof()
        assert await asyncio.wait_for(received.get(), WAIT_S) == late
        writer.close()

        expected = (f"2 connections (0 failed to reach the target, 0 reset); "
                    f"{len(request) + len(late)} bytes to the target, {32 + len(greeting)} bytes back")
        assert summary(near) == f"tunnel client: {expected}"
        assert summary(far) == f"tunnel server: {expected}"
    srv.close()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")
async def test_ipv6_end_to_end() -> None:
    """Every hop on ::1: the target, both tunnel sides (bracketed addresses), the client."""
    request = os.urandom(300_000)

    async def target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(hashlib.sha256(await reader.read()).digest())
        writer.close()

    srv = await asyncio.start_server(target, "::1", 0)
    with tunnel(srv.sockets[0].getsockname()[1], LOOPS[-1], host="::1") as (near, _, port):
        reader, writer = await asyncio.open_connection("::1", port)
        writer.write(request)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == hashlib.sha256(request).digest()
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), WAIT_S)
        assert summary(near).endswith(f"{len(request)} bytes to the target, 32 bytes back")
    srv.close()


def reset_now(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST: SO_LINGER 0, then close."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    writer.transport.abort()


async def accepting() -> tuple[asyncio.Server, asyncio.Queue[tuple[asyncio.StreamReader,
                                                                   asyncio.StreamWriter]]]:
    """A TCP target in this process that hands each accepted connection to the test."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait((reader, writer))

    return await asyncio.start_server(on_connection, "127.0.0.1", 0), accepted


KILLED_CLIENT = """
import socket, struct, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.sendall(b"hello")
print("connected", flush=True)
sys.stdin.read()
"""
"""A TCP client whose socket the kernel resets when the process is killed (SO_LINGER 0)."""


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_killed_tcp_client_resets_the_target(loop: str) -> None:
    srv, accepted = await accepting()
    with tunnel(srv.sockets[0].getsockname()[1], loop) as (near, far, port):
        client = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, str(port)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=ENV)
        with ExitStack() as cleanup:
            cleanup.callback(client.wait, 10)
            cleanup.callback(client.kill)
            assert client.stdout is not None
            assert first_line(client.stdout, client, "the TCP client") == "connected"
            reader, _ = await asyncio.wait_for(accepted.get(), WAIT_S)
            assert await asyncio.wait_for(reader.readexactly(5), WAIT_S) == b"hello"
            client.kill()
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(), WAIT_S)
        for proc in (near, far):
            assert "1 connections (0 failed to reach the target, 1 reset); 5 bytes" in summary(proc)
    srv.close()


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_target_reset_resets_the_client(loop: str) -> None:
    srv, accepted = await accepting()
    with tunnel(srv.sockets[0].getsockname()[1], loop) as (_, _, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello")
        _, target = await asyncio.wait_for(accepted.get(), WAIT_S)
        reset_now(target)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), WAIT_S)
        writer.close()
    srv.close()


async def test_an_unreachable_target_resets_the_client() -> None:
    """Nothing listens at --to: the client's connection is reset, and the summary says why."""
    with socket.socket() as probe:  # a TCP port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with tunnel(closed_port, LOOPS[-1]) as (near, far, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), WAIT_S)
        writer.close()
        assert summary(far).startswith("tunnel server: 1 connections (1 failed to reach the target")
        assert summary(near).startswith(
            "tunnel client: 1 connections (0 failed to reach the target, 1 reset)")


async def test_a_stopped_tunnel_resets_what_it_still_carries() -> None:
    """SIGTERM with a connection open: after its grace the tunnel resets both ends (a FIN
    would pass a cut stream off as complete), and says so in its summary."""
    srv, accepted = await accepting()
    with tunnel(srv.sockets[0].getsockname()[1], LOOPS[-1]) as (_, far, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello")
        target_reader, _ = await asyncio.wait_for(accepted.get(), WAIT_S)
        assert await asyncio.wait_for(target_reader.readexactly(5), WAIT_S) == b"hello"
        assert summary(far) == ("tunnel server: 1 connections (0 failed to reach the target, 1 reset); "
                                "5 bytes to the target, 0 bytes back")
        for end in (reader, target_reader):
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(end.read(), WAIT_S)
        writer.close()
    srv.close()


SMALL_BUFFERS = ["-o", "send_buffer_bytes=1048576", "-o", "recv_buffer_bytes=1048576"]
BLOCK_BYTES = 64 * 1024
PUSH_CAP_BYTES = 192 * 1024 * 1024
"""More than every buffer between the client and the target can hold: the relays' readers,
1 MiB each way on udptcp, and the kernel buffers of three TCP connections (Linux may grow a
receive buffer to tcp_rmem's maximum, often 32 MiB, though only for a reader that keeps up).
About 15 MiB are taken before the writes stall."""
STALLED_S = 1.0
"""A drain that has not finished after this long: the tunnel has stopped taking data."""


async def test_a_target_that_does_not_read_stops_the_client() -> None:
    """Back-pressure end to end: while the target reads nothing, the client's writes stall
    after the buffers in between fill (far below the cap); then everything arrives."""
    srv, accepted = await accepting()
    with tunnel(srv.sockets[0].getsockname()[1], LOOPS[-1], *SMALL_BUFFERS) as (_, _, port):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        block, sent, written = os.urandom(BLOCK_BYTES), hashlib.sha256(), 0
        while written < PUSH_CAP_BYTES:
            writer.write(block)
            sent.update(block)
            written += len(block)
            try:
                await asyncio.wait_for(writer.drain(), STALLED_S)
            except TimeoutError:
                break
        assert written < PUSH_CAP_BYTES, "the tunnel took everything: no back-pressure"
        writer.write_eof()
        target_reader, target_writer = await asyncio.wait_for(accepted.get(), WAIT_S)
        got, count = hashlib.sha256(), 0
        while data := await asyncio.wait_for(target_reader.read(1 << 20), WAIT_S):
            got.update(data)
            count += len(data)
        assert (count, got.digest()) == (written, sent.digest())
        target_writer.close()
        writer.close()
        await asyncio.wait_for(asyncio.gather(target_writer.wait_closed(), writer.wait_closed()), WAIT_S)
    srv.close()
