"""One side of the textbook's connection: handshake, a few KB, half-close, close.

Usage: python textbook_pair.py server            (prints "listening on HOST:PORT", serves one)
       python textbook_pair.py client PORT SIZE

The client sends SIZE octets and waits for the server's "ok" before it half-closes, so that
the server has nothing left to send when the FIN comes: the close is the textbook's four
segments (FIN; its ACK; the server's FIN; the last ACK). Traced through UDPTCP_TRACE.
"""

import asyncio
import sys

import udptcp

MSL_S = 0.25
CONFIG = udptcp.Config(msl_s=MSL_S, rto_min_s=0.05)


async def serve() -> None:
    done = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int((await reader.readline()).decode())
        await reader.readexactly(size)
        writer.write(b"ok")
        await reader.read()  # the peer's FIN
        writer.close()
        await writer.wait_closed()
        done.set_result(None)

    server = await udptcp.start_server(handle, "127.0.0.1", 0, config=CONFIG)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    await asyncio.wait_for(done, 30)
    server.close()
    await server.wait_closed()


async def client(port: int, size: int) -> None:
    reader, writer = await udptcp.open_connection("127.0.0.1", port, config=CONFIG)
    writer.write(f"{size}\n".encode() + bytes(size))
    assert await reader.readexactly(2) == b"ok"
    writer.write_eof()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


if sys.argv[1] == "server":
    udptcp.run(serve())
else:
    udptcp.run(client(int(sys.argv[2]), int(sys.argv[3])))
