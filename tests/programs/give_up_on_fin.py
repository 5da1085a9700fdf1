"""Send a line and a FIN that (through a relay that loses every FIN) is never acknowledged:
the connection gives up and resets. Prints ``failed: <exception type>`` when it has, then
keeps running (its endpoint still answering the peer) until it is stopped.

Usage: python give_up_on_fin.py HOST PORT
"""

import asyncio
import sys

import udptcp


async def main(host: str, port: int) -> None:
    config = udptcp.Config(retries=2, rto_min_s=0.05)
    reader, writer = await udptcp.open_connection(host, port, config=config)
    writer.write(b"hello\n")
    writer.write_eof()
    try:
        await reader.read()  # the server never closes: this ends when our FIN is given up on
    except OSError as exc:
        print(f"failed: {type(exc).__name__}", flush=True)
    await asyncio.Event().wait()


udptcp.run(main(sys.argv[1], int(sys.argv[2])))
