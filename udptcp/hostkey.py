"""The key of the ISN hash (RFC 6528): one per user and boot, shared by that user's processes.

Why shared rather than one per process: a server keeps a closed connection in TIME_WAIT for
2*MSL (a minute by default), and lets a new SYN from the same pair of addresses take it over
only when the SYN's timestamp (or, without timestamps, its sequence number) is newer than the
old connection's (RFC 6191). Our ISNs, and the timestamp clock that starts at the ISN, are a
clock all processes share (``CLOCK_MONOTONIC``) plus a keyed hash of the addresses. With a key
per process, a client restarted within 2*MSL that reuses a local port draws an unrelated hash:
half of its SYNs that meet a TIME_WAIT look older and are refused (retransmitted SYNs too), so
the open waits for TIME_WAIT to end. Measured: three clients of 3,000 set-ups run back to back
against one server (MSL 1 s) fell from 6,000 to 800 set-ups a second. Linux keeps one key per
boot for this reason.

Where it lives: random octets in a file that only its user can read, in the user's runtime
directory (``$XDG_RUNTIME_DIR``, or else ``udptcp-<uid>``, mode 0700, in the temporary
directory), named after the boot id (``/proc/sys/kernel/random/boot_id``) so that a reboot
draws a new key. It is secret as RFC 6528 asks: the boot id alone, which any local user can
read and system logs carry, does not give it. The first process writes it under a temporary
name and links it into place, so a process that comes second reads the first's, never half of
it. Whenever something is amiss (no boot id, a directory or file others could write or read, a
read-only file system), the process draws a key of its own, as before: ISNs stay unpredictable;
only a restarted client's quick reopen is lost.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from udptcp.core.isn import SECRET_BYTES

BOOT_ID_PATH: Final = Path("/proc/sys/kernel/random/boot_id")
RUNTIME_DIR_ENV: Final = "XDG_RUNTIME_DIR"
_PRIVATE: Final = 0o077
"""Permission bits for group and others: none may be set on the key or its directory."""


@functools.cache
def isn_key() -> bytes:
    """This process's ISN key, read (or written) once, at the first connection."""
    return host_key()


def host_key(runtime_dir: Path | None = None, boot_id_path: Path = BOOT_ID_PATH) -> bytes:
    """The key this user's processes share for this boot; a random one if that cannot be had."""
    try:
        boot_id = boot_id_path.read_text().strip()
        if not boot_id or "/" in boot_id:
            raise OSError(f"no usable boot id in {boot_id_path}")
        directory = runtime_dir if runtime_dir is not None else _runtime_dir()
        _check_private(directory, directory=True)
        return _shared_key(directory / f"udptcp-isn-key-{boot_id}")
    except (OSError, AttributeError):  # AttributeError: no os.getuid (not a POSIX system)
        return os.urandom(SECRET_BYTES)


def _runtime_dir() -> Path:
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    if runtime:
        return Path(runtime)
    path = Path(tempfile.gettempdir()) / f"udptcp-{os.getuid()}"
    with contextlib.suppress(FileExistsError):  # ours from before, or a trap: _check_private tells
        path.mkdir(mode=0o700)
    return path


def _check_private(path: Path, *, directory: bool) -> None:
    """``path`` is a directory (or a regular file), not a link, owned by us, private to us."""
    info = os.lstat(path)
    kind_ok = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    if not kind_ok or info.st_uid != os.getuid() or info.st_mode & _PRIVATE:
        raise OSError(f"{path} is not a {'directory' if directory else 'file'} of ours alone")


def _shared_key(path: Path) -> bytes:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".udptcp-isn-key-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(os.urandom(SECRET_BYTES))
        with contextlib.suppress(FileExistsError):  # another process was first: its key it is
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    _check_private(path, directory=False)
    key = path.read_bytes()
    if len(key) != SECRET_BYTES:
        raise OSError(f"{path} does not hold a key of {SECRET_BYTES} octets")
    return key
