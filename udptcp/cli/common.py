"""What every ``udptcp`` command shares: options, the configuration, exit codes, stdio."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import queue
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Coroutine
from dataclasses import fields
from typing import Any

from udptcp import lifetime, tls
from udptcp.addresses import format_address
from udptcp.config import Config
from udptcp.loops import LOOP_CHOICES
from udptcp.server import Server
from udptcp.signals import STOP_SIGNALS, on_signals

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_TIMED_OUT = 4
EXIT_RESET = 5
EXIT_INTERRUPTED = 130

CLIENT_MSL_S = 1.0
"""Client commands default to a 1 s MSL (TIME_WAIT 2 s) so that they exit promptly."""
SERVER_SHUTDOWN_LINGER_S = 2.0
"""How long a server command, when stopped, waits for connections in TIME_WAIT."""
CLI_KEEPALIVE_S = 60.0
CLI_KEEPALIVE_INTERVAL_S = 10.0
CLI_KEEPALIVE_PROBES = 6
"""Commands probe a peer silent for 60 s, with nothing of theirs outstanding, and give up
after six unanswered probes 10 s apart (two minutes in all): a side that only receives would
otherwise wait forever for a peer that was killed, and an outage shorter than that is survived."""
READ_CHUNK_BYTES = 256 * 1024
"""How much a command reads from a connection at a time."""
STDIN_CHUNK_BYTES = 256 * 1024
STDIN_QUEUE_CHUNKS = 4


def add_common_options(parser: argparse.ArgumentParser, *, client: bool) -> None:
    """--msl, --mss, --log-level, --log-json, --trace, --pcap, --loop and -o KEY=VALUE."""
    default_msl = CLIENT_MSL_S if client else Config().msl_s
    parser.add_argument(
        "--msl", type=float, default=None, metavar="SECONDS",
        help=f"maximum segment lifetime; TIME_WAIT lasts twice this (default {default_msl} s)",
    )
    parser.add_argument(
        "--mss", type=int, default=None, metavar="OCTETS",
        help="segment size in octets, fixed (default: discovered, from 1380 up to what the path "
        "carries: 65447 on loopback)",
    )
    parser.add_argument(
        "--log-level", default="warning",
        choices=["trace", "debug", "info", "warning", "error"],
        help="log to standard error at this level; trace adds every segment (default warning)",
    )
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    parser.add_argument(
        "--trace", metavar="PATH",
        help="write each connection's trace (JSON lines, docs/TRACE.md) to this file, or to a "
        "file per connection in this directory; read it with 'udptcp trace'",
    )
    parser.add_argument(
        "--pcap", metavar="FILE", help="record every datagram as a UDP/IP packet in this pcap file",
    )
    add_loop_option(parser)
    parser.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE",
        help="any udptcp.Config option, e.g. -o rto_min_s=0.05 -o congestion_control=newreno",
    )
    parser.set_defaults(client=client)


def add_tls_options(parser: argparse.ArgumentParser, *, client: bool, server: bool) -> None:
    """--tls-cert/--tls-key (serving TLS), --tls/--tls-ca/--insecure (connecting with TLS)."""
    if server:
        parser.add_argument("--tls-cert", metavar="PEM", help="serve TLS 1.3 with this certificate "
                            "(and its chain; the key too, unless --tls-key)")
        parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    if client:
        parser.add_argument("--tls", action="store_true",
                            help="connect with TLS 1.3, the server's certificate checked against "
                            "the system's CAs and the host name given")
        parser.add_argument("--tls-ca", metavar="PEM", help="TLS, trusting the CAs in this file "
                            "instead of the system's (e.g. a private CA)")
        parser.add_argument("--insecure", action="store_true",
                            help="TLS without checking the server's certificate (encrypted, but "
                            "anyone in the path can pretend to be the server)")


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context --tls-cert/--tls-key ask for, or None (plain udptcp)."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if cert is None:
        if key is not None:
            raise ValueError("--tls-key needs --tls-cert")
        return None
    try:
        return tls.server_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load --tls-cert {cert!r}{f' / --tls-key {key!r}' if key else ''}: {exc}; "
                         "give a PEM certificate and its private key") from exc


def client_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context --tls/--tls-ca/--insecure ask for, or None (plain udptcp)."""
    cafile, insecure = getattr(args, "tls_ca", None), getattr(args, "insecure", False)
    if not (getattr(args, "tls", False) or cafile or insecure):
        return None
    if cafile and insecure:
        raise ValueError("--insecure checks no certificate: it makes --tls-ca pointless; give one")
    try:
        return tls.client_context(cafile, verify=not insecure)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load --tls-ca {cafile!r}: {exc}; give a file of PEM certificates") from exc


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    """--loop, for :func:`udptcp.loops.run`."""
    parser.add_argument(
        "--loop", default="auto", choices=LOOP_CHOICES,
        help="event loop: uvloop, or the stock asyncio loop (default auto: uvloop when installed)",
    )


def build_config(args: argparse.Namespace) -> Config:
    """The Config the command line asks for; ValueError/TypeError name the bad option."""
    options: dict[str, Any] = {
        "keepalive_s": CLI_KEEPALIVE_S,
        "keepalive_interval_s": CLI_KEEPALIVE_INTERVAL_S,
        "keepalive_probes": CLI_KEEPALIVE_PROBES,
    }
    if args.client:
        options["msl_s"] = CLIENT_MSL_S
    else:
        options["shutdown_linger_s"] = SERVER_SHUTDOWN_LINGER_S
    if args.msl is not None:
        options["msl_s"] = args.msl
    if args.mss is not None:
        options["mss"] = args.mss
    if args.trace is not None:
        options["trace"] = args.trace
    if args.pcap is not None:
        options["pcap"] = args.pcap
    types = {f.name: str(f.type) for f in fields(Config)}
    for item in args.option:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"-o takes KEY=VALUE, got {item!r}")
        if key not in types:
            Config().replace(**{key: raw})  # raises TypeError naming the unknown option
        options[key] = _parse_value(key, raw.strip(), types[key])
    return Config(**options)


def _parse_value(key: str, raw: str, annotation: str) -> Any:
    if raw.lower() == "none" and "None" in annotation:
        return None
    try:
        if annotation.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if annotation.startswith("int"):
            return int(raw)
        if annotation.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"option {key} expects {annotation}, got {raw!r}") from None
    return raw


async def reset_on_signals(work: Coroutine[Any, Any, int]) -> int:
    """Run a command that holds connections; SIGINT, SIGTERM or SIGHUP resets them and ends it.

    The kernel closes a dying process's TCP sockets, so a peer learns at once; a udptcp
    process holds its connections itself, so it resets them before it goes (exit 130).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    signalled = False

    def on_signal() -> None:
        nonlocal signalled
        signalled = True
        lifetime.abort_all(loop)
        task.cancel()

    with on_signals(on_signal, (*STOP_SIGNALS, signal.SIGHUP)):
        try:
            return await task
        except asyncio.CancelledError:
            if signalled:
                return EXIT_INTERRUPTED
            raise


def say(message: str, *, err: bool = False) -> None:
    """Print one line and flush (scripts wait on these lines)."""
    stream = sys.stderr if err else sys.stdout
    print(message, file=stream, flush=True)


def listening_line(server: Server) -> str:
    """``listening on HOST:PORT``: a server command's first line, which scripts wait for and parse."""
    return f"listening on {format_address(server.sockets[0].getsockname())}"


class StdinReader:
    """Standard input as chunks, read by a daemon thread: regular files cannot be polled, and a
    thread blocked on a terminal must not keep the process alive after the command is done.
    The queue is small, so the thread waits while the connection is slower than the input.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=STDIN_QUEUE_CHUNKS)
        threading.Thread(target=self._pump, name="udptcp-stdin", daemon=True).start()

    def _pump(self) -> None:
        fd = sys.stdin.fileno()
        while True:
            try:
                chunk = os.read(fd, STDIN_CHUNK_BYTES)
            except OSError:
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                return  # the loop is gone
            if not chunk:
                return

    async def read(self) -> bytes:
        """The next chunk; b"" once standard input has ended."""
        return await self._queue.get()


class StdoutWriter:
    """Standard output written by a daemon thread, one chunk at a time.

    Writing from the event loop would freeze the loop whenever the reader of our output is
    slower than the peer (a full pipe blocks), and with it every ACK and timer, until the
    peer gave up. Awaiting each write instead stops the relay from reading the connection,
    so its receive window closes and the peer waits, as TCP's flow control intends.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[bytes, asyncio.Future[None]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="udptcp-stdout", daemon=True).start()

    async def write(self, data: bytes) -> None:
        """Write ``data`` and flush; returns once it is written (raises if stdout is closed)."""
        done: asyncio.Future[None] = self._loop.create_future()
        self._jobs.put((data, done))
        await done

    def _run(self) -> None:
        out = sys.stdout.buffer
        while True:
            data, done = self._jobs.get()
            error: OSError | None = None
            try:
                out.write(data)
                out.flush()
            except OSError as exc:  # the reader went away (EPIPE)
                error = exc
            try:
                self._loop.call_soon_threadsafe(_settle, done, error)
            except RuntimeError:
                return  # the loop is gone


def _settle(done: asyncio.Future[None], error: OSError | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def exit_code_for(exc: BaseException, *, host: str | None = None) -> tuple[int, str]:
    """The exit code and one-line message for an error that ends a command.

    ``host`` is the address the command was given, named when it cannot be resolved: the
    resolver's own message ("Name or service not known") does not say which name it tried.
    """
    if isinstance(exc, socket.gaierror):
        name = "the host name" if host is None else f"host {host!r}"
        return EXIT_ERROR, (
            f"cannot resolve {name}: {exc.strerror or exc}; check the spelling and the DNS "
            "settings, or give an IP address"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):  # before ValueError: it is one too
        return EXIT_ERROR, (
            f"TLS: {exc.verify_message or exc}; give the CA that signed the server's certificate "
            "with --tls-ca, or connect by the name the certificate is for"
        )
    if isinstance(exc, ssl.SSLError):
        return EXIT_ERROR, f"TLS: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return EXIT_REFUSED, str(exc)
    if isinstance(exc, TimeoutError):
        return EXIT_TIMED_OUT, str(exc) or "timed out"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return EXIT_RESET, str(exc) or "connection reset"
    if isinstance(exc, ValueError | TypeError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OSError):
        return EXIT_ERROR, exc.strerror or str(exc)
    return EXIT_ERROR, f"{type(exc).__name__}: {exc}"
