"""SYN cookies (RFC 4987 section 3.6, as Linux makes them): a listener under pressure keeps no
state for a SYN, and the ISN of its SYN-ACK carries what the connection needs.

When the half-open connections fill what a listener holds, a SYN is answered by a SYN-ACK
whose ISN is a cookie: a keyed hash of the two addresses, the peer's ISN, a coarse time
counter and six bits of what the SYN offered (an MSS from a table, SACK, timestamps, MTU
probes). Nothing is kept. The peer's ACK returns the cookie plus one; if it checks out, the
connection is created then, already past its SYN-ACK. Linux packs the option bits into the
timestamp when timestamps are on; the cookie's 24 low bits have room for all of ours, so they
travel there whether timestamps are in use or not.

Layout, as Linux's ``secure_tcp_syn_cookie``::

    cookie = H1(addresses) + peer ISN + (counter << 24)
             + ((H2(addresses, counter, peer ISN) + data) mod 2**24)

``data`` takes six of the 24 bits, so a forged ACK passes with probability 2**-18 for each
counter it may carry. (Linux's H2 leaves out the peer's ISN; with it, an ACK whose sequence
number does not follow the SYN's fails as surely as a guessed cookie.) The key is the
listener's, the time comes in as ``now``: the core keeps no clock and no randomness of its own.
"""

from __future__ import annotations

import hashlib
from typing import Final, NamedTuple

from udptcp.core.negotiated import TS_TICKS_PER_S, Negotiated, peer_mss
from udptcp.core.pmtud import MAX_DATAGRAM_BYTES, segment_bytes
from udptcp.core.seqnum import SEQ_MASK, seq_diff
from udptcp.wire import ACK, SYN, Options, encode_datagram, encode_options

COOKIE_PERIOD_S: Final = 64.0
"""The coarse clock of the cookies ticks once a minute or so (Linux: 60 s)."""
MAX_COOKIE_AGE_PERIODS: Final = 2
"""A cookie is good for the tick it was made in and the one after (Linux's MAX_SYNCOOKIE_AGE)."""
COOKIE_MSS_TABLE = (64, 536, 1220, 1380, 1440, 1460, 8960, segment_bytes(MAX_DATAGRAM_BYTES))
"""The peer MSS a cookie can remember (three bits): the largest entry at most the peer's.
Linux's table, plus udptcp's smallest, a jumbo frame's and the largest it announces."""
_COUNTER_BITS: Final = 8
_COUNTER_MASK: Final = (1 << _COUNTER_BITS) - 1
_LOW_BITS: Final = 24
_LOW_MASK: Final = (1 << _LOW_BITS) - 1
_SACK_BIT: Final = 1 << 3
_TIMESTAMPS_BIT: Final = 1 << 4
_MTU_PROBES_BIT: Final = 1 << 5
_DATA_LIMIT: Final = 1 << 6
_ADDRESS_HASH: Final = b"syncookie-addr"
_COUNTER_HASH: Final = b"syncookie-time"


class CookieGrant(NamedTuple):
    """What a valid cookie says about the connection it opens."""

    isn: int
    """Our ISN: the cookie."""
    peer_isn: int
    peer_mss: int
    """The peer's MSS, as the table remembers it (at most what it announced)."""
    sack: bool
    """Both ends use SACK (we offered it in the SYN-ACK)."""
    timestamps: bool
    mtu_probes: bool
    """The peer answers path-MTU probes."""
    sent_at: float | None
    """When our SYN-ACK left, read from the timestamp the peer echoes (None without one)."""


def counter_at(now: float) -> int:
    """The cookies' coarse clock at ``now``."""
    return int(now // COOKIE_PERIOD_S) & _COUNTER_MASK


def _hash(
    secret: bytes, person: bytes, local: object, remote: object, counter: int = 0, peer_isn: int = 0
) -> int:
    message = repr((local, remote, counter, peer_isn)).encode()
    digest = hashlib.blake2s(message, key=secret, person=person[:8], digest_size=4).digest()
    return int.from_bytes(digest, "big")


def make_cookie(
    secret: bytes, local: object, remote: object, peer_isn: int, now: float, data: int
) -> int:
    """The ISN that remembers ``data`` (six bits) for the pair of addresses, at ``now``."""
    counter = counter_at(now)
    low = (_hash(secret, _COUNTER_HASH, local, remote, counter, peer_isn) + data) & _LOW_MASK
    return (
        _hash(secret, _ADDRESS_HASH, local, remote) + peer_isn + (counter << _LOW_BITS) + low
    ) & SEQ_MASK


def check_cookie(
    secret: bytes, local: object, remote: object, peer_isn: int, cookie: int, now: float
) -> int | None:
    """The six bits of data a valid, fresh cookie carries; None for any other number."""
    rest = (cookie - _hash(secret, _ADDRESS_HASH, local, remote) - peer_isn) & SEQ_MASK
    made = rest >> _LOW_BITS
    if (counter_at(now) - made) & _COUNTER_MASK >= MAX_COOKIE_AGE_PERIODS:
        return None
    data = (rest - _hash(secret, _COUNTER_HASH, local, remote, made, peer_isn)) & _LOW_MASK
    return data if data < _DATA_LIMIT else None


def _mss_index(announced: int) -> int:
    index = 0
    for i, size in enumerate(COOKIE_MSS_TABLE):
        if size <= announced:
            index = i
    return index


def syn_ack(
    secret: bytes, local: object, remote: object, seq: int, opts: Options | None,
    tsval: int | None, *, announced_mss: int, sack: bool, timestamps: bool, window: int, now: float,
) -> bytes:
    """The SYN-ACK answering a SYN (``seq``, options ``opts``, timestamp ``tsval``) with a
    cookie as its ISN. ``announced_mss``, ``sack``, ``timestamps`` and ``window`` are what this
    end offers, as in a SYN-ACK sent with state (``Output._syn``)."""
    use_sack = sack and opts is not None and opts.sack_permitted
    use_ts = timestamps and tsval is not None
    mtu_probes = opts is not None and opts.mtu_probe_permitted
    data = (
        _mss_index(peer_mss(opts.mss if opts is not None else None))
        | (_SACK_BIT if use_sack else 0)
        | (_TIMESTAMPS_BIT if use_ts else 0)
        | (_MTU_PROBES_BIT if mtu_probes else 0)
    )
    isn = make_cookie(secret, local, remote, seq, now, data)
    options = encode_options(
        mss=announced_mss,
        sack_permitted=use_sack,
        timestamps=(Negotiated(ts_offset=isn).ts_clock(now), tsval or 0) if use_ts else None,
        mtu_probe_permitted=True,
    )
    return encode_datagram(SYN | ACK, isn, (seq + 1) & SEQ_MASK, window, b"", options)


def grant(
    secret: bytes, local: object, remote: object, seq: int, ack: int,
    tsecr: int | None, now: float,
) -> CookieGrant | None:
    """What the ACK (``seq``, ``ack``, echoed timestamp ``tsecr``) of a cookie SYN-ACK opens;
    None when its ACK field holds no valid cookie."""
    peer_isn = (seq - 1) & SEQ_MASK
    isn = (ack - 1) & SEQ_MASK
    data = check_cookie(secret, local, remote, peer_isn, isn, now)
    if data is None:
        return None
    timestamps = bool(data & _TIMESTAMPS_BIT)
    sent_at = None
    if timestamps and tsecr is not None:
        age_ticks = seq_diff(Negotiated(ts_offset=isn).ts_clock(now), tsecr)
        if 0 <= age_ticks <= MAX_COOKIE_AGE_PERIODS * COOKIE_PERIOD_S * TS_TICKS_PER_S:
            sent_at = now - age_ticks / TS_TICKS_PER_S
    return CookieGrant(
        isn=isn, peer_isn=peer_isn, peer_mss=COOKIE_MSS_TABLE[data & 7],
        sack=bool(data & _SACK_BIT), timestamps=timestamps,
        mtu_probes=bool(data & _MTU_PROBES_BIT), sent_at=sent_at,
    )
