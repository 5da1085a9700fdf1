"""What the core tells its driver. Events are rare, small and immutable.

In-order data is the exception to "rare": one :class:`DataReceived` carries every in-order
byte that one datagram released, never one event per byte range.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from udptcp.core.state import Cause, State


class CloseReason(enum.Enum):
    """Why a connection failed; the asyncio layer maps each to the exception asyncio uses."""

    REFUSED = "connection refused"  # our SYN was answered by RST
    RESET = "connection reset by peer"
    TIMED_OUT = "connection timed out"  # retransmissions or the user timeout ran out
    RESET_AFTER_CLOSE = "data arrived after close; connection reset"


class StateChanged:
    """The connection moved along one edge of the transition table.

    A plain class, as :class:`DataReceived` is: a connection makes five or six in its life,
    and a frozen dataclass takes about a microsecond to build, a good part of opening one.
    """

    __slots__ = ("cause", "new", "old")

    def __init__(self, old: State, new: State, cause: Cause) -> None:
        self.old = old
        self.new = new
        self.cause = cause

    def __repr__(self) -> str:
        return f"StateChanged(old={self.old}, new={self.new}, cause={self.cause})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, StateChanged) and self.old is other.old and self.new is other.new
                and self.cause is other.cause)

    def __hash__(self) -> int:
        return hash((self.old, self.new, self.cause))


@dataclass(frozen=True, slots=True)
class ConnectionEstablished:
    """The three-way handshake completed; the application may have the connection now."""


class DataReceived:
    """In-order bytes from the peer. ``data`` is only valid until the driver hands it on.

    A plain class rather than a frozen dataclass like the others: one is made per data
    segment, and a frozen dataclass costs about four times as much to build.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"DataReceived({bytes(self.data)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataReceived) and bytes(self.data) == bytes(other.data)

    __hash__ = None  # type: ignore[assignment]  # equal by contents, which may change


@dataclass(frozen=True, slots=True)
class EofReceived:
    """The peer closed its sending side (its FIN arrived, after all its data)."""


@dataclass(frozen=True, slots=True)
class SendComplete:
    """Every byte we sent, and our FIN, has been acknowledged."""


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The connection ended abnormally; pending reads and writes should fail."""

    reason: CloseReason


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The core reached CLOSED (or went back to LISTEN); the driver may forget it."""


Event = (
    StateChanged
    | ConnectionEstablished
    | DataReceived
    | EofReceived
    | SendComplete
    | ConnectionFailed
    | ConnectionTerminated
)
