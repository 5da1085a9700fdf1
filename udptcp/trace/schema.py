"""The trace schema (docs/TRACE.md): its version, its event types, and a checked reader.

A trace is JSON lines. Each line is one event: ``t`` (seconds of ``time.monotonic``, shared by
every process of one machine), ``cid`` (the connection id, unique in its process) and ``type``;
the rest depends on the type. Readers must ignore fields they do not know; a new field does
not change the version, a changed meaning does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

FORMAT = "udptcp-trace"
SCHEMA_VERSION = 1

EVENT_TYPES = frozenset({
    "connection",  # the first event of a connection: role, addresses, our ISN, the options
    "app",  # the application called: connect, listen, accept, shutdown, close, abort
    "segment",  # a segment sent or received, with its header and options
    "state",  # the state machine moved: old, new, cause
    "timer",  # a deadline armed, fired or cancelled
    "loss",  # a loss was detected (rto, rack, tlp, fast_retransmit), or undone (spurious)
    "rtt",  # an RTT sample and the estimator after it
    "metrics",  # cwnd, ssthresh, pacing rate, bytes in flight, the peer's window, the limit
    "window",  # the window we announce or the peer's changed
    "reset",  # the connection failed: why, and whether a RST was sent
    "stats",  # the connection's counters at its end
    "rotated",  # the trace file was rotated: earlier events are in PATH.1
})

ROTATED_SUFFIX = ".1"
"""The older part of a rotated trace file: PATH.1 holds what came before PATH."""


class TraceError(ValueError):
    """A trace file that does not follow the schema; the message names the file and line."""


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every event of a trace file (and of its rotated older part, read first), checked."""
    path = Path(path)
    older = path.with_name(path.name + ROTATED_SUFFIX)
    events: list[dict[str, Any]] = []
    for part in ([older] if older.exists() else []) + [path]:
        try:
            with part.open(encoding="utf-8") as lines:
                events.extend(_parse(part, lines))
        except OSError as exc:
            raise TraceError(f"cannot read trace {part}: {exc.strerror or exc}") from exc
    return events


def _parse(path: Path, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(
                f"{where}: not JSON ({exc.msg} at column {exc.colno}); a trace has one JSON "
                "object per line, as udptcp's trace= option writes it"
            ) from None
        yield check_event(event, where)


def check_event(event: object, where: str) -> dict[str, Any]:
    """``event`` if it is a valid event; else TraceError naming ``where``."""
    if not isinstance(event, dict):
        raise TraceError(f"{where}: an event must be a JSON object, got {type(event).__name__}")
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise TraceError(f"{where}: unknown event type {kind!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    t = event.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise TraceError(f"{where}: field 't' must be a number of seconds, got {t!r}")
    if not isinstance(event.get("cid"), str):
        raise TraceError(f"{where}: field 'cid' must be a string, got {event.get('cid')!r}")
    if kind == "connection":
        if event.get("format") != FORMAT:
            raise TraceError(f"{where}: not a udptcp trace (format {event.get('format')!r})")
        if event.get("version") != SCHEMA_VERSION:
            raise TraceError(
                f"{where}: trace schema version {event.get('version')!r}; this udptcp reads "
                f"version {SCHEMA_VERSION}"
            )
        iss = event.get("iss")
        if isinstance(iss, bool) or not isinstance(iss, int) or not 0 <= iss < 1 << 32:
            raise TraceError(f"{where}: connection field 'iss' must be a 32-bit sequence number, got {iss!r}")
        if event.get("role") not in ("client", "server"):
            raise TraceError(f"{where}: connection field 'role' must be 'client' or 'server'")
    elif kind == "segment" and "malformed" not in event:
        for name in ("seq", "ack", "win", "len"):
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TraceError(f"{where}: segment field {name!r} must be an int >= 0, got {value!r}")
        if event.get("dir") not in ("sent", "received"):
            raise TraceError(f"{where}: segment field 'dir' must be 'sent' or 'received'")
        if not isinstance(event.get("flags"), str):
            raise TraceError(f"{where}: segment field 'flags' must be a string such as 'SYN|ACK'")
    elif kind == "state" and not (isinstance(event.get("old"), str) and isinstance(event.get("new"), str)):
        raise TraceError(f"{where}: state event needs 'old' and 'new' state names")
    return event
