"""A deterministic simulator: two connection cores, a seeded impaired network, a virtual clock.

Nothing here sleeps or touches a socket. Time jumps from one event (a delivery or a core's
timer) to the next, so a minute of protocol time costs milliseconds, and a seed reproduces a
run exactly.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from udptcp.config import Config
from udptcp.core import (
    CloseReason,
    Connection,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionTerminated,
    DataReceived,
    EofReceived,
    SendComplete,
    State,
    StateChanged,
    reset_for_unknown,
)
from udptcp.core.state import MAY_SEND, SYNCHRONIZED, WRITABLE
from udptcp.netem import Impairment, make_paths
from udptcp.wire import Segment

ETHERNET_DATAGRAM_BYTES = 1472
"""The largest UDP payload of a 1500-octet Ethernet interface (IPv4): the simulator's default."""
LOOPBACK_DATAGRAM_BYTES = 65507
"""The largest UDP payload of a loopback interface (IPv4)."""


@dataclass
class App:
    """One side's application: what it received and what happened to its connection."""

    name: str
    conn: Connection
    received: bytearray = field(default_factory=bytearray)
    established: bool = False
    eof: bool = False
    send_complete: bool = False
    failed: CloseReason | None = None
    terminated: bool = False
    transitions: list[tuple[State, State, str]] = field(default_factory=list)
    to_send: bytes = b""
    sent: int = 0
    write_limit: int = 1 << 62
    close_when_sent: bool = False
    shutdown_on_eof: bool = False

    def pump(self) -> None:
        """Write what remains while the connection's send buffer has room (like drain())."""
        conn = self.conn
        while self.sent < len(self.to_send) and conn.state in MAY_SEND:
            room = self.write_limit - conn.send_buffered
            if room <= 0:
                return
            chunk = self.to_send[self.sent : self.sent + room]
            conn.send(chunk)
            self.sent += len(chunk)
        if (
            self.close_when_sent
            and self.sent == len(self.to_send)
            and conn.state in WRITABLE & SYNCHRONIZED
        ):
            conn.shutdown()


@dataclass(order=True)
class _Delivery:
    at: float
    order: int
    dest: str = field(compare=False)
    data: bytes = field(compare=False)


class Sim:
    """A client and a server core joined by an impaired network."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        server_config: Config | None = None,
        up: Impairment | None = None,
        down: Impairment | None = None,
        seed: int = 0,
        client_isn: int | None = None,
        server_isn: int | None = None,
        listen: bool = True,
        interface_mtu_bytes: int = ETHERNET_DATAGRAM_BYTES,
    ) -> None:
        config = config or Config()
        rng = random.Random(seed)
        self.now = 0.0
        self.client = App("client", Connection(config, isn=_isn(rng, client_isn)))
        self.server = App(
            "server", Connection(server_config or config, isn=_isn(rng, server_isn))
        )
        if listen:
            self.server.conn.listen()
        self.up, self.down = make_paths(up or Impairment(), down or Impairment(), seed)
        self.interface_mtu_bytes = interface_mtu_bytes
        """The largest datagram either side's interface sends; larger ones are refused at once
        (EMSGSIZE), as a kernel does for a socket that sets the don't-fragment bit."""
        self.wire: list[tuple[float, str, Segment]] = []
        self.largest_datagram_bytes: dict[str, int] = {"client": 0, "server": 0}
        """The largest datagram each side sent, measured as sent (``wire`` holds decodes)."""
        self.lost_payload_bytes: dict[str, int] = {"client": 0, "server": 0}
        """Payload octets of each side's datagrams of which the network delivered no intact
        copy (dropped, or corrupted so that the checksum drops it)."""
        self._queue: list[_Delivery] = []
        self._order = 0
        self.drop_next: dict[str, int] = {"client": 0, "server": 0}
        self.intercept: Callable[[str, Segment], bool] | None = None
        self._drain_events(self.server)

    def peer(self, app: App) -> App:
        return self.server if app is self.client else self.client

    # -- driving ---------------------------------------------------------------------------

    def connect(self) -> None:
        self.client.conn.connect(self.now)
        self.flush()

    def flush(self) -> None:
        """Let both sides write, then send everything they have to send."""
        for app in (self.client, self.server):
            app.pump()
            self._drain_events(app)
            for data in app.conn.datagrams_to_send(self.now):
                if len(data) > self.interface_mtu_bytes:
                    app.conn.datagram_too_big(len(data), self.now)
                    continue
                self._emit(app, data)
            self._drain_events(app)

    def inject(self, dest: App, data: bytes) -> None:
        """Deliver a crafted datagram to ``dest`` now."""
        dest.conn.receive_datagram(data, self.now)
        self._drain_events(dest)
        self.flush()

    def _emit(self, app: App, data: bytes) -> None:
        seg = Segment.decode(data)
        self.wire.append((self.now, app.name, seg))
        self.largest_datagram_bytes[app.name] = max(self.largest_datagram_bytes[app.name], len(data))
        if self.drop_next[app.name]:
            self.drop_next[app.name] -= 1
            return
        if self.intercept is not None and self.intercept(app.name, seg):
            return
        path = self.up if app is self.client else self.down
        dest = "server" if app is self.client else "client"
        deliveries = path.process(data, self.now)
        if all(copy != data for _, copy in deliveries):
            self.lost_payload_bytes[app.name] += len(seg.payload)
        for at, copy in deliveries:
            self._order += 1
            heapq.heappush(self._queue, _Delivery(at, self._order, dest, copy))

    def step(self) -> bool:
        """Advance to the next delivery or timer and process it; False when nothing is left."""
        candidates = []
        if self._queue:
            candidates.append(self._queue[0].at)
        for app in (self.client, self.server):
            t = app.conn.get_timer()
            if t is not None:
                candidates.append(t)
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        while self._queue and self._queue[0].at <= self.now:
            d = heapq.heappop(self._queue)
            app = self.client if d.dest == "client" else self.server
            if app.conn.state is State.CLOSED and app.terminated:
                reply = reset_for_unknown(d.data)  # the endpoint forgot it: no such connection
                if reply is not None:
                    self._emit(app, reply)
                continue
            app.conn.receive_datagram(d.data, self.now)
            self._drain_events(app)
        for app in (self.client, self.server):
            t = app.conn.get_timer()
            if t is not None and t <= self.now:
                app.conn.handle_timer(self.now)
                self._drain_events(app)
        self.flush()
        return True

    def run(
        self, until: Callable[[], bool] | None = None, *, max_time: float = 600.0,
        max_steps: int = 2_000_000,
    ) -> None:
        """Step until ``until()`` holds (or nothing is left); fail on a time or step budget."""
        for _ in range(max_steps):
            if until is not None and until():
                return
            if not self.step():
                if until is None or until():
                    return
                raise AssertionError(f"simulation went idle at t={self.now:.3f} before the goal")
            if self.now > max_time:
                raise AssertionError(f"simulation passed t={max_time}s before the goal")
        raise AssertionError("simulation step budget exhausted")

    def run_for(self, seconds: float) -> None:
        """Process everything that happens in the next ``seconds`` of virtual time."""
        end = self.now + seconds
        while True:
            nxt = self._next_time()
            if nxt is None or nxt > end:
                break
            self.step()
        self.now = max(self.now, end)

    def _next_time(self) -> float | None:
        times = [self._queue[0].at] if self._queue else []
        for app in (self.client, self.server):
            t = app.conn.get_timer()
            if t is not None:
                times.append(t)
        return min(times) if times else None

    def _drain_events(self, app: App) -> None:
        while (ev := app.conn.next_event()) is not None:
            if isinstance(ev, DataReceived):
                app.received += ev.data
            elif isinstance(ev, StateChanged):
                app.transitions.append((ev.old, ev.new, ev.cause.value))
            elif isinstance(ev, ConnectionEstablished):
                app.established = True
            elif isinstance(ev, EofReceived):
                app.eof = True
                if app.shutdown_on_eof and app.conn.state is State.CLOSE_WAIT:
                    app.close_when_sent = True
            elif isinstance(ev, SendComplete):
                app.send_complete = True
            elif isinstance(ev, ConnectionFailed):
                app.failed = ev.reason
            elif isinstance(ev, ConnectionTerminated):
                app.terminated = True

    # -- what went over the wire -----------------------------------------------------------

    def segments(self, sender: str) -> list[Segment]:
        return [seg for _, name, seg in self.wire if name == sender]


def _isn(rng: random.Random, fixed: int | None) -> int:
    return fixed if fixed is not None else rng.getrandbits(32)


def established_pair(sim: Sim) -> Sim:
    """Run the handshake to completion on both sides."""
    sim.connect()
    sim.run(lambda: sim.client.established and sim.server.established, max_time=60)
    return sim
