"""Connect, exchange a message, close, and leave udptcp.run: how long does leaving take?

Usage: python close_and_exit.py PORT MSL_S LINGER_S  (LINGER_S "none": the default)
Prints the seconds from wait_closed() returning to the end of udptcp.run as its last line.
"""

import sys
import time

import udptcp


async def main(port: int, msl_s: float, linger: float | None) -> float:
    reader, writer = await udptcp.open_connection(
        "127.0.0.1", port, msl_s=msl_s, shutdown_linger_s=linger
    )
    writer.write(b"bye")
    writer.write_eof()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    print(writer.get_extra_info("state").name, flush=True)
    return time.monotonic()


closed_at = udptcp.run(main(int(sys.argv[1]), float(sys.argv[2]),
                            None if sys.argv[3] == "none" else float(sys.argv[3])))
print(f"{time.monotonic() - closed_at:.3f}", flush=True)
