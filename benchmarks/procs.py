"""Child processes of the benchmarks, and the two stdout lines every one of them speaks.

Every transfer runs between OS processes (server, client and, on an impaired path, a relay) so
that its two ends never share an interpreter, a GIL or an event loop. A child is started in its
own process group (``udptcp bench`` starts children of its own), every wait on it has a
deadline, and however a run ends the whole group is killed. Its stderr goes to a file that is
read only to explain a failure (its tail goes into the error message).

The line protocol, the same for the peers of ``benchmarks.peers`` and for udptcp's CLI:

- the first stdout line of a server is ``listening on HOST:PORT`` (what ``udptcp bench --role
  server`` and ``udptcp echo-server`` print; the harness starts a client only after it);
- the last stdout line that starts with ``{`` is the process's result, one JSON object (what
  ``udptcp bench --json`` prints).

The ``udptcp netem`` relay announces itself with its own first line, ``relaying HOST:PORT ->
HOST:PORT``; :meth:`Child.port` reads both, given the prefix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

HOST = "127.0.0.1"
"""Loopback only: the benchmarks never send a datagram off this machine."""
ROOT = Path(__file__).resolve().parent.parent
"""The repository: children run there, so that ``python -m benchmarks.peers.<peer>`` imports."""
LISTENING = "listening on "
RELAYING = "relaying "
START_TIMEOUT_S = 20.0
"""Longest wait for a child's first line (on top of the run's own deadline)."""
EXIT_WAIT_S = 5.0
STDERR_TAIL_CHARS = 600
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PROGRESS_LINE = re.compile(r"[\d.]+ / [\d.]+ MB\s+[\d.]+ MB/s")
"""``udptcp bench``'s progress line (acknowledged / total MB, rate); a tail keeps only the last."""

JsonDict = dict[str, Any]


class RunError(Exception):
    """One run did not produce a result (crash, timeout, bad reply); the benchmark goes on."""


RUN_FAILURES = (RunError, OSError, ValueError, KeyError, TypeError)
"""What a failed run raises: the harness reports it and measures the next one."""


def announce_listening(port: int) -> None:
    """A server's first stdout line: the harness starts the client only after it."""
    print(f"{LISTENING}{HOST}:{port}", flush=True)


def print_result(result: JsonDict) -> None:
    """A process's last stdout line: its result as one JSON object."""
    print(json.dumps(result), flush=True)


def last_json(out: str, who: str) -> JsonDict:
    """The result line in ``out`` (the last line that is a JSON object)."""
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RunError(f"the {who} printed no result: {out[-300:]!r}")
    result: JsonDict = json.loads(lines[-1])
    return result


class Child:
    """One child process: stdout read by line (bounded), stderr kept in a file for errors."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.started = time.monotonic()
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._err, cwd=ROOT,
                                     start_new_session=True,
                                     env=None if env is None else {**os.environ, **env})
        self._buffered = b""

    def first_line(self, deadline: float) -> str:
        """The first stdout line, waited for until ``deadline`` at most."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffered:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunError(f"{self.name} did not start in time; stderr: {self.stderr_tail()}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RunError(f"{self.name} exited before starting; stderr: {self.stderr_tail()}")
                self._buffered += chunk
        line, _, self._buffered = self._buffered.partition(b"\n")
        return line.decode(errors="replace").strip()

    def port(self, prefix: str, deadline: float) -> int:
        """The port of the ``HOST:PORT`` after ``prefix`` in the first line (``listening on H:P``)."""
        line = self.first_line(min(deadline, time.monotonic() + START_TIMEOUT_S))
        if not line.startswith(prefix):
            raise RunError(f"{self.name} said {line!r}, not {prefix!r}...; stderr: {self.stderr_tail()}")
        return int(line.removeprefix(prefix).split()[0].rsplit(":", 1)[-1])

    def output(self, deadline: float) -> str:
        """The rest of stdout once the child exits; RunError if it does not by ``deadline``."""
        try:
            out, _ = self.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RunError(f"{self.name} timed out; stderr: {self.stderr_tail()}") from None
        return (self._buffered + out).decode(errors="replace")

    def result(self, deadline: float) -> JsonDict:
        """The child's JSON result, once it has exited with status 0 (else RunError)."""
        out = self.output(deadline)
        if self.proc.returncode != 0:
            raise RunError(f"{self.name} exited with {self.proc.returncode}: {self.stderr_tail()}")
        return last_json(out, self.name)

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system, from /proc) so far; None once it is gone."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime + stime

    def cpu_share(self) -> float | None:
        """CPU seconds so far over the time since start; None once it is gone."""
        cpu_s = self.cpu_seconds()
        wall_s = time.monotonic() - self.started
        return cpu_s / wall_s if cpu_s is not None and wall_s > 0 else None

    def stderr_tail(self) -> str:
        """The end of what the child wrote to stderr, on one line."""
        self._err.seek(0)
        text = self._err.read().decode(errors="replace").replace("\r", "\n")  # progress lines use \r
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        progress = [i for i, line in enumerate(lines) if PROGRESS_LINE.fullmatch(line)]
        lines = [line for i, line in enumerate(lines) if i not in progress[:-1]]  # only the last one
        return " | ".join(lines)[-STDERR_TAIL_CHARS:] if lines else "(no stderr)"

    def stop(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the child's whole process group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        """Kill the group (if still there), reap the child, release its pipes."""
        self.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=EXIT_WAIT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


class Group:
    """The children of one run; leaving the ``with`` block kills and reaps every one of them."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        """Start a child (with these variables added to the environment, if any)."""
        child = Child(name, argv, env)
        self.children.append(child)
        return child

    def __enter__(self) -> Group:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for child in self.children:
            child.close()
