"""Initial sequence numbers (RFC 6528): unpredictable without the key, advancing with time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from udptcp.core.isn import ISN_TICKS_PER_S, SECRET_BYTES, isn_for
from udptcp.hostkey import BOOT_ID_PATH, host_key

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


def test_the_host_key_is_the_same_in_every_process_and_random_without_a_boot_id(tmp_path: Path) -> None:
    """One key per boot (``udptcp/hostkey.py``): another process computes the same one, which is
    not the boot id itself; without a readable boot id every call draws a fresh random key."""
    if not BOOT_ID_PATH.exists():
        pytest.skip(f"{BOOT_ID_PATH} is missing: this system has no boot id to share a key by")
    other = subprocess.run(
        [sys.executable, "-c", "from udptcp.hostkey import host_key; print(host_key().hex())"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    key = host_key()
    assert other.stdout.strip() == key.hex()
    assert len(key) == SECRET_BYTES and BOOT_ID_PATH.read_bytes().strip() not in (key, key.hex().encode())
    assert host_key(tmp_path / "missing") != host_key(tmp_path / "missing")
    (tmp_path / "empty").write_bytes(b"\n")
    assert host_key(tmp_path / "empty") != host_key(tmp_path / "empty")
    (tmp_path / "boot_id").write_bytes(b"00000000-1111-2222-3333-444444444444\n")
    assert host_key(tmp_path / "boot_id") == host_key(tmp_path / "boot_id") != key
