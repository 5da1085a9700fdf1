"""``udptcp listen`` and ``udptcp connect``: netcat for udptcp.

Standard input goes to the peer and the peer's bytes go to standard output. The end of
standard input is a half-close (FIN); the command keeps printing until the peer closes too.
Over TLS, which asyncio cannot half-close, the end of ``connect``'s standard input closes the
connection, and ``listen`` relays until its peer closes (were both to close at the end of
their input, data still on its way to the side that closed first would be an error).
"""

from __future__ import annotations

import argparse
import asyncio

import udptcp
from udptcp.cli.common import (
    EXIT_OK,
    READ_CHUNK_BYTES,
    StdinReader,
    StdoutWriter,
    build_config,
    client_tls,
    listening_line,
    say,
    server_tls,
)


async def listen(args: argparse.Namespace) -> int:
    """Accept one connection, then relay it to and from stdio."""
    config = build_config(args)
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if accepted.done():
            writer.transport.abort()  # one connection only, as netcat
        else:
            accepted.set_result((reader, writer))

    # The usual backlog, so a stranger's half-open SYN cannot keep the real peer out; the
    # first connection established wins and later ones are reset.
    server = await udptcp.start_server(
        on_connection, args.host, args.port, ssl=server_tls(args), config=config
    )
    say(listening_line(server), err=True)
    reader, writer = await accepted
    server.close()
    await relay(reader, writer, closes=False)
    await server.wait_closed()
    return EXIT_OK


async def connect(args: argparse.Namespace) -> int:
    """Connect, then relay the connection to and from stdio."""
    config = build_config(args)
    reader, writer = await udptcp.open_connection(args.host, args.port, ssl=client_tls(args), config=config)
    await relay(reader, writer)
    return EXIT_OK


async def relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes | None = None,
    *, echoed: bool = False, closes: bool = True,
) -> None:
    """``message`` (or stdin) -> peer, then FIN; peer -> stdout; until both directions ended.

    Over TLS there is no FIN of our own before the close: the end of the input closes the
    connection (unless not ``closes``: then the peer's close ends it), or, for a peer that
    ``echoed`` what it got, the end of its echo does.
    """
    loop = asyncio.get_running_loop()
    half_close = writer.can_write_eof()
    sent = 0
    input_done = asyncio.Event()

    async def upstream() -> None:
        nonlocal sent
        if message is not None:
            writer.write(message)
            sent = len(message)
        else:
            stdin = StdinReader(loop)
            while chunk := await stdin.read():
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
        input_done.set()
        if half_close:
            writer.write_eof()
            await writer.drain()
        elif closes and (not echoed or not sent):
            writer.close()  # sends what is queued first; drain() would race the close

    stdout = StdoutWriter(loop)
    sender = asyncio.create_task(upstream())
    received = 0
    try:
        while data := await reader.read(READ_CHUNK_BYTES):
            await stdout.write(data)
            received += len(data)
            if not half_close and echoed and input_done.is_set() and received >= sent:
                break
        await sender
    finally:
        sender.cancel()
        writer.close()
    await writer.wait_closed()
