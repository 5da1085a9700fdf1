"""``udptcp trace``: pictures and text from the traces that ``--trace`` (``trace=``) writes.

``ladder`` draws the textbook ladder diagram of a connection from one or both ends' traces;
``seq`` tcptrace's time-sequence graph; ``cwnd`` the congestion window and RTT over time;
``summary`` prints the figures. A file holding several connections draws the first unless
``--cid`` picks one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from udptcp.cli.common import EXIT_OK, say
from udptcp.trace.labels import NUMBERINGS
from udptcp.trace.model import Exchange, Side, load, load_sides
from udptcp.trace.schema import TraceError
from udptcp.trace.summary import render, summarize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The four subcommands and their options."""
    sub = parser.add_subparsers(dest="view", metavar="VIEW", required=True,
                                help="ladder, seq, cwnd or summary")
    p = sub.add_parser("ladder", help="the textbook ladder diagram of a connection (SVG, PNG, PDF)")
    p.add_argument("traces", nargs="+", metavar="TRACE", help="one or both ends' trace files")
    p.add_argument("-o", "--output", default="ladder.svg", help="the picture (default ladder.svg)")
    p.add_argument("--numbers", choices=NUMBERINGS, default="symbolic",
                   help="symbolic (seq=x, ack=y+1, as the textbook), relative (from 0 at each ISN) "
                   "or absolute (default symbolic)")
    p.add_argument("--expand", action="store_true", help="draw every data segment instead of bands")
    p.add_argument("--to-scale", action="store_true", help="time to scale instead of evenly spaced")
    _connection_option(p)
    for name, what in (("seq", "tcptrace's time-sequence graph of what a side sent"),
                       ("cwnd", "cwnd, bytes in flight, pacing rate and RTT over time")):
        p = sub.add_parser(name, help=what)
        p.add_argument("trace", metavar="TRACE", help="a trace file (the sending side's)")
        p.add_argument("-o", "--output", default=f"{name}.png", help=f"the picture (default {name}.png)")
        _connection_option(p)
    p = sub.add_parser("summary", help="handshake time, bytes, retransmissions by cause, RTT, limits")
    p.add_argument("traces", nargs="+", metavar="TRACE", help="trace files")


def _connection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cid", help="the connection to draw, by id (default: the first)")


def _pick_exchange(exchanges: list[Exchange], cid: str | None) -> Exchange:
    for exchange in exchanges:
        if cid is None or cid in (exchange.a.cid, exchange.b.cid if exchange.b else None):
            return exchange
    raise TraceError(f"no connection {cid!r} in these traces" if cid else "the traces hold no connection")


def _pick_side(sides: list[Side], cid: str | None) -> Side:
    for side in sides:
        if cid is None or side.cid == cid:
            return side
    raise TraceError(f"no connection {cid!r} in this trace" if cid else "the trace holds no connection")


async def run(args: argparse.Namespace) -> int:
    """Draw or print what was asked; a bad trace is a usage error naming the file and line."""
    if args.view == "summary":
        for side in load_sides(args.traces):
            say(render(summarize(side), side.source))
        return EXIT_OK
    output = Path(args.output)
    if args.view == "ladder":
        from udptcp.trace.ladder import draw  # noqa: PLC0415 - matplotlib, only here

        exchange = _pick_exchange(load(args.traces), args.cid)
        draw(exchange, output, numbering=args.numbers, expand=args.expand, to_scale=args.to_scale)
    else:
        from udptcp.trace.plots import draw_cwnd, draw_seq  # noqa: PLC0415

        side = _pick_side(load_sides([args.trace]), args.cid)
        (draw_seq if args.view == "seq" else draw_cwnd)(side, output)
    say(f"wrote {output}")
    return EXIT_OK
