"""The key of the ISN hash (RFC 6528), one for every udptcp process on this host until it reboots.

Why one per host and not one per process: a server keeps a closed connection in TIME_WAIT for
2*MSL, and lets a new SYN from the same pair of addresses take it over only when the SYN's
timestamp (or, without timestamps, its sequence number) is newer than the old connection's
(RFC 6191). Our ISNs and timestamp clocks are a clock that all processes share
(``CLOCK_MONOTONIC``) plus a keyed hash of the addresses. With one key per process, a client
restarted within 2*MSL that reuses a local port draws an unrelated hash: half of its SYNs that
meet a TIME_WAIT look older, are refused, and the connection waits a whole SYN timeout (1 s).
Measured: three clients of 3,000 set-ups run back to back against one server fell from 6,000 to
800 set-ups a second. Linux keeps one key per boot for this reason.

Where the key comes from: the kernel's boot id (``/proc/sys/kernel/random/boot_id``, 122 random
bits drawn at boot), hashed under a label of ours. It is not visible from other hosts, which is
what RFC 6528 asks (an off-path attacker must not guess ISNs); local users can read it, but a
local user able to forge a loopback peer's datagrams could read them anyway. Where there is no
boot id (not Linux, or no ``/proc``), each process draws a random key, as before.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

from udptcp.core.isn import SECRET_BYTES

BOOT_ID_PATH: Final = Path("/proc/sys/kernel/random/boot_id")
_LABEL: Final = b"udptcp RFC 6528 ISN key"


def host_key(boot_id_path: Path = BOOT_ID_PATH) -> bytes:
    """The ISN key: the same in every process of this boot, random per process without a boot id."""
    try:
        boot_id = boot_id_path.read_bytes().strip()
    except OSError:
        boot_id = b""
    if not boot_id:
        return os.urandom(SECRET_BYTES)
    return hashlib.blake2s(boot_id, key=_LABEL, digest_size=SECRET_BYTES).digest()
