"""Where trace lines go: one file per destination, shared by the connections that write to it,
bounded in size by rotation.

``trace=PATH`` names a file (every connection of the process appends its events, each line
naming its connection) or a directory (a file per connection). A file that reaches
``trace_max_bytes`` is renamed PATH.1 (replacing an older one) and a new PATH begins, with the
header of each connection still writing to it, so a trace never holds more than about twice
the limit on disk, the newest events are always kept, and each part reads on its own.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path
from typing import IO, Any

from udptcp.log import get_logger
from udptcp.trace.schema import ROTATED_SUFFIX

TRACE_ENV = "UDPTCP_TRACE"
"""The environment variable that turns tracing on for a program that cannot be changed."""
PCAP_ENV = "UDPTCP_PCAP"
"""The environment variable that turns the pcap capture on likewise."""

_open_sinks: dict[Path, TraceSink] = {}
_encode = json.JSONEncoder(separators=(",", ":")).encode
"""One compact encoder for every line (``json.dumps`` with options builds one per call)."""


class TraceSink:
    """One trace file, written in lines, rotated at ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.users = 0
        self.failed = False
        self._file: IO[str] | None = None
        self._size = 0
        self._headers: dict[str, dict[str, Any]] = {}

    def write(self, event: dict[str, Any]) -> None:
        """Append one event as a line. A file that cannot be written (no such directory, no
        room) is reported once and the trace dropped: tracing never fails a connection."""
        if self.failed:
            return
        if event["type"] == "connection":
            self._headers[event["cid"]] = event
        line = _encode(event) + "\n"
        try:
            file = self._file
            if file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                file = self._file = self.path.open("a", encoding="utf-8")
                self._size = file.tell()
            elif self._size + len(line) > self.max_bytes:
                file = self._rotate(event)
            file.write(line)
        except OSError as exc:
            self._fail(exc)
            return
        self._size += len(line)

    def _fail(self, exc: OSError) -> None:
        self.failed = True
        get_logger().warning(
            "cannot write the trace; tracing stops for the connections writing to it",
            path=str(self.path), error=exc.strerror or str(exc),
        )

    def _rotate(self, event: dict[str, Any]) -> IO[str]:
        """PATH becomes PATH.1; the new PATH starts with a marker and the header of every
        connection still writing here, so that each part can be read on its own."""
        assert self._file is not None
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ROTATED_SUFFIX))
        file = self._file = self.path.open("w", encoding="utf-8")
        lines = [_encode({"t": event["t"], "cid": event["cid"], "type": "rotated"}) + "\n"]
        lines += [_encode(header) + "\n" for header in self._headers.values()]
        file.writelines(lines)
        self._size = sum(map(len, lines))
        return file

    def forget(self, cid: str) -> None:
        """Connection ``cid`` has ended: no header of it in later parts."""
        self._headers.pop(cid, None)

    def flush(self) -> None:
        """Push what is buffered to the file (at state changes and at the end)."""
        if self._file is not None and not self.failed:
            try:
                self._file.flush()
            except OSError as exc:
                self._fail(exc)

    def release(self) -> None:
        """A connection is done with this sink; the last one closes the file."""
        self.users -= 1
        if self.users <= 0:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    self._fail(exc)
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
