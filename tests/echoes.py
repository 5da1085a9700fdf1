"""Echo rounds over many udptcp streams at once, for the tests of servers sharing a port."""

from __future__ import annotations

import asyncio

WAIT_S = 20.0
"""Bound on every wait; reached only on failure."""

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def echo_round(streams: list[Stream], tag: str) -> None:
    """Every connection echoes a message of its own, exactly (a reset would raise here)."""
    for i, (_, writer) in enumerate(streams):
        writer.write(f"{tag} {i};".encode())
    for i, (reader, _) in enumerate(streams):
        expected = f"{tag} {i};".encode()
        assert await asyncio.wait_for(reader.readexactly(len(expected)), WAIT_S) == expected


async def close_all(streams: list[Stream]) -> None:
    """Half-close each, read the server's EOF, then close."""
    for reader, writer in streams:
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
        writer.close()
        await writer.wait_closed()
