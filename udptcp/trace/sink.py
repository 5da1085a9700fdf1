"""Where trace lines go: one file per destination, shared by the connections that write to it,
bounded in size by rotation.

``trace=PATH`` names a file (every connection of the process appends its events, each line
naming its connection) or a directory (a file per connection). A file that reaches
``trace_max_bytes`` is renamed PATH.1 (replacing an older one) and a new PATH begins, so a
trace never holds more than twice the limit on disk, and the newest events are always kept.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path
from typing import IO, Any

from udptcp.trace.schema import ROTATED_SUFFIX

TRACE_ENV = "UDPTCP_TRACE"
"""The environment variable that turns tracing on for a program that cannot be changed."""
PCAP_ENV = "UDPTCP_PCAP"
"""The environment variable that turns the pcap capture on likewise."""

_open_sinks: dict[Path, TraceSink] = {}


class TraceSink:
    """One trace file, written in lines, rotated at ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.users = 0
        self._file: IO[str] | None = None
        self._size = 0

    def write(self, event: dict[str, Any]) -> None:
        """Append one event as a line."""
        line = json.dumps(event, separators=(",", ":")) + "\n"
        file = self._file
        if file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = self._file = self.path.open("a", encoding="utf-8")
            self._size = file.tell()
        elif self._size + len(line) > self.max_bytes:
            file = self._rotate(event)
        file.write(line)
        self._size += len(line)

    def _rotate(self, event: dict[str, Any]) -> IO[str]:
        assert self._file is not None
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ROTATED_SUFFIX))
        file = self._file = self.path.open("w", encoding="utf-8")
        marker = json.dumps({"t": event["t"], "cid": event["cid"], "type": "rotated"}) + "\n"
        file.write(marker)
        self._size = len(marker)
        return file

    def flush(self) -> None:
        """Push what is buffered to the file (at state changes and at the end)."""
        if self._file is not None:
            self._file.flush()

    def release(self) -> None:
        """A connection is done with this sink; the last one closes the file."""
        self.users -= 1
        if self.users <= 0:
            if self._file is not None:
                self._file.close()
                self._file = None
            _open_sinks.pop(self.path, None)


def sink_for(destination: str, cid: str, max_bytes: int) -> TraceSink:
    """The sink a new connection ``cid`` writes to: a file of its own in a directory
    (``destination`` exists as one, or ends with a separator), else the named file."""
    path = Path(destination)
    if destination.endswith(os.sep) or path.is_dir():
        path = path / f"udptcp-{os.getpid()}-{cid}.jsonl"
    path = path.absolute()
    sink = _open_sinks.get(path)
    if sink is None:
        sink = _open_sinks[path] = TraceSink(path, max_bytes)
    sink.users += 1
    return sink


@atexit.register
def _flush_all() -> None:
    """A program may end with connections still open (TIME_WAIT cut short): keep their events."""
    for sink in list(_open_sinks.values()):
        sink.flush()
