"""The send buffer keeps writes as chunks: what it hands out must be the stream, whatever the
mix of write sizes, acknowledgements and lookups."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from udptcp.core.sendbuffer import CHUNK_BYTES, COMPACT_AFTER_CHUNKS, SendBuffer

START = 1000


def test_a_large_bytes_write_is_kept_without_a_copy() -> None:
    buf = SendBuffer(START)
    data = bytes(CHUNK_BYTES)
    buf.append(data)
    view = buf.take(START, START + 100)
    assert isinstance(view, memoryview) and view.obj is data


def test_a_large_view_of_bytes_is_kept_without_a_copy_and_other_views_are_copied() -> None:
    buf = SendBuffer(START)
    block = bytes(range(256)) * (CHUNK_BYTES // 128)
    buf.append(memoryview(block)[:CHUNK_BYTES])
    mutable = bytearray(CHUNK_BYTES)
    buf.append(memoryview(mutable))
    mutable[0] = 1
    first = buf.take(START, START + 10)
    assert isinstance(first, memoryview) and first.obj is block
    assert bytes(buf.take(START + CHUNK_BYTES, START + CHUNK_BYTES + 1)) == b"\0"


def test_a_view_the_writer_releases_after_writing_stays_readable() -> None:
    buf = SendBuffer(START)
    block = bytes(range(256)) * (CHUNK_BYTES // 256)
    view = memoryview(block)
    buf.append(view)
    view.release()  # the writer's view, not ours
    assert bytes(buf.take(START + 1, START + 3)) == bytes([1, 2])


def test_a_view_of_wider_items_counts_octets() -> None:
    buf = SendBuffer(START)
    buf.append(memoryview(bytes(8)).cast("I"))  # two 4-octet items
    assert buf.size == 8


def test_small_writes_share_a_chunk_and_are_copied() -> None:
    buf = SendBuffer(START)
    first = bytearray(b"abc")
    buf.append(first)
    buf.append(memoryview(b"def"))
    first[0] = ord("z")  # the caller may reuse its buffer at once
    view = buf.take(START, START + 6)
    assert isinstance(view, memoryview) and bytes(view) == b"abcdef"


def test_a_segment_across_chunks_is_joined() -> None:
    buf = SendBuffer(START)
    buf.append(b"a" * CHUNK_BYTES)
    buf.append(b"b" * CHUNK_BYTES)
    piece = buf.take(START + CHUNK_BYTES - 2, START + CHUNK_BYTES + 2)
    assert isinstance(piece, bytes) and piece == b"aabb"


def test_a_small_write_while_a_view_of_the_shared_chunk_lives_starts_another() -> None:
    buf = SendBuffer(START)
    buf.append(b"abc")
    view = buf.take(START, START + 3)  # a datagram being built from it
    buf.append(b"def")
    assert bytes(view) == b"abc" and bytes(buf.take(START, START + 6)) == b"abcdef"


def test_take_clips_at_the_end_and_gives_nothing_past_it() -> None:
    buf = SendBuffer(START)
    buf.append(b"abc")
    assert bytes(buf.take(START + 1, START + 10)) == b"bc"
    assert buf.take(START + 3, START + 4) == b""  # a FIN's sequence number carries no data


def test_acknowledged_chunks_are_released_and_the_lists_compacted() -> None:
    buf = SendBuffer(START)
    chunks = [bytes([i]) * CHUNK_BYTES for i in range(3 * COMPACT_AFTER_CHUNKS)]
    for chunk in chunks:
        buf.append(chunk)
    at = START + 2 * COMPACT_AFTER_CHUNKS * CHUNK_BYTES + 5
    buf.trim_to(at)
    assert buf.start == at and buf.size == COMPACT_AFTER_CHUNKS * CHUNK_BYTES - 5
    assert len(buf._chunks) == COMPACT_AFTER_CHUNKS  # the released slots went away
    assert bytes(buf.take(at, at + 3)) == bytes([2 * COMPACT_AFTER_CHUNKS]) * 3
    buf.trim_to(buf.end + 100)  # an ACK past the data (of a FIN) releases everything
    assert buf.size == 0 and buf._chunks == [] and buf.start == START + len(chunks) * CHUNK_BYTES


writes = st.lists(
    st.tuples(
        st.sampled_from(["bytes", "bytearray", "memoryview"]),
        st.integers(1, 3 * CHUNK_BYTES // 2),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(writes, st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.booleans()), max_size=30))
def test_the_buffer_is_the_stream_under_any_writes_trims_and_takes(
    kinds_and_sizes: list[tuple[str, int]], steps: list[tuple[float, float, bool]]
) -> None:
    buf = SendBuffer(START)
    model = bytearray()
    for i, (kind, size) in enumerate(kinds_and_sizes):
        data = bytes((i * 7 + j) % 251 for j in range(size % 997)) * (size // 997 + 1)
        data = data[:size]
        buf.append(data if kind == "bytes" else bytearray(data) if kind == "bytearray" else memoryview(data))
        model += data
    base = START
    for a, b, trim in steps:
        lo = base + int(a * len(model))
        if trim:
            buf.trim_to(lo)
            del model[: lo - base]
            base = lo
        else:
            hi = lo + int(b * (base + len(model) - lo)) + 1
            assert bytes(buf.take(lo, hi)) == bytes(model[lo - base : hi - base])
        assert (buf.start, buf.size) == (base, len(model))
