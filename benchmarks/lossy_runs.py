"""The runs of ``benchmarks.lossy``: one flow of a peer through an impaired path, or udptcp flows
sharing one, each between a server, a ``udptcp netem`` relay and client(s) on 127.0.0.1.

Every goodput is what reached the receiver over the time it took, so that a capped run and a
complete one mean the same thing:

- udptcp: ``python -m udptcp bench --role server`` and ``--role client --port RELAY --json
  --time-limit T``. A complete run reports the server's byte count over its first-to-last-byte
  time; a run still going at T reports what the receiver had acknowledged by then over T, and
  resets the connection (``goodput_mbit_s``).
- aioquic, KCP: the loopback peers (``benchmarks.peers.quic``, ``.kcp``) with ``--time-limit T``
  on the receiver, which reports what it got T seconds after its first byte (or everything, if
  that comes first); the harness then kills the sender.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.netem import PathSpec, Relay, RelayReport
from benchmarks.peers import MB
from benchmarks.peers.settings import Settings, encode
from benchmarks.procs import LISTENING, ROOT, RUN_FAILURES, Child, Group, JsonDict, RunError

CLIENT_GRACE_S = 5.0
"""After a complete transfer, how long the sender may take to get the reply and exit."""
SHARING_SIZE_MB = 100_000.0
"""Sharing runs end on time, never on size."""
UDPTCP_SOURCES = ROOT / "udptcp"


def source_fingerprint(package: Path = UDPTCP_SOURCES) -> str:
    """A short hash of a package's ``*.py`` files: which code a run measured.

    Why: others commit to udptcp while a 15-minute benchmark runs, and each run starts fresh
    processes, so one report can mix versions; this makes that visible without any git command."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(package.rglob("*.py")):
        with contextlib.suppress(OSError):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


@dataclass
class RunRecord:
    """What every run on a path keeps: the path, the CPU of its processes, what the relay did,
    and the reason it failed, if it did."""

    rtt_ms: float
    loss_pct: float
    rep: int
    cpu: dict[str, float | None] = field(default_factory=dict)
    relay: RelayReport | None = None
    error: str | None = None
    wall_s: float = 0.0
    udptcp_source: str = ""
    """Fingerprint of udptcp's sources when the run started (they may change while we measure)."""


@dataclass
class Outcome(RunRecord):
    """One flow of one peer on one path."""

    peer: str = ""
    goodput_mbit_s: float | None = None
    mb: float | None = None
    seconds: float | None = None
    time_limited: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Flow:
    """One flow of a sharing run."""

    label: str
    congestion_control: str
    goodput_mbit_s: float | None = None
    mb: float | None = None
    seconds: float | None = None
    retransmitted: int | None = None
    timeouts: int | None = None
    cpu_client: float | None = None
    error: str | None = None


@dataclass
class SharingOutcome(RunRecord):
    """Two (or more) udptcp flows through one shared bottleneck."""

    flows: list[Flow] = field(default_factory=list)


@dataclass(frozen=True)
class Setup:
    """What every run of an invocation shares."""

    size_mb: float
    time_limit_s: float
    timeout_s: float
    loop: str


class _Attempt:
    """The processes of one run and its deadline; the relay is kept so that a failed run can
    still say what the path did (did it drop everything? the queue?)."""

    def __init__(self, setup: Setup, path: PathSpec, seed: int) -> None:
        self.setup = setup
        self.path = path
        self.seed = seed
        self.started = time.monotonic()
        self.deadline = self.started + setup.timeout_s
        self.group = Group()
        self.relay: Relay | None = None

    def start_relay(self, server: Child, shared: bool = False) -> Relay:
        """A relay in front of ``server``, once the server listens."""
        port = server.port(LISTENING, self.deadline)
        self.relay = Relay(self.group, port, self.path, self.seed, self.setup.loop, shared, self.deadline)
        return self.relay


def _attempt(record: RunRecord, setup: Setup, path: PathSpec, seed: int,
             body: Callable[[_Attempt], None]) -> None:
    """Run ``body`` bounded in time; whatever happens, record the error and the relay's report,
    and kill every process of the run."""
    attempt = _Attempt(setup, path, seed)
    with attempt.group:
        try:
            body(attempt)
        except RUN_FAILURES as exc:
            record.error = str(exc) or type(exc).__name__
        if attempt.relay is not None:
            with contextlib.suppress(OSError):
                record.relay = attempt.relay.finish()
    record.wall_s = time.monotonic() - attempt.started


def _udptcp_server(attempt: _Attempt, connections: int, options: list[str]) -> Child:
    return attempt.group.start("udptcp server", [
        sys.executable, "-m", "udptcp", "bench", "--role", "server", "--loop", attempt.setup.loop,
        "--connections", str(connections), *options])


def _udptcp_client(attempt: _Attempt, port: int, size_mb: float, cc: str, name: str) -> Child:
    # Progress stays on (stderr): when a run times out, its last line says how far the transfer got.
    return attempt.group.start(name, [
        sys.executable, "-m", "udptcp", "bench", "--role", "client", "--port", str(port), "--json",
        "--size-mb", f"{size_mb:g}", "--time-limit", f"{attempt.setup.time_limit_s:g}",
        "--loop", attempt.setup.loop, "-o", f"congestion_control={cc}"])


def run_udptcp(setup: Setup, cc: str, path: PathSpec, seed: int, rep: int) -> Outcome:
    """One udptcp flow with congestion controller ``cc``."""
    outcome = Outcome(path.rtt_ms, path.loss_pct, rep, peer=f"udptcp-{cc}")

    def body(attempt: _Attempt) -> None:
        server = _udptcp_server(attempt, 1, ["-o", f"congestion_control={cc}"])
        relay = attempt.start_relay(server)
        r = _udptcp_client(attempt, relay.port, setup.size_mb, cc, "udptcp client").result(attempt.deadline)
        report = relay.finish()
        outcome.goodput_mbit_s = r["goodput_mbit_s"]
        outcome.mb, outcome.seconds = r["mb"], r["seconds"]
        outcome.time_limited = r["mb"] < setup.size_mb * (1 - 1e-9)
        outcome.cpu = {"client": r["cpu_client"], "server": r["cpu_server"], "relay": report.cpu}
        outcome.extra = {"retransmitted": r["retransmitted"], "timeouts": r["timeouts"], "mss": r["mss"]}

    _attempt(outcome, setup, path, seed, body)
    return outcome


def run_peer(setup: Setup, peer: str, module: str, settings: Settings, path: PathSpec, seed: int,
             rep: int) -> Outcome:
    """One flow of ``benchmarks.peers.<module>`` (aioquic, KCP), its receiver capped at the time limit."""
    outcome = Outcome(path.rtt_ms, path.loss_pct, rep, peer=peer)
    base = [sys.executable, "-m", f"benchmarks.peers.{module}", "--loop", setup.loop,
            "--bytes", str(int(setup.size_mb * MB)), "--deadline", f"{setup.timeout_s:.1f}",
            "--settings", encode(settings)]

    def body(attempt: _Attempt) -> None:
        server = attempt.group.start(f"{peer} receiver",
                                     [*base, "--role", "server", "--time-limit", f"{setup.time_limit_s:g}"])
        relay = attempt.start_relay(server)
        client = attempt.group.start(f"{peer} sender", [*base, "--role", "client", "--port", str(relay.port)])
        try:
            r = server.result(attempt.deadline)
        except RunError as exc:
            raise RunError(f"{exc}; sender stderr: {client.stderr_tail()}") from None
        client_cpu = client.cpu_share()
        if not r["time_limited"]:  # the sender gets the reply and reports its own CPU
            with contextlib.suppress(RunError):  # goodput is the receiver's; only this CPU figure is lost
                sent = client.result(time.monotonic() + CLIENT_GRACE_S)
                client_cpu = sent["cpu_s"] / sent["seconds"]
        client.stop()
        report = relay.finish()
        seconds = max(r["seconds"], 1e-9)
        outcome.goodput_mbit_s = r["bytes"] * 8 / 1e6 / seconds
        outcome.mb, outcome.seconds, outcome.time_limited = r["bytes"] / MB, r["seconds"], r["time_limited"]
        outcome.cpu = {"client": client_cpu, "server": r["cpu_s"] / seconds, "relay": report.cpu}
        outcome.extra = {k: r[k] for k in ("timer_fires", "rcvbuf") if k in r}
        outcome.extra["settings"] = settings.describe()

    _attempt(outcome, setup, path, seed, body)
    return outcome


def _flow(flow: Flow, result: JsonDict) -> None:
    flow.goodput_mbit_s, flow.mb, flow.seconds = result["goodput_mbit_s"], result["mb"], result["seconds"]
    flow.retransmitted, flow.timeouts = result["retransmitted"], result["timeouts"]
    flow.cpu_client = result["cpu_client"]


def run_sharing(setup: Setup, controllers: list[str], path: PathSpec, seed: int, rep: int) -> SharingOutcome:
    """udptcp flows, one per controller, started together through ONE shared bottleneck
    (``udptcp netem --shared``), each sending until the time limit."""
    outcome = SharingOutcome(path.rtt_ms, path.loss_pct, rep)

    def body(attempt: _Attempt) -> None:
        server = _udptcp_server(attempt, len(controllers), [])
        relay = attempt.start_relay(server, shared=True)
        clients = [_udptcp_client(attempt, relay.port, SHARING_SIZE_MB, cc, f"udptcp client {i + 1} ({cc})")
                   for i, cc in enumerate(controllers)]
        for i, (cc, client) in enumerate(zip(controllers, clients, strict=True)):
            flow = Flow(f"flow {i + 1}", cc)
            outcome.flows.append(flow)
            try:
                _flow(flow, client.result(attempt.deadline))
            except (RunError, ValueError) as exc:
                flow.error = str(exc)
        outcome.cpu = {"server": server.cpu_share()}
        outcome.cpu["relay"] = relay.finish().cpu
        failed = [f for f in outcome.flows if f.error]
        if failed:
            outcome.error = "; ".join(f"{f.label} ({f.congestion_control}): {f.error}" for f in failed)

    _attempt(outcome, setup, path, seed, body)
    return outcome
