"""Path-MTU discovery for one connection: RFC 8899's DPLPMTUD, with padding probes.

A connection starts with datagrams that fit a 1500-octet path (``START_DATAGRAM_BYTES``) and
probes larger sizes: a probe is a segment padded to the candidate size that takes no sequence
space and carries an identifier; the peer answers it at once with an ACK that echoes the
identifier (``wire.OPT_MTU_PROBE``/``OPT_MTU_PROBE_ACK``). A probe that is acknowledged raises the
size data segments may use; one lost ``MAX_PROBES`` times, or refused by the local interface as
too big, rules its size out. Probe loss is not congestion: it moves no window.

Candidates are tried from the largest down (``CANDIDATE_DATAGRAM_BYTES``): loopback's 64 KiB
datagrams, a 9000-octet jumbo frame, so a search ends after at most a few probes. Data segments
of the acknowledged size that are then lost repeatedly (two retransmission timeouts in a row)
mean the path's MTU shrank, or never held them: black-hole detection drops the size to
``BASE_DATAGRAM_BYTES``, safe on any IPv6 path, and the search starts over. After a completed
search the next larger candidate is tried again every ``RAISE_INTERVAL_S``.

Sizes here are datagram sizes (UDP payload: our header, options and segment payload); a data
segment leaves ``SEGMENT_OVERHEAD_BYTES`` of its datagram for the header and options.
"""

from __future__ import annotations

from typing import Final

from udptcp.core.congestion.base import CongestionControl
from udptcp.core.negotiated import Negotiated
from udptcp.core.pacing import Pacer
from udptcp.core.sender import Sender
from udptcp.core.timers import Timer, Timers
from udptcp.wire import HEADER_LEN

MAX_DATAGRAM_BYTES: Final = 65507
"""The largest UDP payload over IPv4 (65535 less the IPv4 and UDP headers)."""
OPTION_ROOM_BYTES: Final = 40
"""Header option octets a data segment may carry (timestamps and up to three SACK blocks)."""
SEGMENT_OVERHEAD_BYTES: Final = HEADER_LEN + OPTION_ROOM_BYTES
BASE_DATAGRAM_BYTES: Final = 1232
"""IPv6's minimum link MTU (1280) less the IPv6 and UDP headers: every path carries it."""
START_DATAGRAM_BYTES: Final = 1440
"""Fits a 1500-octet path over IPv6 (40 + 8 + 1440 = 1488) and so over IPv4 too."""
CANDIDATE_DATAGRAM_BYTES: Final = (MAX_DATAGRAM_BYTES, 8952)
"""Probed from the largest down: a loopback interface's size, then a 9000-octet jumbo frame's."""
MAX_PROBES: Final = 3
"""Transmissions of one probe size before it is ruled out (RFC 8899's MAX_PROBES)."""
RAISE_INTERVAL_S: Final = 600.0
"""After a search, how long until a larger size is tried again (RFC 8899's RAISE_TIMER)."""
BLACK_HOLE_TIMEOUTS: Final = 2
"""Consecutive retransmission timeouts of full-size segments that mean a black hole."""
PROBE_TIMEOUT_MIN_S: Final = 0.2
"""A probe is answered at once; this floor keeps a first-RTT probe from timing out on jitter."""


def segment_bytes(datagram_bytes: int) -> int:
    """The payload a data segment may carry in a datagram of this size."""
    return datagram_bytes - SEGMENT_OVERHEAD_BYTES


class PathMtu:
    """The largest datagram a connection sends, and the probing that finds it.

    It sizes the sending half's segments itself (``resize``), so the connection only reports
    what happened: a probe answered, a size refused, a black hole.
    """

    __slots__ = ("_candidates", "_cc", "_neg", "_next_id", "_pacer", "_timers", "_tx",
                 "datagram_bytes", "probe_id", "probe_size", "probes_sent")

    def __init__(
        self, timers: Timers, tx: Sender, cc: CongestionControl, pacer: Pacer, neg: Negotiated
    ) -> None:
        self._timers = timers
        self._tx = tx
        self._cc = cc
        self._pacer = pacer
        self._neg = neg
        self.datagram_bytes = START_DATAGRAM_BYTES
        """The size data segments' datagrams may have now (RFC 8899's PLPMTU)."""
        self._candidates: list[int] = []
        self.probe_size = 0
        """The size being probed; 0 when no search is under way."""
        self.probe_id = 0
        """The identifier of the last probe sent (0 before the first)."""
        self.probes_sent = 0
        """Transmissions of the current probe size."""
        self._next_id = neg.ts_offset % 0xFFFFFFFF + 1
        """Identifiers count up from our ISN, which no one off the path knows (a keyed hash):
        a forged probe ACK must guess one, as well as a sequence number in our window."""

    @property
    def searching(self) -> bool:
        """A size is being probed."""
        return self.probe_size != 0

    @property
    def probe_due(self) -> bool:
        """A probe should go out with the next datagrams (none is waiting for its answer)."""
        return self.probe_size != 0 and not self._timers.is_armed(Timer.PATH_MTU)

    def start(self, now: float) -> None:
        """The connection is established and both ends do probes: search for a larger size."""
        self._search(now)

    def probe_to_send(self, now: float, rto_s: float, may_probe: bool) -> tuple[int, int] | None:
        """The probe to send with this burst, if one is due and ``may_probe`` (the connection
        may still send data and is not repairing losses); an idle connection does not probe."""
        tx = self._tx
        if not may_probe or not self.probe_due or not (tx.in_flight or tx.unsent):
            return None
        return self.next_probe(now, rto_s)

    def resize(self, *, resend: bool) -> None:
        """Data segments take the size allowed now (never above the peer's MSS); those in
        flight that are larger are cut and resent (``resend``), or cut where they already
        await resending (after a timeout)."""
        tx, cc, pacer, neg = self._tx, self._cc, self._pacer, self._neg
        size = min(segment_bytes(self.datagram_bytes), neg.peer_mss)
        tx.max_seg = size
        cc.mss = size
        pacer.set_segment_size(size)
        if resend and tx.in_flight:
            tx.mark_all_lost()
        tx.split_lost(size)

    def next_probe(self, now: float, rto_s: float) -> tuple[int, int]:
        """The probe to send now, as ``(identifier, datagram size)``; its timer starts."""
        self.probe_id = self._next_id
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        self.probes_sent += 1
        self._timers.arm(Timer.PATH_MTU, now + max(rto_s, PROBE_TIMEOUT_MIN_S))
        return self.probe_id, self.probe_size

    def on_probe_acked(self, probe_id: int, now: float) -> bool:
        """The peer acknowledged a probe; True if data segments may now be larger."""
        if probe_id != self.probe_id or self.probe_size == 0:
            return False  # an old probe's answer, or a forged one
        grew = self.probe_size > self.datagram_bytes
        self.datagram_bytes = max(self.datagram_bytes, self.probe_size)
        self._candidates = [size for size in self._candidates if size > self.datagram_bytes]
        self._next_candidate(now)
        return grew

    def on_timer(self, now: float) -> None:
        """The probe went unanswered (it is sent again, up to ``MAX_PROBES`` times), or, with no
        search under way, it is time to look for a larger size again."""
        if self.probe_size == 0:
            self._search(now)
        elif self.probes_sent >= MAX_PROBES:
            self._next_candidate(now)  # this size does not get through

    def on_too_big(self, size: int, now: float) -> bool:
        """The local interface refused a datagram of ``size`` octets; True if data segments
        must shrink (it was more than a probe)."""
        if self.probe_size and size >= self.probe_size:
            self._next_candidate(now)
            return False
        if size > self.datagram_bytes:
            return False
        self.datagram_bytes = max(BASE_DATAGRAM_BYTES, min(size - 1, START_DATAGRAM_BYTES))
        self._search(now)
        return True

    def on_black_hole(self, now: float) -> bool:
        """Full-size segments keep getting lost: fall back to the size every path carries and
        search again. True if the size shrank."""
        if self.datagram_bytes <= BASE_DATAGRAM_BYTES:
            return False
        self.datagram_bytes = BASE_DATAGRAM_BYTES
        self._search(now)
        return True

    def _search(self, now: float) -> None:
        current = self.datagram_bytes
        self._candidates = [size for size in CANDIDATE_DATAGRAM_BYTES if size > current]
        if current < START_DATAGRAM_BYTES:
            self._candidates.append(START_DATAGRAM_BYTES)
        self._next_candidate(now)

    def _next_candidate(self, now: float) -> None:
        self.probes_sent = 0
        self._timers.cancel(Timer.PATH_MTU)
        if self._candidates:
            self.probe_size = self._candidates.pop(0)
            return
        self.probe_size = 0  # the search is over; look again later if larger sizes exist
        if any(size > self.datagram_bytes for size in CANDIDATE_DATAGRAM_BYTES):
            self._timers.arm(Timer.PATH_MTU, now + RAISE_INTERVAL_S)
