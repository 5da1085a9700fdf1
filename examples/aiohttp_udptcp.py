"""aiohttp over udptcp: its client through a connector, its server through its runner.

    runner, server = await serve(app, "127.0.0.1", 8080)            # an aiohttp.web app
    async with aiohttp.ClientSession(connector=UdptcpConnector()) as session:
        await session.get("http://127.0.0.1:8080/")                 # https:// for TLS
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.client_proto import ResponseHandler

import udptcp


class UdptcpConnector(aiohttp.BaseConnector):
    """aiohttp's client connections opened by ``udptcp.create_connection`` (as its own
    UnixConnector opens them with ``loop.create_unix_connection``)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, **options: Any) -> None:
        super().__init__()
        self._ssl_context, self._options = ssl_context, options

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> ResponseHandler:
        tls = (self._ssl_context or True) if req.is_ssl() else None
        _, protocol = await udptcp.create_connection(
            self._factory, req.host, req.port, ssl=tls, **self._options
        )
        return protocol


async def serve(
    app: web.Application, host: str, port: int, **options: Any
) -> tuple[web.AppRunner, udptcp.Server]:
    """Serve ``app`` over udptcp (``ssl=`` for TLS); ``runner.cleanup()`` stops it."""
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    return runner, await udptcp.create_server(runner.server, host, port, **options)
