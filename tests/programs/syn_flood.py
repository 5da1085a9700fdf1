"""Flood a udptcp server with SYNs that are never completed, from many loopback addresses.

Usage: python syn_flood.py PORT SYNS_PER_S SECONDS ADDRESSES
Binds one UDP socket to each of ADDRESSES addresses 127.1.x.y (Linux routes all of
127.0.0.0/8 to the loopback interface, so every one is an address of this machine), prints
``flooding`` once they are bound, then sends SYNS_PER_S forged SYN segments a second (built
with ``udptcp.wire``, with the options a real client offers and random sequence numbers),
spread over the sockets, for SECONDS; prints the number sent as its last line. What the server
answers is left unread.
"""

import contextlib
import random
import socket
import sys
import time

from udptcp.wire import Flags, Segment

TICK_S = 0.01
"""The flood goes out in bursts this far apart."""


def main(port: int, rate: int, seconds: float, addresses: int) -> None:
    rng = random.Random(11)
    socks = []
    for i in range(addresses):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.1.{1 + i // 250}.{1 + i % 250}", 0))
        sock.setblocking(False)
        socks.append(sock)
    syns = [
        Segment(flags=Flags.SYN, seq=rng.getrandbits(32), ack=0, window=65535, mss=1380,
                sack_permitted=True, timestamps=(rng.getrandbits(32), 0),
                mtu_probe_permitted=True).encode()
        for _ in range(1024)
    ]
    print("flooding", flush=True)
    target = ("127.0.0.1", port)
    per_tick = max(1, int(rate * TICK_S))
    sent = 0
    start = time.monotonic()
    tick = 0
    while (now := time.monotonic()) - start < seconds:
        due = start + tick * TICK_S
        if now < due:
            time.sleep(due - now)  # pacing the flood, not synchronising with anything
        for _ in range(per_tick):
            with contextlib.suppress(BlockingIOError):  # a full socket buffer: one fewer
                socks[sent % len(socks)].sendto(syns[sent % len(syns)], target)
            sent += 1
        tick += 1
    print(sent, flush=True)


main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
