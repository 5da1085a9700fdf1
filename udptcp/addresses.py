"""Socket addresses as people read and write them: ``host:port``, with ``[host]`` for IPv6.

One format for every message, log line and command (``listening on H:P``, ``relaying H:P ->
H:P``, ``--target H:P``): what one command prints, another can be given back.
"""

from __future__ import annotations

import functools
import socket
from typing import Any

MAX_PORT = 65535
NUMERIC_ADDRESSES_REMEMBERED = 256


def format_address(addr: tuple[Any, ...] | None) -> str:
    """``host:port`` of a socket address (an IPv6 4-tuple too); ``?`` when there is none yet.

    An IPv6 host is bracketed, as in URLs, since its colons would otherwise run into the port's.
    """
    if not addr:
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT`` or ``[V6HOST]:PORT``; a ValueError says what is wrong.

    The port is what follows the last colon, so an unbracketed IPv6 host is read too.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9000)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > MAX_PORT:
        raise ValueError(f"{text!r}: port {port!r} is not a number in [0, {MAX_PORT}]")
    return host, int(port)


def check_port(port: int | str) -> int:
    """A port argument as an int; TypeError or ValueError says what is wrong with it."""
    if isinstance(port, str):
        if not port.isdigit():
            raise ValueError(f"port must be a number in [0, {MAX_PORT}], got {port!r}")
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}")
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"port must be in [0, {MAX_PORT}], got {port}")
    return port


@functools.lru_cache(maxsize=NUMERIC_ADDRESSES_REMEMBERED)
def numeric_address(host: str, port: int, family: int) -> tuple[Any, ...]:
    """The address of a numeric ``host`` without the resolver's thread (asyncio's own
    ``create_connection`` skips it likewise); empty for a name, which must be resolved.

    Remembered: a client opens connection after connection to the same address, and the
    answer for a numeric host never changes (a name's emptiness neither)."""
    try:
        return tuple(
            socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
        )
    except socket.gaierror:
        return ()
