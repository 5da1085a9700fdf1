"""A udptcp server that answers only after the client's EOF: reads the request to its end,
then sends a reply of REPLY_BYTES (its digest is the first line) and closes.

Usage: python reply_after_eof.py REPLY_BYTES  (prints "listening on HOST:PORT")
"""

import asyncio
import hashlib
import sys

import udptcp


async def main(size: int) -> None:
    done = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # returns only at the client's FIN
        reply = hashlib.sha256(request).hexdigest().encode() * (size // 64 + 1)
        writer.write(reply[:size])
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set_result(None)

    server = await udptcp.start_server(handle, "127.0.0.1", 0, msl_s=1.0)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await done
    server.close()
    await server.wait_closed()


udptcp.run(main(int(sys.argv[1])))
