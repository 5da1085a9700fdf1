"""Two connection cores driven by hypothesis (``RuleBasedStateMachine``): random application
calls, timer firings and network events (loss, duplication, reordering, segments forged with
random sequence numbers). After every step: no exception, every state change an edge of the
table, buffers within their bounds, and each side's received bytes exactly the start of what
the other side's application sent (once each, in order)."""

from __future__ import annotations

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from udptcp.config import Config
from udptcp.core import (
    Connection,
    DataReceived,
    LocalProtocolError,
    State,
    StateChanged,
    reset_for_unknown,
)
from udptcp.core.state import EDGES
from udptcp.wire import Segment

CONFIG = Config(mss=536, recv_buffer_bytes=8192, send_buffer_bytes=8192, msl_s=1.0,
                rto_initial_s=0.5, rto_min_s=0.1, syn_retries=4, retries=6)
"""Small windows and buffers, so that the windows close and data waits; short timers."""
MAX_IN_FLIGHT = 64
"""Datagrams the network holds at once; past it the oldest is lost."""
SIDES = ("client", "server")


def stream(start: int, size: int) -> bytes:
    """Octets ``start`` to ``start + size`` of the stream each application writes."""
    return bytes((start + i) % 251 for i in range(size))


class TwoConnections(RuleBasedStateMachine):
    """A client and a server core, the datagrams between them, and their applications."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.conns: dict[str, Connection] = {}
        self.sent: dict[str, int] = {}
        self.received: dict[str, bytearray] = {}
        self.in_flight: list[tuple[str, bytes]] = []
        self.accepted = False
        """The server's application has the connection (it reached ESTABLISHED): as with the
        asyncio API, nothing calls a passive connection before that. One still in SYN_RCVD
        may go back to LISTEN (RFC 9293 3.10.7.4) as a new incarnation, and data an
        application could not have written would be lost with the old one."""

    @initialize(client_isn=st.integers(0, 2**32 - 1), server_isn=st.integers(0, 2**32 - 1))
    def open(self, client_isn: int, server_isn: int) -> None:
        self.conns = {"client": Connection(CONFIG, isn=client_isn),
                      "server": Connection(CONFIG, isn=server_isn)}
        self.sent = {side: 0 for side in SIDES}
        self.received = {side: bytearray() for side in SIDES}
        self.conns["server"].listen()
        self.conns["client"].connect(self.now)
        self._settle()

    # -- the applications ------------------------------------------------------------------

    @rule(side=st.sampled_from(SIDES), size=st.integers(1, 5000))
    def write(self, side: str, size: int) -> None:
        if side == "server" and not self.accepted:
            return
        conn = self.conns[side]
        room = CONFIG.send_buffer_bytes - conn.send_buffered
        size = min(size, room)
        if size <= 0:
            return
        try:
            conn.send(stream(self.sent[side], size))
        except LocalProtocolError:
            return  # not open for sending: the application is told so
        self.sent[side] += size

    @rule(side=st.sampled_from(SIDES),
          call=st.sampled_from(["shutdown", "close", "abort", "pause_reading", "resume_reading"]))
    def call(self, side: str, call: str) -> None:
        if side == "server" and not self.accepted:
            return
        try:
            getattr(self.conns[side], call)()
        except LocalProtocolError:
            return

    # -- time ------------------------------------------------------------------------------

    @rule(seconds=st.floats(0.0, 5.0))
    def wait(self, seconds: float) -> None:
        self.now += seconds
        for conn in self.conns.values():
            timer = conn.get_timer()
            if timer is not None and timer <= self.now:
                conn.handle_timer(self.now)

    @rule()
    def next_timer(self) -> None:
        timers = [t for conn in self.conns.values() if (t := conn.get_timer()) is not None]
        if timers:
            self.wait(max(0.0, min(timers) - self.now))

    # -- the network -----------------------------------------------------------------------

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """The datagram at any position arrives: taking others than the first reorders."""
        index = data.draw(st.integers(0, len(self.in_flight) - 1))
        dest, datagram = self.in_flight.pop(index)
        self._arrive(dest, datagram)

    @precondition(lambda self: bool(self.in_flight))
    @rule(rounds=st.integers(1, 20))
    def deliver_in_order(self, rounds: int) -> None:
        """A clean spell: everything in flight arrives in order, and the answers too, for a
        number of rounds."""
        for _ in range(rounds):
            batch, self.in_flight = self.in_flight, []
            for dest, datagram in batch:
                self._arrive(dest, datagram)
            if not self.in_flight:
                return

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def lose(self, data: st.DataObject) -> None:
        self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        self.in_flight.append(self.in_flight[data.draw(st.integers(0, len(self.in_flight) - 1))])

    @rule(dest=st.sampled_from(SIDES), flags=st.integers(0, 0x1F),
          seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
          window=st.integers(0, 2**32 - 1))
    def forge(self, dest: str, flags: int, seq: int, ack: int, window: int) -> None:
        """A stranger's segment, with numbers that know nothing of the connection."""
        self._arrive(dest, Segment(flags=flags, seq=seq, ack=ack, window=window).encode())

    # -- checks ----------------------------------------------------------------------------

    @invariant()
    def buffers_within_bounds(self) -> None:
        for side, conn in self.conns.items():
            rx, tx = conn.rx, conn.tx
            assert 0 <= rx.ooo_bytes <= CONFIG.recv_buffer_bytes
            assert 0 <= rx.held_bytes <= CONFIG.recv_buffer_bytes
            assert 0 <= conn.send_buffered <= min(CONFIG.send_buffer_bytes, self.sent[side])
            assert tx.pipe >= 0 and tx.una <= tx.nxt

    @invariant()
    def delivered_once_in_order(self) -> None:
        for side, other in (("client", "server"), ("server", "client")):
            got = self.received[side]
            assert len(got) <= self.sent[other]
            assert got == stream(0, len(got)), f"{side} received bytes out of order or twice"

    # -- the plumbing ----------------------------------------------------------------------

    def _arrive(self, dest: str, datagram: bytes) -> None:
        conn = self.conns[dest]
        if conn.state is State.CLOSED:
            reply = reset_for_unknown(datagram)  # the endpoint forgot it: no such connection
            if reply is not None:
                self._queue("client" if dest == "server" else "server", reply)
        else:
            conn.receive_datagram(datagram, self.now)
        self._settle()

    def _settle(self) -> None:
        """Take every event (checking state changes) and put every datagram due in flight."""
        for side, conn in self.conns.items():
            self._take_events(side)
            for datagram in conn.datagrams_to_send(self.now):
                self._queue("server" if side == "client" else "client", datagram)
            self._take_events(side)

    def _take_events(self, side: str) -> None:
        conn = self.conns[side]
        while (event := conn.next_event()) is not None:
            if isinstance(event, StateChanged):
                assert (event.old, event.cause, event.new) in EDGES, event
                if side == "server" and event.new is State.ESTABLISHED:
                    self.accepted = True
            elif isinstance(event, DataReceived):
                self.received[side] += event.data

    def _queue(self, dest: str, datagram: bytes) -> None:
        self.in_flight.append((dest, datagram))
        del self.in_flight[:-MAX_IN_FLIGHT]

    def teardown(self) -> None:
        event(f"delivered {'some' if any(self.received.values()) else 'no'} data")
        self.in_flight.clear()


TwoConnections.TestCase.settings = settings(
    max_examples=100, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_two_connections = TwoConnections.TestCase
