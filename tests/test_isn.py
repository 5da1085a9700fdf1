"""Initial sequence numbers (RFC 6528): unpredictable without the key, advancing with time."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from udptcp.core.isn import ISN_TICKS_PER_S, SECRET_BYTES, isn_for
from udptcp.hostkey import BOOT_ID_PATH, RUNTIME_DIR_ENV, host_key

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


def test_the_host_key_is_one_per_user_and_boot_shared_by_processes(tmp_path: Path) -> None:
    """Another process of ours, given the same runtime directory, uses the same key: a random
    one, kept in a file only we can read, not something derived from the (public) boot id."""
    if not BOOT_ID_PATH.exists():
        pytest.skip(f"{BOOT_ID_PATH} is missing: this system has no boot id to share a key by")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    other = subprocess.run(
        [sys.executable, "-c", "from udptcp.hostkey import host_key; print(host_key().hex())"],
        capture_output=True, text=True, timeout=30, check=True,
        env={**os.environ, RUNTIME_DIR_ENV: str(runtime)},
    )
    key = host_key(runtime)
    assert other.stdout.strip() == key.hex() and len(key) == SECRET_BYTES
    (stored,) = runtime.iterdir()
    assert stored.read_bytes() == key and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert BOOT_ID_PATH.read_text().strip() in stored.name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    assert host_key(elsewhere) != key  # drawn at random, not computed from the boot id


def test_the_host_key_falls_back_to_a_key_per_process_when_it_cannot_be_shared_safely(
    tmp_path: Path,
) -> None:
    """No boot id, a runtime directory others may write to, a key file others may read, a link
    or a truncated file: each call draws a fresh random key (ISNs stay unpredictable)."""
    no_boot_id = tmp_path / "missing"
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    readable, linked, short = (tmp_path / name for name in ("readable", "linked", "short"))
    for directory in (readable, linked, short):
        directory.mkdir(mode=0o700)
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("00000000-1111-2222-3333-444444444444\n")
    name = "udptcp-isn-key-00000000-1111-2222-3333-444444444444"
    (readable / name).write_bytes(os.urandom(SECRET_BYTES))
    (readable / name).chmod(0o644)
    (tmp_path / "target").write_bytes(os.urandom(SECRET_BYTES))
    (linked / name).symlink_to(tmp_path / "target")
    (short / name).write_bytes(b"short")
    (short / name).chmod(0o600)
    cases = [(open_dir, no_boot_id), (open_dir, boot_id), (readable, boot_id), (linked, boot_id),
             (short, boot_id)]
    for directory, boot in cases:
        keys = {host_key(directory, boot) for _ in range(3)}
        assert len(keys) == 3 and all(len(key) == SECRET_BYTES for key in keys), directory
    good = tmp_path / "good"
    good.mkdir(mode=0o700)
    assert host_key(good, boot_id) == host_key(good, boot_id)  # the same files, done right
