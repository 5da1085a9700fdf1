"""Windowed raw UDP over an asyncio DatagramProtocol: the ceiling for any UDP transport in Python.

Nothing a real protocol does (headers, buffers, retransmission, congestion control) happens
here, so whatever this reaches on a loop and datagram size bounds what udptcp, KCP or QUIC can
reach there. A flat-out blast would measure mostly drops (the stock loop reads one datagram per
turn, so the receiver falls behind); instead the sender keeps at most ``--window`` datagrams
unacknowledged and the receiver acks the highest sequence number it saw every ``window / 2``
datagrams. Goodput is the receiver's: bytes it counted over its first-to-last receive time.

A lost ack must never hang the run: a watchdog on the sender reopens the window when no ack has
arrived for ``STALL_S`` while the window is full, and counts it as a stall. The sender stops
after ``--seconds`` or ``--bytes``, whichever comes first; the receiver stops on the sender's
end marker, or after ``IDLE_S`` without data.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

from benchmarks.peers import PeerOptions, cpu_seconds, loop_name, peer_main, set_socket_buffers
from benchmarks.procs import HOST, JsonDict, announce_listening

DATA = b"D"
ACK = b"A"
END = b"E"
HEADER_BYTES = 9  # kind (1) + sequence number (8)
STALL_S = 0.02
IDLE_S = 1.0
END_REPEATS = 5
END_GAP_S = 0.005
IDLE_POLL_S = 0.1
FINISH_SLACK_S = 10.0
"""How long past ``--seconds`` the sender may take to notice its time is up."""


class _Receiver(asyncio.DatagramProtocol):
    """Counts data datagrams and acks cumulatively; ends on the end marker or when idle."""

    def __init__(self, ack_every: int) -> None:
        self.ack_every = max(1, ack_every)
        self.transport: asyncio.DatagramTransport | None = None
        self.count = 0
        self.bytes = 0
        self.highest = -1
        self.first = self.last = 0.0
        self.cpu0 = 0.0
        self.ended = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The stock loop's datagram transport does not subclass DatagramTransport on 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        kind = data[:1]
        if kind == DATA:
            now = time.perf_counter()
            if not self.count:
                self.first, self.cpu0 = now, cpu_seconds()
            self.last = now
            self.count += 1
            self.bytes += len(data)
            seq = int.from_bytes(data[1:HEADER_BYTES], "big")
            self.highest = max(self.highest, seq)
            if self.count % self.ack_every == 0 and self.transport is not None:
                self.transport.sendto(ACK + self.highest.to_bytes(8, "big"), addr)
        elif kind == END and not self.ended.done():
            self.ended.set_result(None)


class _Sender(asyncio.DatagramProtocol):
    """Keeps at most ``window`` datagrams unacknowledged, driven by acks and a stall watchdog."""

    def __init__(self, opts: PeerOptions) -> None:
        self.loop = asyncio.get_running_loop()
        self.window = opts.window
        self.limit = max(1, opts.total_bytes // opts.datagram_size)
        self.body = bytes(opts.datagram_size - HEADER_BYTES)
        self.transport: asyncio.DatagramTransport | None = None
        self.next_seq = 0
        self.acked = -1
        self.paused = False
        self.stop_at = 0.0
        self.stalls = 0
        self.last_seen_ack = -1
        self.finished = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The stock loop's datagram transport does not subclass DatagramTransport on 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if data[:1] == ACK:
            seq = int.from_bytes(data[1:HEADER_BYTES], "big")
            if seq > self.acked:
                self.acked = seq
                self.pump()

    def start(self, seconds: float) -> None:
        self.stop_at = time.perf_counter() + seconds
        self.loop.call_later(STALL_S, self._watchdog)
        self.pump()

    def pump(self) -> None:
        """Fill the window; finish once the time or byte budget is spent."""
        if self.finished.done() or self.transport is None:
            return
        if self.next_seq >= self.limit or time.perf_counter() >= self.stop_at:
            self.finished.set_result(None)
            return
        sendto, body = self.transport.sendto, self.body
        top = min(self.acked + 1 + self.window, self.limit)
        while self.next_seq < top and not self.paused:
            sendto(DATA + self.next_seq.to_bytes(8, "big") + body)
            self.next_seq += 1

    def _watchdog(self) -> None:
        if self.finished.done():
            return
        window_full = self.next_seq - self.acked - 1 >= self.window
        if window_full and not self.paused and self.acked == self.last_seen_ack:
            self.stalls += 1  # the acks for this window were lost: give up on them
            self.acked = self.next_seq - 1
            self.pump()
        elif not window_full:
            self.pump()  # also re-checks the clock when nothing else would
        self.last_seen_ack = self.acked
        self.loop.call_later(STALL_S, self._watchdog)


async def server(opts: PeerOptions) -> JsonDict:
    """Receive until the end marker (or idle); report bytes, first-to-last time and CPU."""
    loop = asyncio.get_running_loop()
    transport, receiver = await loop.create_datagram_endpoint(
        lambda: _Receiver(opts.window // 2), local_addr=(HOST, 0))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    announce_listening(transport.get_extra_info("sockname")[1])
    while not receiver.ended.done():
        await asyncio.wait([receiver.ended], timeout=IDLE_POLL_S)
        if receiver.count and time.perf_counter() - receiver.last > IDLE_S:
            break
    cpu = cpu_seconds() - receiver.cpu0 if receiver.count else 0.0
    transport.close()
    seconds = receiver.last - receiver.first
    return {"bytes": receiver.bytes, "datagrams": receiver.count, "seconds": seconds, "cpu_s": cpu,
            "rcvbuf": rcvbuf, "sndbuf": sndbuf, "ended_by_marker": receiver.ended.done(),
            "loop": loop_name()}


async def client(opts: PeerOptions) -> JsonDict:
    """Send windowed datagrams for the time/byte budget, then the end marker a few times."""
    loop = asyncio.get_running_loop()
    transport, sender = await loop.create_datagram_endpoint(
        lambda: _Sender(opts), remote_addr=(HOST, opts.port))
    rcvbuf, sndbuf = set_socket_buffers(transport)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    sender.start(opts.seconds)
    await asyncio.wait_for(sender.finished, opts.seconds + FINISH_SLACK_S)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    for _ in range(END_REPEATS):
        transport.sendto(END)
        await asyncio.sleep(END_GAP_S)
    transport.close()
    return {"datagrams": sender.next_seq, "bytes": sender.next_seq * opts.datagram_size,
            "seconds": seconds, "cpu_s": cpu, "stalls": sender.stalls, "rcvbuf": rcvbuf,
            "sndbuf": sndbuf, "loop": loop_name()}


if __name__ == "__main__":
    peer_main(server, client)
