"""A ``Sender`` past its handshake, and segments sent on a known schedule, for the sender tests.

Sequence numbers are unwrapped; times are chosen to be exact in binary floating point, so that
deadlines compare exactly.
"""

from __future__ import annotations

from udptcp.core.sender import Sender, SentSegment

ISS = 1000
DATA = ISS + 1
"""The first data octet's sequence number (the SYN takes ``ISS``)."""
MSS_BYTES = 100
T0_S = 1.0
SEND_GAP_S = 0.0625
"""Between two transmissions in the tests that space them out."""
RTT_S = 0.25
REO_WND_S = 0.125


def started(data_bytes: int = 0) -> Sender:
    """A sender whose SYN is acknowledged (as the connection does: SND.UNA = ISS + 1)."""
    tx = Sender()
    tx.start(ISS)
    tx.max_seg = MSS_BYTES
    tx.una = ISS + 1
    if data_bytes:
        tx.queue(bytes(range(256)) * (data_bytes // 256) + bytes(data_bytes % 256))
    return tx


def seg_end(i: int) -> int:
    """End of the ``i``-th segment (from 0) when every segment is ``MSS_BYTES`` long."""
    return DATA + (i + 1) * MSS_BYTES


def seg_range(i: int) -> tuple[int, int]:
    return DATA + i * MSS_BYTES, seg_end(i)


def flight(count: int, gap_s: float = SEND_GAP_S) -> tuple[Sender, list[SentSegment]]:
    """A sender with ``count`` full segments sent, the ``i``-th at ``T0_S + i * gap_s``."""
    tx = started(count * MSS_BYTES)
    recs = [tx.on_send_new(seg_end(i), T0_S + i * gap_s) for i in range(count)]
    return tx, recs


def sent_at(i: int) -> float:
    return T0_S + i * SEND_GAP_S
