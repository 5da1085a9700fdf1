"""``--workers N``: one port served by N processes, the kernel spreading new peers across them.

The first process binds N sockets to the address, each with SO_REUSEPORT (the first to the
port asked for, possibly 0, the others to the port it got), before any of them is read. It
serves on one and starts N-1 workers by running the same command again with the hidden
``--worker-fd FD``: each inherits one socket. Binding every socket before any connection
exists keeps the group whole: on Linux 6.13 and later, a socket that binds an IPv4 address
and port where a connected socket already is forms a group of its own with it, and takes
every new peer (the established ones stay where they are).

Each worker prints ``listening on H:P`` to the first process, which prints its own once every
worker has. Workers run in sessions of their own, so that Ctrl-C at a terminal reaches the
first process only; it stops them by closing their standard input, which is also what
happens when it dies, however it dies. Each connection has a socket of its own
(``start_server(reuse_port=True)``), so it stays with its worker whatever workers come or go.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable

import udptcp
from udptcp.addresses import format_address
from udptcp.cli.common import EXIT_ERROR, EXIT_OK, server_tls
from udptcp.config import Config
from udptcp.log import get_logger
from udptcp.server import Server, listening_socket, resolve_passive
from udptcp.streams import ClientConnectedCallback

WORKER_START_TIMEOUT_S = 20.0
"""How long a worker may take to say that it listens."""
WORKER_STOP_TIMEOUT_S = 30.0
"""How long a worker may take to stop (its graceful close) before it is killed."""
LIFELINE_READ_BYTES = 4096
WORKERS_HELP = (
    "serve from N processes sharing the port (SO_REUSEPORT): the kernel spreads new peers "
    "across them, and each connection stays with its process whatever processes join or leave. "
    "This process binds N sockets, then starts N-1 workers by running this same command again, "
    "each inheriting one socket; stopping it (SIGINT, SIGTERM) stops them all, and they stop "
    "by themselves if it dies. Log records carry the pid of the process that wrote them. "
    "--workers 1 serves from this process alone, on a port others may join "
    "(default: one process, no SO_REUSEPORT)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers N``, and the hidden ``--worker-fd`` a worker is started with."""
    parser.add_argument("--workers", type=_count, default=None, metavar="N", help=WORKERS_HELP)
    parser.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)


def in_group(args: argparse.Namespace) -> bool:
    """The command serves a port shared by SO_REUSEPORT: the first process, or a worker."""
    return getattr(args, "workers", None) is not None or getattr(args, "worker_fd", None) is not None


def is_worker(args: argparse.Namespace) -> bool:
    """This process was started by another one's ``--workers``."""
    return getattr(args, "worker_fd", None) is not None


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes, 1 or more, got {text!r}")
    return int(text)


async def listen(
    args: argparse.Namespace, handler: ClientConnectedCallback, config: Config,
    on_line: Callable[[str], object] = lambda line: None,
) -> tuple[Server, Workers | None]:
    """The command's server, and its workers if it is the first process of ``--workers N``.

    A worker serves the socket it inherited; the first process binds them all, serves its own
    and starts the workers (``on_line`` gets every line a worker prints after its first).
    Without ``--workers`` the server is the usual one, without SO_REUSEPORT.
    """
    context = server_tls(args)
    if args.worker_fd is not None:
        inherited = socket.socket(fileno=args.worker_fd)
        return await udptcp.start_server(
            handler, sock=inherited, reuse_port=True, ssl=context, config=config
        ), None
    if args.workers is None:
        return await udptcp.start_server(handler, args.host, args.port, ssl=context, config=config), None
    sockets = await _bind_group(args.host, args.port, args.workers, config)
    try:
        server = await udptcp.start_server(
            handler, sock=sockets[0], reuse_port=True, ssl=context, config=config
        )
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    try:
        workers = await Workers.start(args.argv, sockets[1:], on_line)
    except BaseException:
        server.close()
        await server.wait_closed()
        raise
    return server, workers


async def _bind_group(host: str, port: int, count: int, config: Config) -> list[socket.socket]:
    """``count`` sockets bound to one address and port, all with SO_REUSEPORT."""
    addresses = await resolve_passive(asyncio.get_running_loop(), host, port)
    if len(addresses) != 1:
        named = ", ".join(format_address(addr) for _, addr in addresses)
        raise ValueError(f"--workers needs one address to listen on; --host {host} names {named}")
    family, addr = addresses[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(listening_socket(family, addr, config, reuse_port=True))
            addr = sockets[-1].getsockname()  # port 0: the others take the port the first one got
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def stop_when_parent_gone(stop: asyncio.Event) -> None:
    """A worker's lifeline: set ``stop`` once standard input ends, as it does when the first
    process stops the worker or dies. A daemon thread waits for it: a pipe cannot be watched
    by every event loop, and the thread must not keep the worker alive."""
    loop = asyncio.get_running_loop()

    def wait_for_the_end() -> None:
        with contextlib.suppress(OSError):
            while os.read(sys.stdin.fileno(), LIFELINE_READ_BYTES):
                pass
        with contextlib.suppress(RuntimeError):  # the loop is gone: the worker has stopped anyway
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_the_end, name="udptcp-lifeline", daemon=True).start()


class Workers:
    """The worker processes of ``--workers N``, as the first process sees them."""

    def __init__(self, processes: list[asyncio.subprocess.Process], on_line: Callable[[str], object]) -> None:
        self._processes = processes
        self._on_line = on_line
        self._stopping = False
        self._log = get_logger()
        self._watchers = [asyncio.ensure_future(self._watch(process)) for process in processes]

    @classmethod
    async def start(
        cls, argv: list[str], sockets: list[socket.socket], on_line: Callable[[str], object]
    ) -> Workers:
        """Start one worker per socket, with the command line ``argv``; return once each listens.

        The sockets are closed here once handed over: a socket left open in this process
        would stay in the group, and the datagrams the kernel gave it would never be read.
        """
        processes: list[asyncio.subprocess.Process] = []
        try:
            for sock in sockets:
                fd = sock.fileno()
                processes.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "udptcp", *argv, "--worker-fd", str(fd),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    pass_fds=(fd,), start_new_session=True,
                ))
                sock.close()
            for process in processes:
                await _first_line(process)
        except BaseException:
            for sock in sockets:
                sock.close()
            await _end(processes)
            raise
        workers = cls(processes, on_line)
        for process in processes:
            workers._log.info("worker started", worker=process.pid)
        return workers

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        """Pass on the worker's lines; say so if it ends before it was told to."""
        assert process.stdout is not None
        while line := await process.stdout.readline():
            self._on_line(line.decode(errors="replace").strip())
        code = await process.wait()
        if not self._stopping:
            left = sum(1 for p in self._processes if p.returncode is None)
            self._log.warning("worker exited", worker=process.pid, code=code, workers_left=left)

    async def stop(self) -> int:
        """Tell every worker to stop, wait (bounded) until they have; EXIT_OK if all exited 0."""
        self._stopping = True
        for process in self._processes:
            if process.stdin is not None:
                process.stdin.close()
        try:
            await asyncio.wait_for(asyncio.gather(*self._watchers), WORKER_STOP_TIMEOUT_S)
        except TimeoutError:
            await _end(self._processes)
        failed = {p.pid: p.returncode for p in self._processes if p.returncode != 0}
        if failed:
            self._log.error("workers failed", exit_codes=failed)
            return EXIT_ERROR
        return EXIT_OK


async def _first_line(process: asyncio.subprocess.Process) -> None:
    """Wait for a worker's ``listening on`` line; an error names the worker if it does not come."""
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), WORKER_START_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(
            f"worker {process.pid} did not say it listens within {WORKER_START_TIMEOUT_S} s"
        ) from None
    if not line:
        code = await process.wait()
        raise RuntimeError(f"worker {process.pid} did not start (exit code {code}); its error is above")
    if not line.startswith(b"listening on "):
        raise RuntimeError(f"worker {process.pid} said {line.decode(errors='replace').strip()!r} "
                           "instead of where it listens")


async def _end(processes: list[asyncio.subprocess.Process]) -> None:
    """Kill the workers still running, and reap them."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
