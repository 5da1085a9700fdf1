"""One run of each kind for ``lossy.py``: a single flow of a peer, or two udptcp flows sharing a path.

Every run is server + ``udptcp netem`` relay + client(s), on 127.0.0.1, and every goodput is
what reached the receiver over the time it took, so that a capped run and a complete one mean
the same thing:

- udptcp: ``python -m udptcp bench --role server`` and ``--role client --port RELAY --json
  --time-limit T``. A complete run reports the server's byte count over its first-to-last-byte
  time; a run still going at T reports what the receiver had acknowledged by then over T, and
  resets the connection (``goodput_mbit_s``).
- aioquic, KCP: ``lossy_capped.py``: the loopback peers' senders, a receiver that reports what it
  got ``T`` seconds after its first byte (or everything, if that comes first).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import MB, RunError
from lossy_procs import START_TIMEOUT_S, Child, PathSpec, Relay, RelayReport

HERE = Path(__file__).resolve().parent
CLIENT_GRACE_S = 5.0
"""After a complete transfer, how long the sender may take to get the reply and exit."""
SHARING_SIZE_MB = 100_000.0
"""Sharing runs end on time, never on size."""


@dataclass
class Outcome:
    """One run of one peer on one path (or the reason there is no result)."""

    peer: str
    rtt_ms: float
    loss_pct: float
    rep: int
    goodput_mbit_s: float | None = None
    mb: float | None = None
    seconds: float | None = None
    time_limited: bool = False
    cpu: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    relay: RelayReport | None = None
    error: str | None = None
    wall_s: float = 0.0
    udptcp_source: str = ""
    """Fingerprint of udptcp's sources when the run started (they may change while we measure)."""


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
class SharingOutcome:
    """Two (or more) udptcp flows through one shared bottleneck."""

    rtt_ms: float
    loss_pct: float
    rep: int
    flows: list[Flow] = field(default_factory=list)
    cpu: dict[str, float | None] = field(default_factory=dict)
    relay: RelayReport | None = None
    error: str | None = None
    wall_s: float = 0.0
    udptcp_source: str = ""
    """Fingerprint of udptcp's sources when the run started (they may change while we measure)."""


@dataclass(frozen=True)
class Setup:
    """What every run of an invocation shares."""

    size_mb: float
    time_limit_s: float
    timeout_s: float
    loop: str


def _py(*args: str) -> list[str]:
    return [sys.executable, *args]


def _udptcp_server(setup: Setup, connections: int, options: list[str]) -> Child:
    return Child("udptcp server", _py("-m", "udptcp", "bench", "--role", "server", "--loop", setup.loop,
                                      "--connections", str(connections), *options))


def _udptcp_client(setup: Setup, port: int, size_mb: float, cc: str, name: str) -> Child:
    # Progress stays on (stderr): when a run times out, its last line says how far the transfer got.
    return Child(name, _py("-m", "udptcp", "bench", "--role", "client", "--port", str(port), "--json",
                           "--size-mb", f"{size_mb:g}", "--time-limit",
                           f"{setup.time_limit_s:g}", "--loop", setup.loop, "-o", f"congestion_control={cc}"))


def _bench_json(child: Child, deadline: float) -> dict[str, Any]:
    out = child.output(deadline)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.proc.returncode != 0 or not lines:
        raise RunError(f"{child.name} exited with {child.proc.returncode}: {child.stderr_tail()}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _relay_after_failure(relay: Relay | None, report: RelayReport | None) -> RelayReport | None:
    """What the relay saw in a failed run (did the path drop everything? the queue?), if not read yet."""
    if relay is None or report is not None:
        return report
    try:
        return relay.finish()
    except OSError:
        return None


def _close(children: list[Child], relay: Relay | None) -> None:
    for child in children:
        child.close()
    if relay is not None:
        relay.close()


def run_udptcp(setup: Setup, cc: str, path: PathSpec, seed: int, rep: int) -> Outcome:
    """One udptcp flow with congestion controller ``cc``."""
    outcome = Outcome(f"udptcp-{cc}", path.rtt_ms, path.loss_pct, rep)
    started = time.monotonic()
    deadline = started + setup.timeout_s
    children: list[Child] = []
    relay: Relay | None = None
    try:
        server = _udptcp_server(setup, 1, ["-o", f"congestion_control={cc}"])
        children.append(server)
        port = server.port("listening on ", min(deadline, started + START_TIMEOUT_S))
        relay = Relay(port, path, seed, setup.loop, shared=False, deadline=deadline)
        client = _udptcp_client(setup, relay.port, setup.size_mb, cc, "udptcp client")
        children.append(client)
        r = _bench_json(client, deadline)
        outcome.relay = relay.finish()
        outcome.goodput_mbit_s = r["goodput_mbit_s"]
        outcome.mb, outcome.seconds = r["mb"], r["seconds"]
        outcome.time_limited = r["mb"] < setup.size_mb * (1 - 1e-9)
        outcome.cpu = {"client": r["cpu_client"], "server": r["cpu_server"], "relay": outcome.relay.cpu}
        outcome.extra = {"retransmitted": r["retransmitted"], "timeouts": r["timeouts"], "mss": r["mss"]}
    except (RunError, OSError, ValueError, KeyError, TypeError) as exc:
        outcome.error = str(exc) or type(exc).__name__
        outcome.relay = _relay_after_failure(relay, outcome.relay)
    finally:
        _close(children, relay)
    outcome.wall_s = time.monotonic() - started
    return outcome


def _result_line(out: str, who: str) -> dict[str, Any]:
    found = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not found:
        raise RunError(f"the {who} printed no result")
    result: dict[str, Any] = json.loads(found[-1][len("RESULT "):])
    return result


def run_capped(setup: Setup, peer: str, path: PathSpec, seed: int, rep: int) -> Outcome:
    """One aioquic (``peer='aioquic'``) or KCP (``'kcp'``) flow, receiver capped at the time limit."""
    outcome = Outcome(peer, path.rtt_ms, path.loss_pct, rep)
    started = time.monotonic()
    deadline = started + setup.timeout_s
    total = int(setup.size_mb * MB)
    base = _py(str(HERE / "lossy_capped.py"), "quic" if peer == "aioquic" else "kcp", "--loop", setup.loop,
               "--bytes", str(total), "--deadline", f"{setup.timeout_s:.1f}")
    children: list[Child] = []
    relay: Relay | None = None
    try:
        server = Child(f"{peer} receiver",
                       [*base, "--role", "server", "--seconds", f"{setup.time_limit_s:g}"])
        children.append(server)
        port = server.port("PORT ", min(deadline, started + START_TIMEOUT_S))
        relay = Relay(port, path, seed, setup.loop, shared=False, deadline=deadline)
        client = Child(f"{peer} sender", [*base, "--role", "client", "--port", str(relay.port)])
        children.append(client)
        try:
            r = _result_line(server.output(deadline), "receiver")
        except RunError as exc:
            raise RunError(f"{exc}; sender stderr: {client.stderr_tail()}") from None
        client_cpu = client.cpu_share()
        if not r["time_limited"]:  # the sender gets the reply and reports its own CPU
            try:
                sent = _result_line(client.output(time.monotonic() + CLIENT_GRACE_S), "sender")
                client_cpu = sent["cpu_s"] / sent["seconds"]
            except RunError:
                pass  # goodput is the receiver's; only the sender's CPU figure is lost
        client.stop()
        outcome.relay = relay.finish()
        outcome.goodput_mbit_s = r["bytes"] * 8 / 1e6 / max(r["seconds"], 1e-9)
        outcome.mb, outcome.seconds, outcome.time_limited = r["bytes"] / MB, r["seconds"], r["time_limited"]
        outcome.cpu = {"client": client_cpu, "server": r["cpu_s"] / max(r["seconds"], 1e-9),
                       "relay": outcome.relay.cpu}
        outcome.extra = {k: r[k] for k in ("timer_fires", "rcvbuf") if k in r}
    except (RunError, OSError, ValueError, KeyError, TypeError) as exc:
        outcome.error = str(exc) or type(exc).__name__
        outcome.relay = _relay_after_failure(relay, outcome.relay)
    finally:
        _close(children, relay)
    outcome.wall_s = time.monotonic() - started
    return outcome


def run_sharing(setup: Setup, controllers: list[str], path: PathSpec, seed: int, rep: int) -> SharingOutcome:
    """udptcp flows, one per controller, started together through ONE shared bottleneck
    (``udptcp netem --shared``), each sending until the time limit."""
    outcome = SharingOutcome(path.rtt_ms, path.loss_pct, rep)
    started = time.monotonic()
    deadline = started + setup.timeout_s
    children: list[Child] = []
    relay: Relay | None = None
    try:
        server = _udptcp_server(setup, len(controllers), [])
        children.append(server)
        port = server.port("listening on ", min(deadline, started + START_TIMEOUT_S))
        relay = Relay(port, path, seed, setup.loop, shared=True, deadline=deadline)
        clients = [_udptcp_client(setup, relay.port, SHARING_SIZE_MB, cc, f"udptcp client {i + 1} ({cc})")
                   for i, cc in enumerate(controllers)]
        children += clients
        for i, (cc, client) in enumerate(zip(controllers, clients, strict=True)):
            flow = Flow(f"flow {i + 1}", cc)
            outcome.flows.append(flow)
            try:
                r = _bench_json(client, deadline)
            except (RunError, ValueError) as exc:
                flow.error = str(exc)
                continue
            flow.goodput_mbit_s, flow.mb, flow.seconds = r["goodput_mbit_s"], r["mb"], r["seconds"]
            flow.retransmitted, flow.timeouts = r["retransmitted"], r["timeouts"]
            flow.cpu_client = r["cpu_client"]
        outcome.cpu = {"server": server.cpu_share()}
        outcome.relay = relay.finish()
        outcome.cpu["relay"] = outcome.relay.cpu
        failed = [f for f in outcome.flows if f.error]
        if failed:
            outcome.error = "; ".join(f"{f.label} ({f.congestion_control}): {f.error}" for f in failed)
    except (RunError, OSError, ValueError, KeyError, TypeError) as exc:
        outcome.error = str(exc) or type(exc).__name__
        outcome.relay = _relay_after_failure(relay, outcome.relay)
    finally:
        _close(children, relay)
    outcome.wall_s = time.monotonic() - started
    return outcome
