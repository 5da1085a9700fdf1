"""Every tunable of udptcp, in one validated, immutable object.

``open_connection``/``start_server`` take these as keyword options (``msl_s=1.0``) or as a
ready ``config=Config(...)``. Names carry their unit. Wrong values raise ``ValueError`` and
wrong types ``TypeError``, naming the option and saying what it accepts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass, fields
from typing import Any

from udptcp.core.congestion import CONTROLLERS
from udptcp.core.negotiated import MIN_MSS
from udptcp.core.pmtud import MAX_DATAGRAM_BYTES, START_DATAGRAM_BYTES, segment_bytes

MAX_MSS = segment_bytes(MAX_DATAGRAM_BYTES)
"""The largest segment payload: a 65507-octet datagram less our header and option room."""
DEFAULT_MSS = segment_bytes(START_DATAGRAM_BYTES)
"""1380: fits a 1500-octet path over IPv6 (40 + 8 + 20 + 40 + 1380 = 1488), so IPv4 too."""
MAX_WINDOW_BYTES = 1 << 30
"""The largest receive window: as RFC 7323's, so that sequence comparisons modulo 2**32 hold."""
MAX_SOCKET_BUFFER_BYTES = (1 << 31) - 1
"""SO_RCVBUF/SO_SNDBUF take a C int."""
CONFIGS_REMEMBERED = 64
"""Configurations built from keyword options that are kept for reuse (see ``_derived``)."""
MIN_TRACE_BYTES = 64 * 1024
"""The smallest trace_max_bytes: room for a connection's handshake and close."""
PCAP_LINKTYPES = ("raw", "ethernet")
MIN_MEMORY_LIMIT_BYTES = 64 * 1024
"""The smallest endpoint-wide memory limit: a few segments' worth."""


@dataclass(frozen=True, slots=True)
class Config:
    """Options of a connection and of the endpoint that carries it.

    Protocol:
        mss: None (the default) finds the segment size by path-MTU discovery (RFC 8899): it
            starts at 1380 octets, which fit a 1500-octet path, grows to what the path carries
            (65447 on loopback), and shrinks again if the path stops carrying it. An int fixes
            it instead: the largest payload per segment we send and accept, in octets, announced
            in the SYN, and no probing. A peer's MSS option below 64 is taken as 64, so that no
            peer can make us send a flood of tiny segments.
        recv_buffer_bytes: the largest receive window: octets the peer may send beyond what
            we delivered (at most 2**30, as TCP's scaled window). A connection's window starts
            at what its socket's receive queue holds (under half the SO_RCVBUF Linux grants,
            which net.core.rmem_max caps: a burst beyond it would be dropped by the kernel) and
            grows up to this where the path needs more (``core.autotune``). Nothing is
            allocated until data waits in it.
        send_buffer_bytes: octets buffered for sending (unsent plus unacknowledged) before
            ``writer.drain()`` blocks.
        rto_initial_s, rto_min_s, rto_max_s: retransmission timeout before any RTT sample,
            the floor of its variance term (RTO >= SRTT + rto_min_s, as Linux's 0.2 s), and
            its cap (RFC 6298).
        syn_retries: SYN and SYN-ACK retransmissions before the open fails (connect raises
            ``TimeoutError``).
        retries: retransmissions of data, FIN or window probes without any progress before the
            connection is reset and fails with ``TimeoutError``.
        msl_s: maximum segment lifetime; TIME_WAIT lasts 2 * msl_s.
        fin_wait_2_timeout_s: how long a fully closed connection waits for the peer's FIN.
        delayed_ack_s: longest delay of an ACK (one is sent at once for every second segment).
        quick_acks: in-order data segments acknowledged at once when a connection starts, as
            Linux's quickack mode, so that neither slow start nor a window of one large
            segment waits out the delayed ACK every round trip; 0 delays from the first. They
            end once we send data ourselves: our data carries the ACKs then.
        congestion_control: "newreno", "cubic" or "bbr" (model-based: not slowed by random loss).
        initial_window_segments: congestion window at the start, in segments of the MSS the
            handshake settled; RFC 6928 caps it at max(2 * MSS, N * 1460) octets.
        sack, timestamps: offer the SACK and timestamps options in the SYN.
        pacing: spread sends over the round trip instead of bursting a whole window.
        keepalive_s: idle time (nothing heard from the peer) after which keepalive probes
            start; None disables them.
        keepalive_interval_s, keepalive_probes: probes go this far apart, and this many
            unanswered ones fail the connection with ``TimeoutError``.
        user_timeout_s: longest time sent data may stay unacknowledged, or the peer may stay
            silent while probed (keepalive, or the probes of a zero window), before the
            connection fails (RFC 5482's user timeout, as
            Linux's TCP_USER_TIMEOUT); None leaves it to ``retries``/``keepalive_probes``.

    Endpoint:
        backlog: half-open connections a server holds, and apart from them connections
            established but not yet accepted; beyond the first, SYNs get SYN cookies.
        memory_limit_bytes: octets all the connections of one endpoint may keep (send buffers,
            out-of-order data, data held for a paused reader or a connection not yet
            accepted), as Linux's tcp_mem. Past it the endpoint is under pressure until usage
            falls to three quarters: receive windows stop growing, data that would be kept is
            refused (the peer resends it), and writers pause (``drain()`` waits), each
            connection keeping a floor (``core.PRESSURE_FLOOR_BYTES``) so that it still moves.
        socket_buffer_bytes: SO_RCVBUF/SO_SNDBUF asked of the kernel (it may grant less); at
            most 2**31 - 1, as the socket option takes a C int.
        shutdown_linger_s: how long closing an endpoint (or leaving ``asyncio.run``) waits for
            its connections in TIME_WAIT to finish; None follows their own timers: 2 * msl_s,
            longer when a retransmitted FIN restarts one, at most 4 * 2 * msl_s in all.
        gso, gro: let the kernel cut a burst of equal-size datagrams from one send (UDP GSO)
            and coalesce arriving ones (UDP GRO), where it can (Linux); False sends and
            receives one datagram per system call.

    Seeing a connection (docs/TRACE.md):
        trace: write each connection's trace (JSON lines) to this file, or to a file of its
            own in this directory (an existing one, or a path ending in "/"). None (the
            default) takes the UDPTCP_TRACE environment variable, and traces nothing if that
            is unset too.
        trace_max_bytes: a trace file this large is renamed PATH.1 and a new one begins.
        pcap: record every datagram of each connection as a UDP/IP packet in this pcap file
            (one per process); None takes UDPTCP_PCAP likewise.
        pcap_linktype: "raw" (raw IP packets) or "ethernet" (with made-up MAC addresses).
    """

    mss: int | None = None
    recv_buffer_bytes: int = 16 * 1024 * 1024
    send_buffer_bytes: int = 16 * 1024 * 1024
    rto_initial_s: float = 1.0
    rto_min_s: float = 0.2
    rto_max_s: float = 60.0
    syn_retries: int = 6
    retries: int = 15
    msl_s: float = 30.0
    fin_wait_2_timeout_s: float = 60.0
    delayed_ack_s: float = 0.04
    quick_acks: int = 16
    congestion_control: str = "cubic"
    initial_window_segments: int = 10
    sack: bool = True
    timestamps: bool = True
    pacing: bool = True
    keepalive_s: float | None = None
    keepalive_interval_s: float = 10.0
    keepalive_probes: int = 5
    user_timeout_s: float | None = None
    backlog: int = 128
    memory_limit_bytes: int = 256 * 1024 * 1024
    socket_buffer_bytes: int = 4 * 1024 * 1024
    shutdown_linger_s: float | None = None
    gso: bool = True
    gro: bool = True
    trace: str | None = None
    trace_max_bytes: int = 256 * 1024 * 1024
    pcap: str | None = None
    pcap_linktype: str = "raw"

    def __post_init__(self) -> None:
        for name, kind, optional in _FIELD_KINDS:
            _check_type(name, getattr(self, name), kind, optional)
        if self.mss is not None:
            _at_least("mss", self.mss, MIN_MSS)
            _at_most("mss", self.mss, MAX_MSS)
        _at_least("recv_buffer_bytes", self.recv_buffer_bytes, self.initial_mss)
        _at_most("recv_buffer_bytes", self.recv_buffer_bytes, MAX_WINDOW_BYTES)
        _at_least("send_buffer_bytes", self.send_buffer_bytes, 1)
        _above("rto_min_s", self.rto_min_s, 0.0)
        _at_least("rto_initial_s", self.rto_initial_s, self.rto_min_s)
        _at_least("rto_max_s", self.rto_max_s, self.rto_initial_s)
        _at_least("syn_retries", self.syn_retries, 0)
        _at_least("retries", self.retries, 1)
        _at_least("msl_s", self.msl_s, 0.0)
        _at_least("fin_wait_2_timeout_s", self.fin_wait_2_timeout_s, 0.0)
        _at_least("delayed_ack_s", self.delayed_ack_s, 0.0)
        _at_most("delayed_ack_s", self.delayed_ack_s, 0.5)  # RFC 9293 3.8.6.3
        _at_least("quick_acks", self.quick_acks, 0)
        if self.congestion_control not in CONTROLLERS:
            raise ValueError(
                f"congestion_control must be one of {', '.join(CONTROLLERS)}, "
                f"got {self.congestion_control!r}"
            )
        _at_least("initial_window_segments", self.initial_window_segments, 1)
        if self.keepalive_s is not None:
            _above("keepalive_s", self.keepalive_s, 0.0)
        _above("keepalive_interval_s", self.keepalive_interval_s, 0.0)
        _at_least("keepalive_probes", self.keepalive_probes, 1)
        if self.user_timeout_s is not None:
            _above("user_timeout_s", self.user_timeout_s, 0.0)
        _at_least("backlog", self.backlog, 1)
        _at_least("memory_limit_bytes", self.memory_limit_bytes, MIN_MEMORY_LIMIT_BYTES)
        _at_least("socket_buffer_bytes", self.socket_buffer_bytes, 4096)
        _at_most("socket_buffer_bytes", self.socket_buffer_bytes, MAX_SOCKET_BUFFER_BYTES)
        if self.shutdown_linger_s is not None:
            _at_least("shutdown_linger_s", self.shutdown_linger_s, 0.0)
        _at_least("trace_max_bytes", self.trace_max_bytes, MIN_TRACE_BYTES)
        if self.pcap_linktype not in PCAP_LINKTYPES:
            raise ValueError(
                f"pcap_linktype must be one of {', '.join(PCAP_LINKTYPES)}, got {self.pcap_linktype!r}"
            )

    @property
    def discovers_mss(self) -> bool:
        """The segment size is left to path-MTU discovery (``mss`` is None)."""
        return self.mss is None

    @property
    def initial_mss(self) -> int:
        """The segment size a connection starts with."""
        return DEFAULT_MSS if self.mss is None else self.mss

    @property
    def announced_mss(self) -> int:
        """The MSS option of our SYN: the largest segment we accept."""
        return MAX_MSS if self.mss is None else self.mss

    @property
    def time_wait_s(self) -> float:
        """How long TIME_WAIT lasts: twice the maximum segment lifetime."""
        return 2.0 * self.msl_s

    def replace(self, **options: Any) -> Config:
        """A copy with some options changed; unknown names raise ``TypeError``."""
        _check_names(options)
        return dataclasses.replace(self, **options)

    @classmethod
    def from_options(cls, config: Config | None = None, **options: Any) -> Config:
        """Build from an optional base ``config`` and keyword options, checking every name."""
        if config is not None and not isinstance(config, Config):
            raise TypeError(f"config must be a udptcp.Config, got {type(config).__name__}")
        base = config if config is not None else DEFAULT_CONFIG
        if not options:
            return base
        key = tuple((name, type(value), value) for name, value in options.items())
        try:
            return _derived_from_default(key) if base is DEFAULT_CONFIG else _derived(base, key)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
            return base.replace(**options)  # validation will name the option's wrong type


@functools.lru_cache(maxsize=CONFIGS_REMEMBERED)
def _derived(base: Config, options: tuple[tuple[str, type, Any], ...]) -> Config:
    """``base`` with ``options``, remembered: a program passes the same keyword options to every
    ``open_connection``, and building and checking a configuration costs more than the rest of
    opening one. The key holds each value's type, so ``1`` and ``True`` are not confused."""
    return base.replace(**{name: value for name, _, value in options})


@functools.lru_cache(maxsize=CONFIGS_REMEMBERED)
def _derived_from_default(options: tuple[tuple[str, type, Any], ...]) -> Config:
    """``_derived`` of the default configuration, the common case, remembered by the options
    alone: hashing a configuration (every one of its fields) costs more than the lookup."""
    return DEFAULT_CONFIG.replace(**{name: value for name, _, value in options})


_NAMES = tuple(f.name for f in fields(Config))
_FIELD_KINDS = tuple(
    (f.name, str(f.type).split(" |", 1)[0], "None" in str(f.type)) for f in fields(Config)
)
"""Each option's name, base type name and whether it may be None: worked out once, because a
configuration is checked for every connection opened."""


def _check_names(options: dict[str, Any]) -> None:
    for name in options:
        if name not in _NAMES:
            close = difflib.get_close_matches(name, _NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known options: {', '.join(_NAMES)}"
            raise TypeError(f"unknown udptcp option {name!r}{hint}")


def _check_type(name: str, value: object, kind: str, optional: bool) -> None:
    if value is None:
        if not optional:
            raise TypeError(f"{name} must not be None")
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    elif kind == "str" and not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")


def _at_most(name: str, value: float, high: float) -> None:
    if value > high:
        raise ValueError(f"{name} must be at most {high}, got {value}")


def _above(name: str, value: float, low: float) -> None:
    if not value > low:
        raise ValueError(f"{name} must be greater than {low}, got {value}")


DEFAULT_CONFIG = Config()
"""Every default (the class is frozen, so one instance serves every connection that asks)."""
