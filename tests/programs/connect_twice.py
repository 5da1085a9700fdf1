"""Two connections in a row from one local port to one server: the same pair of addresses.

Each sends an 8-octet length and REQUEST_BYTES of random data, reads the reply to the end
and closes. Prints, per connection, ``conn N sha=<request digest> reply=<reply digest>
open_s=<seconds the open took>``.

Usage: python connect_twice.py HOST PORT LOCAL_PORT REQUEST_BYTES [KEY=VALUE ...]
"""

import hashlib
import os
import sys
import time

import udptcp


async def main(host: str, port: int, local_port: int, size: int, options: dict[str, str]) -> None:
    config = udptcp.Config(msl_s=1.0, rto_initial_s=0.25).replace(
        **{k: v == "true" for k, v in options.items()}
    )
    for n in (1, 2):
        request = os.urandom(size)
        start = time.monotonic()
        reader, writer = await udptcp.open_connection(
            host, port, local_addr=("127.0.0.1", local_port), config=config
        )
        open_s = time.monotonic() - start
        writer.write(len(request).to_bytes(8, "big") + request)
        reply = await reader.read()  # to the server's FIN
        writer.close()
        await writer.wait_closed()
        print(f"conn {n} sha={hashlib.sha256(request).hexdigest()} "
              f"reply={hashlib.sha256(reply).hexdigest()} open_s={open_s:.3f}", flush=True)


args = sys.argv[1:]
udptcp.run(main(args[0], int(args[1]), int(args[2]), int(args[3]),
                dict(arg.split("=", 1) for arg in args[4:])))
