"""Several connections sharing one bottleneck, on the simulator's virtual clock.

The classic dumbbell: every sender's data goes through one rate-limited, tail-drop queue
(a single ``Path`` shared by all flows); each flow's ACKs come back on a path of its own.
Used to check that flows converge to a fair share.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from sim import App, _Delivery

from udptcp.config import Config
from udptcp.core import Connection, State
from udptcp.netem import Impairment, Path


@dataclass
class Flow:
    """One sender and its receiver; ``delivered`` samples its progress over time."""

    sender: App
    receiver: App
    back: Path
    samples: list[tuple[float, int]] = field(default_factory=list)


class Dumbbell:
    """N flows, one shared forward bottleneck, private return paths."""

    def __init__(self, configs: list[Config], *, rate_bps: float, rtt_s: float, queue_bytes: int,
                 loss: float = 0.0, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.now = 0.0
        self.bottleneck = Path(Impairment(rate_bps=rate_bps, queue_bytes=queue_bytes,
                                          delay_s=rtt_s / 2, loss=loss), random.Random(seed))
        self.flows: list[Flow] = []
        for config in configs:
            sender = App("client", Connection(config, isn=rng.getrandbits(32)))
            receiver = App("server", Connection(config, isn=rng.getrandbits(32)))
            receiver.conn.listen()
            back = Path(Impairment(delay_s=rtt_s / 2, loss=loss), random.Random(rng.getrandbits(64)))
            self.flows.append(Flow(sender, receiver, back))
        self._queue: list[_Delivery] = []
        self._order = 0

    def start(self, index: int, payload: bytes) -> None:
        """Open flow ``index`` now and have it send ``payload``."""
        flow = self.flows[index]
        flow.sender.to_send = payload
        flow.sender.conn.connect(self.now)
        self._flush()

    def _flush(self) -> None:
        for i, flow in enumerate(self.flows):
            for app, path, dest in ((flow.sender, self.bottleneck, "r"), (flow.receiver, flow.back, "s")):
                app.pump()
                while app.conn.next_event() is not None:
                    pass
                for data in app.conn.datagrams_to_send(self.now):
                    for at, copy in path.process(data, self.now):
                        self._order += 1
                        heapq.heappush(self._queue, _Delivery(at, self._order, f"{dest}{i}", copy))

    def run_until(self, end_s: float, sample_every_s: float = 0.1) -> None:
        """Advance to ``end_s``, recording each flow's delivered octets every interval."""
        next_sample = self.now
        while self.now < end_s:
            times = [self._queue[0].at] if self._queue else []
            for flow in self.flows:
                for app in (flow.sender, flow.receiver):
                    t = app.conn.get_timer()
                    if t is not None:
                        times.append(t)
            times.append(next_sample)
            self.now = max(self.now, min(*times, end_s))
            while self._queue and self._queue[0].at <= self.now:
                d = heapq.heappop(self._queue)
                flow = self.flows[int(d.dest[1:])]
                app = flow.receiver if d.dest[0] == "r" else flow.sender
                if app.conn.state is not State.CLOSED:
                    app.conn.receive_datagram(d.data, self.now)
            for flow in self.flows:
                for app in (flow.sender, flow.receiver):
                    t = app.conn.get_timer()
                    if t is not None and t <= self.now:
                        app.conn.handle_timer(self.now)
                flow.receiver.conn.next_event()
            self._collect()
            self._flush()
            if self.now >= next_sample:
                for flow in self.flows:
                    flow.samples.append((self.now, flow.receiver.conn.rx.rcv_nxt - flow.receiver.conn.rx.irs))
                next_sample += sample_every_s

    def _collect(self) -> None:
        for flow in self.flows:
            while flow.receiver.conn.next_event() is not None:
                pass

    def goodput_bps(self, index: int, start_s: float, end_s: float) -> float:
        """Flow ``index``'s delivered bits per second between two sample times."""
        samples = self.flows[index].samples
        first = min(samples, key=lambda s: abs(s[0] - start_s))
        last = min(samples, key=lambda s: abs(s[0] - end_s))
        return (last[1] - first[1]) * 8 / max(last[0] - first[0], 1e-9)


def jain_index(rates: list[float]) -> float:
    """Jain's fairness index: 1.0 when all are equal, 1/n when one takes everything."""
    total = sum(rates)
    return total * total / (len(rates) * sum(r * r for r in rates)) if total else 0.0
