"""Receive-window tuning: as large as the path needs, no larger than the driver can absorb.

Datagrams wait in the driver's receive queue (a UDP socket's, of what SO_RCVBUF granted)
until the driver reads them. Where they arrive faster than it reads them, as on loopback or
a fast LAN, a window larger than that queue lets a burst overflow it, and the kernel drops
what does not fit: the window starts at what the queue holds (``set_receive_queue``).

On a longer path most of the window is in flight, spread out by the path, and the window
must cover the bandwidth-delay product. So it grows, as Linux's dynamic right-sizing grows a
TCP receive buffer: to twice the octets that arrive in order per minimum round trip (twice,
so that a sender in slow start, doubling every round trip, is never held back by it), up to
``recv_buffer_bytes``. The minimum RTT stands for the path without queues: on loopback, what
arrives per minimum RTT is far less than the queue, and the window stays at the queue's size.
"""

from __future__ import annotations

from typing import Final

from udptcp.core.receiver import Receiver
from udptcp.core.rtt import RttEstimator

GROWTH_FACTOR: Final = 2
"""The window grows to this many times the octets that arrive per minimum RTT."""


class WindowTuner:
    """Grows the receive window with the delivery rate the path shows."""

    __slots__ = ("_ceiling", "_mark_nxt", "_mark_s", "_rtt", "_rx")

    def __init__(self, rx: Receiver, rtt: RttEstimator, ceiling_bytes: int) -> None:
        self._rx = rx
        self._rtt = rtt
        self._ceiling = ceiling_bytes
        self._mark_s = -1.0
        """When the current measurement began (negative: none begun)."""
        self._mark_nxt = 0

    def set_receive_queue(self, queue_bytes: int) -> None:
        """The driver's receive queue holds ``queue_bytes``: start the window there (it never
        starts above ``recv_buffer_bytes``), before the first segment advertises it."""
        self._rx.resize(min(self._ceiling, queue_bytes))

    def update(self, now: float) -> None:
        """Called once per output pass: over each stretch of at least one minimum RTT, measure
        the in-order arrival rate, and grow the window to ``GROWTH_FACTOR`` times what it
        delivers per minimum RTT."""
        rx = self._rx
        if rx.buffer_bytes >= self._ceiling or rx.pressure:
            return
        min_rtt = self._rtt.min_rtt_s
        if min_rtt is None or self._mark_s < 0.0:
            self._mark_s = now
            self._mark_nxt = rx.rcv_nxt
            return
        elapsed = now - self._mark_s
        if elapsed < min_rtt or elapsed <= 0.0:  # an RTT sample may be 0 on a coarse clock
            return
        arrived = rx.rcv_nxt - self._mark_nxt
        self._mark_s = now
        self._mark_nxt = rx.rcv_nxt
        wanted = int(GROWTH_FACTOR * arrived * min_rtt / elapsed)
        if wanted > rx.buffer_bytes:
            rx.resize(min(wanted, self._ceiling))
