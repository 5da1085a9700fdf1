"""aioquic bulk transfer: the pure-Python reliable-transport-over-UDP that udptcp is measured against.

One bidirectional stream carries ``--bytes`` from client to server; the server replies with its
byte count and FIN, and the client's clock stops when that reply arrives (as for TCP and
``udptcp bench``). The server generates a throw-away self-signed P-256 certificate at start-up
(nothing is written to disk); the client does not verify it. Everything else is aioquic's
default (Reno, 1 MiB connection/stream flow-control windows, 1200-byte datagrams, kernel
default socket buffers) unless the ``--settings`` JSON (``benchmarks.peers.settings.QuicSettings``)
says otherwise.

aioquic's stream writer has no back-pressure: ``write()`` appends to the stream's send buffer
without bound. So that the sender does not queue the whole transfer in memory before the
first datagram leaves (which would measure something else), the client keeps at most
``SEND_BUFFER_CAP_BYTES`` unacknowledged bytes in that buffer, polling every ``POLL_S``. Reading the
buffer's size needs aioquic internals; if they move, the cap is skipped and the result says so.

Both sides count how often aioquic's connection timer fires. On the stock loop the client sees
about one wake-up per 15 packets; on uvloop we saw 5-25 wake-ups per packet, the client at 100%
CPU and throughput down to a fifth in some runs. uvloop's ``loop.time()`` advances in whole
milliseconds, so a pacing deadline a few microseconds ahead stays "in the future" until the
clock ticks, and the timer keeps firing and re-arming. The count makes such runs visible.

With ``--time-limit`` the server reports what it got in that time after its first byte (an
impaired path, where aioquic may need minutes for the whole transfer), and the harness kills
the client.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import time
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from benchmarks.peers import (
    PeerOptions,
    Receipt,
    blocks,
    check_count,
    cpu_seconds,
    loop_name,
    peer_main,
    received_or_capped,
)
from benchmarks.peers.settings import QuicSettings
from benchmarks.procs import HOST, JsonDict, announce_listening

ALPN = "udptcp-bench"
WRITE_BYTES = 64 * 1024
READ_BYTES = 1 << 20
SEND_BUFFER_CAP_BYTES = 2 << 20
POLL_S = 0.001
LINGER_S = 2.0
"""How long the server waits, after replying, for the client to close the connection (so the
reply is retransmitted if it was lost, and the client's close does not hit a dead port)."""


def _configuration(settings: QuicSettings, is_client: bool) -> QuicConfiguration:
    """aioquic's configuration of one end (without the server's certificate)."""
    if is_client:
        config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], verify_mode=ssl.CERT_NONE,
                                   server_name="localhost")
    else:
        config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.congestion_control_algorithm = settings.congestion_control
    config.max_datagram_size = settings.max_datagram_bytes
    config.max_data = config.max_stream_data = settings.flow_control_window_bytes
    return config


def _self_signed() -> tuple[Any, Any]:
    """A fresh P-256 key and a one-day self-signed certificate for ``localhost``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


async def server(opts: PeerOptions) -> JsonDict:
    """Accept one stream, count its bytes to FIN (or for ``--time-limit``), reply with the count."""
    loop = asyncio.get_running_loop()
    config = _configuration(opts.settings_as(QuicSettings), is_client=False)
    config.certificate, config.private_key = _self_signed()
    done: asyncio.Future[JsonDict] = loop.create_future()
    receipt = Receipt()
    protocols: list[_CountingProtocol] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(READ_BYTES):
            receipt.add(len(data))
        result = receipt.result()
        writer.write(json.dumps({"bytes": receipt.received}).encode())
        writer.write_eof()
        if not done.done():
            done.set_result(result)

    def on_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def make_protocol(quic: QuicConnection, **kwargs: Any) -> QuicConnectionProtocol:
        protocol = _CountingProtocol(quic, **kwargs)
        protocols.append(protocol)
        return protocol

    # QuicServer directly rather than aioquic.asyncio.serve(): we need the transport's port.
    transport, _ = await loop.create_datagram_endpoint(
        lambda: QuicServer(configuration=config, create_protocol=make_protocol, stream_handler=on_stream),
        local_addr=(HOST, 0))
    announce_listening(transport.get_extra_info("sockname")[1])
    result = await received_or_capped(done, receipt, opts.time_limit_s)
    if protocols and not result["time_limited"]:
        await asyncio.wait([asyncio.ensure_future(p.wait_closed()) for p in protocols], timeout=LINGER_S)
    transport.close()
    return {**result, "timer_fires": sum(p.timer_fires for p in protocols), "loop": loop_name()}


class _CountingProtocol(QuicConnectionProtocol):
    """aioquic's protocol, counting timer wake-ups: on uvloop they can spin (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timer_fires = 0

    def _handle_timer(self) -> None:
        self.timer_fires += 1
        super()._handle_timer()


def _unacked_bytes(protocol: QuicConnectionProtocol, stream_id: int) -> int | None:
    """Bytes written to the stream but not yet acknowledged (aioquic internals; None if moved)."""
    try:
        return len(protocol._quic._streams[stream_id].sender._buffer)
    except (AttributeError, KeyError, TypeError):
        return None


async def client(opts: PeerOptions) -> JsonDict:
    """Send the bytes on one stream with a bounded send buffer, FIN, wait for the reply."""
    config = _configuration(opts.settings_as(QuicSettings), is_client=True)
    async with connect(HOST, opts.port, configuration=config, create_protocol=_CountingProtocol) as protocol:
        assert isinstance(protocol, _CountingProtocol)
        reader, writer = await protocol.create_stream()
        stream_id: int = writer.get_extra_info("stream_id")
        capped = True
        start, cpu0 = time.perf_counter(), cpu_seconds()
        for block in blocks(opts.total_bytes, WRITE_BYTES):
            writer.write(block)
            if not capped:
                await asyncio.sleep(0)  # let the protocol transmit between writes
            while capped:
                unacked = _unacked_bytes(protocol, stream_id)
                if unacked is None:
                    capped = False
                elif unacked <= SEND_BUFFER_CAP_BYTES:
                    break
                else:
                    await asyncio.sleep(POLL_S)
        writer.write_eof()
        reply = await reader.read()
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu0
    check_count(reply, opts.total_bytes)
    return {"bytes": opts.total_bytes, "seconds": seconds, "cpu_s": cpu, "send_buffer_capped": capped,
            "timer_fires": protocol.timer_fires, "loop": loop_name()}


if __name__ == "__main__":
    peer_main(server, client)
