"""Header prediction: the segments a bulk transfer and a request/response exchange are made
of, taken in a few steps.

Linux's ``tcp_rcv_established`` fast path, for an ESTABLISHED connection: the next in-order
data segment (which may also acknowledge new data of ours and move the window: a reply), and
a pure ACK of new data. Every check of RFC 9293 3.10.7.4 that such a segment would pass is
known to pass from a few comparisons (it is at RCV.NXT, inside the window, carries no flag but
ACK, a pure ACK changes no window, and its timestamp is not old); anything unusual is left to
the full path in ``connection.py``, and what the fast path does is what that path would do.
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
        """Process the segment if it is one of the predicted kinds; False leaves it to the
        full path untouched. ``app_closed``: data for a closed application is not predicted."""
        rx, tx = self._rx, self._tx
        rcv_nxt = rx.rcv_nxt
        if (
            flags & ~PSH != ACK
            or seq32 != rcv_nxt & SEQ_MASK
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
            if size > rx.adv_right - rcv_nxt or app_closed:
                return False
            una = ack = tx.una
            if ack32 != una & SEQ_MASK:  # a reply, which acknowledges data of ours as well
                ack = unwrap(ack32, una)
                if not una < ack <= tx.nxt:
                    return False
            if ts is not None:
                rx.update_ts_recent(ts[0], rcv_nxt, now)
            # RFC 9293 3.10.7.4: the ACK field, then the text. The window may move (a peer
            # that reads one octet at a time shrinks it by one octet per segment).
            tx.update_window(rcv_nxt, ack, wnd)
            self._liveness.ack_received(tx.wnd > 0)
            if ack != una:
                self._acks.on_new_ack(ack, [], None, ts, now)
            rx.rcv_nxt = rcv_nxt + size
            rx.count_for_ack(now, self._config.delayed_ack_s)
            self._stats.bytes_received += size
            self._events.append(DataReceived(payload))
        else:
            if wnd != tx.wnd:
                return False
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
