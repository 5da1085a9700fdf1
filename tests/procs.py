"""Helpers to run udptcp commands as real OS processes over loopback, with timeouts.

Nothing here sleeps to synchronise: servers are ready when they print their first line,
and every wait has a bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

UDPTCP = [sys.executable, "-m", "udptcp"]
START_TIMEOUT_S = 20.0
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def first_line(stream: IO[str], proc: subprocess.Popen[str], what: str) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    if not sel.select(START_TIMEOUT_S):
        proc.kill()
        raise AssertionError(f"{what} printed nothing within {START_TIMEOUT_S} s")
    line = stream.readline().strip()
    if not line:
        proc.wait(5)
        raise AssertionError(f"{what} exited ({proc.returncode}) without its first line")
    return line


def _stop(proc: subprocess.Popen[str]) -> None:
    """Terminate ``proc`` if it still runs; kill it if it does not exit within 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def server(args: Sequence[str], *, stderr: Any = subprocess.PIPE, stdin: Any = subprocess.DEVNULL,
           stdout: Any = subprocess.PIPE, first_line_on_stderr: bool = False
           ) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """Start ``udptcp ARGS``; yield (process, host, port) once it says where it listens."""
    proc = subprocess.Popen([*UDPTCP, *args], stdin=stdin, stdout=stdout, stderr=stderr,
                            text=True, env=ENV)
    try:
        stream = proc.stderr if first_line_on_stderr else proc.stdout
        assert stream is not None
        line = first_line(stream, proc, f"udptcp {args[0]}")
        assert line.startswith("listening on "), line
        host, port = line.removeprefix("listening on ").rsplit(":", 1)
        yield proc, host, int(port)
    finally:
        _stop(proc)


@contextmanager
def relay(target_port: int, *specs: str, seed: int = 1) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start ``udptcp netem`` in front of ``target_port``; yield (process, front port)."""
    proc = subprocess.Popen(
        [*UDPTCP, "netem", "--listen", "127.0.0.1:0", "--target", f"127.0.0.1:{target_port}",
         "--seed", str(seed), *specs],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    try:
        assert proc.stdout is not None
        line = first_line(proc.stdout, proc, "udptcp netem")
        assert line.startswith("relaying "), line
        front = line.split()[1]
        yield proc, int(front.rsplit(":", 1)[1])
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


TUNNEL_QUICK = ["--msl", "0.1", "-o", "rto_min_s=0.05"]
"""Both tunnel sides in the tests: a short TIME_WAIT (stopping waits for it), quick retransmissions."""


@contextmanager
def tunnel(target_port: int, loop: str, *options: str, host: str = "127.0.0.1",
           server_options: Sequence[str] = (), client_options: Sequence[str] = (),
           ) -> Iterator[tuple[subprocess.Popen[str], subprocess.Popen[str], int]]:
    """A tunnel server in front of ``target_port`` and a tunnel client in front of it, all on
    ``host``; yields (client process, server process, the client's TCP port)."""
    common = ["--loop", loop, *TUNNEL_QUICK, *options]
    at = f"[{host}]" if ":" in host else host
    with server(["tunnel", "server", "--listen", f"{at}:0", "--to", f"{at}:{target_port}",
                 *common, *server_options]) as (far, _, far_port), \
         server(["tunnel", "client", "--listen", f"{at}:0", "--to", f"{at}:{far_port}",
                 *common, *client_options]) as (near, _, near_port):
        yield near, far, near_port


def summary(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then the summary line the tunnel prints as it stops (its last stdout line)."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


def run(args: Sequence[str], *, timeout: float = 60.0, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``udptcp ARGS`` to completion."""
    return subprocess.run([*UDPTCP, *args], timeout=timeout, env=ENV, check=False, **kwargs)


def json_log(text: str) -> list[dict[str, Any]]:
    """The JSON records of a ``--log-json`` standard error."""
    records = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def free_udp_port() -> int:
    """A UDP port nothing listens on (closed again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PROGRAMS = Path(__file__).parent / "programs"


@contextmanager
def program(name: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``tests/programs/NAME ARGS``; yield (process, its first line of output)."""
    proc = subprocess.Popen([sys.executable, str(PROGRAMS / name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        yield proc, first_line(proc.stdout, proc, name)
    finally:
        _stop(proc)


class StderrLog:
    """A process's standard error, read by a thread as it comes (a full pipe would stop the
    process), its ``--log-json`` records kept for the test to wait on, with a bound."""

    def __init__(self, stream: IO[str]) -> None:
        self.records: list[dict[str, Any]] = []
        self.text: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.text.append(line)
                if line.startswith("{"):
                    self.records.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], count: int = 1,
                 timeout_s: float = START_TIMEOUT_S) -> list[dict[str, Any]]:
        """The records for which ``wanted`` holds, once there are ``count`` (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = [record for record in self.records if wanted(record)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    raise AssertionError(f"no such log record within {timeout_s} s:\n{''.join(self.text)}")
                self._changed.wait(remaining)


def wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    """Wait until process ``pid`` (not necessarily our child) has exited: its pidfd turns readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)
    assert readable, f"process {pid} still runs after {timeout_s} s"
