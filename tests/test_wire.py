"""The wire codec: the public contract of ``udptcp.wire``."""

from __future__ import annotations

import contextlib
import struct
import zlib
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from udptcp.wire import (
    HEADER_LEN,
    MAX_OPTIONS_LEN,
    VERSION,
    Flags,
    MalformedSegment,
    Segment,
    decode_datagram,
    decode_segment,
    encode_timestamps_option,
)

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
    mtu_probe_permitted=st.booleans(),
    mtu_probe=st.none() | u32,
    mtu_probe_ack=st.none() | u32,
)


@given(segments)
def test_encode_decode_round_trips(seg: Segment) -> None:
    assert Segment.decode(seg.encode()) == seg


@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_raises_only_malformed_segment(data: bytes) -> None:
    with contextlib.suppress(MalformedSegment):
        Segment.decode(data)


def _datagram(version: int, words: int, flags: int, seq: int, ack: int, window: int,
              rest: bytes) -> bytes:
    """A datagram with a valid checksum whatever its fields: CRC32 over octets [0, 16), then
    everything after the checksum field, as ``decode_datagram`` checks it."""
    prefix = struct.pack("!BBHIII", version, words, flags, seq, ack, window)
    return prefix + struct.pack("!I", zlib.crc32(rest, zlib.crc32(prefix))) + rest


_well_formed_option = st.one_of(
    st.sampled_from([b"\x01", bytes([4, 2])]),  # NOP, SACK-permitted
    st.integers(0, 0xFFFF).map(lambda mss: bytes([2, 4]) + struct.pack("!H", mss)),
    st.lists(st.tuples(u32, u32), max_size=5).map(
        lambda blocks: bytes([5, 2 + 8 * len(blocks)]) + b"".join(struct.pack("!II", *b) for b in blocks)
    ),
    st.tuples(u32, u32).map(lambda ts: bytes([8, 10]) + struct.pack("!II", *ts)),
    st.tuples(st.sampled_from([2, 4, 5, 8]) | st.integers(0, 255), st.binary(max_size=12)).map(
        lambda kind_body: bytes([kind_body[0], 2 + len(kind_body[1])]) + kind_body[1]
    ),  # a known kind with any body, or any kind
)
"""One option laid out as RFC 9293 has it (its content may still be invalid: MSS 0, no SACK
blocks, a known kind with the wrong length)."""
_option_octets = st.one_of(
    st.lists(_well_formed_option, max_size=6),
    st.lists(_well_formed_option | st.just(b"\x00") | st.binary(min_size=1, max_size=6), max_size=8),
).map(b"".join)
"""Options mostly well laid out, so that the parser reaches every option, else mixed with EOL
and octets of any value (lengths that do not fit)."""


def _mostly(usual: object, rarely: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` seven times in eight, else a draw from ``rarely``."""
    return st.integers(0, 7).flatmap(lambda i: rarely if i == 0 else st.just(usual))


@settings(max_examples=500)  # cheap; enough draws to cut every kind of option short often
@given(
    version=_mostly(VERSION, st.integers(0, 255)),
    words_off_by=st.just(0) | st.integers(-3, 2),
    flags=st.integers(0, 0xFFFF),
    seq=u32,
    ack=u32,
    window=u32,
    options=_option_octets,
    payload=st.binary(max_size=40),
)
def test_checksummed_datagrams_with_any_options_decode_consistently_or_raise_malformed(
    version: int, words_off_by: int, flags: int, seq: int, ack: int, window: int,
    options: bytes, payload: bytes,
) -> None:
    """Arbitrary bytes almost never carry a valid checksum, so they never reach the option
    parser; these always do. Half have a header length that covers the options (padded with
    NOPs), half one a few words off: shorter cuts options short, longer reads payload as
    options. The parser too must raise nothing else."""
    options = (options + b"\x01" * (-len(options) & 3))[:MAX_OPTIONS_LEN]
    words = min(255, max(0, (HEADER_LEN + len(options)) // 4 + words_off_by))
    datagram = _datagram(version, words, flags, seq, ack, window, options + payload)
    try:
        seg = Segment.decode(datagram)
    except MalformedSegment:
        event("rejected")
        return
    event("accepted with options" if words > HEADER_LEN // 4 else "accepted without options")
    assert (version, int(seg.flags), seg.seq, seg.ack, seg.window) == (VERSION, flags, seq, ack, window)
    assert seg.payload == datagram[words * 4 :]
    assert Segment.decode(seg.encode()) == seg


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
    return _datagram(VERSION, 5 + len(options) // 4, 0x10, 1, 2, 3, options)


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


@given(segments.filter(lambda seg: seg.timestamps is not None))
def test_decode_segment_agrees_with_the_general_decoder(seg: Segment) -> None:
    """A data segment's shape (only the aligned timestamps option) has a fast path of its own."""
    flags, seq, ack, window, payload, timestamps, options = decode_segment(seg.encode())
    assert (flags, seq, ack, window, bytes(payload), timestamps) == (
        seg.flags, seg.seq, seg.ack, seg.window, seg.payload, seg.timestamps
    )
    if options is not None:
        assert options.timestamps == seg.timestamps and (options.mss, options.sack) == (seg.mss, seg.sack)


def test_the_data_segment_fast_path_still_checks_checksum_and_version() -> None:
    rest = encode_timestamps_option(7, 9) + b"payload"
    good = _datagram(VERSION, 8, Flags.ACK, 1, 2, 3, rest)
    assert decode_segment(good)[5] == (7, 9)
    corrupt = bytearray(good)
    corrupt[-1] ^= 1
    with pytest.raises(MalformedSegment, match="checksum"):
        decode_segment(bytes(corrupt))
    with pytest.raises(MalformedSegment, match="version"):
        decode_segment(_datagram(VERSION + 1, 8, Flags.ACK, 1, 2, 3, rest))


@pytest.mark.parametrize("field", ["seq", "ack", "window"])
def test_encode_rejects_out_of_range_fields(field: str) -> None:
    values: dict[str, Any] = {"flags": Flags.ACK, "seq": 0, "ack": 0, "window": 0, field: 2**32}
    with pytest.raises(ValueError, match=f"Segment.{field}"):
        Segment(**values).encode()


def test_describe_names_the_flags() -> None:
    seg = Segment(flags=Flags.SYN | Flags.ACK, seq=1, ack=2, window=3)
    assert seg.describe() == "SYN|ACK seq=1 ack=2 win=3 len=0"
