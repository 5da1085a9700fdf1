"""The sans-I/O protocol core: no sockets, no asyncio, no clock, no randomness of its own.

Time comes in as ``now`` (seconds, from any monotonic clock); datagrams, events and the next
timer deadline come out. The asyncio endpoint (``udptcp.endpoint``) is one driver of it; the
simulator in ``tests/sim.py`` is another.
"""

from udptcp.core import syncookies
from udptcp.core.checks import reset_for_unknown
from udptcp.core.connection import Connection
from udptcp.core.errors import LocalProtocolError
from udptcp.core.events import (
    CloseReason,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionTerminated,
    DataReceived,
    EofReceived,
    Event,
    SendComplete,
    StateChanged,
)
from udptcp.core.receiver import PRESSURE_FLOOR_BYTES, PRESSURE_LOW_WATER_BYTES
from udptcp.core.state import Cause, State

__all__ = [
    "PRESSURE_FLOOR_BYTES",
    "PRESSURE_LOW_WATER_BYTES",
    "Cause",
    "CloseReason",
    "Connection",
    "ConnectionEstablished",
    "ConnectionFailed",
    "ConnectionTerminated",
    "DataReceived",
    "EofReceived",
    "Event",
    "LocalProtocolError",
    "SendComplete",
    "State",
    "StateChanged",
    "reset_for_unknown",
    "syncookies",
]
