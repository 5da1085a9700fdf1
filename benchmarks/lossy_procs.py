"""Process plumbing for ``lossy.py``: server, ``udptcp netem`` relay and client(s), all bounded in time.

Why not ``harness.run_pair``: a lossy run has a third process in the middle (the relay, whose
exit summary says what the network really did: random drops, tail drops at the bottleneck
queue, datagrams it could not send), sometimes two clients at once (the sharing runs), and a
receiver that may stop at a time limit while its sender is still busy. Every wait here has a
deadline; every child leads its own session and is killed with its group when the run ends,
however it ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness import HOST, RunError

STDERR_TAIL_CHARS = 400
PROGRESS_LINE = re.compile(r"[\d.]+ / [\d.]+ MB\s+[\d.]+ MB/s")
"""``udptcp bench``'s progress line: acknowledged / total MB, rate."""
START_TIMEOUT_S = 20.0
RELAY_STOP_TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIN_QUEUE_BYTES = 30_000


@dataclass(frozen=True)
class PathSpec:
    """One impaired path, the same in both directions (one-way delay = RTT / 2)."""

    rtt_ms: float
    loss_pct: float
    rate_mbit: float

    @property
    def queue_bytes(self) -> int:
        """One bandwidth-delay product, at least 30 kB (so that short RTTs still absorb a burst)."""
        return max(MIN_QUEUE_BYTES, round(self.rate_mbit * 1e6 / 8 * self.rtt_ms / 1000))

    def netem(self) -> str:
        """The ``--both`` spec of ``udptcp netem``."""
        loss = f"loss={self.loss_pct:g}%," if self.loss_pct else ""
        return f"delay={self.rtt_ms / 2:g}ms,{loss}rate={self.rate_mbit:g}mbit,queue={self.queue_bytes}b"

    @property
    def label(self) -> str:
        return f"{self.rtt_ms:g} ms, {self.loss_pct:g} %"


def source_fingerprint(package: Path) -> str:
    """A short hash of a package's ``*.py`` files: which code a run measured.

    Why: others commit to udptcp while a 15-minute benchmark runs, and each run starts fresh
    processes, so one report can mix versions; this makes that visible without any git command."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(package.rglob("*.py")):
        with contextlib.suppress(OSError):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


class Child:
    """One child process: stdout read line by line (bounded), stderr kept in a file for errors."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.started = time.monotonic()
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._err, start_new_session=True)
        self._buffered = b""

    def first_line(self, deadline: float) -> str:
        """The first stdout line (``PORT n``, ``listening on ...``, ``relaying ...``)."""
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
        """The port in the first line, which must start with ``prefix``."""
        line = self.first_line(deadline)
        if not line.startswith(prefix):
            raise RunError(f"{self.name} said {line!r}; stderr: {self.stderr_tail()}")
        return int(line.removeprefix(prefix).split()[0].rsplit(":", 1)[-1])

    def output(self, deadline: float) -> str:
        """The rest of stdout once the child exits; RunError if it does not by ``deadline``."""
        try:
            out, _ = self.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RunError(f"{self.name} timed out; stderr: {self.stderr_tail()}") from None
        return (self._buffered + out).decode(errors="replace")

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) so far, from /proc; None once the process is gone."""
        try:
            stat = open(f"/proc/{self.proc.pid}/stat").read()  # noqa: SIM115 - one read
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_share(self) -> float | None:
        """CPU seconds so far over the time since start (1.0 = one core busy all along)."""
        cpu = self.cpu_s()
        wall = time.monotonic() - self.started
        return cpu / wall if cpu is not None and wall > 0 else None

    def stderr_tail(self) -> str:
        self._err.seek(0)
        text = self._err.read().decode(errors="replace").replace("\r", "\n")  # progress lines use \r
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        progress = [i for i, line in enumerate(lines) if PROGRESS_LINE.fullmatch(line)]
        lines = [line for i, line in enumerate(lines) if i not in progress[:-1]]  # only the last one
        return " | ".join(lines)[-STDERR_TAIL_CHARS:] if lines else "(no stderr)"

    def stop(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the child's whole group (``udptcp bench`` may have children of its own)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


@dataclass
class RelayReport:
    """What the relay did, from its exit summary: per direction, the path model's counters
    (received, delivered, dropped_random, dropped_queue, ...) and the relay's own (sent,
    dropped_send_buffer, ...), plus its CPU share and any note it printed (e.g. small buffers)."""

    up: dict[str, int] = field(default_factory=dict)
    down: dict[str, int] = field(default_factory=dict)
    cpu: float | None = None
    notes: str = ""


def _counters(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in text.replace(";", ",").split(","):
        key, sep, value = item.strip().partition("=")
        if sep and value.strip().isdigit():
            found[key.strip()] = int(value)
    return found


def parse_summary(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """(up, down) counters from the relay's summary lines ``up (client -> server): a=1, ...; relay: ...``.

    The relay's delivery counters are prefixed ``relay_`` so that they cannot shadow the model's."""
    result: dict[str, dict[str, int]] = {"up": {}, "down": {}}
    for line in text.splitlines():
        direction = line.split(" ", 1)[0]
        if direction in result and " (" in line and "):" in line:
            body = line.split("):", 1)[1]
            model, _, relay = body.partition("; relay:")
            result[direction] = _counters(model) | {f"relay_{k}": v for k, v in _counters(relay).items()}
    return result["up"], result["down"]


class Relay:
    """A ``udptcp netem`` process in front of a server; :meth:`finish` stops it and reads its summary."""

    def __init__(self, target_port: int, path: PathSpec, seed: int, loop: str, shared: bool,
                 deadline: float) -> None:
        argv = [sys.executable, "-m", "udptcp", "netem", "--loop", loop, "--listen", f"{HOST}:0",
                "--target", f"{HOST}:{target_port}", "--both", path.netem(), "--seed", str(seed)]
        if shared:
            argv.append("--shared")
        self.child = Child("relay", argv)
        self.port = self.child.port("relaying ", min(deadline, time.monotonic() + START_TIMEOUT_S))

    def finish(self) -> RelayReport:
        """SIGTERM, then the summary (bounded); a relay that does not exit is killed, summary lost."""
        report = RelayReport(cpu=self.child.cpu_share())
        self.child.stop(signal.SIGTERM)
        try:
            out = self.child.output(time.monotonic() + RELAY_STOP_TIMEOUT_S)
        except RunError:
            report.notes = "the relay did not exit on SIGTERM; no summary"
            return report
        report.up, report.down = parse_summary(out)
        tail = self.child.stderr_tail()
        report.notes = "" if tail == "(no stderr)" else tail
        return report

    def close(self) -> None:
        self.child.close()
