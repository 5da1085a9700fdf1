"""Connect, send a message, and leave udptcp.run without closing the connection.

Usage: python leave_open_and_exit.py PORT MSL_S
The peer should learn that the program ended (a FIN), as it would from a kernel socket.
"""

import sys

import udptcp

KEPT: list[object] = []
"""The streams stay referenced (a StreamWriter collected as garbage would close itself)."""


async def main(port: int, msl_s: float) -> None:
    reader, writer = await udptcp.open_connection("127.0.0.1", port, msl_s=msl_s)
    KEPT.extend((reader, writer))
    writer.write(b"left open\n")
    await writer.drain()


udptcp.run(main(int(sys.argv[1]), float(sys.argv[2])))
