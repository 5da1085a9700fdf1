"""The wire codec: the public contract of ``udptcp.wire``."""

from __future__ import annotations

import contextlib
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udptcp.wire import HEADER_LEN, Flags, MalformedSegment, Segment, decode_datagram

u32 = st.integers(min_value=0, max_value=2**32 - 1)
segments = st.builds(
    Segment,
    flags=st.sampled_from(list(Flags)).map(Flags) | st.integers(0, 0x1F).map(Flags),
    seq=u32,
    ack=u32,
    window=u32,
    payload=st.binary(max_size=2000),
    mss=st.none() | st.integers(1, 0xFFFF),
    sack_permitted=st.booleans(),
    sack=st.lists(st.tuples(u32, u32), max_size=4).map(tuple),
    timestamps=st.none() | st.tuples(u32, u32),
)


@given(segments)
def test_encode_decode_round_trips(seg: Segment) -> None:
    assert Segment.decode(seg.encode()) == seg


@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_raises_only_malformed_segment(data: bytes) -> None:
    with contextlib.suppress(MalformedSegment):
        Segment.decode(data)


@given(segments, st.data())
def test_any_single_bit_flip_is_detected(seg: Segment, data: st.DataObject) -> None:
    raw = bytearray(seg.encode())
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit >> 3] ^= 1 << (bit & 7)
    with pytest.raises(MalformedSegment):
        Segment.decode(bytes(raw))


def test_basic_segment_is_a_bare_20_octet_header_plus_payload() -> None:
    seg = Segment(flags=Flags.SYN | Flags.ACK, seq=7, ack=9, window=65535, payload=b"hi")
    raw = seg.encode()
    assert len(raw) == HEADER_LEN + 2
    version, words, flags, seq, ack, window, crc = struct.unpack("!BBHIIII", raw[:20])
    assert (version, words, flags, seq, ack, window) == (1, 5, 0x12, 7, 9, 65535)
    assert crc == zlib.crc32(raw[20:], zlib.crc32(raw[:16]))
    assert raw[20:] == b"hi"
    assert Segment.decode(raw) == seg


def test_segment_defaults_and_seg_len() -> None:
    seg = Segment(flags=Flags.SYN | Flags.FIN, seq=1, ack=0, window=0, payload=b"abc")
    assert seg.mss is None and seg.sack == () and seg.timestamps is None
    assert seg.seg_len == 5
    assert Segment(flags=Flags.ACK, seq=1, ack=0, window=0).seg_len == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than"),
        (b"\x01" * 19, "shorter than"),
        (bytes([2, 5]) + bytes(18), "unsupported version 2"),
        (bytes([1, 4]) + bytes(18), "header length 16"),
        (bytes([1, 6]) + bytes(18), "header length 24"),
        (bytes([1, 5]) + bytes(18), "checksum mismatch"),
    ],
)
def test_malformed_headers_are_rejected_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(MalformedSegment, match=message):
        Segment.decode(data)


def _with_options(options: bytes) -> bytes:
    prefix = struct.pack("!BBHIII", 1, 5 + len(options) // 4, 0x10, 1, 2, 3)
    crc = zlib.crc32(options, zlib.crc32(prefix))
    return prefix + struct.pack("!I", crc) + options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (bytes([2, 3, 0, 0]), "MSS option has length 3"),
        (bytes([2, 4, 0, 0]), "MSS option is zero"),
        (bytes([5, 2, 1, 1]), "SACK option has length 2"),
        (bytes([8, 9, 0, 0]) + bytes(8), "timestamps option has length 9"),
        (bytes([99, 1, 1, 1]), "bad length 1"),
        (bytes([30, 30, 0, 0]), "bad length 30"),
        (bytes([1, 1, 1, 2]), "has no length octet"),
    ],
)
def test_malformed_options_are_rejected(options: bytes, message: str) -> None:
    with pytest.raises(MalformedSegment, match=message):
        Segment.decode(_with_options(options))


def test_unknown_options_and_eol_are_skipped() -> None:
    options = bytes([99, 4, 0xAB, 0xCD, 2, 4, 0x05, 0xB4, 0, 0xFF, 0xFF, 0xFF])
    seg = Segment.decode(_with_options(options))
    assert seg.mss == 1460


def test_decode_datagram_does_not_copy_the_payload() -> None:
    raw = Segment(flags=Flags.ACK, seq=1, ack=2, window=3, payload=b"x" * 100).encode()
    *_, payload, options = decode_datagram(raw)
    assert isinstance(payload, memoryview) and payload.obj is raw
    assert options is None and bytes(payload) == b"x" * 100


@pytest.mark.parametrize("field", ["seq", "ack", "window"])
def test_encode_rejects_out_of_range_fields(field: str) -> None:
    values: dict[str, Any] = {"flags": Flags.ACK, "seq": 0, "ack": 0, "window": 0, field: 2**32}
    with pytest.raises(ValueError, match=f"Segment.{field}"):
        Segment(**values).encode()


def test_describe_names_the_flags() -> None:
    seg = Segment(flags=Flags.SYN | Flags.ACK, seq=1, ack=2, window=3)
    assert seg.describe() == "SYN|ACK seq=1 ack=2 win=3 len=0"
