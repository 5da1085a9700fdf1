"""The trace= and pcap= options through the public API, in one process, on every loop."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import cast

import pytest

import udptcp
from udptcp.trace.model import load, load_sides
from udptcp.trace.sink import PCAP_ENV, TRACE_ENV
from udptcp.transport import StreamTransport

WAIT_S = 10.0
PAYLOAD = bytes(range(256)) * 40  # 10 kB


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read())
    writer.close()


async def test_trace_option_records_both_ends_of_a_connection(tmp_path: Path) -> None:
    trace = str(tmp_path / "both.jsonl")  # one file: both ends of the connection in one process
    options = {"trace": trace, "pcap": str(tmp_path / "both.pcap"), "msl_s": 0.05}
    server = await udptcp.start_server(_echo, "127.0.0.1", 0, **options)  # type: ignore[arg-type]
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **options)  # type: ignore[arg-type]
        writer.write(PAYLOAD)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == PAYLOAD
        writer.close()
        stats = writer.get_extra_info("stats")
        client_endpoint = cast(StreamTransport, writer.transport)._endpoint
        assert await client_endpoint.wait_until(
            lambda: writer.get_extra_info("state") is udptcp.State.CLOSED, WAIT_S
        )
    finally:
        server.close()
        await server.wait_closed()
    sides = {side.role: side for side in load_sides([trace])}
    client = sides["client"]
    kinds = Counter(e["type"] for e in client.events)
    sent = [e for e in client.events if e["type"] == "segment" and e["dir"] == "sent"]
    final = client.events[-1]
    assert final["type"] == "stats"
    assert len(sent) == final["segments_sent"] >= stats["segments_sent"]
    assert sum(1 for e in client.events if e["type"] == "segment" and e["dir"] == "received") == (
        final["segments_received"])
    assert kinds["rtt"] >= 1 and kinds["metrics"] >= 1 and kinds["window"] >= 1
    timers = {(e["timer"], e["action"]) for e in client.events if e["type"] == "timer"}
    assert ("rto", "armed") in timers and ("close", "fired") in timers
    assert [e["call"] for e in client.events if e["type"] == "app"] == ["connect", "shutdown", "close"]
    assert [e["new"] for e in client.events if e["type"] == "state"] == [
        "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"]
    (exchange,) = load([trace])  # the two ends pair up by their ISNs
    assert exchange.a.cid == client.cid and exchange.b is not None and exchange.b.cid == sides["server"].cid
    assert not any(arrow.lost for arrow in exchange.arrows)
    assert (tmp_path / "both.pcap").stat().st_size > len(PAYLOAD) * 2


async def test_untraced_connections_have_no_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACE_ENV, raising=False)
    monkeypatch.delenv(PCAP_ENV, raising=False)
    server = await udptcp.start_server(_echo, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await udptcp.open_connection("127.0.0.1", port)
        assert cast(StreamTransport, writer.transport).tracer is None
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unwritable_trace_is_dropped_and_the_connection_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    options = {"trace": str(blocker / "t.jsonl"), "pcap": str(blocker / "t.pcap"), "msl_s": 0.05}  # no dir
    server = await udptcp.start_server(_echo, "127.0.0.1", 0, **options)  # type: ignore[arg-type]
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await udptcp.open_connection("127.0.0.1", port, **options)  # type: ignore[arg-type]
        writer.write(PAYLOAD)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == PAYLOAD
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_bad_trace_options_are_refused() -> None:
    with pytest.raises(ValueError, match="pcap_linktype must be one of raw, ethernet"):
        udptcp.Config(pcap_linktype="wifi")
    with pytest.raises(ValueError, match="trace_max_bytes must be at least"):
        udptcp.Config(trace_max_bytes=10)
    with pytest.raises(TypeError, match="trace must be a str"):
        udptcp.Config(trace=3)  # type: ignore[arg-type]
