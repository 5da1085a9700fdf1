"""KCP bulk transfer: a C reliability core (ikcp.c via the ``kcp`` package) with Python I/O glue.

KCP shows how far a reliable protocol gets on the same asyncio datagram path when its
per-segment work is done in C: the gap between this and the raw UDP ceiling is the cost of
KCP's I/O glue, and the gap between udptcp and this is roughly the price of doing the
protocol in Python.

The ``kcp`` package's own server/client wrappers are thread-based, so both sides here drive its
``KCP`` class from an asyncio DatagramProtocol: datagrams are fed to KCP as they arrive, output
is flushed once per loop turn after input (so acks are not held back until the next internal
tick), and a ticker calls ``update()`` for KCP's timers (retransmission, window probes). Socket
buffers are 4 MiB: a large window does not fit the kernel's default 208 KiB receive buffer.

KCP's knobs and our I/O cadence come as ``--settings`` JSON
(``benchmarks.peers.settings.KcpSettings``).

The sender queues ``message_bytes`` messages; the receiver counts them and, once it has
everything, sends its byte count back through KCP, and the sender's clock stops when that reply
arrives. With ``--time-limit`` the receiver instead reports what it got in that time after its
first byte (an impaired path), and the harness kills the sender.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast

from kcp.exceptions import KCPException
from kcp.extension import KCP

from benchmarks.peers import (
    PeerOptions,
    Receipt,
    cpu_seconds,
    loop_name,
    peer_main,
    received_or_capped,
    set_socket_buffers,
)
from benchmarks.peers.settings import KcpSettings
from benchmarks.procs import HOST, JsonDict, announce_listening

CONVERSATION = 0x55_44_50_43
LINGER_S = 1.0
"""How long the receiver keeps its byte-count reply going until KCP has it acknowledged."""


class _KcpEndpoint(asyncio.DatagramProtocol):
    """One KCP session on one UDP socket; the role decides what happens to delivered messages."""

    def __init__(self, opts: PeerOptions, settings: KcpSettings, sending: bool) -> None:
        self.loop = asyncio.get_running_loop()
        self.settings = settings
        self.sending = sending
        self.total = opts.total_bytes
        self.kcp = KCP(CONVERSATION, max_transmission=settings.mtu_bytes, no_delay=settings.nodelay,
                       update_interval=settings.interval_ms, resend_count=settings.resend,
                       no_congestion_control=settings.no_congestion_control,
                       send_window_size=settings.send_window, receive_window_size=settings.receive_window)
        self.kcp.include_outbound_handler(self._output)
        self.queue_segments = 2 * settings.send_window
        """Refill the sender's KCP queue up to this many segments (KCP's queue itself is unbounded)."""
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str | int, ...] | None = None
        self.flush_scheduled = False
        self.queued = 0
        self.payload = b"\x5a" * settings.message_bytes
        self.receipt = Receipt()
        self.done: asyncio.Future[JsonDict] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The stock loop's datagram transport does not subclass DatagramTransport on 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.kcp.update()  # KCP ignores flush() until its clock has been set once

    def _output(self, _kcp: KCP, data: bytes) -> None:
        if self.transport is None:
            return
        if self.sending:
            self.transport.sendto(data)  # connected socket: no address
        elif self.peer is not None:
            self.transport.sendto(data, self.peer)

    def refill(self) -> None:
        """Keep the sender's queue topped up so the window never runs dry."""
        if not self.sending:
            return
        size = self.settings.message_bytes
        while self.queued < self.total and self.kcp.get_outbound_packets() < self.queue_segments:
            piece = min(size, self.total - self.queued)
            self.kcp.enqueue(self.payload if piece == size else self.payload[:piece])
            self.queued += piece

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.sending:
            self.peer = addr
        try:
            self.kcp.receive(data)
        except KCPException:
            return  # not one of ours, or damaged: KCP would drop it too
        for message in self.kcp.get_all_received():
            self._deliver(message)
        if self.settings.ack_each_datagram and not self.sending:
            self.kcp.update()
            self.kcp.flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _deliver(self, message: bytearray) -> None:
        if self.sending:  # the receiver's byte-count reply
            if not self.done.done():
                self.done.set_result(json.loads(message))
            return
        self.receipt.add(len(message))
        if self.receipt.received >= self.total and not self.done.done():
            result = self.receipt.result()
            self.kcp.enqueue(json.dumps({"bytes": self.receipt.received}).encode())
            self.done.set_result(result)

    def _flush(self) -> None:
        """Once per loop turn after input: refresh KCP's clock, refill, send acks and data."""
        self.flush_scheduled = False
        self.kcp.update()
        self.refill()
        self.kcp.flush()

    async def tick(self) -> None:
        """KCP's timers (retransmission, window probes) only advance when update() is called."""
        while True:
            self.kcp.update()
            self.refill()
            await asyncio.sleep(self.settings.tick_ms / 1000)


async def server(opts: PeerOptions) -> JsonDict:
    """Receive ``--bytes`` through KCP (or what arrives within ``--time-limit``), reply with the
    count, and linger until the reply is acknowledged."""
    settings = opts.settings_as(KcpSettings)
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: _KcpEndpoint(opts, settings, sending=False), local_addr=(HOST, 0))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    announce_listening(transport.get_extra_info("sockname")[1])
    ticker = asyncio.ensure_future(endpoint.tick())
    try:
        result = await received_or_capped(endpoint.done, endpoint.receipt, opts.time_limit_s)
        if not result["time_limited"]:  # let the byte-count reply reach the sender
            endpoint.kcp.flush()
            give_up = time.perf_counter() + LINGER_S
            while endpoint.kcp.get_outbound_packets() and time.perf_counter() < give_up:
                await asyncio.sleep(settings.tick_ms / 1000)
    finally:
        ticker.cancel()
        transport.close()
    return {**result, "rcvbuf": rcvbuf, "sndbuf": sndbuf, "loop": loop_name()}


async def client(opts: PeerOptions) -> JsonDict:
    """Send ``--bytes`` through KCP; stop the clock at the receiver's reply."""
    settings = opts.settings_as(KcpSettings)
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: _KcpEndpoint(opts, settings, sending=True), remote_addr=(HOST, opts.port))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    endpoint.refill()
    endpoint.kcp.flush()
    ticker = asyncio.ensure_future(endpoint.tick())
    try:
        reply = await endpoint.done
    finally:
        ticker.cancel()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    endpoint.kcp.update()
    endpoint.kcp.flush()  # ack the reply now, so the receiver need not linger for it
    await asyncio.sleep(0)
    transport.close()
    if reply.get("bytes") != opts.total_bytes:
        raise RuntimeError(f"the receiver counted {reply.get('bytes')} of {opts.total_bytes} bytes")
    return {"bytes": opts.total_bytes, "seconds": seconds, "cpu_s": cpu, "rcvbuf": rcvbuf,
            "sndbuf": sndbuf, "loop": loop_name()}


if __name__ == "__main__":
    peer_main(server, client)
