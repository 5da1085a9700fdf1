"""Whether and where a connection is traced: the options, else the environment variables."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from udptcp.trace.pcap import pcap_for, unspecified_to_loopback
from udptcp.trace.recorder import ConnectionTracer
from udptcp.trace.sink import PCAP_ENV, TRACE_ENV, sink_for

if TYPE_CHECKING:
    from udptcp.config import Config
    from udptcp.core import Connection


def destinations(config: Config) -> tuple[str | None, str | None]:
    """(trace, pcap): the options, or UDPTCP_TRACE and UDPTCP_PCAP where an option is None."""
    trace = config.trace if config.trace is not None else os.environ.get(TRACE_ENV) or None
    pcap = config.pcap if config.pcap is not None else os.environ.get(PCAP_ENV) or None
    return trace, pcap


def tracer_for(
    conn: Connection, *, cid: str, role: str, local: tuple[Any, ...] | None, peer: tuple[Any, ...],
    trace: str | None, pcap: str | None, now: float,
) -> ConnectionTracer:
    """A tracer for a new connection, writing where ``trace`` and ``pcap`` say."""
    config = conn.config
    return ConnectionTracer(
        conn, cid=cid, role=role, local=unspecified_to_loopback(local, peer), peer=peer,
        sink=None if trace is None else sink_for(trace, cid, config.trace_max_bytes),
        pcap=None if pcap is None else pcap_for(pcap, config.pcap_linktype), now=now,
    )
