"""Giving the C allocator's free memory back to the system, after connections let go of
large buffers (glibc's ``malloc_trim``).

Connections free their buffers as data is acknowledged, read or given up, and Python frees
the memory, but glibc keeps what was freed for later: a bytearray that grew to megabytes
(a send buffer) is served from the heap once glibc has raised its mmap threshold (it does,
up to 32 MiB, each time a large block is freed), and a heap is returned to the system only
from its top. A server under changing load then keeps, and drifts up to, the peaks of its
heap's fragmentation (a soak: 100 to 176 MiB while its connections kept 24 to 47 MiB).
``malloc_trim(0)`` returns every free page, wherever it lies, without changing how memory is
allocated; a fixed mmap threshold (``mallopt``) would have held the heap flat too, but cost
bulk transfers a third of their speed (every large buffer mapped and unmapped).

An endpoint calls :meth:`Trimmer.released` with what its connections gave back; once they
have released ``RELEASED_BYTES`` since the last trim, and no trim of the process ran in the
last ``MIN_INTERVAL_S``, the heap is trimmed. Where ``malloc_trim`` does not exist (musl,
macOS, Windows), nothing is done.

The other half, :func:`tune_allocator`: left to itself glibc also gives the top of its heap
back after any free that leaves more than twice its (adaptive) mmap threshold free there. A
transfer allocates and frees blocks of a few hundred KiB all the time (the joined payload of
a delivery, the reader's buffer and its ``read()``), so the heap shrank and grew again
thousands of times a second: 7,000 ``brk`` calls and 335 page faults per MB received, a third
of a receiver's time. Since the trimmer returns memory, the first endpoint of a process fixes
glibc's thresholds instead: blocks up to ``MMAP_THRESHOLD_BYTES`` come from the heap, and the
heap keeps up to ``TRIM_THRESHOLD_BYTES`` free at its top. An application that chose its own
(``MALLOC_TRIM_THRESHOLD_`` and friends, or ``GLIBC_TUNABLES``) keeps them.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Final

RELEASED_BYTES: Final = 32 * 1024 * 1024
"""Octets the connections give back between two trims: a trim follows what is worth
returning (a few megabytes of buffers), not every acknowledgement."""
MMAP_THRESHOLD_BYTES: Final = 4 * 1024 * 1024
"""Blocks from this size up are mapped on their own (and unmapped when freed)."""
TRIM_THRESHOLD_BYTES: Final = 32 * 1024 * 1024
"""Free memory at the heap's top that glibc returns by itself: the trimmer returns the rest."""
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
"""``mallopt`` parameters (``malloc.h``)."""
_USER_SETTINGS: Final = (
    "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES",
)
MIN_INTERVAL_S: Final = 1.0
"""Fewest seconds between two trims of the process: a trim walks the heap (about a
millisecond per hundred MiB), and the pages it returns are faulted in again when reused."""


def _find_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt`` (where ``malloc_trim`` exists too: the two halves go together)."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 (only glibc has it; musl has a mallopt that does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def tune_allocator(mallopt: Callable[[int, int], int] | None, environ: Mapping[str, str]) -> bool:
    """Fix glibc's mmap and trim thresholds with ``mallopt``, unless the application chose its
    own in ``environ``; True if they were set."""
    if mallopt is None or any(name in environ for name in _USER_SETTINGS):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


@functools.cache
def tune_process_allocator() -> bool:
    """:func:`tune_allocator` for this process, once (every endpoint calls it)."""
    return tune_allocator(_find_mallopt(), os.environ)


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class Trimmer:
    """Decides when the process's heap is trimmed; one per process (``TRIMMER``)."""

    def __init__(
        self, trim: Callable[[int], int] | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._trim = trim
        self._clock = clock
        self._released = 0
        self._last_at: float | None = None
        self.trims = 0
        """Trims run so far (for tests and reports)."""

    def released(self, octets: int) -> None:
        """Connections gave back ``octets`` of buffers (the clock is read only when a trim
        may be due: this runs on every acknowledgement that shrinks a send buffer)."""
        if self._trim is None:
            return
        self._released += octets
        if self._released < RELEASED_BYTES:
            return
        now = self._clock()
        if self._last_at is not None and now - self._last_at < MIN_INTERVAL_S:
            return  # what was released meanwhile waits for the next chance
        self._released = 0
        self._last_at = now
        self.trims += 1
        self._trim(0)


TRIMMER = Trimmer(_find_malloc_trim())
"""The process's trimmer, which every endpoint reports to."""
