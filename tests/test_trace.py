"""Traces of real connections between processes, and what ``udptcp trace`` draws from them.

The acceptance of issue 12: the textbook's ladder of a traced connection (handshake, a few KB,
half-close, close), a lost FIN and its retransmission, the summary and the time-sequence graph
of a lossy transfer against the connection's own counters, a bad trace named by its line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from procs import ENV, PROGRAMS, START_TIMEOUT_S, relay, run, server

from udptcp.trace.model import load, load_sides
from udptcp.trace.plots import seq_series
from udptcp.trace.schema import TraceError, read_events
from udptcp.trace.sink import TraceSink
from udptcp.trace.summary import summarize

FAST = ["-o", "rto_min_s=0.05"]
SVG_TEXT = "{http://www.w3.org/2000/svg}text"
HANDSHAKE = ["SYN=1, seq=x", "SYN=1, ACK=1, seq=y, ack=x+1", "ACK=1, seq=x+1, ack=y+1"]
FOUR_SEGMENT_CLOSE = [
    "FIN=1, seq=u", "ACK=1, seq=v, ack=u+1", "FIN=1, ACK=1, seq=w, ack=u+1", "ACK=1, seq=u+1, ack=w+1",
]
CLIENT_STATES = ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"]
SERVER_STATES = ["CLOSED", "LISTEN", "SYN-RCVD", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
STATE_NAMES = set(CLIENT_STATES + SERVER_STATES)


def _traced_echo(tmp_path: Path, data: bytes, *relay_specs: str, options: list[str] | None = None
                 ) -> tuple[list[Path], str]:
    """An echo of ``data`` between two processes (through a netem relay if specs are given),
    both traced into ``tmp_path``; the server is stopped gracefully so its trace is complete."""
    options = options or []
    trace_dir = f"{tmp_path}/"
    with server(["echo-server", "--trace", trace_dir, *options]) as (srv, host, port):
        if relay_specs:
            with relay(port, *relay_specs) as (netem, front):
                done = run(["echo-client", host, str(front), "--trace", trace_dir, *options],
                           input=data, capture_output=True)
                netem.send_signal(signal.SIGTERM)
                relay_summary = netem.communicate(timeout=10)[0]
        else:
            done = run(["echo-client", host, str(port), "--trace", trace_dir, *options],
                       input=data, capture_output=True)
            relay_summary = ""
        assert done.returncode == 0, done.stderr
        assert done.stdout == data
        srv.send_signal(signal.SIGTERM)
        assert srv.wait(30) == 0
    traces = sorted(tmp_path.glob("udptcp-*.jsonl"))
    assert len(traces) == 2, traces
    return traces, relay_summary


def _textbook_pair(tmp_path: Path, *relay_specs: str, size: int = 4000) -> tuple[list[Path], str]:
    """tests/programs/textbook_pair.py as two processes, traced by UDPTCP_TRACE (the library
    unchanged), through a netem relay if specs are given."""
    env = {**ENV, "UDPTCP_TRACE": f"{tmp_path}/"}
    program = [sys.executable, str(PROGRAMS / "textbook_pair.py")]
    srv = subprocess.Popen([*program, "server"], stdout=subprocess.PIPE, text=True, env=env)
    relay_summary = ""
    try:
        assert srv.stdout is not None
        line = srv.stdout.readline().strip()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])

        def client(to_port: int) -> None:
            done = subprocess.run([*program, "client", str(to_port), str(size)], env=env,
                                  capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
            assert done.returncode == 0, done.stderr

        if relay_specs:
            with relay(port, *relay_specs) as (netem, front):
                client(front)
                netem.send_signal(signal.SIGTERM)
                relay_summary = netem.communicate(timeout=10)[0]
        else:
            client(port)
        assert srv.wait(START_TIMEOUT_S) == 0
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait(5)
    traces = sorted(tmp_path.glob("udptcp-*.jsonl"))
    assert len(traces) == 2, os.listdir(tmp_path)
    return traces, relay_summary


def _svg_texts(path: Path) -> list[str]:
    return ["".join(el.itertext()) for el in ET.parse(path).iter(SVG_TEXT)]


def _in_order(wanted: list[str], texts: list[str]) -> bool:
    """``wanted`` appears in ``texts`` in this order (others may come between)."""
    it = iter(texts)
    return all(any(text == item for text in it) for item in wanted)


@pytest.mark.process
def test_ladder_of_a_real_connection_reads_as_the_textbook(tmp_path: Path) -> None:
    traces, _ = _textbook_pair(tmp_path)  # 4 KB, half-close, close
    svg = tmp_path / "ladder.svg"
    done = run(["trace", "ladder", *map(str, traces), "-o", str(svg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    texts = _svg_texts(svg)
    assert _in_order(HANDSHAKE + FOUR_SEGMENT_CLOSE, texts), texts
    states = [text for text in texts if text in STATE_NAMES]
    assert states == CLIENT_STATES + SERVER_STATES, states  # A's line, then B's, each in order
    assert "wait 2MSL" in texts
    assert _in_order(["connect()", "accept()", "shutdown()", "close()"], texts) and "listen()" in texts
    assert not any("lost" in text or "retransmission" in text for text in texts)
    relative = tmp_path / "relative.svg"
    assert run(["trace", "ladder", *map(str, traces), "-o", str(relative), "--numbers", "relative"],
               capture_output=True).returncode == 0
    assert _in_order(["SYN=1, seq=0", "SYN=1, ACK=1, seq=0, ack=1", "ACK=1, seq=1, ack=1"],
                     _svg_texts(relative))
    png = tmp_path / "ladder.png"
    assert run(["trace", "ladder", *map(str, traces), "-o", str(png)], capture_output=True).returncode == 0
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.process
def test_ladder_shows_a_lost_fin_and_its_retransmission(tmp_path: Path) -> None:
    traces, relay_summary = _textbook_pair(tmp_path, "--up", "drop-flags=FIN:1")
    assert "dropped_flag=1" in relay_summary, relay_summary
    svg = tmp_path / "ladder.svg"
    assert run(["trace", "ladder", *map(str, traces), "-o", str(svg)], capture_output=True).returncode == 0
    fins = [text for text in _svg_texts(svg) if text.startswith("FIN=1, seq=u")]
    assert fins[0] == "FIN=1, seq=u (lost)", fins
    assert fins[1].startswith("FIN=1, seq=u (retransmission: ") and "lost" not in fins[1], fins
    exchange = load(traces)[0]
    lost = [arrow for arrow in exchange.arrows if arrow.lost]
    assert [arrow.segment["flags"] for arrow in lost] == ["ACK|FIN"]


@pytest.mark.process
def test_summary_and_seq_plot_of_a_lossy_transfer_match_the_connection(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1200  # 300 KB each way
    traces, _ = _traced_echo(tmp_path, data, "--both", "loss=3%", options=[*FAST, "--mss", "1200"])
    for side in load_sides(traces):
        summary = summarize(side)
        stats = summary.stats
        assert stats, "the trace ends with the connection's counters"
        assert summary.data_retransmissions == stats["retransmitted_segments"]
        assert summary.loss_events["rto"] == stats["timeouts"]
        assert summary.loss_events["tlp"] == stats["tail_loss_probes"]
        assert summary.loss_events["spurious_undone"] == stats["spurious_undos"]
        assert summary.retransmissions["unknown"] == 0
        assert summary.new_bytes_sent == len(data)
        series = seq_series(side)
        assert len(series["retransmitted"]) == stats["retransmitted_segments"] - _fin_retransmissions(side)
        assert max(end for _t, _start, end in series["sent"]) == len(data) + 1
    client = next(side for side in load_sides(traces) if side.role == "client")
    assert summarize(client).data_retransmissions > 0, "3% loss over 250 segments must cost some"
    done = run(["trace", "summary", str(traces[0])], capture_output=True, text=True)
    assert done.returncode == 0 and "retransmissions:" in done.stdout, done.stderr
    ladder = tmp_path / "lossy-ladder.svg"
    assert run(["trace", "ladder", *map(str, traces), "-o", str(ladder)], capture_output=True).returncode == 0
    texts = _svg_texts(ladder)
    assert any(re.fullmatch(r"[\d,]+ data segments, [\d.]+ kB; [\d,]+ ACKs", text) for text in texts), texts
    assert any(text.endswith("(lost)") for text in texts)
    assert any("(retransmission: " in text for text in texts)
    for view in ("seq", "cwnd"):
        out = tmp_path / f"{view}.svg"
        done = run(["trace", view, str(traces[0]), "-o", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert out.stat().st_size > 1000


def _fin_retransmissions(side: object) -> int:
    events = getattr(side, "events", [])
    return sum(1 for e in events if e["type"] == "segment" and e.get("retransmission")
               and e["len"] == 0 and "FIN" in e["flags"])


def test_a_malformed_trace_names_its_line(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    header = {"t": 1.0, "cid": "c1", "type": "connection", "format": "udptcp-trace", "version": 1,
              "role": "client", "iss": 5}
    trace.write_text(json.dumps(header) + "\n" + '{"t": 1.5, "cid": "c1", "type": "app", "call": "connect"}\n'
                     + "{not json\n")
    with pytest.raises(TraceError, match=r"bad.jsonl:3: not JSON"):
        read_events(trace)
    done = run(["trace", "summary", str(trace)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "bad.jsonl:3" in done.stderr and "Traceback" not in done.stderr
    trace.write_text(json.dumps({**header, "version": 99}) + "\n")
    with pytest.raises(TraceError, match=r":1: trace schema version 99"):
        read_events(trace)
    trace.write_text(json.dumps({"t": 1.0, "cid": "c1", "type": "segment", "dir": "sent", "flags": "ACK",
                                 "seq": -1, "ack": 0, "win": 0, "len": 0}) + "\n")
    with pytest.raises(TraceError, match=r":1: segment field 'seq'"):
        read_events(trace)


def test_a_trace_rotates_at_its_limit_and_reads_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    sink = TraceSink(path, max_bytes=2000)
    sink.users = 1
    sink.write({"t": 0.0, "cid": "c", "type": "connection", "format": "udptcp-trace", "version": 1,
                "role": "client", "iss": 1})
    for i in range(100):
        sink.write({"t": float(i), "cid": "c", "type": "app", "call": "write", "n": i})
    sink.release()
    assert path.stat().st_size <= 2000
    assert (tmp_path / "t.jsonl.1").stat().st_size <= 2000
    events = read_events(path)
    assert events[-1]["n"] == 99
    assert any(e["type"] == "rotated" for e in events)
    (tmp_path / "t.jsonl.1").unlink()  # the newer part alone still names its connection
    (side,) = load_sides([path])
    assert side.iss == 1 and side.events[-1]["n"] == 99
