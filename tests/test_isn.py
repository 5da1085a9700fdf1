"""Initial sequence numbers (RFC 6528): unpredictable without the key, advancing with time."""

from __future__ import annotations

import os

from udptcp.core.isn import ISN_TICKS_PER_S, isn_for

LOCAL, REMOTE = ("127.0.0.1", 4000), ("127.0.0.1", 5000)


def test_isns_differ_between_keys_and_address_pairs() -> None:
    isns = {isn_for(os.urandom(16), LOCAL, REMOTE, 1.0) for _ in range(200)}
    assert len(isns) >= 199  # a fresh key gives an unrelated ISN
    key = os.urandom(16)
    per_peer = {isn_for(key, LOCAL, ("127.0.0.1", port), 1.0) for port in range(1000, 1200)}
    assert len(per_peer) >= 199
    assert all(0 <= isn < 2**32 for isn in isns | per_peer)


def test_isn_of_one_pair_advances_with_the_clock() -> None:
    key = os.urandom(16)
    first = isn_for(key, LOCAL, REMOTE, 10.0)
    later = isn_for(key, LOCAL, REMOTE, 10.5)
    assert (later - first) % 2**32 == int(10.5 * ISN_TICKS_PER_S) - int(10.0 * ISN_TICKS_PER_S)
