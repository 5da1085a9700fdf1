"""KCP bulk transfer: a C reliability core (ikcp.c via the ``kcp`` package) with Python I/O glue.

KCP shows how far a reliable protocol gets on the same asyncio datagram path when its
per-segment work is done in C: the gap between this and the raw UDP ceiling is the cost of
KCP's I/O glue, and the gap between udptcp and this is roughly the price of doing the
protocol in Python.

The ``kcp`` package's own server/client wrappers are thread-based, so both sides here drive its
``KCP`` class from an asyncio DatagramProtocol. Settings are KCP's "fast" profile: nodelay,
10 ms internal interval, fast resend after 2 duplicate acks, no congestion control, send and
receive windows of 1024 segments, MTU 1400, and 4 MiB socket buffers (a 1024-segment window
does not fit the kernel's default 208 KiB receive buffer). Datagrams are fed to KCP as they
arrive and output is flushed once per loop turn after input, so acks are not held back until
the next 10 ms tick; a ticker calls ``update()`` for the timers.

The sender queues 16 KiB messages; the receiver counts them and, once it has everything,
sends its byte count back through KCP, and the sender's clock stops when that reply arrives.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast

from harness import (
    HOST,
    JsonDict,
    PeerOptions,
    announce_port,
    cpu_seconds,
    loop_name,
    peer_main,
    set_socket_buffers,
)
from kcp.exceptions import KCPException
from kcp.extension import KCP

CONVERSATION = 0x55_44_50_43
MTU = 1400
INTERVAL_MS = 10
RESEND = 2
WINDOW = 1024
MESSAGE_BYTES = 16 * 1024
QUEUE_SEGMENTS = 2 * WINDOW
"""Refill the sender's KCP queue up to this many segments (KCP's queue itself is unbounded)."""
TICK_S = INTERVAL_MS / 2 / 1000
LINGER_S = 1.0


class _KcpEndpoint(asyncio.DatagramProtocol):
    """One KCP session on one UDP socket; the role decides what happens to delivered messages."""

    def __init__(self, opts: PeerOptions, sending: bool) -> None:
        self.loop = asyncio.get_running_loop()
        self.sending = sending
        self.total = opts.total_bytes
        self.kcp = KCP(CONVERSATION, max_transmission=MTU, no_delay=True, update_interval=INTERVAL_MS,
                       resend_count=RESEND, no_congestion_control=True, send_window_size=WINDOW,
                       receive_window_size=WINDOW)
        self.kcp.include_outbound_handler(self._output)
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str | int, ...] | None = None
        self.flush_scheduled = False
        self.queued = 0
        self.payload = b"\x5a" * MESSAGE_BYTES
        self.received = 0
        self.first = self.cpu0 = 0.0
        self.report: JsonDict = {}
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
        while self.queued < self.total and self.kcp.get_outbound_packets() < QUEUE_SEGMENTS:
            size = min(MESSAGE_BYTES, self.total - self.queued)
            self.kcp.enqueue(self.payload if size == MESSAGE_BYTES else self.payload[:size])
            self.queued += size

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.sending:
            self.peer = addr
        try:
            self.kcp.receive(data)
        except KCPException:
            return  # not one of ours, or damaged: KCP would drop it too
        for message in self.kcp.get_all_received():
            self._deliver(message)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _deliver(self, message: bytearray) -> None:
        if self.sending:  # the receiver's byte-count reply
            if not self.done.done():
                self.done.set_result(json.loads(message))
            return
        if not self.received:
            self.first, self.cpu0 = time.perf_counter(), cpu_seconds()
        self.received += len(message)
        if self.received >= self.total and not self.done.done():
            seconds, cpu = time.perf_counter() - self.first, cpu_seconds() - self.cpu0
            self.kcp.enqueue(json.dumps({"bytes": self.received}).encode())
            self.done.set_result({"bytes": self.received, "seconds": seconds, "cpu_s": cpu})

    def _flush(self) -> None:
        """Once per loop turn after input: refresh KCP's clock, refill, send acks and data."""
        self.flush_scheduled = False
        self.kcp.update()
        self.refill()
        self.kcp.flush()


async def _tick(endpoint: _KcpEndpoint) -> None:
    """KCP's timers (retransmission, window probes) only advance when update() is called."""
    while True:
        endpoint.kcp.update()
        endpoint.refill()
        await asyncio.sleep(TICK_S)


async def server(opts: PeerOptions) -> JsonDict:
    """Receive ``--bytes`` through KCP, reply with the count, linger until the reply is acked."""
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: _KcpEndpoint(opts, sending=False), local_addr=(HOST, 0))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    announce_port(transport.get_extra_info("sockname")[1])
    ticker = asyncio.ensure_future(_tick(endpoint))
    try:
        result = await endpoint.done
        endpoint.kcp.flush()
        give_up = time.perf_counter() + LINGER_S
        while endpoint.kcp.get_outbound_packets() and time.perf_counter() < give_up:
            await asyncio.sleep(TICK_S)
    finally:
        ticker.cancel()
        transport.close()
    return {**result, "rcvbuf": rcvbuf, "sndbuf": sndbuf, "loop": loop_name()}


async def client(opts: PeerOptions) -> JsonDict:
    """Send ``--bytes`` through KCP in 16 KiB messages; stop the clock at the receiver's reply."""
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: _KcpEndpoint(opts, sending=True), remote_addr=(HOST, opts.port))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    endpoint.refill()
    endpoint.kcp.flush()
    ticker = asyncio.ensure_future(_tick(endpoint))
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
