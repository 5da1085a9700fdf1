"""Process plumbing shared by the benchmark's peers and by the orchestrator (``compare.py``).

Every peer runs as two OS processes (server and client), as the reference anchors did, so that
the two ends of a transfer never share an interpreter, a GIL or an event loop. A peer script
speaks a tiny line protocol on stdout: the server prints ``PORT <n>`` once it listens, and
each side prints one ``RESULT <json>`` line when it is done. Anything else (warnings,
tracebacks) goes to stderr, which the orchestrator keeps only to explain a failure.

Every wait here is bounded: a peer that hangs is killed (with its whole process group, since
``udptcp bench`` starts a server child of its own) and the run is reported as failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
"""Loopback only: the benchmark never sends a datagram off this machine."""
MB = 1_000_000
SOCKET_BUFFER_BYTES = 4 << 20
"""SO_RCVBUF/SO_SNDBUF for the UDP-based peers we drive ourselves (raw UDP, KCP): a full window
must fit in the receive queue or the stock loop, which reads one datagram per turn, drops."""
STDERR_TAIL_CHARS = 600

JsonDict = dict[str, Any]
PeerCoroutine = Callable[["PeerOptions"], Coroutine[Any, Any, JsonDict]]


class RunError(Exception):
    """One run did not produce a result (crash, timeout, bad reply); the benchmark goes on."""


# ----------------------------------------------------------------------------- peer side


@dataclass(frozen=True)
class PeerOptions:
    """What one peer process was asked to do; each peer reads only the fields it needs."""

    role: str
    loop: str
    port: int
    total_bytes: int
    datagram_size: int
    window: int
    seconds: float
    deadline_s: float


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process: what 'CPU of each side' is made of."""
    return time.process_time()


def announce_port(port: int) -> None:
    """Tell the orchestrator the server listens (it starts the client only after this)."""
    print(f"PORT {port}", flush=True)


def set_socket_buffers(transport: asyncio.BaseTransport, size: int = SOCKET_BUFFER_BYTES) -> tuple[int, int]:
    """Ask for ``size`` bytes of SO_RCVBUF and SO_SNDBUF; return what the kernel granted.

    Linux doubles the request for bookkeeping and caps it at net.core.[rw]mem_max, so the
    granted values are reported rather than assumed.
    """
    import socket

    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: recorded in every result to prove which loop really ran."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def peer_main(server: PeerCoroutine, client: PeerCoroutine) -> None:
    """Entry point of a peer script: parse the options, run one role on the chosen loop."""
    parser = argparse.ArgumentParser(description="one side of a benchmark transfer (internal)")
    parser.add_argument("--role", choices=["server", "client"], required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bytes", type=int, default=10 * MB, dest="total_bytes")
    parser.add_argument("--datagram-size", type=int, default=1400)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--deadline", type=float, default=60.0, dest="deadline_s")
    opts = PeerOptions(**vars(parser.parse_args()))
    role = server if opts.role == "server" else client

    async def bounded() -> JsonDict:
        # The orchestrator kills us anyway; this makes a stuck peer exit cleanly first.
        return await asyncio.wait_for(role(opts), opts.deadline_s)

    if opts.loop == "uvloop":
        import uvloop

        result: JsonDict = uvloop.run(bounded())
    else:
        result = asyncio.run(bounded())
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- orchestrator side


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child we started and anything it started (it leads its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _tail(err: IO[bytes]) -> str:
    err.seek(0)
    text = err.read().decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines)[-STDERR_TAIL_CHARS:] if lines else "(no stderr)"


def _results(stdout: bytes) -> list[JsonDict]:
    found: list[JsonDict] = []
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("RESULT "):
            found.append(json.loads(line[len("RESULT "):]))
    return found


def _read_port(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, bytes]:
    """Wait (bounded) for the server's ``PORT`` line; return the port and any bytes read past it."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffered = b""
    while b"\n" not in buffered:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunError("the server did not announce its port in time")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RunError("the server exited before listening")
        buffered += chunk
    line, _, rest = buffered.partition(b"\n")
    text = line.decode(errors="replace").strip()
    if not text.startswith("PORT "):
        raise RunError(f"the server said {text!r} instead of PORT")
    return int(text.split()[1]), rest


def run_pair(script: Path, loop: str, server_args: list[str], client_args: list[str],
             timeout_s: float) -> tuple[JsonDict, JsonDict]:
    """Run one transfer: server process, then client process; return (client, server) results.

    The whole run, server start-up included, must end within ``timeout_s``; after the client
    is done the server gets a short grace period to print its own result and exit.
    """
    deadline = time.monotonic() + timeout_s
    base = [sys.executable, str(script), "--loop", loop, "--deadline", f"{timeout_s:.1f}"]
    with tempfile.TemporaryFile() as server_err, tempfile.TemporaryFile() as client_err:
        server = subprocess.Popen([*base, "--role", "server", *server_args], stdout=subprocess.PIPE,
                                  stderr=server_err, start_new_session=True)
        client: subprocess.Popen[bytes] | None = None
        try:
            try:
                port, early = _read_port(server, deadline)
            except RunError as exc:
                raise RunError(f"{exc}; server stderr: {_tail(server_err)}") from None
            client = subprocess.Popen([*base, "--role", "client", "--port", str(port), *client_args],
                                      stdout=subprocess.PIPE, stderr=client_err, start_new_session=True)
            try:
                client_out, _ = client.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RunError(f"timed out after {timeout_s:g} s; client stderr: "
                                f"{_tail(client_err)}; server stderr: {_tail(server_err)}") from None
            if client.returncode != 0:
                raise RunError(f"client exited with {client.returncode}: {_tail(client_err)}")
            try:
                server_out, _ = server.communicate(timeout=max(3.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RunError(f"the server did not finish; server stderr: {_tail(server_err)}") from None
            client_results, server_results = _results(client_out), _results(early + server_out)
            if not client_results:
                raise RunError(f"the client printed no result: {_tail(client_err)}")
            if not server_results:
                raise RunError(f"the server printed no result: {_tail(server_err)}")
            return client_results[-1], server_results[-1]
        finally:
            if client is not None:
                _kill_group(client)
            _kill_group(server)


def run_command(argv: list[str], timeout_s: float, cwd: Path | None = None) -> str:
    """Run a self-contained benchmark command (``udptcp bench``) bounded in time; return stdout."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=cwd, start_new_session=True)
        try:
            try:
                out, _ = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise RunError(f"timed out after {timeout_s:g} s: {_tail(err)}") from None
            if proc.returncode != 0:
                raise RunError(f"exited with {proc.returncode}: {_tail(err)}")
            return out.decode(errors="replace")
        finally:
            _kill_group(proc)
