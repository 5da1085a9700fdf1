"""A UDP relay that replays one connection's segments into the next one on the same addresses.

It forwards between one client and TARGET through a single upstream socket, so both of the
client's connections reach the server from the same address. It keeps every datagram of the
first connection and sends all of them again, each to the side it was meant for, when the
second connection sends its first SYN (WHEN=syn) or its first data (WHEN=data). Prints
``relaying HOST:PORT -> TARGET`` first, and ``replayed N UP`` once it has replayed N datagrams,
UP of them towards the server.

Usage: python replay_relay.py TARGET_PORT WHEN
"""

import asyncio
import sys

from udptcp.wire import Flags, MalformedSegment, Segment


class Relay:
    def __init__(self, target: tuple[str, int], on_syn: bool) -> None:
        self.target = target
        self.on_syn = on_syn
        self.client: tuple[str, int] | None = None
        self.front: asyncio.DatagramTransport | None = None
        self.back: asyncio.DatagramTransport | None = None
        self.syns: set[int] = set()
        self.first: list[tuple[str, bytes]] = []
        self.replayed = False

    def connection(self, data: bytes, upstream: bool) -> int:
        """Which connection a datagram belongs to: the client's SYNs count them."""
        try:
            seg = Segment.decode(data)
        except MalformedSegment:
            return len(self.syns)
        if upstream and seg.flags & Flags.SYN and not seg.flags & Flags.ACK:
            self.syns.add(seg.seq)
        if not self.replayed and len(self.syns) == 2 and upstream and (self.on_syn or seg.payload):
            self.replay()
        return len(self.syns)

    def replay(self) -> None:
        assert self.front is not None and self.back is not None and self.client is not None
        self.replayed = True
        for direction, data in self.first:
            if direction == "up":
                self.back.sendto(data)
            else:
                self.front.sendto(data, self.client)
        upstream = sum(1 for direction, _ in self.first if direction == "up")
        print(f"replayed {len(self.first)} {upstream}", flush=True)

    def from_client(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client = addr
        if self.connection(data, upstream=True) == 1:
            self.first.append(("up", data))
        assert self.back is not None
        self.back.sendto(data)

    def from_server(self, data: bytes) -> None:
        if self.connection(data, upstream=False) == 1:
            self.first.append(("down", data))
        if self.front is not None and self.client is not None:
            self.front.sendto(data, self.client)


class Side(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay, front: bool) -> None:
        self.relay = relay
        self.front = front

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.front:
            self.relay.from_client(data, addr)
        else:
            self.relay.from_server(data)


async def main(target_port: int, when: str) -> None:
    loop = asyncio.get_running_loop()
    relay = Relay(("127.0.0.1", target_port), on_syn=when == "syn")
    front, _ = await loop.create_datagram_endpoint(
        lambda: Side(relay, front=True), local_addr=("127.0.0.1", 0)
    )
    back, _ = await loop.create_datagram_endpoint(
        lambda: Side(relay, front=False), remote_addr=relay.target
    )
    relay.front, relay.back = front, back
    port = front.get_extra_info("sockname")[1]
    print(f"relaying 127.0.0.1:{port} -> 127.0.0.1:{target_port}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
