"""``udptcp tunnel server`` and ``udptcp tunnel client``: unmodified TCP programs over udptcp.

::

    TCP program -> tunnel client --(udptcp)--> tunnel server -> TCP server
                  (TCP in, udptcp out)        (udptcp in, TCP out)

Every TCP connection is one udptcp connection (the relay is :mod:`udptcp.tunnel`). The first
stdout line is ``listening on HOST:PORT``; on SIGINT or SIGTERM the tunnel stops accepting,
lets its relays finish for a moment, resets the rest and prints a summary line.
"""

from __future__ import annotations

import argparse
import asyncio

from udptcp.addresses import format_address, parse_address
from udptcp.cli.common import (
    EXIT_OK,
    add_common_options,
    add_tls_options,
    build_config,
    client_tls,
    say,
    server_tls,
)
from udptcp.signals import on_signals
from udptcp.tunnel import Carrier, Tunnel, tcp_carrier, udptcp_carrier

CARRIERS = ("udptcp", "tcp")
"""What the udptcp hop can be carried by: ``tcp`` serves only the benchmark, which measures
the same relay with kernel TCP on both hops."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``tunnel server`` and ``tunnel client`` under ``tunnel``."""
    parser = sub.add_parser(
        "tunnel", help="carry TCP connections over udptcp (a client and a server side)",
        description="Carry every TCP connection over a udptcp connection of its own: "
        "TCP program -> tunnel client -> (udptcp) -> tunnel server -> TCP server.",
    )
    sides = parser.add_subparsers(dest="side", metavar="SIDE", required=True,
                                  help="server (udptcp in, TCP out) or client (TCP in, udptcp out)")
    for side, client, what in (
        ("server", False, "accept udptcp connections, relay each to a TCP server"),
        ("client", True, "accept TCP connections, relay each over udptcp to a tunnel server"),
    ):
        p = sides.add_parser(side, help=what, description=what)
        p.add_argument("--listen", required=True, type=parse_address, metavar="HOST:PORT",
                       help="where to accept (port 0 picks a free one)")
        p.add_argument("--to", required=True, type=parse_address, metavar="HOST:PORT",
                       help="the TCP server" if side == "server" else "the tunnel server")
        p.add_argument("--carrier", choices=CARRIERS, default="udptcp", help=argparse.SUPPRESS)
        add_common_options(p, client=client)
        add_tls_options(p, client=client, server=not client)
        p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Relay until SIGINT or SIGTERM, then stop and print what was carried."""
    hop_tls = client_tls(args) if args.side == "client" else server_tls(args)
    hop = (
        udptcp_carrier(build_config(args), ssl=hop_tls) if args.carrier == "udptcp"
        else tcp_carrier(ssl=hop_tls)
    )
    tunnel = Tunnel(*carriers_for(args.side, hop), args.to)
    args.host = args.listen[0]  # what main() names if it cannot be resolved
    stop = asyncio.Event()
    with on_signals(stop.set):  # before the first line: a script may signal as soon as it reads it
        server = await tunnel.listen(*args.listen)
        say(f"listening on {format_address(server.sockets[0].getsockname())}")
        await stop.wait()
    await tunnel.stop()
    say(f"tunnel {args.side}: {tunnel.stats.summary()}")
    return EXIT_OK


def carriers_for(side: str, hop: Carrier) -> tuple[Carrier, Carrier]:
    """(inbound, outbound) of a side: the server accepts the hop, the client dials it."""
    kernel = tcp_carrier()
    return (hop, kernel) if side == "server" else (kernel, hop)
