"""The application's queued octets, from the oldest unacknowledged one on, kept as written.

Why not one ``bytearray``: growing a bytearray whose front was deleted copies all it holds
(CPython moves it to a fresh block), so a sender that appends a write after each
acknowledgement copied its whole buffer per write: up to four times each octet at 4 MiB
buffered, a third of a bulk sender's time. Here a large write is kept as the object it
came in (``bytes`` and views of them are immutable: no copy at all; anything else is copied
once), and small writes are gathered into chunks of about ``CHUNK_BYTES``, so a segment spans
few chunks.
A segment within one chunk is a view of it; one that spans chunks is joined, which costs a
copy of that segment only. Acknowledged chunks are let go at once.

Sequence numbers here are the sender's unwrapped integers (``Sender.una`` and friends).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

CHUNK_BYTES: Final = 64 * 1024
"""A write of at least this many octets is kept as its own chunk; smaller writes are copied
into a shared chunk until it holds this many (one 64 KiB segment, the largest datagram)."""
COMPACT_AFTER_CHUNKS: Final = 32
"""Acknowledged chunk slots kept at the front before the lists are compacted."""
_RELEASED: Final = b""


class SendBuffer:
    """Octets ``[start, start + size)`` of the stream, in chunks with their first sequence
    numbers; the chunks before ``_head`` are acknowledged (released, slots kept a while)."""

    __slots__ = ("_chunks", "_cursor", "_head", "_starts", "_tail", "size", "start")

    def __init__(self, start: int = 1) -> None:
        self.start = start
        """Sequence number of the first octet kept (SND.UNA's, once data is queued)."""
        self.size = 0
        """Octets kept: queued and not yet acknowledged."""
        self._chunks: list[bytes | bytearray | memoryview] = []
        self._starts: list[int] = []
        self._head = 0
        self._tail: bytearray | None = None
        """The last chunk while small writes may still be added to it."""
        self._cursor = 0
        """The chunk the last lookup found: segments are mostly taken in order."""

    @property
    def end(self) -> int:
        """Sequence number just past the last octet queued."""
        return self.start + self.size

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Queue a write: kept as it is if it is large and immutable, else copied once."""
        if isinstance(data, memoryview) and (data.itemsize != 1 or not data.c_contiguous):
            data = data.tobytes()  # counted in octets from here on, not in items
        length = len(data)
        if not length:
            return
        end = self.start + self.size
        self.size += length
        if length >= CHUNK_BYTES:
            self._tail = None
            if isinstance(data, memoryview):  # our own view: the caller may release theirs
                kept: bytes | memoryview = memoryview(data) if isinstance(data.obj, bytes) else bytes(data)
            else:
                kept = data if isinstance(data, bytes) else bytes(data)
            self._chunks.append(kept)
            self._starts.append(end)
            return
        tail = self._tail
        if tail is not None:
            try:
                tail += data
            except BufferError:  # a view of it is still alive: start another chunk
                pass
            else:
                if len(tail) >= CHUNK_BYTES:
                    self._tail = None
                return
        tail = bytearray(data)
        self._tail = tail
        self._chunks.append(tail)
        self._starts.append(end)

    def trim_to(self, seq: int) -> None:
        """Octets before ``seq`` are acknowledged: let them go (whole chunks only)."""
        end = self.start + self.size
        seq = min(seq, end)
        if seq <= self.start:
            return
        self.start = seq
        self.size = end - seq
        if not self.size:
            self.clear()
            return
        chunks, starts = self._chunks, self._starts
        head = self._head
        while starts[head] + len(chunks[head]) <= seq:
            chunks[head] = _RELEASED
            head += 1
        if head > COMPACT_AFTER_CHUNKS and head * 2 > len(chunks):
            del chunks[:head]
            del starts[:head]
            self._cursor = max(0, self._cursor - head)
            head = 0
        self._head = head

    def clear(self) -> None:
        """Let every chunk go (all acknowledged, or the connection is over)."""
        self.start += self.size
        self.size = 0
        self._chunks = []
        self._starts = []
        self._head = 0
        self._tail = None
        self._cursor = 0

    def take(self, start: int, end: int) -> bytes | memoryview:
        """Octets ``[start, end)`` for a segment, clipped to what is queued (a FIN has none):
        a view when they lie in one chunk, else a copy joined from the chunks they span."""
        stop = self.start + self.size
        end = min(end, stop)
        if end <= start:
            return b""
        chunks, starts = self._chunks, self._starts
        i = self._find(start)
        first = starts[i]
        chunk = chunks[i]
        if end <= first + len(chunk):
            return memoryview(chunk)[start - first : end - first]
        parts: list[memoryview] = []
        at = start
        while at < end:
            first = starts[i]
            chunk = chunks[i]
            upto = min(end, first + len(chunk))
            parts.append(memoryview(chunk)[at - first : upto - first])
            at = upto
            i += 1
        self._cursor = i - 1
        return b"".join(parts)

    def _find(self, seq: int) -> int:
        """Index of the chunk holding ``seq`` (which must be queued)."""
        starts = self._starts
        i = self._cursor
        if i < self._head or i >= len(starts) or starts[i] > seq or (
            i + 1 < len(starts) and starts[i + 1] <= seq
        ):
            i = bisect_right(starts, seq, self._head) - 1
            self._cursor = i
        return i

