"""The heap trimmer (``udptcp.heap``): when it trims, and that a trim returns freed memory
to the system (glibc); the endpoints report what their connections give back."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from pathlib import Path

import pytest

import udptcp
import udptcp.endpoint as endpoint_module
from udptcp.heap import (
    MIN_INTERVAL_S,
    MMAP_THRESHOLD_BYTES,
    RELEASED_BYTES,
    TRIM_THRESHOLD_BYTES,
    TRIMMER,
    Trimmer,
    tune_allocator,
)

WAIT_S = 30.0
MIB = 1024 * 1024


class FakeTrim:
    """Stands for malloc_trim: counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pad: int) -> int:
        assert pad == 0  # trim everything
        self.calls += 1
        return 1


def test_a_trim_follows_enough_released_octets_at_most_once_an_interval() -> None:
    now = [100.0]
    trim = FakeTrim()
    trimmer = Trimmer(trim, clock=lambda: now[0])
    trimmer.released(RELEASED_BYTES - 1)
    assert trim.calls == 0  # not worth it yet
    trimmer.released(1)
    assert trim.calls == 1
    trimmer.released(RELEASED_BYTES)  # enough again, but too soon after the last
    assert trim.calls == 1
    now[0] += MIN_INTERVAL_S
    trimmer.released(1)  # what was released meanwhile still counts
    assert trim.calls == 2 and trimmer.trims == 2


def test_without_malloc_trim_nothing_is_done() -> None:
    trimmer = Trimmer(None)
    trimmer.released(10 * RELEASED_BYTES)
    assert trimmer.trims == 0


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's; RSS is read from /proc",
)
def test_a_trim_returns_the_free_heap_that_glibc_keeps() -> None:
    """64 KiB blocks come from glibc's heap; every other one freed leaves 32 MiB of holes
    that glibc keeps (they are not at the top of the heap). A trim gives them back."""
    trim = TRIMMER._trim  # the process's own
    assert trim is not None, "glibc has malloc_trim"
    blocks = [os.urandom(64 * 1024) for _ in range(1024)]  # touched: resident
    del blocks[::2]
    kept = _rss_bytes()
    trim(0)
    assert kept - _rss_bytes() >= 16 * MIB
    del blocks


async def test_the_endpoints_report_what_their_connections_give_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 40 MB echo: the send buffers that fill and drain on both sides give back more than
    RELEASED_BYTES, and a trim follows."""
    trim = FakeTrim()
    monkeypatch.setattr(endpoint_module, "TRIMMER", Trimmer(trim))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 20):
            writer.write(data)
            await writer.drain()
        writer.close()

    async with await udptcp.start_server(echo, "127.0.0.1", 0, msl_s=0.05) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, msl_s=0.05)
        payload = os.urandom(40 * MIB)

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sending = asyncio.create_task(send())
        back = await asyncio.wait_for(reader.read(), WAIT_S)
        await sending
        writer.close()
    assert back == payload
    assert trim.calls >= 1


class FakeMallopt:
    """Stands for glibc's mallopt: records what was set."""

    def __init__(self) -> None:
        self.set: dict[int, int] = {}

    def __call__(self, param: int, value: int) -> int:
        self.set[param] = value
        return 1


def test_the_allocator_keeps_blocks_in_the_heap_and_its_top_unless_the_user_chose() -> None:
    mallopt = FakeMallopt()
    assert tune_allocator(mallopt, {})
    assert mallopt.set == {-3: MMAP_THRESHOLD_BYTES, -1: TRIM_THRESHOLD_BYTES}
    for choice in ({"MALLOC_TRIM_THRESHOLD_": "0"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}):
        mallopt = FakeMallopt()
        assert not tune_allocator(mallopt, choice) and mallopt.set == {}
    assert not tune_allocator(None, {})  # no glibc: nothing to do


async def test_an_endpoint_tunes_the_allocator_of_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[None] = []
    monkeypatch.setattr(endpoint_module, "tune_process_allocator", lambda: calls.append(None))
    server = await udptcp.start_server(lambda r, w: None, "127.0.0.1", 0)
    server.close()
    await server.wait_closed()
    assert calls
