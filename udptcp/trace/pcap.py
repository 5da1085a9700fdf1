"""A pcap file of udptcp's datagrams, written by the library: no root, no tcpdump.

Each datagram a traced connection sends or receives is recorded as the UDP/IP packet that
carried it (IPv4 or IPv6, as the connection's addresses are), with LINKTYPE_RAW (raw IP) or,
for tools that want a link layer, Ethernet with made-up addresses. Wireshark reads the file as
it reads a capture; contrib/wireshark/udptcp.lua decodes the udptcp header inside.
"""

from __future__ import annotations

import atexit
import ipaddress
import socket
import struct
import time
from pathlib import Path
from typing import IO, Any

from udptcp.log import get_logger

PCAP_MAGIC = 0xA1B2C3D4
"""The classic pcap magic number: microsecond timestamps."""
SNAPLEN_BYTES = 65535 + 60
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPES = {"raw": LINKTYPE_RAW, "ethernet": LINKTYPE_ETHERNET}
"""``pcap_linktype`` option values."""
IP_TTL = 64
IPPROTO_UDP = 17
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_LOCAL_MAC = bytes.fromhex("020000000001")
_PEER_MAC = bytes.fromhex("020000000002")

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")
_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_IPV6_HEADER = struct.Struct("!IHBB16s16s")
_UDP_HEADER = struct.Struct("!HHHH")

_open_writers: dict[Path, PcapWriter] = {}


def _ones_complement_sum(data: bytes) -> int:
    """RFC 1071's sum of 16-bit words in network order, folded to 16 bits. As 2**16 = 1 modulo
    2**16 - 1, it is the number the octets spell, modulo 0xFFFF (a big-int remainder, in C),
    except that a non-zero sum that folds to a multiple of 0xFFFF reads 0xFFFF."""
    if len(data) % 2:
        data += b"\0"
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    return 0xFFFF if total == 0 and number else total


def _checksum(data: bytes) -> int:
    return ~_ones_complement_sum(data) & 0xFFFF


def udp_packet(src: tuple[Any, ...], dst: tuple[Any, ...], payload: bytes | memoryview) -> bytes:
    """The IPv4 or IPv6 packet (headers with valid checksums) that carries ``payload`` by UDP
    from ``src`` to ``dst`` (socket addresses: host, port, ...)."""
    src_ip = ipaddress.ip_address(src[0])
    dst_ip = ipaddress.ip_address(dst[0])
    if src_ip.version != dst_ip.version:  # a v4-mapped peer on a dual-stack socket
        src_ip = ipaddress.ip_address(src_ip.ipv4_mapped or src_ip) if src_ip.version == 6 else src_ip
        dst_ip = ipaddress.ip_address(dst_ip.ipv4_mapped or dst_ip) if dst_ip.version == 6 else dst_ip
    body = bytes(payload)
    udp_len = _UDP_HEADER.size + len(body)
    src_port, dst_port = int(src[1]), int(dst[1])
    if src_ip.version == 4:
        pseudo = src_ip.packed + dst_ip.packed + struct.pack("!BBH", 0, IPPROTO_UDP, udp_len)
    else:
        pseudo = src_ip.packed + dst_ip.packed + struct.pack("!IxxxB", udp_len, IPPROTO_UDP)
    udp_sum = _checksum(pseudo + _UDP_HEADER.pack(src_port, dst_port, udp_len, 0) + body) or 0xFFFF
    udp = _UDP_HEADER.pack(src_port, dst_port, udp_len, udp_sum) + body
    if src_ip.version == 4:
        header = _IPV4_HEADER.pack(0x45, 0, 20 + udp_len, 0, 0x4000, IP_TTL, IPPROTO_UDP, 0,
                                   src_ip.packed, dst_ip.packed)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + udp
    return _IPV6_HEADER.pack(6 << 28, udp_len, IPPROTO_UDP, IP_TTL, src_ip.packed, dst_ip.packed) + udp


class PcapWriter:
    """One pcap file, shared by every connection that records to it."""

    def __init__(self, path: Path, linktype: str) -> None:
        self.path = path
        self.linktype = LINKTYPES[linktype]
        self.users = 0
        self.failed = False
        self._file: IO[bytes] | None = None

    def record(self, src: tuple[Any, ...], dst: tuple[Any, ...], datagram: bytes | memoryview) -> None:
        """Append the packet that carried ``datagram`` from ``src`` to ``dst``, stamped now.
        A file that cannot be written is reported once and the capture dropped."""
        if self.failed:
            return
        try:
            self._record(src, dst, datagram)
        except OSError as exc:
            self.failed = True
            get_logger().warning("cannot write the pcap file; capturing stops", path=str(self.path),
                                 error=exc.strerror or str(exc))

    def _record(self, src: tuple[Any, ...], dst: tuple[Any, ...], datagram: bytes | memoryview) -> None:
        file = self._file
        if file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = self._file = self.path.open("wb")
            file.write(_GLOBAL_HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN_BYTES, self.linktype))
        packet = udp_packet(src, dst, datagram)
        if self.linktype == LINKTYPE_ETHERNET:
            ethertype = ETHERTYPE_IPV4 if packet[0] >> 4 == 4 else ETHERTYPE_IPV6
            packet = _PEER_MAC + _LOCAL_MAC + struct.pack("!H", ethertype) + packet
        stamp = time.time()
        seconds = int(stamp)
        file.write(_RECORD_HEADER.pack(seconds, int((stamp - seconds) * 1e6), len(packet), len(packet)))
        file.write(packet)

    def flush(self) -> None:
        """Push what is buffered to the file."""
        if self._file is not None and not self.failed:
            try:
                self._file.flush()
            except OSError:
                self.failed = True

    def release(self) -> None:
        """A connection is done with this file: push its records out. The file stays open for
        the process's next connections (reopening would truncate it)."""
        self.users -= 1
        self.flush()


def pcap_for(destination: str, linktype: str) -> PcapWriter:
    """The writer for ``destination`` (one per file in a process)."""
    path = Path(destination).absolute()
    writer = _open_writers.get(path)
    if writer is None:
        writer = _open_writers[path] = PcapWriter(path, linktype)
    writer.users += 1
    return writer


def unspecified_to_loopback(addr: tuple[Any, ...] | None, peer: tuple[Any, ...]) -> tuple[Any, ...]:
    """Our address for the capture: a socket bound to the wildcard has none of its own, and the
    packet's source then is the loopback of the peer's family (udptcp captures are for
    loopback tests) or, failing that, the wildcard itself."""
    if addr is None:
        addr = ("0.0.0.0", 0)
    if ipaddress.ip_address(addr[0]).is_unspecified:
        family = socket.AF_INET6 if ":" in str(peer[0]) else socket.AF_INET
        return ("::1" if family == socket.AF_INET6 else "127.0.0.1", addr[1])
    return addr


@atexit.register
def _flush_all() -> None:
    for writer in list(_open_writers.values()):
        writer.flush()
