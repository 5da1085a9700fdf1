"""aioquic and KCP receivers that stop at a time limit: the peers of ``lossy.py``.

Why this exists: on a lossy path aioquic needs minutes for 32 MB (about 1 Mbit/s at 100 ms and 1 %
loss), so a lossy run is capped, and goodput is then what the receiver got divided by the
receiver's time, as in the reference measurement. The loopback peers (``peer_quic.py``,
``peer_kcp.py``) only finish on the last byte, so this module reuses their pieces unchanged:

- the senders are theirs (``peer_quic.client``, ``peer_kcp.client``), same settings, same send
  buffer cap;
- the receivers count bytes exactly as theirs do, but ``--seconds`` after the first byte they
  report what has arrived (``time_limited: true``) and exit; the orchestrator then kills the
  sender, whose own result is not needed (goodput is measured at the receiver).

``--seconds`` is the harness's run-length option (the raw UDP peer uses it the same way), so the
harness needs no new option. Without a cap being hit the result is identical to the loopback
peers' server result.

Usage (started by ``lossy.py``):
    python lossy_capped.py quic|kcp --role server|client --loop uvloop --port N --bytes B --seconds S
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Protocol

from harness import HOST, JsonDict, PeerOptions, announce_port, cpu_seconds, loop_name, peer_main

POLL_S = 0.05
"""How often a receiver checks its time limit (a 30 s run overshoots it by at most this)."""


class Progress(Protocol):
    """What a receiver must expose for the time limit: bytes so far, and when (and at what CPU)
    the first one arrived. ``peer_kcp``'s endpoint has exactly these attributes."""

    received: int
    first: float
    cpu0: float


class Counter:
    """A :class:`Progress` for receivers that read a stream (aioquic)."""

    def __init__(self) -> None:
        self.received = 0
        self.first = 0.0
        self.cpu0 = 0.0

    def add(self, size: int) -> None:
        if not self.received:
            self.first, self.cpu0 = time.perf_counter(), cpu_seconds()
        self.received += size


async def until_done_or_capped(done: asyncio.Future[JsonDict], progress: Progress, cap_s: float) -> JsonDict:
    """The receiver's full result, or, ``cap_s`` after its first byte, what it has so far."""
    while True:
        await asyncio.wait({done}, timeout=POLL_S)
        if done.done():
            return {**done.result(), "time_limited": False}
        now = time.perf_counter()
        if progress.received and now - progress.first >= cap_s:
            return {"bytes": progress.received, "seconds": now - progress.first,
                    "cpu_s": cpu_seconds() - progress.cpu0, "time_limited": True}


async def quic_server(opts: PeerOptions) -> JsonDict:
    """``peer_quic.server`` with a time limit: one stream counted to FIN (or to the cap)."""
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.asyncio.server import QuicServer
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from peer_quic import ALPN, LINGER_S, READ_BYTES, _CountingProtocol, _self_signed

    loop = asyncio.get_running_loop()
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.certificate, config.private_key = _self_signed()
    done: asyncio.Future[JsonDict] = loop.create_future()
    counter = Counter()
    protocols: list[QuicConnectionProtocol] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(READ_BYTES):
            counter.add(len(data))
        seconds = time.perf_counter() - counter.first
        cpu = cpu_seconds() - counter.cpu0
        writer.write(json.dumps({"bytes": counter.received}).encode())
        writer.write_eof()
        if not done.done():
            done.set_result({"bytes": counter.received, "seconds": seconds, "cpu_s": cpu})

    def on_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def make_protocol(quic: QuicConnection, **kwargs: Any) -> QuicConnectionProtocol:
        protocol = _CountingProtocol(quic, **kwargs)
        protocols.append(protocol)
        return protocol

    transport, _ = await loop.create_datagram_endpoint(
        lambda: QuicServer(configuration=config, create_protocol=make_protocol, stream_handler=on_stream),
        local_addr=(HOST, 0))
    announce_port(transport.get_extra_info("sockname")[1])
    result = await until_done_or_capped(done, counter, opts.seconds)
    if protocols and not result["time_limited"]:
        await asyncio.wait([asyncio.ensure_future(p.wait_closed()) for p in protocols], timeout=LINGER_S)
    fires = sum(p.timer_fires for p in protocols if isinstance(p, _CountingProtocol))
    transport.close()
    return {**result, "timer_fires": fires, "loop": loop_name()}


async def kcp_server(opts: PeerOptions) -> JsonDict:
    """``peer_kcp.server`` with a time limit (same endpoint, same fast-mode settings)."""
    from harness import set_socket_buffers
    from peer_kcp import LINGER_S, TICK_S, _KcpEndpoint, _tick

    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: _KcpEndpoint(opts, sending=False), local_addr=(HOST, 0))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    announce_port(transport.get_extra_info("sockname")[1])
    ticker = asyncio.ensure_future(_tick(endpoint))
    try:
        result = await until_done_or_capped(endpoint.done, endpoint, opts.seconds)
        if not result["time_limited"]:  # let the byte-count reply reach the sender
            endpoint.kcp.flush()
            give_up = time.perf_counter() + LINGER_S
            while endpoint.kcp.get_outbound_packets() and time.perf_counter() < give_up:
                await asyncio.sleep(TICK_S)
    finally:
        ticker.cancel()
        transport.close()
    return {**result, "rcvbuf": rcvbuf, "sndbuf": sndbuf, "loop": loop_name()}


def main() -> None:
    """Pick the peer from the first argument, then hand the rest to the harness."""
    if len(sys.argv) < 2 or sys.argv[1] not in ("quic", "kcp"):
        raise SystemExit("usage: lossy_capped.py quic|kcp --role server|client [harness options]")
    peer = sys.argv.pop(1)
    if peer == "quic":
        import peer_quic

        peer_main(quic_server, peer_quic.client)
    else:
        import peer_kcp

        peer_main(kcp_server, peer_kcp.client)


if __name__ == "__main__":
    main()
