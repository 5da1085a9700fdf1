"""``udptcp echo-server`` and ``udptcp echo-client``."""

from __future__ import annotations

import argparse
import asyncio
import sys

import udptcp
from udptcp.cli import workers
from udptcp.cli.common import EXIT_OK, READ_CHUNK_BYTES, build_config, client_tls, listening_line, say
from udptcp.cli.netcat import relay
from udptcp.signals import on_signals

CLOSE_GRACE_S = 5.0
"""How long a stopping echo-server lets its connections close gracefully before resetting them."""


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send back every byte; close once the peer's data has ended and all of it is echoed."""
    try:
        while data := await reader.read(READ_CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, TimeoutError):
        writer.transport.abort()


async def serve(args: argparse.Namespace) -> int:
    """Echo every connection until SIGINT or SIGTERM; then close them, gracefully at first.

    A peer that never acknowledges our FIN, or keeps its window shut, would hold a graceful
    close open for as long as the retries last: after ``CLOSE_GRACE_S`` the rest are reset.
    With ``--workers``, the workers stop at the same time (a worker stops when the first
    process tells it to, or dies).
    """
    config = build_config(args)
    stop = asyncio.Event()
    with on_signals(stop.set):  # before the first line: a script may signal as soon as it reads it
        server, group = await workers.listen(args, echo, config)
        say(listening_line(server))
        if workers.is_worker(args):
            workers.stop_when_parent_gone(stop)
        await stop.wait()
    if group is None:
        return await _close(server)
    own, rest = await asyncio.gather(_close(server), group.stop())
    return own or rest


async def _close(server: udptcp.Server) -> int:
    server.close()
    server.close_clients()
    try:
        await asyncio.wait_for(asyncio.shield(server.wait_closed()), CLOSE_GRACE_S)
    except TimeoutError:
        server.abort_clients()
        await server.wait_closed()
    return EXIT_OK


async def client(args: argparse.Namespace) -> int:
    """Send the message (or standard input), half-close, print the echo until the server closes
    (over TLS, which has no half-close here, until all of it is echoed)."""
    reader, writer = await udptcp.open_connection(
        args.host, args.port, ssl=client_tls(args), config=build_config(args)
    )
    await relay(reader, writer, None if args.message is None else args.message.encode(), echoed=True)
    if args.message is not None and sys.stdout.isatty():
        print(flush=True)
    return EXIT_OK
