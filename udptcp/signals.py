"""Signal handlers on the running event loop, for as long as a block runs.

Removed when the block ends, so that a second Ctrl-C while a command winds down (say, the
echo-server's grace period) interrupts it as usual instead of being swallowed. Where the
loop cannot take signals (Windows, a thread other than the main one) they are not installed,
and the default handling (KeyboardInterrupt) stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Ctrl-C and ``kill``: what asks a command to stop."""


@contextlib.contextmanager
def on_signals(
    callback: Callable[[], object], signals: Iterable[signal.Signals] = STOP_SIGNALS
) -> Iterator[None]:
    """Call ``callback`` on the running loop when one of ``signals`` arrives, inside the block."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # see the module
            loop.add_signal_handler(signum, callback)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
