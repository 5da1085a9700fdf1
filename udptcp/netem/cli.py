"""``udptcp netem``: run the impairing relay from the command line until told to stop.

The first line of standard output is machine-readable (``relaying HOST:PORT -> HOST:PORT``) so
that scripts can start the relay on port 0 and learn where it listens; the summary at exit
goes to standard output too, so that a benchmark's log records what the network really did.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from udptcp.addresses import format_address, parse_address
from udptcp.netem.impair import Impairment
from udptcp.netem.relay import SOCKET_BUFFER_BYTES, start_relay
from udptcp.netem.spec import format_spec, impairment_from, parse_items
from udptcp.signals import on_signals

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_USAGE = 2
PROG = "udptcp netem"


def host_port(text: str) -> tuple[str, int]:
    """:func:`udptcp.addresses.parse_address` for argparse, which shows only an
    ArgumentTypeError's own message (a ValueError becomes "invalid host_port value")."""
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``netem`` options; the spec syntax is :data:`udptcp.netem.spec.SPEC_HELP`."""
    parser.add_argument(
        "--listen", type=host_port, default=("127.0.0.1", 0), metavar="HOST:PORT",
        help="front address that clients send to (default 127.0.0.1:0, any free port)",
    )
    parser.add_argument(
        "--target", type=host_port, required=True, metavar="HOST:PORT",
        help="the server that datagrams are relayed to",
    )
    parser.add_argument(
        "--up", metavar="SPEC", help="impairments client -> server, e.g. loss=1%%,delay=20ms",
    )
    parser.add_argument("--down", metavar="SPEC", help="impairments server -> client")
    parser.add_argument(
        "--both", metavar="SPEC",
        help="impairments in both directions; keys in --up/--down override it for their direction",
    )
    parser.add_argument(
        "--seed", type=int, default=0,
        help="random seed; client flow i uses seed+i, so runs are reproducible (default 0)",
    )
    parser.add_argument(
        "--shared", action="store_true",
        help="all client flows share one bottleneck (the same impaired paths), e.g. to measure how "
        "two connections divide a rate limit; by default each flow has its own",
    )
    parser.add_argument(
        "--duration", type=_seconds, metavar="SECONDS",
        help="stop after this long (default: run until SIGINT or SIGTERM)",
    )


def _impairments(args: argparse.Namespace) -> tuple[Impairment, Impairment]:
    """Both directions' impairments; a ValueError names the option at fault."""
    items = {}
    for option in ("both", "up", "down"):
        text = getattr(args, option)
        if text is not None:
            try:
                items[option] = parse_items(text)
            except ValueError as exc:
                raise ValueError(f"--{option}: {exc}") from None
    directions = []
    for direction in ("up", "down"):
        try:
            directions.append(impairment_from(items.get("both", {}), items.get(direction, {})))
        except ValueError as exc:
            raise ValueError(f"{direction}: {exc}") from None
    return directions[0], directions[1]


async def run(args: argparse.Namespace) -> int:
    """Relay until a signal or ``--duration``; 0 when done, 2 for a bad spec, 1 if sockets fail."""
    try:
        up, down = _impairments(args)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    (listen_host, listen_port), (target_host, target_port) = args.listen, args.target
    try:
        relay = await start_relay(
            listen_host, listen_port, target_host, target_port, up, down, args.seed, shared=args.shared
        )
    except OSError as exc:
        print(
            f"{PROG}: error: cannot relay {format_address(args.listen)} -> "
            f"{format_address(args.target)}: {exc}",
            file=sys.stderr,
        )
        return EXIT_RUNTIME_ERROR
    stop = asyncio.Event()
    try:
        # SIGINT/SIGTERM end the run with a summary, not a trace. Installed before the first
        # line: a script that reads it and then signals must find the handlers in place. Where
        # they cannot be installed (Windows, not the main thread) only --duration ends a run cleanly.
        with on_signals(stop.set):
            print(f"relaying {format_address(relay.address)} -> {format_address(args.target)}", flush=True)
            print(f"up: {format_spec(up)}")
            print(f"down: {format_spec(down)}", flush=True)
            if relay.socket_buffer_bytes < SOCKET_BUFFER_BYTES:  # Linux reports twice what it grants
                print(
                    f"{PROG}: note: the kernel granted {relay.socket_buffer_bytes} octets of socket "
                    "buffer, not 4 MiB (raise net.core.rmem_max/wmem_max); bursts may be lost before "
                    "impairment",
                    file=sys.stderr,
                )
            if args.duration is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.duration)
    finally:
        relay.close()
        await relay.wait_closed()
    print(relay.summary(), flush=True)
    return EXIT_OK
