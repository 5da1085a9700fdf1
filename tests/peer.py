"""A scripted peer for one connection core: craft segments, read what comes back.

In the style of smoltcp's socket tests: fixtures build a connection already in a given state
(each from the one before), ``send`` feeds it a segment, ``recv`` takes what it transmits.
The peer uses only basic segments (no options), which every udptcp endpoint must serve.
"""

from __future__ import annotations

from udptcp.config import Config
from udptcp.core import Connection, Event, State
from udptcp.core.events import StateChanged
from udptcp.wire import Flags, Segment

ISS = 1000
"""The ISN of the connection under test."""
PEER_ISS = 5000
"""The ISN of the scripted peer."""
PEER_WINDOW_BYTES = 65535

SYN, ACK, FIN, RST = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST

BASIC = Config(sack=False, timestamps=False, pacing=False, delayed_ack_s=0.0, msl_s=30.0)
"""A configuration whose segments are easy to predict: no options after the SYN, ACK at once."""


class Peer:
    """Drives one :class:`Connection` with a virtual clock."""

    def __init__(self, config: Config = BASIC, isn: int = ISS) -> None:
        self.conn = Connection(config, isn=isn)
        self.now = 0.0
        self.events: list[Event] = []

    @property
    def state(self) -> State:
        return self.conn.state

    def is_in(self, state: State) -> bool:
        """Whether the connection is in ``state`` now (a call, so no stale narrowing)."""
        return self.conn.state is state

    def send(self, flags: Flags, seq: int, ack: int = 0, payload: bytes = b"",
             window: int = PEER_WINDOW_BYTES, **options: object) -> None:
        """Deliver one segment (sequence numbers are taken modulo 2**32)."""
        seg = Segment(flags=flags, seq=seq % 2**32, ack=ack % 2**32, window=window,
                      payload=payload, **options)  # type: ignore[arg-type]
        self.conn.receive_datagram(seg.encode(), self.now)
        self._take_events()

    def recv(self) -> list[Segment]:
        """Everything the connection transmits now."""
        out = [Segment.decode(d) for d in self.conn.datagrams_to_send(self.now)]
        self._take_events()
        return out

    def recv_one(self) -> Segment:
        segs = self.recv()
        assert len(segs) == 1, f"expected one segment, got {[s.describe() for s in segs]}"
        return segs[0]

    def recv_nothing(self) -> None:
        segs = self.recv()
        assert segs == [], f"expected nothing, got {[s.describe() for s in segs]}"

    def advance(self, seconds: float) -> None:
        """Move the clock, running every timer that comes due on the way."""
        end = self.now + seconds
        while (t := self.conn.get_timer()) is not None and t <= end:
            self.now = max(self.now, t)
            self.conn.handle_timer(self.now)
            self._take_events()
        self.now = end

    def fire_timer(self) -> float:
        """Jump to the next timer and run it; returns how far the clock moved."""
        t = self.conn.get_timer()
        assert t is not None, "no timer is armed"
        moved = t - self.now
        self.now = t
        self.conn.handle_timer(t)
        self._take_events()
        return moved

    def _take_events(self) -> None:
        while (ev := self.conn.next_event()) is not None:
            self.events.append(ev)

    def taken(self, kind: type) -> list[Event]:
        """Events of one kind seen so far."""
        return [e for e in self.events if isinstance(e, kind)]

    def path(self) -> list[State]:
        """The states passed through, in order."""
        changes = [e for e in self.events if isinstance(e, StateChanged)]
        return [changes[0].old, *(c.new for c in changes)] if changes else [self.state]


# -- connections in each state -------------------------------------------------------------

def listen(config: Config = BASIC) -> Peer:
    p = Peer(config)
    p.conn.listen()
    return p


def syn_received(config: Config = BASIC) -> Peer:
    p = listen(config)
    p.send(SYN, PEER_ISS)
    p.recv_one()
    return p


def syn_sent(config: Config = BASIC) -> Peer:
    p = Peer(config)
    p.conn.connect(p.now)
    p.recv_one()
    return p


def established(config: Config = BASIC) -> Peer:
    """Actively opened: we sent SYN (ISS), the peer answered, we acknowledged, and the peer
    has shown it is established too (a bare ACK; without it we would repeat our ACK, see
    ``Handshake``)."""
    p = syn_sent(config)
    p.send(SYN | ACK, PEER_ISS, ISS + 1)
    p.recv_one()
    p.send(ACK, PEER_ISS + 1, ISS + 1)
    return p


def fin_wait_1(config: Config = BASIC) -> Peer:
    p = established(config)
    p.conn.shutdown()
    fin = p.recv_one()
    assert fin.flags & FIN
    return p


def fin_wait_2(config: Config = BASIC) -> Peer:
    p = fin_wait_1(config)
    p.send(ACK, PEER_ISS + 1, ISS + 2)
    return p


def close_wait(config: Config = BASIC) -> Peer:
    p = established(config)
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 1)
    p.recv_one()
    return p


def closing(config: Config = BASIC) -> Peer:
    p = fin_wait_1(config)
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 1)  # the peer's FIN crosses ours
    p.recv_one()
    return p


def last_ack(config: Config = BASIC) -> Peer:
    p = close_wait(config)
    p.conn.shutdown()
    p.recv_one()
    return p


def time_wait(config: Config = BASIC) -> Peer:
    p = fin_wait_2(config)
    p.send(FIN | ACK, PEER_ISS + 1, ISS + 2)
    p.recv_one()
    return p
