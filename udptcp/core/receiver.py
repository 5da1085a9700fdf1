"""The receiving half of a connection: reassembly, the receive window and the ACK policy.

Sequence numbers here are unwrapped (see ``seqnum``). In-order data with nothing pending is
handed on without a copy (a memoryview of the datagram); out-of-order data is copied once
into ``bytes`` and kept by its start until the hole before it fills (in a :class:`Reassembly`,
made when a segment first arrives out of order and let go once every hole is filled). The
advertised right edge of the window never moves left (RFC 9293 3.8.6), so a sender is never
told to take back data it was allowed to send; all held data therefore fits in
``buffer_bytes``."""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Final

from udptcp.core.rangeset import RangeSet
from udptcp.core.seqnum import seq_ge
from udptcp.core.timers import Timer, Timers

MAX_RECENT_BLOCKS: Final = 4
MIN_OOO_PIECES: Final = 1024
"""Out-of-order pieces always allowed; beyond ``max(this, 2 * window / mss)`` new ones are
dropped (the sender retransmits them), so that a peer cutting its data into one-octet
segments cannot make the window's worth of them cost a hundred times its size in memory."""
PRESSURE_FLOOR_BYTES: Final = 32 * 1024
"""What each connection keeps moving with while its endpoint is under memory pressure, as
Linux guarantees every socket ``tcp_wmem[0]``/``tcp_rmem[0]`` under ``tcp_mem`` pressure:
its writer pauses only while its own send buffer holds more (``transport``), and its receive
window still reopens up to this much as the application reads (``Receiver.advertise``).
Without it, a few peers that never read keep the endpoint under pressure for good and every
other connection stops. 32 KiB: twice RFC 6928's initial window (10 segments of 1460), so a
request or reply of a few segments goes out whole and the next is on its way meanwhile; and
small enough that a thousand connections at the floor add at most 32 MiB over the limit (an
eighth of the default 256 MiB). A segment never waits for it: one larger is sent alone."""
PRESSURE_LOW_WATER_BYTES: Final = PRESSURE_FLOOR_BYTES // 2
"""Under pressure, a writer paused past the floor resumes at this much (half, as usual)."""


class Reassembly:
    """Out-of-order data kept until the hole before it fills, and its SACK blocks.

    A receiver makes one when a segment first arrives out of order and lets it go once every
    hole is filled: most connections never see one, and a server holds thousands of idle
    connections that would each carry its four empty containers (some 350 octets).
    """

    __slots__ = ("pieces", "ranges", "recent", "starts")

    def __init__(self) -> None:
        self.pieces: dict[int, bytes] = {}
        """The octets kept, by the sequence number of the first."""
        self.starts: list[int] = []
        """The keys of ``pieces``, in order."""
        self.ranges = RangeSet()
        """What ``pieces`` cover, merged: the SACK blocks."""
        self.recent: list[int] = []
        """A sequence number in each block, most recently changed first (RFC 2018 4)."""


class Receiver:
    """Holds what arrived from the peer until it can be delivered in order."""

    __slots__ = (
        "ack_now",
        "adv_right",
        "buffer_bytes",
        "dsack",
        "fin_seq",
        "held",
        "held_bytes",
        "irs",
        "last_ack_sent",
        "max_ooo_pieces",
        "mss",
        "ooo",
        "ooo_bytes",
        "ooo_dropped",
        "paused",
        "pressure",
        "pressure_dropped",
        "quick_acks",
        "rcv_nxt",
        "segs_unacked",
        "timers",
        "ts_recent",
        "ts_recent_at",
    )

    def __init__(self, buffer_bytes: int, mss: int, timers: Timers, quick_acks: int = 0) -> None:
        self.timers = timers
        """The connection's timers, of which the receiver keeps the delayed ACK."""
        self.buffer_bytes = buffer_bytes
        self.mss = mss
        self.max_ooo_pieces = max(MIN_OOO_PIECES, 2 * buffer_bytes // mss)
        self.irs = 0
        self.rcv_nxt = 0
        self.adv_right = 0
        self.paused = False
        self.pressure = False
        """The endpoint is short of memory: the window stops growing (it reopens only within
        ``PRESSURE_FLOOR_BYTES``), and data that would be kept here (out of order, or held
        while reading is paused) is refused."""
        self.pressure_dropped = 0
        """Segments refused under memory pressure (the sender resends them)."""
        self.held: list[bytes] | None = None
        """In-order data kept while reading is paused; made on first use."""
        self.held_bytes = 0
        self.ooo: Reassembly | None = None
        """Out-of-order data, while there is some."""
        self.ooo_bytes = 0
        self.ooo_dropped = 0
        self.dsack: tuple[int, int] | None = None
        self.fin_seq: int | None = None
        self.segs_unacked = 0
        self.quick_acks = quick_acks
        """In-order segments still to be acknowledged at once (``Config.quick_acks``)."""
        self.ack_now = False
        self.ts_recent: int | None = None
        self.ts_recent_at = 0.0
        self.last_ack_sent = 0

    def resize(self, buffer_bytes: int) -> None:
        """The window's size changes (it is tuned): the right edge already advertised stays."""
        self.buffer_bytes = buffer_bytes
        self.max_ooo_pieces = max(MIN_OOO_PIECES, 2 * buffer_bytes // self.mss)

    def start(self, irs: int) -> None:
        """The peer's SYN arrived with initial sequence number ``irs`` (unwrapped)."""
        self.irs = irs
        self.rcv_nxt = irs + 1
        self.adv_right = self.rcv_nxt + self.buffer_bytes
        self.last_ack_sent = self.rcv_nxt

    @property
    def window(self) -> int:
        """Octets the peer may send beyond ``rcv_nxt``, as last advertised."""
        return max(0, self.adv_right - self.rcv_nxt)

    def advertise(self) -> int:
        """The window to put in an outgoing segment, moving the right edge if worth it.

        Receiver-side silly window avoidance (RFC 9293 3.8.6.2.2): the edge only moves by at
        least min(buffer/2, MSS), so a slow reader does not invite a stream of tiny segments.
        """
        right = self.rcv_nxt + self.buffer_bytes - self.held_bytes
        if self.pressure:
            self._advertise_within_floor(right)
        elif right - self.adv_right >= min(self.buffer_bytes >> 1, self.mss):
            self.adv_right = right
        self.last_ack_sent = self.rcv_nxt
        return max(0, self.adv_right - self.rcv_nxt)

    def _advertise_within_floor(self, right: int) -> None:
        """Under memory pressure the edge moves only within ``PRESSURE_FLOOR_BYTES`` of
        ``rcv_nxt`` (what is read at once costs the endpoint nothing; what would be kept is
        refused), and by at least half the floor when that is less than the usual step: a
        64 KiB segment must not wait for a window the floor never gives."""
        right = min(right, self.rcv_nxt + PRESSURE_FLOOR_BYTES)
        if right - self.adv_right >= min(self.buffer_bytes >> 1, self.mss, PRESSURE_LOW_WATER_BYTES):
            self.adv_right = right

    def window_update_due(self) -> bool:
        """Reading resumed and the window would grow enough that the peer should hear of it
        (under memory pressure, within the floor: ``PRESSURE_FLOOR_BYTES``)."""
        right = self.rcv_nxt + self.buffer_bytes - self.held_bytes
        if self.pressure:
            right = min(right, self.rcv_nxt + PRESSURE_FLOOR_BYTES)
            grow = right - self.adv_right
            return grow >= min(self.buffer_bytes >> 1, self.mss, PRESSURE_LOW_WATER_BYTES)
        grow = right - self.adv_right
        return grow >= min(self.buffer_bytes >> 1, 2 * self.mss) or (
            self.window < self.mss <= grow
        )

    def accept(self, seq: int, payload: memoryview, now: float, delayed_ack_s: float) -> list[
        bytes | memoryview
    ]:
        """Take a segment's payload (already checked to overlap the window).

        Returns the in-order data it released, to deliver to the application (empty while
        reading is paused: the data is held instead and the window shrinks).
        """
        end = seq + len(payload)
        if end > self.adv_right:  # trim what lies beyond the window we advertised
            payload = payload[: self.adv_right - seq]
            end = self.adv_right
        rcv_nxt = self.rcv_nxt
        if seq <= rcv_nxt:
            if end <= rcv_nxt:  # a duplicate: report it (RFC 2883) and acknowledge at once
                self.dsack = (seq, end)
                self.ack_now = True
                return []
            if self.paused and self.pressure:
                return self._refuse()
            if seq < rcv_nxt:
                self.dsack = (seq, rcv_nxt)
                payload = payload[rcv_nxt - seq :]
            ready: list[bytes | memoryview] = [payload]
            self.rcv_nxt = end
            if self.ooo is not None:
                self._drain_ooo(self.ooo, ready)
                self.ack_now = True  # a hole filled: tell the sender at once (RFC 5681 4.2)
            else:
                self.count_for_ack(now, delayed_ack_s)
            if self.paused:
                if self.held is None:
                    self.held = []
                for chunk in ready:  # copied: a datagram's buffer is reused once it is handled
                    self.held.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
                    self.held_bytes += len(chunk)
                return []
            return ready
        if self.pressure:
            return self._refuse()
        self._store_ooo(seq, end, payload)
        self.ack_now = True  # out of order: acknowledge at once so the sender sees the hole
        return []

    def _refuse(self) -> list[bytes | memoryview]:
        """Under memory pressure, data that would stay here is dropped, as Linux drops what it
        cannot charge to tcp_mem; the ACK tells the sender where we are."""
        self.pressure_dropped += 1
        self.ack_now = True
        return []

    def count_for_ack(self, now: float, delayed_ack_s: float) -> None:
        """One more in-order segment: acknowledge now if it is the second (or one of the
        connection's first ``quick_acks``), else soon."""
        self.segs_unacked += 1
        if self.quick_acks:
            self.quick_acks -= 1
            self.ack_now = True
        elif self.segs_unacked >= 2 or delayed_ack_s == 0.0:
            self.ack_now = True
        else:
            self.timers.arm_if_idle(Timer.DELAYED_ACK, now + delayed_ack_s)

    def _store_ooo(self, seq: int, end: int, payload: memoryview) -> None:
        reasm = self.ooo
        if reasm is None:
            reasm = self.ooo = Reassembly()
        elif len(reasm.starts) >= self.max_ooo_pieces:
            self.ooo_dropped += 1
            return
        starts, ooo = reasm.starts, reasm.pieces
        i = bisect_right(starts, seq) - 1
        cursor = seq
        if i >= 0:
            cursor = max(cursor, starts[i] + len(ooo[starts[i]]))
        i += 1
        stored = False
        while cursor < end:
            if i < len(starts) and starts[i] < end:
                nxt = starts[i]
                if nxt > cursor:
                    self._put(reasm, cursor, bytes(payload[cursor - seq : nxt - seq]))
                    stored = True
                    i += 1  # the piece just inserted sits before ``nxt``
                cursor = max(cursor, nxt + len(ooo[nxt]))
                i += 1
            else:
                self._put(reasm, cursor, bytes(payload[cursor - seq : end - seq]))
                stored = True
                break
        if stored:
            ranges = reasm.ranges
            ranges.add(seq, end)
            # One entry per block, most recently changed first (RFC 2018 4): a block that grew
            # by several segments must not push the others out of the SACK option.
            block = ranges.find(seq)
            recent = [s for s in reasm.recent if block is None or not block[0] <= s < block[1]]
            recent.insert(0, seq)
            del recent[MAX_RECENT_BLOCKS:]
            reasm.recent = recent
        else:
            self.dsack = (seq, end)

    def _put(self, reasm: Reassembly, start: int, data: bytes) -> None:
        insort(reasm.starts, start)
        reasm.pieces[start] = data
        self.ooo_bytes += len(data)

    def _drain_ooo(self, reasm: Reassembly, ready: list[bytes | memoryview]) -> None:
        starts, ooo = reasm.starts, reasm.pieces
        taken = 0
        rcv_nxt = self.rcv_nxt
        while taken < len(starts) and starts[taken] <= rcv_nxt:
            start = starts[taken]
            data = ooo.pop(start)
            self.ooo_bytes -= len(data)
            taken += 1
            end = start + len(data)
            if end > rcv_nxt:
                ready.append(data[rcv_nxt - start :] if start < rcv_nxt else data)
                rcv_nxt = end
        self.rcv_nxt = rcv_nxt
        if taken == len(starts):
            self.ooo = None  # every hole is filled
            return
        del starts[:taken]
        reasm.ranges.discard_below(rcv_nxt)
        reasm.recent = [s for s in reasm.recent if s >= rcv_nxt]

    def sack_blocks(self, limit: int) -> list[tuple[int, int]]:
        """SACK blocks for the next ACK: a DSACK first, then the most recently changed ones."""
        blocks: list[tuple[int, int]] = []
        reasm = self.ooo
        if self.dsack is not None:
            blocks.append(self.dsack)
            holder = reasm.ranges.find(self.dsack[0]) if reasm is not None else None
            if holder is not None:  # RFC 2883 4.2: the block the duplicate fell in comes next
                blocks.append(holder)
        if reasm is None:
            return blocks[:limit]
        ranges = reasm.ranges
        for seq in reasm.recent:
            block = ranges.find(seq)
            if block is not None and block not in blocks[1 if self.dsack else 0 :]:
                blocks.append(block)
            if len(blocks) >= limit:
                break
        return blocks[:limit]

    def take_held(self) -> list[bytes]:
        """Reading resumed: hand over what was held back."""
        held = self.held
        self.held = None
        self.held_bytes = 0
        return held if held is not None else []

    def release(self) -> None:
        """The connection is over: let what was held for the reader and out-of-order data go."""
        self.held = None
        self.held_bytes = 0
        self.ooo = None
        self.ooo_bytes = 0

    def on_ack_sent(self) -> None:
        """An ACK for everything so far just went out."""
        self.segs_unacked = 0
        self.ack_now = False
        self.timers.cancel(Timer.DELAYED_ACK)
        self.dsack = None

    def update_ts_recent(self, tsval: int, seq: int, now: float) -> None:
        """RFC 7323 4.3: remember the peer's TSval of a segment covering our last ACK."""
        if seq <= self.last_ack_sent:
            recent = self.ts_recent
            if recent is None or seq_ge(tsval, recent):
                self.ts_recent = tsval
                self.ts_recent_at = now
