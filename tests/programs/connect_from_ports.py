"""One connection from each of the given local ports, in turn, to one server.

Each sends an 8-octet length and a REQUEST_BYTES request, reads the reply to the server's FIN
and closes. Prints, per connection, ``port P open_s=<seconds the open took>``.

Usage: python connect_from_ports.py HOST PORT REQUEST_BYTES LOCAL_PORT[,LOCAL_PORT...] [KEY=VALUE ...]
"""

import os
import sys
import time

import udptcp


async def main(host: str, port: int, size: int, local_ports: list[int], options: dict[str, str]) -> None:
    config = udptcp.Config(msl_s=1.0).replace(**{k: v == "true" for k, v in options.items()})
    for local_port in local_ports:
        start = time.monotonic()
        reader, writer = await udptcp.open_connection(
            host, port, local_addr=("127.0.0.1", local_port), config=config
        )
        open_s = time.monotonic() - start
        writer.write(size.to_bytes(8, "big") + os.urandom(size))
        await reader.read()  # to the server's FIN
        writer.close()
        await writer.wait_closed()
        print(f"port {local_port} open_s={open_s:.3f}", flush=True)


args = sys.argv[1:]
udptcp.run(main(args[0], int(args[1]), int(args[2]), [int(p) for p in args[3].split(",")],
                dict(arg.split("=", 1) for arg in args[4:])))
