"""Socket addresses as people read and write them: ``host:port``, with ``[host]`` for IPv6.

One format for every message, log line and command (``listening on H:P``, ``relaying H:P ->
H:P``, ``--target H:P``): what one command prints, another can be given back.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable
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


PORT_EXPECTED = f"an int in [0, {MAX_PORT}] or a str of its digits"
"""What a port argument may be, for the errors that reject one."""


def check_port(port: object) -> int:
    """A port argument as an int; a TypeError or ValueError names the value and what is expected.

    A str of digits is taken, as asyncio takes one (``"8080"``); a service name (``"http"``)
    is not: its number is TCP's or UDP's, and udptcp is neither. bool is not taken for an int.
    """
    if type(port) is int and 0 <= port <= MAX_PORT:
        return port  # every well-formed call: one test
    if isinstance(port, str):
        if not (port.isascii() and port.isdigit()):
            raise ValueError(f"port must be {PORT_EXPECTED}, got {port!r}")
        return check_port(int(port))
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be {PORT_EXPECTED}, got {type(port).__name__} {port!r}")
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"port must be in [0, {MAX_PORT}], got {port}")
    return int(port)  # an int subclass (IntEnum...) as a plain int


def check_peer(host: object, port: object) -> tuple[str, int]:
    """The ``host`` and ``port`` of a server to connect to, checked: a non-empty str and a port
    in [1, 65535]; a TypeError or ValueError names the argument, its value and what is expected.

    Checked here rather than left to getaddrinfo or connect, whose errors name neither the
    argument nor the fix (a port of 0 even gets as far as "Transport endpoint is not connected").
    """
    if not isinstance(host, str):
        if host is None:
            raise ValueError("host must be given: the server's name or address (e.g. '127.0.0.1')")
        if isinstance(host, bytes | bytearray):  # asyncio's open_connection takes these too
            try:
                host = bytes(host).decode("ascii")
            except UnicodeDecodeError:
                raise ValueError(f"host must be a name or address in ASCII, got {host!r}") from None
        else:
            raise TypeError(
                f"host must be a str, the server's name or address, got {type(host).__name__} {host!r}"
            )
    if not host:
        raise ValueError("host must be the server's name or address (e.g. '127.0.0.1'), got ''")
    if port is None:
        raise ValueError(f"port must be given: the port the server listens on, {PORT_EXPECTED}")
    number = check_port(port)
    if number == 0:
        raise ValueError(
            "port must be the port the server listens on, in [1, 65535], got 0 (0 means "
            "'any free port' only when listening)"
        )
    return host, number


def check_hosts(host: object) -> list[str | None]:
    """The hosts a server listens on, as asyncio's ``create_server`` reads ``host``: None or
    ``''`` for every interface, a str, or an iterable of str; a TypeError or ValueError names
    what is wrong."""
    if host is None or host == "":
        return [None]
    if isinstance(host, str):
        return [host]
    if isinstance(host, bytes | bytearray) or not isinstance(host, Iterable):
        raise TypeError(
            "host must be a str, a sequence of str or None (every interface), "
            f"got {type(host).__name__} {host!r}"
        )
    hosts = list(host)
    for one in hosts:
        if not isinstance(one, str):
            raise TypeError(
                f"host must be a str or a sequence of str, got {type(one).__name__} {one!r} in {host!r}"
            )
    if not hosts:
        raise ValueError(
            f"host must name at least one address to listen on (or be None for every interface), got {host!r}"
        )
    return hosts


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
