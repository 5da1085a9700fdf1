"""The ``udptcp`` command: echo server and client, netcat, the tunnel, the netem relay, the benchmark.

Exit codes, for scripts: 0 success, 1 other error, 2 bad usage, 3 connection refused,
4 timed out, 5 connection reset, 130 interrupted.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import udptcp
from udptcp import log, loops
from udptcp.cli import bench, echo, netcat, trace, tunnel, workers
from udptcp.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    add_common_options,
    add_loop_option,
    add_tls_options,
    exit_code_for,
    reset_on_signals,
)
from udptcp.corebuild import core_build
from udptcp.netem import cli as netem_cli
from udptcp.netem.spec import SPEC_HELP
from udptcp.udpsocket import io_path_here

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


class _Version(argparse.Action):
    """``--version``: what runs here, worked out only when asked (it opens a socket)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"udptcp {udptcp.__version__}")
        print(f"core: {core_build()}")
        print(f"I/O: {io_path_here()} where the event loop can watch sockets")
        print(f"Python {platform.python_version()}, {loops.describe_available()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="udptcp",
        description="A TCP-like reliable byte stream over UDP.",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 refused, 4 timed out, 5 reset, 130 interrupted",
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version, the core build and the I/O path, then exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("echo-server", help="echo every connection's bytes back")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free one)")
    workers.add_arguments(p)
    add_common_options(p, client=False)
    add_tls_options(p, client=False, server=True)
    p.set_defaults(run=echo.serve)

    p = sub.add_parser("echo-client", help="send a message or stdin, print the echo")
    p.add_argument("host", help="the echo server's host name or IP address")
    p.add_argument("port", type=int, help="the echo server's port")
    p.add_argument("message", nargs="?", help="what to send (default: standard input)")
    add_common_options(p, client=True)
    add_tls_options(p, client=True, server=False)
    p.set_defaults(run=echo.client, resets_on_signal=True)

    p = sub.add_parser("listen", help="accept one connection: peer to stdout, stdin to peer")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("port", type=int, help="port to listen on; 0 picks a free one")
    add_common_options(p, client=False)
    add_tls_options(p, client=False, server=True)
    p.set_defaults(run=netcat.listen, resets_on_signal=True)

    p = sub.add_parser("connect", help="connect: stdin to peer, peer to stdout")
    p.add_argument("host", help="the server's host name or IP address (e.g. of udptcp listen)")
    p.add_argument("port", type=int, help="the server's port")
    add_common_options(p, client=True)
    add_tls_options(p, client=True, server=False)
    p.set_defaults(run=netcat.connect, resets_on_signal=True)

    p = sub.add_parser(
        "netem", help="a UDP relay that impairs traffic per direction",
        epilog=SPEC_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    netem_cli.add_arguments(p)
    p.add_argument("--log-level", default="warning", help=argparse.SUPPRESS)
    p.add_argument("--log-json", action="store_true", help=argparse.SUPPRESS)
    add_loop_option(p)
    p.set_defaults(run=netem_cli.run)

    p = sub.add_parser("bench", help="measure bulk throughput between two processes")
    bench.add_arguments(p)
    workers.add_arguments(p)
    add_common_options(p, client=True)
    add_tls_options(p, client=True, server=True)
    p.set_defaults(run=bench.run)

    tunnel.add_parsers(sub)

    p = sub.add_parser("trace", help="draw or summarise traces written with --trace")
    trace.add_arguments(p)
    p.add_argument("--log-level", default="warning", help=argparse.SUPPRESS)
    p.add_argument("--log-json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--loop", default="auto", help=argparse.SUPPRESS)
    p.set_defaults(run=trace.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m udptcp``."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --workers runs again
    try:
        log.configure(args.log_level, json=args.log_json, pid=workers.in_group(args))
    except ValueError as exc:
        print(f"udptcp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    command: Command = args.run

    def work() -> Coroutine[Any, Any, int]:
        """The command's coroutine, made only once its loop is chosen (see loops.run)."""
        if getattr(args, "resets_on_signal", False):
            return reset_on_signals(command(args))
        return command(args)

    try:
        code = loops.run(work, args.loop)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        code, message = exit_code_for(exc, host=getattr(args, "host", None))
        print(f"udptcp {args.command}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
