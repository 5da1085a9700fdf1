"""Network impairments as a pure, seeded model: datagrams and ``now`` in, deliveries out.

One :class:`Path` per direction turns each datagram into zero or more ``(deliver_at, data)``
pairs: dropped (randomly, in Gilbert-Elliott bursts, every Nth, by flag, or at the tail of a
full bottleneck queue), delayed with jitter (which reorders), held back to be overtaken,
duplicated or corrupted. The ``udptcp netem`` relay and the test simulator both use it, so the
impairments the tests exercise are exactly the ones users can reproduce.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from udptcp.core.seqnum import seq_add
from udptcp.wire import ACK, FIN, RST, SYN, MalformedSegment, decode_datagram

FLAG_NAMES = {"FIN": FIN, "SYN": SYN, "RST": RST, "ACK": ACK}


@dataclass(frozen=True)
class Impairment:
    """What one direction does to datagrams. Probabilities are in [0, 1], times in seconds.

    loss: drop each datagram with this probability.
    ge_p, ge_r, ge_loss: Gilbert-Elliott bursts: move to the bad state with probability
        ``ge_p`` per datagram, back with ``ge_r``; in the bad state drop with ``ge_loss``.
    drop_every: drop every Nth datagram (0: never).
    drop_flags: drop the first N segments carrying a flag, e.g. ``{"FIN": 2}``.
    drop_fin_ack: drop the first N pure ACKs that acknowledge the other direction's FIN
        (the active closer's last ACK).
    delay_s, jitter_s: one-way delay, plus a uniform random extra in [0, jitter_s]; jitter
        larger than the spacing of datagrams reorders them.
    reorder: hold a datagram back by ``reorder_delay_s`` so that later ones overtake it.
    duplicate: deliver a second copy.
    corrupt: flip one random bit (the receiver's checksum must catch it).
    rate_bps: a bottleneck of this many bits per second (0: unlimited) ...
    queue_bytes: ... whose queue holds this many octets; arrivals beyond it are dropped.
    mtu_bytes: a hop that carries datagrams (UDP payloads) of at most this many octets and
        drops larger ones, as a link of a smaller MTU does with don't-fragment set (0: any).
    """

    loss: float = 0.0
    ge_p: float = 0.0
    ge_r: float = 1.0
    ge_loss: float = 1.0
    drop_every: int = 0
    drop_flags: dict[str, int] = field(default_factory=dict)
    drop_fin_ack: int = 0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    reorder: float = 0.0
    reorder_delay_s: float = 0.002
    duplicate: float = 0.0
    corrupt: float = 0.0
    rate_bps: float = 0.0
    queue_bytes: int = 0
    mtu_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("loss", "ge_p", "ge_r", "ge_loss", "reorder", "duplicate", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        for name in ("delay_s", "jitter_s", "reorder_delay_s", "rate_bps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if min(self.drop_every, self.drop_fin_ack, self.queue_bytes, self.mtu_bytes) < 0:
            raise ValueError("drop_every, drop_fin_ack, queue_bytes and mtu_bytes must not be negative")
        for flag, count in self.drop_flags.items():
            if flag not in FLAG_NAMES or count < 0:
                raise ValueError(f"drop_flags takes {'/'.join(FLAG_NAMES)} with a count, got {flag}:{count}")


class Counters:
    """Counts of what happened to datagrams, reported as one line in the relay's summary.

    The base of both the model's and the relay's counters, so that the summary reads alike.
    """

    def summary(self) -> str:
        """One line: every counter that is not zero, as ``name=value``, or ``nothing``."""
        return ", ".join(f"{name}={value}" for name, value in vars(self).items() if value) or "nothing"


@dataclass
class PathCounters(Counters):
    """What one direction did, for the relay's summary."""

    received: int = 0
    delivered: int = 0
    dropped_random: int = 0
    dropped_burst: int = 0
    dropped_every: int = 0
    dropped_flag: int = 0
    dropped_fin_ack: int = 0
    dropped_queue: int = 0
    delayed: int = 0
    reordered: int = 0
    duplicated: int = 0
    corrupted: int = 0
    dropped_too_big: int = 0

    @property
    def dropped(self) -> int:
        """Datagrams dropped for any reason."""
        return (self.dropped_random + self.dropped_burst + self.dropped_every + self.dropped_flag
                + self.dropped_fin_ack + self.dropped_queue + self.dropped_too_big)


class Path:
    """One direction of the impaired network."""

    def __init__(self, spec: Impairment, rng: random.Random) -> None:
        self.spec = spec
        self.counters = PathCounters()
        self.reverse: Path | None = None
        self._rng = rng
        self._bad = False
        self._count = 0
        self._flag_drops = dict(spec.drop_flags)
        self._fin_acks_to_drop = spec.drop_fin_ack
        self._fin_end: int | None = None  # this direction's FIN, as the peer must acknowledge it
        self._link_free_at = 0.0

    def process(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Where ``data`` (sent at ``now``) goes: ``(deliver_at, datagram)`` for each copy."""
        spec, rng, counters = self.spec, self._rng, self.counters
        counters.received += 1
        self._count += 1
        if self._drop_by_content(data):
            return []
        if spec.mtu_bytes and len(data) > spec.mtu_bytes:
            counters.dropped_too_big += 1
            return []
        if spec.drop_every and self._count % spec.drop_every == 0:
            counters.dropped_every += 1
            return []
        if spec.loss and rng.random() < spec.loss:
            counters.dropped_random += 1
            return []
        if spec.ge_p:
            self._bad = rng.random() >= spec.ge_r if self._bad else rng.random() < spec.ge_p
            if self._bad and rng.random() < spec.ge_loss:
                counters.dropped_burst += 1
                return []
        depart = now
        if spec.rate_bps:
            start = max(now, self._link_free_at)
            backlog = (start - now) * spec.rate_bps / 8.0
            if spec.queue_bytes and backlog + len(data) > spec.queue_bytes:
                counters.dropped_queue += 1
                return []
            self._link_free_at = start + len(data) * 8.0 / spec.rate_bps
            depart = self._link_free_at
        copies = [data]
        if spec.duplicate and rng.random() < spec.duplicate:
            counters.duplicated += 1
            copies.append(data)
        deliveries = []
        for original in copies:
            copy = original
            at = depart + spec.delay_s
            if spec.jitter_s:
                at += rng.random() * spec.jitter_s
            if spec.reorder and rng.random() < spec.reorder:
                counters.reordered += 1
                at += spec.reorder_delay_s
            if spec.corrupt and rng.random() < spec.corrupt:
                counters.corrupted += 1
                copy = _flip_bit(copy, rng)
            if at > now:
                counters.delayed += 1
            deliveries.append((at, copy))
        counters.delivered += len(deliveries)
        return deliveries

    def _drop_by_content(self, data: bytes) -> bool:
        watched = self.reverse is not None and self.reverse._fin_acks_to_drop
        if not (any(self._flag_drops.values()) or self._fin_acks_to_drop or watched):
            return False
        try:
            flags, seq, ack, _wnd, payload, _opts = decode_datagram(data)
        except MalformedSegment:
            return False
        if flags & FIN:
            self._fin_end = seq_add(seq, len(payload) + 1 + (1 if flags & SYN else 0))
        for name, remaining in self._flag_drops.items():
            if remaining and flags & FLAG_NAMES[name]:
                self._flag_drops[name] = remaining - 1
                self.counters.dropped_flag += 1
                return True
        if self._fin_acks_to_drop and self.reverse is not None:
            fin_end = self.reverse._fin_end
            pure_ack = flags & (SYN | FIN | RST) == 0 and flags & ACK and not payload
            if fin_end is not None and pure_ack and ack == fin_end:
                self._fin_acks_to_drop -= 1
                self.counters.dropped_fin_ack += 1
                return True
        return False


def make_paths(
    up: Impairment, down: Impairment, seed: int
) -> tuple[Path, Path]:
    """The two directions of one impaired network, each with its own seeded generator."""
    rng = random.Random(seed)
    forward = Path(up, random.Random(rng.getrandbits(64)))
    backward = Path(down, random.Random(rng.getrandbits(64)))
    forward.reverse = backward
    backward.reverse = forward
    return forward, backward


def _flip_bit(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    bit = rng.randrange(len(buf) * 8)
    buf[bit >> 3] ^= 1 << (bit & 7)
    return bytes(buf)
