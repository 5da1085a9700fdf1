"""Keep TIME_WAIT alive when the program ends, as the kernel does for TCP.

A client's endpoint outlives the application's ``writer.close()``: its connection still has
to answer a retransmitted FIN for 2*MSL. When ``asyncio.run`` (or any runner that calls
``loop.shutdown_asyncgens()``) finishes, it closes every async generator the loop knows;
udptcp starts one per loop whose ``finally`` waits for the endpoints still lingering, bounded
by ``Config.shutdown_linger_s``. This is the one hook asyncio offers that runs on the loop
after the main coroutine returns and before the loop closes. Connections the application left
open are closed first (a FIN after what it wrote), as the kernel closes the TCP sockets of a
process that exits.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator

from udptcp.core import State
from udptcp.endpoint import LIVE, Endpoint


class _Lingering:
    """The endpoints of one loop that must be waited for at shutdown."""

    def __init__(self) -> None:
        self.endpoints: set[Endpoint] = set()
        self.guard: AsyncGenerator[None, None] | None = None
        self.starter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        live = [ep for ep in self.endpoints if not ep.closed.done()]
        for endpoint in live:
            endpoint.close_attached()
        pending = [ep.linger() for ep in live]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lingering] = (
    weakref.WeakKeyDictionary()
)


async def _guard(lingering: _Lingering) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await lingering.wait()


def track(endpoint: Endpoint) -> None:
    """Wait for ``endpoint``'s connections when the loop shuts down (until it closes)."""
    loop = endpoint.loop
    lingering = _by_loop.get(loop)
    if lingering is None:
        lingering = _by_loop[loop] = _Lingering()
        guard = _guard(lingering)
        lingering.guard = guard
        lingering.starter = asyncio.ensure_future(guard.asend(None), loop=loop)  # runs to ``yield``
    lingering.endpoints.add(endpoint)
    endpoint.closed.add_done_callback(lambda _: lingering.endpoints.discard(endpoint))


def abort_all(loop: asyncio.AbstractEventLoop) -> None:
    """Reset every connection on ``loop`` now (those in TIME_WAIT are done already).

    A program that is killed takes its connections' state with it. The kernel closes a dying
    process's TCP sockets and the peers learn of it; a udptcp program that is told to stop
    (SIGTERM, SIGINT) does the same by calling this, so that its peers fail at once instead
    of waiting out their retries.
    """
    for endpoint in [ep for ep in LIVE if ep.loop is loop]:
        for transport in endpoint.connections:
            if transport.conn.state is not State.TIME_WAIT:
                transport.abort()
