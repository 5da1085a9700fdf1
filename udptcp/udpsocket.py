"""A UDP socket that udptcp reads and writes itself, from the event loop's readiness callbacks.

The loops' own datagram transports hand over one datagram per callback (the stock loop also
reads only one per wake-up) and pass no ancillary data, so neither batching nor the kernel's
segmentation offloads are possible through them. This socket is driven with
``loop.add_reader``/``add_writer`` instead, on uvloop and the stock loop alike:

- every readiness callback drains up to ``MAX_DATAGRAMS_PER_WAKEUP`` datagrams (at most
  ``MAX_BYTES_PER_WAKEUP`` octets) and hands them over as one batch, so the protocol runs
  once per wake-up rather than once per datagram;
- with UDP GRO (Linux 5.0+), one ``recvmsg`` returns many datagrams of one flow coalesced, and
  the segment size the kernel reports splits them again;
- with UDP GSO (Linux 4.18+), a burst of equal-size datagrams to one peer leaves in one
  ``sendmsg``, the kernel cutting it at the segment size.

Both offloads are detected at run time and fall back to one datagram per call where the kernel
lacks them (or a send fails with EIO, as on devices without checksum offload).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

Address = tuple[Any, ...]

SOL_UDP = 17
UDP_SEGMENT = 103
"""Linux's socket option for GSO (``linux/udp.h``); Python 3.11's ``socket`` does not name it."""
UDP_GRO = 104
MAX_DATAGRAMS_PER_WAKEUP = 64
"""Bound of one readiness callback's work, so other connections' timers and sockets get turns."""
MAX_BYTES_PER_WAKEUP = 512 * 1024
"""And of the octets it reads: a wake-up's data is acknowledged by one ACK, and 64 segments of
64 KiB would acknowledge 4 MiB at once, emptying the sender's window in bursts. Eight segments
of 64 KiB per wake-up spread its fixed costs (the loop, the ACK's send) over enough data: with
256 KiB a receiver at full CPU moved about 13 % less (``udptcp bench``, discovered size)."""
MAX_UDP_PAYLOAD_BYTES = 65535
RECEIVE_BUFFER_BYTES = MAX_BYTES_PER_WAKEUP + MAX_UDP_PAYLOAD_BYTES
"""One wake-up's datagrams are read into one buffer: the last read may start just under
``MAX_BYTES_PER_WAKEUP`` and hold a whole (or GRO-coalesced) 64 KiB."""
GSO_MAX_SEGMENTS = 64
"""Datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels)."""
GSO_MAX_BYTES = 65000
"""A GSO send is one UDP datagram to the kernel: its payload must stay under 64 KiB."""
MAX_QUEUED_BYTES = 4 * 1024 * 1024
"""Datagrams waiting for the socket to drain, beyond which new ones are dropped and counted."""
_SEGMENT_SIZE = struct.Struct("=H")
_GRO_SIZE = struct.Struct("=i")
_GRO_ANCILLARY_BYTES = socket.CMSG_SPACE(_GRO_SIZE.size)


IP_MTU_DISCOVER = 10
IPV6_MTU_DISCOVER = 23
PMTUDISC_PROBE = 3
"""Linux's ``IP_PMTUDISC_PROBE``: set don't-fragment and never fragment, but send whatever size
is asked (the path-MTU search decides sizes; a size over the interface's MTU fails at once with
EMSGSIZE). Python 3.11's ``socket`` names none of these three."""


def receive_capacity_bytes(sock: socket.socket) -> int:
    """Octets of datagram payload ``sock``'s receive queue holds before the kernel drops.

    Linux grants twice the SO_RCVBUF asked for (at most net.core.rmem_max, doubled) and counts
    each datagram's whole buffer against it: on loopback a 64 KiB datagram takes a 128 KiB
    allocation plus its descriptor, a little over twice its payload. So less than half of what
    it reports is for data: half, less a sixteenth. Other systems report the size as set.
    """
    granted: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if sys.platform.startswith("linux"):
        return granted // 2 - granted // 32
    return granted


def set_dont_fragment(sock: socket.socket, family: int) -> bool:
    """Have the kernel send this socket's datagrams unfragmented (for path-MTU discovery);
    False where it cannot (the datagrams then go as the system decides). ``family`` is the
    socket's (its ``family`` attribute costs an enum conversion per read)."""
    if family == socket.AF_INET6:
        level, option = socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER
    else:
        level, option = socket.IPPROTO_IP, IP_MTU_DISCOVER
    try:
        sock.setsockopt(level, option, PMTUDISC_PROBE)
    except OSError:
        return False
    return True


class DatagramSink(Protocol):
    """What the socket reports to: the endpoint."""

    def datagrams_received(self, batch: list[tuple[bytes | memoryview, Address]]) -> None:
        """Datagrams that arrived in one wake-up, in arrival order."""

    def error_received(self, exc: Exception) -> None:
        """The socket reported an error (an ICMP error on a connected socket, say)."""

    def datagram_too_big(self, peer: Address | None, size: int) -> None:
        """A datagram of ``size`` octets to ``peer`` (None: the connected one) was refused as
        larger than the interface sends (EMSGSIZE); it was not sent."""

    def pause_writing(self) -> None:
        """The kernel's send buffer is full: stop producing datagrams."""

    def resume_writing(self) -> None:
        """The send buffer drained."""

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is closed."""


def supports_gso(sock: socket.socket) -> bool:
    """The kernel takes UDP_SEGMENT on this socket."""
    try:
        sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except OSError:
        return False
    return True


_gso_supported: bool | None = None
"""``supports_gso``, asked once per process: the answer is the kernel's (UDP over IPv4 and
IPv6 alike), and a client asks for every connection it opens (each has a socket of its own)."""


def _kernel_supports_gso(sock: socket.socket) -> bool:
    global _gso_supported
    if _gso_supported is None:
        _gso_supported = supports_gso(sock)
    return _gso_supported


def enable_gro(sock: socket.socket) -> bool:
    """Ask the kernel to coalesce arriving datagrams; False where it cannot."""
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def io_path_here() -> str:
    """The I/O path a new socket gets on this machine (for ``udptcp --version``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        gso, gro = supports_gso(probe), enable_gro(probe)
    return _describe(gso, gro)


def _describe(gso: bool, gro: bool) -> str:
    read = "recvmsg+GRO" if gro else "recvfrom"
    write = "sendmsg+GSO" if gso else "sendto"
    return f"own socket ({read}, {write})"


class UdpSocket:
    """One non-blocking UDP socket on an event loop, read and written in batches."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, sink: DatagramSink, *,
        gso: bool = True, gro: bool = True,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._sink = sink
        self._fd = sock.fileno()
        peer = _peer_of(sock)
        self._connected = peer is not None
        self.gso = gso and _kernel_supports_gso(sock)
        self.gro = gro and enable_gro(sock)
        self._queue: deque[tuple[list[bytes], Address | None]] = deque()
        self._queued_bytes = 0
        self._writing_paused = False
        self._closing = False
        self.dropped_send_queue_full = 0
        self._extra = {"socket": sock, "sockname": sock.getsockname(), "peername": peer}
        loop.add_reader(self._fd, self._on_readable)

    @property
    def io_path(self) -> str:
        """How datagrams move, for reports: ``recvmsg+GRO, sendmsg+GSO`` and the like."""
        return _describe(self.gso, self.gro)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``socket``, ``sockname`` and ``peername``, as a datagram transport answers them."""
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    # -- reading ----------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        batch: list[tuple[bytes | memoryview, Address]] = []
        error: OSError | None = None
        buffer = memoryview(_receive_buffer())
        try:
            if self.gro:
                self._read_coalesced(sock, buffer, batch)
            else:
                octets = 0
                while len(batch) < MAX_DATAGRAMS_PER_WAKEUP and octets < MAX_BYTES_PER_WAKEUP:
                    size, addr = sock.recvfrom_into(buffer[octets:], MAX_UDP_PAYLOAD_BYTES)
                    batch.append((buffer[octets : octets + size], addr))
                    octets += size
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            # Without its traceback: that holds this frame, whose locals hold the error (a
            # cycle) and a view of the receive buffer, which would stay pinned until the next
            # collection (and the next wake-up read into a new 576 KiB buffer).
            error = exc.with_traceback(None)
        if batch:
            self._sink.datagrams_received(batch)
        if error is not None and not self._closing:
            self._sink.error_received(error)

    def _read_coalesced(
        self, sock: socket.socket, buffer: memoryview, batch: list[tuple[bytes | memoryview, Address]]
    ) -> None:
        """Drain with GRO: each ``recvmsg`` may hold several datagrams of ``size`` octets."""
        octets = 0
        while len(batch) < MAX_DATAGRAMS_PER_WAKEUP and octets < MAX_BYTES_PER_WAKEUP:
            length, ancdata, _flags, addr = sock.recvmsg_into(
                (buffer[octets : octets + MAX_UDP_PAYLOAD_BYTES],), _GRO_ANCILLARY_BYTES
            )
            data = buffer[octets : octets + length]
            octets += length
            size = 0
            for level, kind, value in ancdata:
                if level == SOL_UDP and kind == UDP_GRO and len(value) >= _GRO_SIZE.size:
                    size = _GRO_SIZE.unpack_from(value)[0]
            if size <= 0 or size >= length:
                batch.append((data, addr))
                continue
            batch.extend((data[at : at + size], addr) for at in range(0, length, size))

    # -- writing ----------------------------------------------------------------------------

    def sendto(self, data: bytes, addr: Address | None = None) -> None:
        """Send one datagram (to ``addr``, or the connected peer)."""
        self.send_batch([data], addr)

    def send_batch(self, datagrams: Sequence[bytes], addr: Address | None) -> None:
        """Send datagrams to one peer in order: runs of equal size in one GSO call each."""
        if self._closing or not datagrams:
            return
        target = None if self._connected else addr
        if self._queue:
            self._enqueue(list(datagrams), target)
            return
        sent = self._send_now(datagrams, target)
        if sent < len(datagrams):
            self._enqueue(list(datagrams[sent:]), target)

    def _send_now(self, datagrams: Sequence[bytes], target: Address | None) -> int:
        """Send as much as the kernel takes now; the number of datagrams sent."""
        sock = self._sock
        count = len(datagrams)
        i = 0
        try:
            while i < count:
                first = datagrams[i]
                run = 1
                if self.gso and count - i > 1:
                    size = len(first)
                    limit = min(count - i, GSO_MAX_SEGMENTS, GSO_MAX_BYTES // max(size, 1))
                    # Equal sizes, except that the run's last datagram may be shorter.
                    while run < limit and len(datagrams[i + run]) == size:
                        run += 1
                    if run < limit and len(datagrams[i + run]) < size:
                        run += 1
                if run > 1:
                    self._send_segmented(datagrams[i : i + run], len(first), target)
                elif target is None:
                    sock.send(first)
                else:
                    sock.sendto(first, target)
                i += run
        except (BlockingIOError, InterruptedError):
            return i
        except OSError as exc:
            if exc.errno == errno.EIO and self.gso:
                self.gso = False  # the device cannot segment: one datagram per call from now
                return i + self._send_now(datagrams[i:], target)
            if exc.errno == errno.EMSGSIZE:
                size = len(datagrams[i])
                self._sink.datagram_too_big(target, size)
                rest = i + 1
                while rest < count and len(datagrams[rest]) >= size:
                    rest += 1  # the rest of a refused run would be refused too
                return rest + self._send_now(datagrams[rest:], target) if rest < count else count
            self._sink.error_received(exc)
            return count  # the datagrams are lost, as a network would lose them
        return count

    def _send_segmented(self, run: Sequence[bytes], size: int, target: Address | None) -> None:
        ancillary = [(SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))]
        if target is None:
            self._sock.sendmsg(run, ancillary)
        else:
            self._sock.sendmsg(run, ancillary, 0, target)

    def _enqueue(self, datagrams: list[bytes], target: Address | None) -> None:
        size = sum(len(d) for d in datagrams)
        if self._queued_bytes + size > MAX_QUEUED_BYTES:
            self.dropped_send_queue_full += len(datagrams)
            return
        if not self._queue:
            self._loop.add_writer(self._fd, self._on_writable)
        self._queue.append((datagrams, target))
        self._queued_bytes += size
        if not self._writing_paused:
            self._writing_paused = True
            self._sink.pause_writing()

    def _on_writable(self) -> None:
        queue = self._queue
        while queue:
            datagrams, target = queue[0]
            sent = self._send_now(datagrams, target)
            self._queued_bytes -= sum(len(d) for d in datagrams[:sent])
            if sent < len(datagrams):
                queue[0] = (datagrams[sent:], target)
                return
            queue.popleft()
        self._loop.remove_writer(self._fd)
        if self._writing_paused:
            self._writing_paused = False
            self._sink.resume_writing()

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and writing, close the socket, and tell the sink (soon, as asyncio does)."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._queue:
            self._loop.remove_writer(self._fd)
            self._queue.clear()
        self._loop.call_soon(self._finish_close)

    def _finish_close(self) -> None:
        self._sock.close()
        self._sink.connection_lost(None)


def _peer_of(sock: socket.socket) -> Address | None:
    with contextlib.suppress(OSError):
        return tuple(sock.getpeername())
    return None


def open_udp_socket(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, sink: DatagramSink, *, gso: bool, gro: bool,
) -> UdpSocket | None:
    """Drive ``sock`` ourselves, or None where the loop cannot watch a socket (Windows' proactor)."""
    try:
        return UdpSocket(loop, sock, sink, gso=gso, gro=gro)
    except NotImplementedError:
        return None


class _ReceiveBuffers(threading.local):
    """Each thread's buffer for one wake-up's datagrams: a loop runs one readiness callback at
    a time, so all its sockets share one (per socket, 576 KiB would add up over thousands of
    connections), and a thread of its own keeps another loop's reads apart."""

    def __init__(self) -> None:
        self.buffer = bytearray(RECEIVE_BUFFER_BYTES)


_BUFFERS = _ReceiveBuffers()


def _receive_buffer() -> bytearray:
    """This thread's receive buffer, unless a view of it is still alive: the datagrams handed
    over are views of it, valid until the next wake-up, and what must live longer is copied
    (out-of-order data, data held for a paused reader). A view that outlived its wake-up all
    the same (a traceback's locals, a caller that kept one) keeps the old buffer, unchanged:
    the thread reads into a new one."""
    buffer = _BUFFERS.buffer
    try:
        buffer.append(0)  # resizing fails while any view of the buffer exists
    except BufferError:
        buffer = _BUFFERS.buffer = bytearray(RECEIVE_BUFFER_BYTES)
    else:
        del buffer[-1]
    return buffer
