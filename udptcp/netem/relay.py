"""The ``udptcp netem`` relay: a UDP NAT in the middle that impairs what passes through it.

Each client address gets its own upstream socket, as behind a NAT, so the server can tell the
flows apart and replies find their way back; and its own pair of :class:`Path` models, seeded
``seed + flow index``, so a run with one client reproduces the simulator's run with the same
seed and several clients do not disturb each other's random streams.

Everything that could grow with traffic is capped (flows, pending deliveries, datagrams waiting
for an upstream socket, transport send buffers) and the excess is dropped and counted: a relay
under a flood must degrade into a lossy link, not into an out-of-memory kill. Deliveries share
one timer, re-armed when the earliest changes, so a bottleneck holding thousands of datagrams
costs a heap rather than thousands of timer handles.
"""

from __future__ import annotations

import asyncio
import heapq
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, Literal

from udptcp.netem.impair import Counters, Impairment, Path, PathCounters, make_paths

Address = tuple[Any, ...]
Direction = Literal["up", "down"]
Deliveries = list[tuple[float, bytes]]
DIRECTIONS: tuple[Direction, Direction] = ("up", "down")

SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
MAX_FLOWS = 1024
MAX_PENDING_DATAGRAMS = 100_000
MAX_EARLY_DATAGRAMS_PER_FLOW = 1024
MAX_TRANSPORT_BUFFER_BYTES = 4 * 1024 * 1024
IDLE_TIMEOUT_S = 120.0
MAX_IDLE_SWEEP_INTERVAL_S = 10.0
TIMER_SLACK_S = 0.0005
"""Deliver this early rather than spin: event loops may fire a timer a little before its time."""


@dataclass
class DeliveryCounters(Counters):
    """What the relay itself did to one direction, after the model: sent or dropped, and why."""

    sent: int = 0
    dropped_pending_full: int = 0
    dropped_early_full: int = 0
    dropped_send_buffer: int = 0
    dropped_closed: int = 0


@dataclass(eq=False)
class _Flow:
    client: Address
    up: Path
    down: Path
    last_active: float
    transport: asyncio.DatagramTransport | None = None
    early: list[bytes] = field(default_factory=list)
    closed: bool = False

    def path(self, direction: Direction) -> Path:
        return self.up if direction == "up" else self.down


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None], on_error: Callable[[], None]) -> None:
        self._on_datagram = on_datagram
        self._on_error = on_error
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._on_error()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def make_udp_socket(family: int) -> socket.socket:
    """A non-blocking UDP socket with large buffers: a burst the loop has not yet read must not
    overflow the kernel's default buffer and look like impairment the user never asked for."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Relay:
    """Forwards datagrams between clients on the front address and one target, impaired.

    Built by :func:`start_relay`. ``up`` is client -> target, ``down`` is target -> client.
    """

    def __init__(
        self, target: tuple[int, Address], up: Impairment, down: Impairment, seed: int, *,
        max_flows: int = MAX_FLOWS, max_pending: int = MAX_PENDING_DATAGRAMS,
        idle_timeout_s: float = IDLE_TIMEOUT_S, shared: bool = False,
    ) -> None:
        self.up = up
        self.down = down
        self.seed = seed
        self._shared = make_paths(up, down, seed) if shared else None
        """With ``shared``, every flow goes through the same two paths: one bottleneck for all."""
        self.flows_opened = 0
        self.flows_closed_idle = 0
        self.datagrams_refused = 0
        self.flow_errors = 0
        self.socket_errors = 0
        self._target_family, self._target = target
        self._max_flows = max_flows
        self._max_pending = max_pending
        self._idle_timeout_s = idle_timeout_s
        self._sweep_interval_s = min(idle_timeout_s / 4, MAX_IDLE_SWEEP_INTERVAL_S)
        self._loop = asyncio.get_running_loop()
        self._flows: dict[Address, _Flow] = {}
        self._closed_totals = {d: PathCounters() for d in DIRECTIONS}
        self.delivery = {d: DeliveryCounters() for d in DIRECTIONS}
        """What happened to each direction's datagrams after the model let them through."""
        self._pending: list[tuple[float, int, _Flow, Direction, bytes]] = []
        self._order = 0
        self._timer: asyncio.Handle | None = None
        self._timer_at = 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self._front: asyncio.DatagramTransport | None = None
        self._address: tuple[str, int] | None = None
        self._socket_buffer_bytes = 0
        self._receivers: set[_Receiver] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._closed = False

    async def bind(self, family: int, address: Address) -> None:
        """Open the front socket on ``address``; traffic starts flowing as soon as this returns."""
        sock = make_udp_socket(family)
        try:
            sock.bind(address)
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: self._receiver(self._from_client), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self._front = transport
        host, port = sock.getsockname()[:2]
        self._address = (host, port)
        self._socket_buffer_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._sweeper = self._loop.call_later(self._sweep_interval_s, self._sweep)

    @property
    def address(self) -> tuple[str, int]:
        """The front address clients send to (with the real port when bound to port 0)."""
        if self._address is None:
            raise RuntimeError("the relay is not bound")
        return self._address

    @property
    def socket_buffer_bytes(self) -> int:
        """The receive buffer the kernel granted (Linux caps requests at net.core.rmem_max)."""
        return self._socket_buffer_bytes

    @property
    def active_flows(self) -> int:
        """Flows with an open upstream socket."""
        return len(self._flows)

    def path_totals(self, direction: Direction) -> PathCounters:
        """The model's counters for one direction, summed over every flow, open or closed."""
        if self._shared is not None:
            return self._shared[0 if direction == "up" else 1].counters
        total = PathCounters()
        _accumulate(total, self._closed_totals[direction])
        for flow in self._flows.values():
            _accumulate(total, flow.path(direction).counters)
        return total

    def summary(self) -> str:
        """Flows, then one line per direction: the model's counters, then the relay's."""
        lines = [
            f"flows: opened={self.flows_opened}, active={self.active_flows}, "
            f"closed_idle={self.flows_closed_idle}, refused_datagrams={self.datagrams_refused}, "
            f"errors={self.flow_errors}, socket_errors={self.socket_errors}"
        ]
        for direction, arrow in zip(DIRECTIONS, ("client -> server", "server -> client"), strict=True):
            lines.append(
                f"{direction} ({arrow}): {self.path_totals(direction).summary()}; "
                f"relay: {self.delivery[direction].summary()}"
            )
        return "\n".join(lines)

    def close(self) -> None:
        """Stop relaying; datagrams still held back are dropped (and counted as dropped_closed)."""
        if self._closed:
            return
        self._closed = True
        for handle in (self._timer, self._sweeper):
            if handle is not None:
                handle.cancel()
        for _, _, _, direction, _ in self._pending:
            self.delivery[direction].dropped_closed += 1
        self._pending.clear()
        for flow in list(self._flows.values()):
            self._close_flow(flow)
        if self._front is not None:
            self._front.close()

    async def wait_closed(self) -> None:
        """After :meth:`close`: wait until every socket is closed, leaving none to the garbage collector."""
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)
        await asyncio.gather(*(receiver.closed for receiver in list(self._receivers)))

    # -- receiving -----------------------------------------------------------------------------

    def _receiver(self, on_datagram: Callable[[bytes, Address], None]) -> _Receiver:
        receiver = _Receiver(on_datagram, self._count_socket_error)
        self._receivers.add(receiver)
        receiver.closed.add_done_callback(lambda _: self._receivers.discard(receiver))
        return receiver

    def _count_socket_error(self) -> None:
        # ICMP errors (say, port unreachable while the server restarts) are the network's
        # business: count them and carry on, as a router would.
        self.socket_errors += 1

    def _from_client(self, data: bytes, client: Address) -> None:
        now = self._loop.time()
        flow = self._flows.get(client)
        if flow is None:
            flow = self._open_flow(client, now)
            if flow is None:
                return
        flow.last_active = now
        self._schedule(flow, "up", flow.up.process(data, now), now)

    def _from_server(self, flow: _Flow, data: bytes, _source: Address) -> None:
        now = self._loop.time()
        flow.last_active = now
        self._schedule(flow, "down", flow.down.process(data, now), now)

    def _open_flow(self, client: Address, now: float) -> _Flow | None:
        if self._closed or len(self._flows) >= self._max_flows:
            self.datagrams_refused += 1
            return None
        try:
            sock = make_udp_socket(self._target_family)
            sock.connect(self._target)
        except OSError:
            self.flow_errors += 1
            return None
        up, down = self._shared or make_paths(self.up, self.down, self.seed + self.flows_opened)
        self.flows_opened += 1
        flow = _Flow(client, up, down, now)
        self._flows[client] = flow
        task = self._loop.create_task(self._connect_upstream(flow, sock))
        self._connecting.add(task)
        task.add_done_callback(partial(self._connected, sock))
        return flow

    def _connected(self, sock: socket.socket, task: asyncio.Task[None]) -> None:
        self._connecting.discard(task)
        if task.cancelled():  # possibly before it began; a transport, if any, is already closed
            sock.close()

    async def _connect_upstream(self, flow: _Flow, sock: socket.socket) -> None:
        """Wrap the flow's socket in a transport; until then its datagrams wait in ``early``."""
        try:
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: self._receiver(partial(self._from_server, flow)), sock=sock
            )
        except OSError:
            sock.close()
            self.flow_errors += 1
            self._close_flow(flow)
            return
        if flow.closed:
            transport.close()
            return
        flow.transport = transport
        early, flow.early = flow.early, []
        for data in early:
            self._send(flow, "up", data)

    # -- delivering ----------------------------------------------------------------------------

    def _schedule(self, flow: _Flow, direction: Direction, deliveries: Deliveries, now: float) -> None:
        pending = self._pending
        for at, data in deliveries:
            if len(pending) >= self._max_pending:
                self.delivery[direction].dropped_pending_full += 1
                continue
            self._order += 1
            heapq.heappush(pending, (at, self._order, flow, direction, data))
        if pending and pending[0][0] <= now + TIMER_SLACK_S:
            self._deliver_due()
        else:
            self._arm()

    def _on_timer(self) -> None:
        self._timer = None
        self._deliver_due()

    def _deliver_due(self) -> None:
        """Send everything whose time has come, in order of delivery time, then re-arm."""
        deadline = self._loop.time() + TIMER_SLACK_S
        pending = self._pending
        while pending and pending[0][0] <= deadline:
            _, _, flow, direction, data = heapq.heappop(pending)
            self._send(flow, direction, data)
        self._arm()

    def _arm(self) -> None:
        if not self._pending or self._closed:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        head = self._pending[0][0]
        if self._timer is not None:
            if self._timer_at == head:
                return
            self._timer.cancel()
        # Not TimerHandle.when(): uvloop returns a plain Handle for a time already past.
        self._timer_at = head
        self._timer = self._loop.call_at(head, self._on_timer)

    def _send(self, flow: _Flow, direction: Direction, data: bytes) -> None:
        counters = self.delivery[direction]
        if flow.closed or self._closed:
            counters.dropped_closed += 1
            return
        if direction == "up":
            transport, destination = flow.transport, None
            if transport is None:
                if len(flow.early) >= MAX_EARLY_DATAGRAMS_PER_FLOW:
                    counters.dropped_early_full += 1
                else:
                    flow.early.append(data)
                return
        else:
            transport, destination = self._front, flow.client
            if transport is None:
                counters.dropped_closed += 1
                return
        # Datagram transports buffer without limit when the socket would block: past our cap
        # a full buffer is a full link, so drop as the link would.
        if _buffered_bytes(transport) > MAX_TRANSPORT_BUFFER_BYTES:
            counters.dropped_send_buffer += 1
            return
        transport.sendto(data, destination)
        counters.sent += 1

    # -- idle flows ----------------------------------------------------------------------------

    def _sweep(self) -> None:
        now = self._loop.time()
        for flow in list(self._flows.values()):
            if now - flow.last_active > self._idle_timeout_s:
                self.flows_closed_idle += 1
                self._close_flow(flow)
        self._sweeper = self._loop.call_later(self._sweep_interval_s, self._sweep)

    def _close_flow(self, flow: _Flow) -> None:
        if flow.closed:
            return
        flow.closed = True
        del self._flows[flow.client]
        for direction in DIRECTIONS:
            _accumulate(self._closed_totals[direction], flow.path(direction).counters)
        self.delivery["up"].dropped_closed += len(flow.early)
        flow.early.clear()
        if flow.transport is not None:
            flow.transport.close()


def _buffered_bytes(transport: asyncio.DatagramTransport) -> int:
    # Every asyncio and uvloop datagram transport has this; the typing stubs do not declare it.
    size = getattr(transport, "get_write_buffer_size", None)
    return int(size()) if size is not None else 0


def _accumulate(total: PathCounters, more: PathCounters) -> None:
    for counter in fields(PathCounters):
        setattr(total, counter.name, getattr(total, counter.name) + getattr(more, counter.name))


async def resolve(host: str, port: int) -> tuple[int, Address]:
    """The address family and socket address for ``host:port`` (the first one the resolver gives)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"cannot resolve {host}:{port}")
    family, _, _, _, address = infos[0]
    return int(family), tuple(address)


async def start_relay(
    listen_host: str, listen_port: int, target_host: str, target_port: int,
    up: Impairment | None = None, down: Impairment | None = None, seed: int = 0, *,
    max_flows: int = MAX_FLOWS, max_pending: int = MAX_PENDING_DATAGRAMS,
    idle_timeout_s: float = IDLE_TIMEOUT_S, shared: bool = False,
) -> Relay:
    """A relay listening on ``listen_host:listen_port`` (port 0: any) for ``target_host:target_port``."""
    listen_family, listen_address = await resolve(listen_host, listen_port)
    target = await resolve(target_host, target_port)
    relay = Relay(
        target, up or Impairment(), down or Impairment(), seed,
        max_flows=max_flows, max_pending=max_pending, idle_timeout_s=idle_timeout_s, shared=shared,
    )
    await relay.bind(listen_family, listen_address)
    return relay
