"""What held a ``udptcp bench`` sender, from the trace machinery without a trace file.

A :class:`~udptcp.trace.recorder.ConnectionTracer` with nowhere to write only counts datagrams
and octets; :class:`LimitSampler` asks :func:`~udptcp.trace.recorder.sender_limit` what holds
the sender every few milliseconds (a timer, not the per-segment path), so the run is not slowed
measurably; :func:`explain` puts that beside the connection's counters.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from udptcp.trace.recorder import ConnectionTracer, sender_limit
from udptcp.transport import StreamTransport, clock

SAMPLE_INTERVAL_S = 0.005
IP_UDP_HEADER_BYTES = 28
"""IPv4 and UDP headers of each datagram (48 over IPv6), counted as wire bytes."""


class LimitSampler:
    """Samples what holds the sender of ``transport`` until stopped."""

    def __init__(self, transport: StreamTransport) -> None:
        self.transport = transport
        self.samples: Counter[str] = Counter()
        tracer = transport.tracer
        if tracer is None:
            tracer = transport.tracer = ConnectionTracer(
                transport.conn, cid=transport.cid, role="client", local=("", 0), peer=transport.peer,
                sink=None, pcap=None, now=clock(),
            )
        self.tracer = tracer
        self._handle: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._sample()

    def _sample(self) -> None:
        transport = self.transport
        self.samples[sender_limit(transport.conn, transport.outlet.writing_paused)] += 1
        self._handle = self._loop.call_later(SAMPLE_INTERVAL_S, self._sample)

    def stop(self) -> None:
        """No more samples."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def explain(sampler: LimitSampler, stats: dict[str, Any], delivered_bytes: int) -> list[str]:
    """The lines ``udptcp bench`` prints after its figures."""
    samples = sampler.samples
    total = sum(samples.values()) or 1
    ranked = ", ".join(f"{limit} {n / total:.0%}" for limit, n in samples.most_common() if n / total >= 0.005)
    held, _ = samples.most_common(1)[0] if samples else ("nothing", 0)
    tracer = sampler.tracer
    wire = (tracer.octets_sent + tracer.octets_received
            + IP_UDP_HEADER_BYTES * (tracer.datagrams_sent + tracer.datagrams_received))
    per_byte = wire / delivered_bytes if delivered_bytes else 0.0
    srtt = stats.get("srtt_s")
    min_rtt = stats.get("min_rtt_s")
    return [
        f"  held by      {held} most of the time ({ranked}; sampled every "
        f"{SAMPLE_INTERVAL_S * 1e3:.0f} ms)",
        f"  wire         {per_byte:.3f} bytes on the wire (both ways, with UDP/IP headers) per byte "
        f"delivered; {tracer.datagrams_sent:,} datagrams sent, {tracer.datagrams_received:,} received",
        f"  losses       {stats['retransmitted_segments']} retransmitted: RTO {stats['timeouts']}, "
        f"RACK/fast-recovery episodes {stats['loss_episodes']}, TLP {stats['tail_loss_probes']}, "
        f"fast retransmit {stats['fast_retransmits']}; spurious, undone {stats['spurious_undos']}",
        "  rtt          " + (f"min {min_rtt * 1e3:.2f} ms, smoothed {srtt * 1e3:.2f} ms"
                             if srtt is not None and min_rtt is not None else "no sample"),
    ]
