"""Header prediction: the two segments a bulk transfer is made of, taken in a few steps.

Linux's ``tcp_rcv_established`` fast path, for an ESTABLISHED connection: the next in-order
data segment with nothing else in it, and a pure ACK of new data. Every check of RFC 9293
3.10.7.4 that such a segment would pass is known to pass from a few comparisons (it is at
RCV.NXT, inside the window, changes no window, carries no flag but ACK, and its timestamp is
not old); anything unusual is left to the full path in ``connection.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from udptcp.core.acks import AckHandler
from udptcp.core.events import DataReceived, Event
from udptcp.core.liveness import Liveness
from udptcp.core.receiver import Receiver
from udptcp.core.sender import Sender
from udptcp.core.seqnum import SEQ_MASK, seq_lt, unwrap
from udptcp.core.stats import ConnectionStats
from udptcp.wire import ACK, PSH

if TYPE_CHECKING:
    from udptcp.config import Config


class FastPath:
    """Takes predictable segments of an established connection, or declines them."""

    __slots__ = ("_acks", "_config", "_events", "_liveness", "_rx", "_stats", "_tx")

    def __init__(
        self, config: Config, tx: Sender, rx: Receiver, acks: AckHandler, liveness: Liveness,
        stats: ConnectionStats, events: list[Event],
    ) -> None:
        self._config = config
        self._tx = tx
        self._rx = rx
        self._acks = acks
        self._liveness = liveness
        self._stats = stats
        self._events = events

    def take(
        self, flags: int, seq32: int, ack32: int, wnd: int, payload: memoryview,
        ts: tuple[int, int] | None, now: float, app_closed: bool,
    ) -> bool:
        """Process the segment if it is one of the two predicted kinds; False leaves it to the
        full path untouched. ``app_closed``: data for a closed application is not predicted."""
        rx, tx = self._rx, self._tx
        rcv_nxt = rx.rcv_nxt
        if (
            flags & ~PSH != ACK
            or seq32 != rcv_nxt & SEQ_MASK
            or wnd != tx.wnd
            or rx.ooo is not None
            or rx.paused
            or rx.fin_seq is not None
        ):
            return False
        recent = rx.ts_recent
        if ts is not None and recent is not None and seq_lt(ts[0], recent):
            return False  # PAWS has something to say: let the full path decide
        size = len(payload)
        if size:
            if ack32 != tx.una & SEQ_MASK or size > rx.adv_right - rcv_nxt or app_closed:
                return False
            if ts is not None:
                rx.update_ts_recent(ts[0], rcv_nxt, now)
            rx.rcv_nxt = rcv_nxt + size
            rx.count_for_ack(now, self._config.delayed_ack_s)
            self._stats.bytes_received += size
            self._events.append(DataReceived(payload))
        else:
            ack = unwrap(ack32, tx.una)
            if not tx.una < ack <= tx.nxt:
                return False
            if ts is not None:
                rx.update_ts_recent(ts[0], rcv_nxt, now)
            tx.wl1 = rcv_nxt
            tx.wl2 = ack
            self._liveness.ack_received(tx.wnd > 0)
            self._acks.on_new_ack(ack, [], None, ts, now)  # in ESTABLISHED no FIN of ours is out
        self._liveness.heard(now, True)
        return True
