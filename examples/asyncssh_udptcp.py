"""asyncssh over udptcp, through its ``tunnel=`` hook (an object with create_connection and
create_server):

    server = await asyncssh.listen("127.0.0.1", 8022, tunnel=SshNetwork(), ...)
    conn = await asyncssh.connect("127.0.0.1", 8022, tunnel=SshNetwork(), ...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import udptcp


class SshNetwork:
    """asyncssh calls a tunnel's server factory with the (host, port) it was opened for, and
    sets TCP_NODELAY on the socket a transport names, which a UDP socket refuses: its
    connections see the transport without one. ``options`` go to udptcp (Config fields...)."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    async def create_connection(self, factory: Callable[[], Any], host: str, port: int) -> Any:
        return await udptcp.create_connection(lambda: _without_socket(factory()), host, port, **self.options)

    async def create_server(self, factory: Callable[[str, int], Any], host: str, port: int) -> udptcp.Server:
        made = lambda: _without_socket(factory(host, port))  # noqa: E731
        return await udptcp.create_server(made, host, port, **self.options)


class _NoSocket:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default if name == "socket" else self._transport.get_extra_info(name, default)


def _without_socket(protocol: Any) -> Any:
    made = protocol.connection_made
    protocol.connection_made = lambda transport: made(_NoSocket(transport))
    return protocol
