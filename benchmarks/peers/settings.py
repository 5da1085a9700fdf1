"""What the harness chooses for the configurable peers (aioquic, KCP), and the named profiles it measures.

A peer driven below its capability flatters udptcp, so every choice the harness makes for a peer
sits here, in one place, and goes into the reports. The peers receive a profile as JSON
(``--settings``); this module imports neither aioquic nor kcp, so the harness can describe a
profile even where the optional packages are missing.
"""

from __future__ import annotations

import dataclasses
import json


@dataclasses.dataclass(frozen=True)
class QuicSettings:
    """The aioquic configuration of both ends."""

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

    def describe(self) -> str:
        """The settings in a report's words."""
        mode = "no CC" if self.no_congestion_control else "CC on"
        return (f"nodelay {int(self.nodelay)}, interval {self.interval_ms} ms, resend {self.resend}, {mode}, "
                f"wnd {self.send_window}/{self.receive_window}, mtu {self.mtu_bytes}, "
                f"{self.message_bytes // 1024} KiB messages, update every {self.tick_ms:g} ms")


Settings = QuicSettings | KcpSettings

QUIC_PROFILES = {"defaults": QuicSettings()}
KCP_PROFILES = {
    "fast": KcpSettings(),
    "normal": KcpSettings(no_congestion_control=False),
}


def encode(settings: Settings) -> str:
    """The ``--settings`` argument of a peer."""
    return json.dumps(dataclasses.asdict(settings))
