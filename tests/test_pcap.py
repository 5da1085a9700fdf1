"""The pcap writer and the Wireshark dissector, on a captured real connection."""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
from pathlib import Path

import pytest
from procs import run, server

from udptcp.trace.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, pcap_for, udp_packet
from udptcp.trace.schema import read_events
from udptcp.wire import Flags, Segment

DISSECTOR = Path(__file__).parent.parent / "contrib" / "wireshark" / "udptcp.lua"
FIELDS = ("udptcp.flags.str", "udptcp.seq", "udptcp.ack", "udptcp.window", "udptcp.len",
          "udptcp.checksum.status", "udptcp.options.tsval", "udptcp.options.mss")


def _records(path: Path) -> tuple[int, list[bytes]]:
    data = path.read_bytes()
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B2C3D4
    packets, offset = [], 24
    while offset < len(data):
        _sec, _usec, incl, orig = struct.unpack_from("<IIII", data, offset)
        assert incl == orig
        packets.append(data[offset + 16 : offset + 16 + incl])
        offset += 16 + incl
    return linktype, packets


def _capture(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    """A connection echoing 3 KB, the server capturing it (pcap) and tracing it."""
    pcap = tmp_path / "server.pcap"
    with server(["echo-server", "--pcap", str(pcap), "--trace", f"{tmp_path}/", *extra]) as (srv, host, port):
        done = run(["echo-client", host, str(port)], input=b"x" * 3000, capture_output=True)
        assert done.returncode == 0 and done.stdout == b"x" * 3000, done.stderr
        srv.send_signal(signal.SIGTERM)
        assert srv.wait(30) == 0
    (trace,) = tmp_path.glob("udptcp-*.jsonl")
    return pcap, trace


def _segments(trace: Path) -> list[dict[str, object]]:
    return [e for e in read_events(trace) if e["type"] == "segment"]


@pytest.mark.process
def test_the_pcap_holds_every_datagram_as_a_udp_ipv4_packet(tmp_path: Path) -> None:
    pcap, trace = _capture(tmp_path)
    linktype, packets = _records(pcap)
    assert linktype == LINKTYPE_RAW
    segments = _segments(trace)
    assert len(packets) == len(segments)
    for packet, event in zip(packets, segments, strict=True):
        assert packet[0] >> 4 == 4 and packet[9] == 17  # IPv4, UDP
        assert sum(struct.unpack("!10H", packet[:20])) % 0xFFFF == 0  # the header checksum holds
        seg = Segment.decode(packet[28:])
        assert (seg.seq, seg.ack, seg.window, len(seg.payload)) == (
            event["seq"], event["ack"], event["win"], event["len"])


def _fold(data: bytes) -> int:
    """RFC 1071 the slow way, word by word."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@pytest.mark.parametrize("payload", [b"", b"abc", bytes(range(256)) * 234, b"\xff" * 64])
def test_udp_checksums_hold_over_ipv4_and_ipv6(payload: bytes) -> None:
    packet = udp_packet(("127.0.0.1", 1000), ("127.0.0.2", 2000), payload)
    assert packet[0] >> 4 == 4 and _fold(packet[:20]) == 0xFFFF
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 17, 8 + len(payload))
    assert _fold(pseudo + packet[20:]) == 0xFFFF
    packet = udp_packet(("::1", 1000), ("::1", 2000), payload)
    assert packet[0] >> 4 == 6 and len(packet) == 40 + 8 + len(payload)
    assert struct.unpack_from("!HHH", packet, 40) == (1000, 2000, 8 + len(payload))
    pseudo = packet[8:40] + struct.pack("!IxxxB", 8 + len(payload), 17)
    assert _fold(pseudo + packet[40:]) == 0xFFFF


@pytest.mark.process
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
def test_the_wireshark_dissector_reads_what_udptcp_sent(tmp_path: Path) -> None:
    pcap, trace = _capture(tmp_path, "-o", "pcap_linktype=ethernet")
    assert _records(pcap)[0] == LINKTYPE_ETHERNET
    args = ["tshark", "-r", str(pcap), "-X", f"lua_script:{DISSECTOR}", "-T", "fields",
            "-E", "occurrence=f"]
    for name in FIELDS:
        args += ["-e", name]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    segments = _segments(trace)
    assert len(rows) == len(segments)
    for row, event in zip(rows, segments, strict=True):
        flags, seq, ack, window, length, status, tsval, mss = row
        assert flags == event["flags"]
        assert (int(seq), int(ack), int(window), int(length)) == (
            event["seq"], event["ack"], event["win"], event["len"])
        assert status == "Good"
        ts = event.get("ts")
        assert tsval == (str(ts[0]) if isinstance(ts, list) else "")
        assert mss == str(event.get("mss", ""))
    flow = subprocess.run(["tshark", "-r", str(pcap), "-X", f"lua_script:{DISSECTOR}", "-q",
                           "-z", "flow,any,network"], capture_output=True, text=True, timeout=60, check=False)
    assert flow.returncode == 0
    assert sum(1 for line in flow.stdout.splitlines() if "udptcp: " in line) == len(segments)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
def test_the_dissector_flags_a_bad_checksum_and_reads_sack_blocks(tmp_path: Path) -> None:
    pcap = pcap_for(str(tmp_path / "made.pcap"), "raw")
    a, b = ("127.0.0.1", 4000), ("127.0.0.1", 5000)
    syn = Segment(flags=Flags.SYN, seq=7, ack=0, window=1000, mss=1380, sack_permitted=True)
    pcap.record(a, b, syn.encode())
    sack = Segment(flags=Flags.ACK, seq=8, ack=100, window=900, sack=((200, 300), (400, 500)),
                   timestamps=(11, 22)).encode()
    pcap.record(a, b, sack)
    damaged = bytearray(Segment(flags=Flags.ACK, seq=8, ack=100, window=900, payload=b"data").encode())
    damaged[-1] ^= 1
    pcap.record(a, b, bytes(damaged))
    pcap.release()
    done = subprocess.run(
        ["tshark", "-r", str(pcap.path), "-X", f"lua_script:{DISSECTOR}", "-T", "fields",
         "-E", "occurrence=a", "-e", "udptcp.checksum.status", "-e", "udptcp.options.sack_le",
         "-e", "udptcp.options.sack_re", "-e", "udptcp.options.tsval", "-e", "udptcp.options.sack_perm"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert rows[0][0] == "Good" and rows[0][4] in ("1", "True")  # tshark versions print bools so
    assert rows[1] == ["Good", "200,400", "300,500", "11", ""]
    assert rows[2][0] == "Bad"
