"""The impaired path of ``benchmarks.lossy``: its parameters, and the ``udptcp netem`` relay process.

The relay stands between sender and receiver (one-way delay RTT/2 per direction, random loss
per direction, a rate limit through a tail-drop queue of one bandwidth-delay product). Its exit
summary says what the network really did: random drops, tail drops at the bottleneck queue, and
datagrams it could not forward; :class:`RelayReport` keeps those counts with the run.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field

from benchmarks.procs import HOST, RELAYING, Group, RunError

RELAY_STOP_TIMEOUT_S = 10.0
MIN_QUEUE_BYTES = 30_000
ETHERNET_DATAGRAM_BYTES = 1472
"""The largest UDP payload of a 1500-octet Ethernet path (IPv4)."""


@dataclass(frozen=True)
class PathSpec:
    """One impaired path, the same in both directions (one-way delay = RTT / 2)."""

    rtt_ms: float
    loss_pct: float
    rate_mbit: float

    @property
    def bdp_bytes(self) -> int:
        """The bandwidth-delay product: what one round trip holds at the bottleneck's rate."""
        return round(self.rate_mbit * 1e6 / 8 * self.rtt_ms / 1000)

    @property
    def queue_bytes(self) -> int:
        """One bandwidth-delay product, at least 30 kB (so that short RTTs still absorb a burst)."""
        return max(MIN_QUEUE_BYTES, self.bdp_bytes)

    def netem(self) -> str:
        """The ``--both`` spec of ``udptcp netem``: the path also drops datagrams over an
        Ethernet MTU's UDP payload, so that path-MTU discovery finds what a real path carries
        (over loopback alone it would find 64 KiB datagrams)."""
        loss = f"loss={self.loss_pct:g}%," if self.loss_pct else ""
        return (f"delay={self.rtt_ms / 2:g}ms,{loss}rate={self.rate_mbit:g}mbit,queue={self.queue_bytes}b,"
                f"mtu={ETHERNET_DATAGRAM_BYTES}b")

    @property
    def label(self) -> str:
        return f"{self.rtt_ms:g} ms, {self.loss_pct:g} %"


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

    def __init__(self, group: Group, target_port: int, path: PathSpec, seed: int, loop: str, shared: bool,
                 deadline: float) -> None:
        argv = [sys.executable, "-m", "udptcp", "netem", "--loop", loop, "--listen", f"{HOST}:0",
                "--target", f"{HOST}:{target_port}", "--both", path.netem(), "--seed", str(seed)]
        if shared:
            argv.append("--shared")
        self.child = group.start("relay", argv)
        self.port = self.child.port(RELAYING, deadline)
        self.report: RelayReport | None = None

    def finish(self) -> RelayReport:
        """SIGTERM, then the summary (bounded; once): a relay that does not exit is killed, its
        summary lost."""
        if self.report is not None:
            return self.report
        self.report = report = RelayReport(cpu=self.child.cpu_share())
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
