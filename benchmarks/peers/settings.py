"""What the harness chooses for the configurable peers (aioquic, KCP): their settings, and the
profiles each benchmark measures them with.

A peer driven below its capability flatters udptcp, so every choice the harness makes for a peer
sits here, in one place, and goes into the reports. Each profile is the fastest configuration
found for its benchmark on this project's machine (the sweeps are in ``RESULTS.md``, section
3). The peers receive their settings as JSON (``--settings``); this module imports neither
aioquic nor kcp, so the harness can describe a profile where the optional packages are missing.
"""

from __future__ import annotations

import dataclasses
import json
import math

KCP_INITIAL_RTO_MS = 200
"""ikcp.c's RTO before the first RTT sample (IKCP_RTO_DEF)."""


@dataclasses.dataclass(frozen=True)
class QuicSettings:
    """The aioquic configuration of both ends (the defaults are aioquic's own)."""

    congestion_control: str = "reno"
    max_datagram_bytes: int = 1200
    flow_control_window_bytes: int = 1 << 20
    """Connection and stream flow-control limits (``max_data``, ``max_stream_data``)."""

    def describe(self) -> str:
        """The settings in a report's words."""
        return (f"{self.congestion_control}, {self.max_datagram_bytes} B datagrams, "
                f"{self.flow_control_window_bytes >> 20} MiB flow-control windows")


@dataclasses.dataclass(frozen=True)
class KcpSettings:
    """The ikcp.c parameters of both ends, and the cadence at which our glue drives them."""

    mtu_bytes: int = 1400
    nodelay: bool = True
    """ikcp_nodelay's first argument: minimum RTO 30 ms instead of 100, gentler RTO backoff."""
    interval_ms: int = 10
    """KCP's internal flush interval (ikcp_update flushes at most this often)."""
    resend: int = 2
    """Fast retransmit after this many acks for later segments (0: off)."""
    no_congestion_control: bool = True
    send_window: int = 1024
    """Segments in flight at most (with congestion control on: the cap of its window)."""
    receive_window: int = 1024
    message_bytes: int = 16 * 1024
    """The sender enqueues messages of this size (KCP splits them into segments)."""
    tick_ms: float = 5.0
    """How often the ticker calls update() (KCP only advances its timers then)."""
    ack_each_datagram: bool = False
    """The receiver sends its acks right after each datagram, not once per loop turn."""

    def describe(self) -> str:
        """The settings in a report's words."""
        mode = "no CC" if self.no_congestion_control else "CC on"
        acks = "acks after each datagram" if self.ack_each_datagram else "acks once per loop turn"
        return (f"{mode}, nodelay {int(self.nodelay)}, interval {self.interval_ms} ms, resend {self.resend}, "
                f"wnd {self.send_window}/{self.receive_window}, mtu {self.mtu_bytes}, "
                f"{self.message_bytes // 1024} KiB messages, update every {self.tick_ms:g} ms, {acks}")


Settings = QuicSettings | KcpSettings

# benchmarks.compare, loopback.
QUIC_LOOPBACK = QuicSettings(max_datagram_bytes=1400)
"""The same datagram size as udptcp's default segments and KCP's MTU (aioquic's default is 1200)."""
QUIC_LOOPBACK_LARGE = QuicSettings(max_datagram_bytes=16384)
"""The largest datagrams with which aioquic 1.7.2 completed a transfer here (24 KiB and up hang)."""
KCP_LOOPBACK = KcpSettings(send_window=128, receive_window=128)
"""Fast mode; 128 rather than 1024 segments in flight: ikcp.c walks the whole send buffer on
every flush and ack, which costs the stock loop (one datagram per turn) about a sixth."""
KCP_LOOPBACK_LARGE = KcpSettings(mtu_bytes=65000, message_bytes=256 * 1024, send_window=64,
                                 receive_window=128)
"""Datagrams as large as udptcp's ``--mss 65000`` ones; 64 of them fill the 4 MiB socket buffers."""

# benchmarks.lossy, impaired paths.
QUIC_PATH = QuicSettings(congestion_control="cubic", max_datagram_bytes=1400,
                         flow_control_window_bytes=4 << 20)
"""CUBIC backs off less than aioquic's default Reno, 1400-byte datagrams carry 17 % more per
packet (both grow the window faster after a loss), and 4 MiB windows stay above what a 100 ms path
holds in flight: 6.9 instead of 5.0 Mbit/s at 20 ms and 1 % loss, 44.6 instead of 37.5 at 100 ms."""
KCP_NORMAL = KcpSettings(no_congestion_control=False, ack_each_datagram=True)
"""Normal mode: KCP's congestion control on. Its window grows per ack datagram, and a lost ack
datagram loses every ack in it, so one ack per datagram delivers 1.4-1.7x more at 1-5 % loss."""


def kcp_fast_for(rtt_ms: float, rate_mbit: float, mtu_bytes: int = 1400) -> KcpSettings:
    """Fast mode (no congestion control) tuned to a path: KCP then sends a full window whatever
    the path, so the window must fit it.

    - The send window is 1.1 bandwidth-delay products of datagrams, rounded up to a multiple of
      64 and at least 128 (KCP's default receive window): 128 at 20 ms and 512 at 100 ms on a
      50 Mbit/s path. Larger windows overflow the bottleneck queue (at 20 ms, 1024 segments
      deliver 7.5 Mbit/s instead of 48), smaller ones leave it idle.
    - nodelay (30 ms minimum RTO, timers backed off by half) only while the first window has
      drained through the bottleneck well within KCP's initial 200 ms RTO: otherwise its tail is
      sent again, the duplicates' acks yield short RTT samples, and spurious retransmissions feed
      themselves (at 100 ms, 0 % loss: 32 Mbit/s with nodelay, 38-44 without).
    """
    bdp_datagrams = rate_mbit * 1e6 / 8 * rtt_ms / 1000 / mtu_bytes
    window = max(128, 64 * math.ceil(1.1 * bdp_datagrams / 64))
    drain_ms = window * mtu_bytes * 8 / (rate_mbit * 1e6) * 1000
    return KcpSettings(mtu_bytes=mtu_bytes, send_window=window,
                       nodelay=rtt_ms + drain_ms < 0.75 * KCP_INITIAL_RTO_MS)


def encode(settings: Settings) -> str:
    """The ``--settings`` argument of a peer."""
    return json.dumps(dataclasses.asdict(settings))
