"""The exception an application gets when its connection fails: what went wrong, what to do.

asyncio's TCP transports raise the ``OSError`` subclasses that sockets do; udptcp raises the
same ones (``ConnectionRefusedError``, ``TimeoutError``, ``BrokenPipeError``,
``ConnectionResetError``) for the same situations, with a message that names the peer, what
the connection saw, and where to look.
"""

from __future__ import annotations

from typing import Any

from udptcp.addresses import format_address
from udptcp.core import CloseReason, Connection


def failure(
    conn: Connection, reason: CloseReason, peer: tuple[Any, ...], *, connecting: bool,
    eof_received: bool,
) -> OSError:
    """The exception for a connection to ``peer`` that ended for ``reason`` (``connecting``:
    before it was established; ``eof_received``: after the peer's FIN)."""
    where = format_address(peer)
    config = conn.config
    if reason is CloseReason.REFUSED:
        return ConnectionRefusedError(
            f"connection to {where} refused: nothing listens there (it answered RST or ICMP "
            "port unreachable)"
        )
    if reason is CloseReason.TIMED_OUT:
        if connecting:
            return TimeoutError(
                f"connecting to {where} timed out: no answer to {config.syn_retries + 1} SYNs; "
                "check that a udptcp server runs there and that UDP gets through"
            )
        liveness = conn.liveness
        if conn.recovery.timeouts >= config.retries or liveness.window_probes >= config.retries:
            what = f"no acknowledgement after {config.retries} retransmissions"
        elif liveness.keepalive_probes:
            what = f"no answer to {liveness.keepalive_probes} keepalive probes"
        else:
            what = f"data unacknowledged for user_timeout_s={config.user_timeout_s} s"
        return TimeoutError(
            f"connection to {where} timed out: {what}; the peer is gone or the path is down"
        )
    if eof_received:
        return BrokenPipeError(
            f"connection to {where} broken: the peer closed its side, then reset the "
            "connection (it was done with it: what we sent after its close may not have been read)"
        )
    return ConnectionResetError(f"connection reset by peer {where}")
