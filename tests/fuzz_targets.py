"""Fuzz targets: plain functions of one byte string, each raising only when it finds a bug.

``make fuzz`` runs them under atheris (``tests/fuzz.py``, coverage-guided, the ``fuzz``
extra); ``test_fuzz_corpus.py`` replays every input kept in ``tests/fuzz_corpus/`` through them
without atheris, so whatever the fuzzer once found stays found.

- ``decode``: the datagram decoder, given the input as it is and with its checksum made right.
  A datagram either decodes or raises ``MalformedSegment``; what decodes encodes back to a
  datagram that decodes to the same.
- ``connection``: a connection core built in any of its states (the fixtures of
  ``tests/peer.py``), then driven by the input: datagrams with valid checksums (raw headers and
  options, or segments whose numbers lie near the connection's own), timers, application
  calls. After every step: no exception but ``LocalProtocolError`` from an application call,
  every state change an edge of the table (``state.EDGES``), every datagram sent decodable,
  the buffers within their bounds.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence

from peer import (
    Peer,
    close_wait,
    closing,
    established,
    fin_wait_1,
    fin_wait_2,
    last_ack,
    listen,
    syn_received,
    syn_sent,
    time_wait,
)

from udptcp.config import Config
from udptcp.core import LocalProtocolError, StateChanged
from udptcp.core.state import EDGES
from udptcp.wire import HEADER_LEN, VERSION, MalformedSegment, Segment, decode_segment

FIXTURES: tuple[Callable[[Config], Peer], ...] = (
    listen, syn_received, syn_sent, established, fin_wait_1, fin_wait_2, close_wait, closing,
    last_ack, time_wait,
)
CONFIGS = (
    Config(sack=False, timestamps=False, pacing=False, delayed_ack_s=0.0, msl_s=30.0),
    Config(pacing=False, delayed_ack_s=0.0, mss=536),
    Config(recv_buffer_bytes=4096, send_buffer_bytes=4096),
)
"""Plain segments (the peer fixtures' own), options on with a small MSS, and the defaults with
small buffers (so that windows close)."""
_CRC = struct.Struct("!I")
_CRC_OFFSET = 16
_RELATIVE = struct.Struct("!BhhH")  # flags, seq offset, ack offset, payload length


class _Input:
    """The fuzzer's bytes, consumed from the front; zeros once they run out."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._at

    def byte(self) -> int:
        value = self._data[self._at] if self._at < len(self._data) else 0
        self._at += 1
        return value

    def take(self, size: int) -> bytes:
        chunk = self._data[self._at : self._at + size]
        self._at += size
        return chunk


def decode_target(data: bytes) -> None:
    """The input as it is (mostly a bad checksum), then with its checksum made right, so that
    the header and option parsers see it too."""
    for datagram in (data, with_valid_checksum(data)):
        try:
            seg = Segment.decode(datagram)
            decode_segment(datagram)
        except MalformedSegment:
            continue
        assert Segment.decode(seg.encode()) == seg, seg


def with_valid_checksum(raw: bytes) -> bytes:
    """``raw`` made into a datagram a connection looks at: our version, a header length that
    fits, the right checksum; everything else as the fuzzer chose it."""
    datagram = bytearray(raw.ljust(HEADER_LEN, b"\0"))
    datagram[0] = VERSION
    datagram[1] = 5 + datagram[1] % ((len(datagram) - HEADER_LEN) // 4 + 1)
    view = memoryview(datagram)
    crc = zlib.crc32(view[HEADER_LEN:], zlib.crc32(view[:_CRC_OFFSET]))
    _CRC.pack_into(datagram, _CRC_OFFSET, crc)
    return bytes(datagram)


def connection_target(data: bytes) -> None:
    given = _Input(data)
    config = CONFIGS[given.byte() % len(CONFIGS)]
    p = FIXTURES[given.byte() % len(FIXTURES)](config)
    conn = p.conn
    _check_changes(p.events)
    while given.remaining > 0:
        op = given.byte()
        kind = op % 8
        if kind < 3:
            conn.receive_datagram(with_valid_checksum(given.take(given.byte())), p.now)
        elif kind == 3:
            flags, seq_off, ack_off, size = _RELATIVE.unpack(given.take(_RELATIVE.size).ljust(7, b"\0"))
            seg = Segment(
                flags=flags & 0x1F, seq=(conn.rx.rcv_nxt + seq_off) % 2**32,
                ack=(conn.tx.una + ack_off) % 2**32, window=given.byte() << 8,
                payload=bytes(size % 2048),
                timestamps=(given.byte(), conn.neg.ts_clock(p.now)) if op & 0x80 else None,
                sack=((conn.tx.una % 2**32, (conn.tx.una + size) % 2**32),) if op & 0x40 else (),
            )
            conn.receive_datagram(seg.encode(), p.now)
        elif kind == 4:
            if conn.get_timer() is not None and op & 0x80:
                p.fire_timer()
            else:
                p.advance(given.byte() / 16)
        else:
            _application(p, op, given)
        p.events.clear()
        while (event := conn.next_event()) is not None:
            p.events.append(event)
        _check_changes(p.events)
        for datagram in conn.datagrams_to_send(p.now):
            Segment.decode(datagram)  # every datagram we send is a valid segment
        _check_bounds(p)


def _application(p: Peer, op: int, given: _Input) -> None:
    conn = p.conn
    try:
        action = (op >> 3) % 8
        if action == 0:
            conn.send(bytes(given.byte() * 16))
        elif action == 1:
            conn.shutdown()
        elif action == 2:
            conn.close()
        elif action == 3:
            conn.abort()
        elif action == 4:
            conn.pause_reading()
        elif action == 5:
            conn.resume_reading()
        elif action == 6:
            conn.set_memory_pressure(bool(op & 0x80))
        else:
            conn.connect(p.now) if op & 0x80 else conn.listen()
    except LocalProtocolError:
        pass  # a call the state does not allow: refused, as documented


def _check_changes(events: Sequence[object]) -> None:
    for event in events:
        if isinstance(event, StateChanged):
            assert (event.old, event.cause, event.new) in EDGES, event


def _check_bounds(p: Peer) -> None:
    conn, config = p.conn, p.conn.config
    rx, tx = conn.rx, conn.tx
    assert 0 <= rx.ooo_bytes <= config.recv_buffer_bytes, rx.ooo_bytes
    assert 0 <= rx.held_bytes <= config.recv_buffer_bytes, rx.held_bytes
    assert tx.pipe >= 0 and tx.una <= tx.nxt, (tx.pipe, tx.una, tx.nxt)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decode": decode_target,
    "connection": connection_target,
}
