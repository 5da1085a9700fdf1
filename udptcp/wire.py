"""The udptcp wire format: one header, then payload, in every UDP datagram.

The layout is drawn in ``docs/PROTOCOL.md``. This module is public: tools and tests outside the
package build and parse segments with :class:`Segment`, so its names and behaviour are a contract.

The codec is pure functions over bytes. Decoding never raises anything but
:class:`MalformedSegment`, because everything a peer sends is untrusted. The hot path (the
connection core) uses :func:`decode_datagram` and :func:`encode_datagram`, which skip building
:class:`Flags` members and :class:`Segment` tuples; :meth:`Segment.encode` and
:meth:`Segment.decode` are thin wrappers over them.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from typing import Final, NamedTuple

try:  # zlib-ng's CRC-32 is the same checksum, computed with SIMD: 5x (1.4 KB) to 25x (64 KB) faster
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - where zlib-ng has no wheel, the standard library's
    from zlib import crc32

__all__ = [
    "ACK",
    "FIN",
    "HEADER_LEN",
    "MAX_OPTIONS_LEN",
    "PSH",
    "RST",
    "SYN",
    "VERSION",
    "Flags",
    "MalformedSegment",
    "Options",
    "Segment",
    "decode_datagram",
    "decode_segment",
    "encode_datagram",
    "encode_mtu_probe_option",
    "encode_options",
    "encode_sack_option",
    "encode_timestamps_option",
]

VERSION: Final = 1
"""The protocol version carried in the first octet; a datagram with another version is malformed."""

_PREFIX: Final = struct.Struct("!BBHIII")  # version, header words, flags, seq, ack, window
_CHECKSUM: Final = struct.Struct("!I")
_HEADER: Final = struct.Struct("!BBHIIII")  # the prefix, then the checksum
_TIMESTAMPED_HEADER: Final = struct.Struct("!BBHIIIIIII")
"""The header of every data segment of a connection with timestamps: the fixed header, then
only the aligned timestamps option (as a word NOP NOP kind length, TSval, TSecr)."""
_TIMESTAMPED_HEADER_WORDS: Final = 8
_TIMESTAMPED_HEADER_LEN: Final = 32
_ALIGNED_TIMESTAMPS_WORD: Final = 0x0101080A
_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")
_TIMESTAMPS: Final = struct.Struct("!II")
_SACK_BLOCK: Final = struct.Struct("!II")

HEADER_LEN: Final = 20
"""Octets in the fixed header, before any options."""
MAX_OPTIONS_LEN: Final = 255 * 4 - HEADER_LEN
"""The header length field counts 32-bit words in one octet, so options fit in 1000 octets."""

_SEQ_MASK: Final = 0xFFFFFFFF
_CRC_OFFSET: Final = 16

OPT_EOL: Final = 0
OPT_NOP: Final = 1
OPT_MSS: Final = 2
OPT_SACK_PERMITTED: Final = 4
OPT_SACK: Final = 5
OPT_TIMESTAMPS: Final = 8
OPT_MTU_PROBE_PERMITTED: Final = 40
"""In a SYN: this end answers path-MTU probes (so the peer may send them)."""
OPT_MTU_PROBE: Final = 41
"""Marks a path-MTU probe (RFC 8899 style): its payload is padding, not stream data, and it
takes no sequence space; the 4-octet value identifies it. Sent only to a peer that permitted it."""
OPT_MTU_PROBE_ACK: Final = 42
"""In an ACK: the probe with this identifier arrived."""

MAX_SACK_BLOCKS: Final = 4
"""Blocks we put in one SACK option (RFC 2018 allows as many as fit; four is TCP's usual cap)."""

MAX_SACK_BLOCKS_IN_OPTION: Final = (255 - 2) // 8
"""The option's one-octet length field limits a SACK option to 31 blocks."""

_ALIGNED_TIMESTAMPS: Final = bytes((OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10))
_ALIGNED_TIMESTAMPS_OPTION: Final = struct.Struct("!BBBBII")  # NOP, NOP, kind, length, TSval, TSecr
_SACK_OPTION_PREFIX: Final = bytes((OPT_NOP, OPT_NOP, OPT_SACK))
_MTU_PROBE_OPTION: Final = struct.Struct("!BBBBI")  # NOP, NOP, kind, length, identifier

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
"""The control bits as plain ints, at TCP's bit positions. The per-segment code tests them with
``flags & ACK``; :class:`Flags` is the same bits as an ``IntFlag`` for everything else (an
``IntFlag`` operation builds a new member in Python code, which the hot path cannot afford)."""


class Flags(enum.IntFlag):
    """Control bits, at TCP's bit positions so that captures read the same way."""

    FIN = FIN
    SYN = SYN
    RST = RST
    PSH = PSH
    ACK = ACK


class MalformedSegment(ValueError):  # noqa: N818 - the name is part of the public contract
    """A datagram that is not a valid udptcp segment (short, wrong version, bad checksum, ...)."""


class Options(NamedTuple):
    """The options a segment carries; every one is optional, as in TCP."""

    mss: int | None = None
    sack_permitted: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    timestamps: tuple[int, int] | None = None
    mtu_probe_permitted: bool = False
    mtu_probe: int | None = None
    mtu_probe_ack: int | None = None


NO_OPTIONS: Final = Options()


class Segment(NamedTuple):
    """One segment as a value. Built by keyword; cheap to build (a tuple underneath).

    ``seq``, ``ack`` and ``window`` are the raw 32-bit field values; ``window`` counts octets
    (the field is 32 bits wide, so it needs no scaling). Options default to absent.
    """

    flags: int
    """The control bits: a :class:`Flags` value (any int of those bits is accepted)."""
    seq: int
    ack: int
    window: int
    payload: bytes | memoryview = b""
    mss: int | None = None
    sack_permitted: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    timestamps: tuple[int, int] | None = None
    mtu_probe_permitted: bool = False
    mtu_probe: int | None = None
    mtu_probe_ack: int | None = None

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: payload octets, plus one each for SYN and FIN."""
        return len(self.payload) + (1 if self.flags & Flags.SYN else 0) + (
            1 if self.flags & Flags.FIN else 0
        )

    def encode(self) -> bytes:
        """The datagram for this segment."""
        for name in ("seq", "ack", "window"):
            _check_u32(f"Segment.{name}", getattr(self, name))
        for start, stop in self.sack:
            _check_u32("Segment.sack edge", start)
            _check_u32("Segment.sack edge", stop)
        if self.timestamps is not None:
            for value in self.timestamps:
                _check_u32("Segment.timestamps value", value)
        for name in ("mtu_probe", "mtu_probe_ack"):
            if getattr(self, name) is not None:
                _check_u32(f"Segment.{name}", getattr(self, name))
        options = encode_options(
            self.mss, self.sack_permitted, self.sack, self.timestamps,
            self.mtu_probe_permitted, self.mtu_probe, self.mtu_probe_ack,
        )
        return encode_datagram(int(self.flags), self.seq, self.ack, self.window, self.payload, options)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Segment:
        """Parse one datagram; raise :class:`MalformedSegment` for anything invalid."""
        flags, seq, ack, window, payload, raw_options = decode_datagram(data)
        opts = parse_options(raw_options) if raw_options else NO_OPTIONS
        return cls(
            Flags(flags), seq, ack, window, bytes(payload),
            opts.mss, opts.sack_permitted, opts.sack, opts.timestamps,
            opts.mtu_probe_permitted, opts.mtu_probe, opts.mtu_probe_ack,
        )

    def describe(self) -> str:
        """A short human-readable form for logs: ``SYN|ACK seq=1 ack=2 win=65535 len=0``."""
        names = "|".join(f.name for f in Flags if f & self.flags and f.name) or "-"
        return f"{names} seq={self.seq} ack={self.ack} win={self.window} len={len(self.payload)}"


def _check_u32(name: str, value: object) -> None:
    if not isinstance(value, int) or not 0 <= value <= _SEQ_MASK:
        raise ValueError(f"{name} must be an int in [0, 2**32), got {value!r}")


def encode_datagram(
    flags: int,
    seq: int,
    ack: int,
    window: int,
    payload: bytes | bytearray | memoryview = b"",
    options: bytes = b"",
) -> bytes:
    """Build a datagram from raw field values; ``options`` must come from :func:`encode_options`.

    The payload is copied exactly once, into the returned datagram.
    """
    prefix = _PREFIX.pack(VERSION, 5 + (len(options) >> 2), flags, seq, ack, window)
    crc = crc32(prefix)
    if options:
        crc = crc32(options, crc)
        if payload:
            crc = crc32(payload, crc)
        return b"".join((prefix, _CHECKSUM.pack(crc), options, payload))
    if payload:
        return b"".join((prefix, _CHECKSUM.pack(crc32(payload, crc)), payload))
    return prefix + _CHECKSUM.pack(crc)


def decode_datagram(
    data: bytes | bytearray | memoryview,
) -> tuple[int, int, int, int, memoryview, memoryview | None]:
    """Split a datagram into ``(flags, seq, ack, window, payload, raw_options)`` without copying.

    ``payload`` is a memoryview into ``data``; ``raw_options`` is None when the header has none.
    Raises :class:`MalformedSegment` on a short datagram, a wrong version, a bad header length
    or a bad checksum. Options are checked by :func:`parse_options`.
    """
    size = len(data)
    if size < HEADER_LEN:
        raise MalformedSegment(f"datagram of {size} octets is shorter than the {HEADER_LEN}-octet header")
    version, words, flags, seq, ack, window, checksum = _HEADER.unpack_from(data)
    if version != VERSION:
        raise MalformedSegment(f"unsupported version {version} (this is udptcp version {VERSION})")
    header_len = words << 2
    if header_len < HEADER_LEN or header_len > size:
        raise MalformedSegment(f"header length {header_len} is outside [{HEADER_LEN}, {size}]")
    view = memoryview(data)
    if crc32(view[HEADER_LEN:], crc32(view[:_CRC_OFFSET])) != checksum:
        raise MalformedSegment("checksum mismatch")
    if header_len == HEADER_LEN:
        return flags, seq, ack, window, view[HEADER_LEN:], None
    return flags, seq, ack, window, view[header_len:], view[HEADER_LEN:header_len]


def decode_segment(
    data: bytes | bytearray | memoryview,
) -> tuple[int, int, int, int, memoryview, tuple[int, int] | None, Options | None]:
    """:func:`decode_datagram` with the options parsed, as a connection's receive path wants them.

    Returns ``(flags, seq, ack, window, payload, timestamps, options)``. ``options`` is None when
    the header has none or only the aligned timestamps option, the shape of every data segment
    of a connection with timestamps: that case builds no :class:`Options` (``timestamps``
    carries the pair either way). Raises :class:`MalformedSegment` like the two parsers.
    """
    if len(data) >= _TIMESTAMPED_HEADER_LEN:  # the data segment's shape: one unpack for it all
        version, words, flags, seq, ack, window, checksum, option, tsval, tsecr = (
            _TIMESTAMPED_HEADER.unpack_from(data)
        )
        if words == _TIMESTAMPED_HEADER_WORDS and option == _ALIGNED_TIMESTAMPS_WORD and version == VERSION:
            view = memoryview(data)
            if crc32(view[HEADER_LEN:], crc32(view[:_CRC_OFFSET])) != checksum:
                raise MalformedSegment("checksum mismatch")
            return flags, seq, ack, window, view[_TIMESTAMPED_HEADER_LEN:], (tsval, tsecr), None
    flags, seq, ack, window, payload, raw = decode_datagram(data)
    if raw is None:
        return flags, seq, ack, window, payload, None, None
    timestamps = parse_timestamps_fast(raw)
    if timestamps is not None:
        return flags, seq, ack, window, payload, timestamps, None
    options = parse_options(raw)
    return flags, seq, ack, window, payload, options.timestamps, options


def encode_options(
    mss: int | None = None,
    sack_permitted: bool = False,
    sack: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
    timestamps: tuple[int, int] | None = None,
    mtu_probe_permitted: bool = False,
    mtu_probe: int | None = None,
    mtu_probe_ack: int | None = None,
) -> bytes:
    """Options as octets, padded with NOPs so the header stays a whole number of words."""
    parts: list[bytes] = []
    if timestamps is not None:
        parts.append(encode_timestamps_option(*timestamps))
    if mss is not None:
        if not 0 < mss <= 0xFFFF:
            raise ValueError(f"mss must be in [1, 65535], got {mss}")
        parts.append(bytes((OPT_MSS, 4)) + _U16.pack(mss))
    if sack_permitted:
        parts.append(bytes((OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2)))
    if sack:
        if len(sack) > MAX_SACK_BLOCKS_IN_OPTION:
            raise ValueError(f"at most {MAX_SACK_BLOCKS_IN_OPTION} SACK blocks fit one option")
        parts.append(encode_sack_option(sack))
    if mtu_probe_permitted:
        parts.append(bytes((OPT_NOP, OPT_NOP, OPT_MTU_PROBE_PERMITTED, 2)))
    if mtu_probe is not None:
        parts.append(encode_mtu_probe_option(OPT_MTU_PROBE, mtu_probe))
    if mtu_probe_ack is not None:
        parts.append(encode_mtu_probe_option(OPT_MTU_PROBE_ACK, mtu_probe_ack))
    raw = b"".join(parts)
    if len(raw) > MAX_OPTIONS_LEN:
        raise ValueError(f"options take {len(raw)} octets; at most {MAX_OPTIONS_LEN} fit")
    pad = -len(raw) & 3
    return raw + bytes((OPT_NOP,)) * pad if pad else raw


def encode_mtu_probe_option(kind: int, probe_id: int) -> bytes:
    """A path-MTU probe or probe-ACK option (``OPT_MTU_PROBE``/``OPT_MTU_PROBE_ACK``), NOP-aligned
    to 8 octets."""
    return _MTU_PROBE_OPTION.pack(OPT_NOP, OPT_NOP, kind, 6, probe_id)


def encode_timestamps_option(tsval: int, tsecr: int) -> bytes:
    """The timestamps option, NOP-aligned to 12 octets (RFC 7323 appendix A's layout).

    Every segment of a connection with timestamps carries it, so it is one precompiled pack;
    :func:`parse_timestamps_fast` recognises exactly this shape on the way in.
    """
    return _ALIGNED_TIMESTAMPS_OPTION.pack(OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10, tsval, tsecr)


def encode_sack_option(blocks: Sequence[tuple[int, int]]) -> bytes:
    """A SACK option of 32-bit ``(left, right)`` edges, NOP-aligned (2 + 8n octets after the NOPs)."""
    return (
        _SACK_OPTION_PREFIX + bytes((2 + 8 * len(blocks),))
        + b"".join([_SACK_BLOCK.pack(start, end) for start, end in blocks])
    )


def parse_timestamps_fast(raw: memoryview) -> tuple[int, int] | None:
    """The (TSval, TSecr) pair when the options are exactly the aligned timestamps option.

    This is the shape every data segment of a connection with timestamps has, so the receive
    path tries it before the general parser (as Linux's header prediction does).
    """
    if len(raw) == 12 and raw[:4] == _ALIGNED_TIMESTAMPS:
        tsval, tsecr = _TIMESTAMPS.unpack_from(raw, 4)
        return tsval, tsecr
    return None


def parse_options(raw: bytes | memoryview) -> Options:
    """Parse the option octets of a header; raise :class:`MalformedSegment` if they are invalid.

    Unknown option kinds with a valid length are skipped, as TCP does.
    """
    mss: int | None = None
    sack_permitted = False
    sack: tuple[tuple[int, int], ...] = ()
    timestamps: tuple[int, int] | None = None
    mtu_probe_permitted = False
    mtu_probe: int | None = None
    mtu_probe_ack: int | None = None
    i = 0
    end = len(raw)
    while i < end:
        kind = raw[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            raise MalformedSegment(f"option kind {kind} at offset {i} has no length octet")
        length = raw[i + 1]
        if length < 2 or i + length > end:
            raise MalformedSegment(f"option kind {kind} at offset {i} has bad length {length}")
        if kind == OPT_MSS:
            if length != 4:
                raise MalformedSegment(f"MSS option has length {length}, expected 4")
            mss = _U16.unpack_from(raw, i + 2)[0]
            if mss == 0:
                raise MalformedSegment("MSS option is zero")
        elif kind == OPT_SACK_PERMITTED:
            if length != 2:
                raise MalformedSegment(f"SACK-permitted option has length {length}, expected 2")
            sack_permitted = True
        elif kind == OPT_SACK:
            if (length - 2) % 8 or length == 2:
                raise MalformedSegment(f"SACK option has length {length}, not 2 + 8n with n >= 1")
            sack = tuple(
                (start, stop) for start, stop in _SACK_BLOCK.iter_unpack(raw[i + 2 : i + length])
            )
        elif kind == OPT_TIMESTAMPS:
            if length != 10:
                raise MalformedSegment(f"timestamps option has length {length}, expected 10")
            tsval, tsecr = _TIMESTAMPS.unpack_from(raw, i + 2)
            timestamps = (tsval, tsecr)
        elif kind == OPT_MTU_PROBE_PERMITTED:
            if length != 2:
                raise MalformedSegment(f"MTU-probe-permitted option has length {length}, expected 2")
            mtu_probe_permitted = True
        elif kind in (OPT_MTU_PROBE, OPT_MTU_PROBE_ACK):
            if length != 6:
                raise MalformedSegment(f"MTU probe option kind {kind} has length {length}, expected 6")
            if kind == OPT_MTU_PROBE:
                mtu_probe = _U32.unpack_from(raw, i + 2)[0]
            else:
                mtu_probe_ack = _U32.unpack_from(raw, i + 2)[0]
        i += length
    return Options(mss, sack_permitted, sack, timestamps, mtu_probe_permitted, mtu_probe, mtu_probe_ack)
