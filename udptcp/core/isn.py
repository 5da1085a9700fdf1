"""Initial sequence numbers (RFC 6528): a 4-microsecond clock plus a keyed hash.

The hash of the connection's addresses under a secret key makes ISNs unpredictable to
anyone who does not know the key; the clock makes successive incarnations of the same pair of
addresses start further along, which helps tell their segments apart. The key and the time
are passed in, so this stays free of I/O and randomness of its own.
"""

from __future__ import annotations

import hashlib
from typing import Final

from udptcp.core.seqnum import SEQ_MASK

ISN_TICKS_PER_S: Final = 250_000
"""RFC 6528: the clock component advances every 4 microseconds."""
SECRET_BYTES: Final = 16


def isn_for(secret: bytes, local: object, remote: object, now: float) -> int:
    """The ISN for a connection between ``local`` and ``remote`` opened at ``now``."""
    digest = hashlib.blake2s(repr((local, remote)).encode(), key=secret, digest_size=4).digest()
    return (int(now * ISN_TICKS_PER_S) + int.from_bytes(digest, "big")) & SEQ_MASK
