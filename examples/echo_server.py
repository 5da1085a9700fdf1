"""An echo server on udptcp: the same code as an asyncio TCP echo server, but for the import.

Run:  python examples/echo_server.py [PORT]
Try:  python examples/echo_client.py 127.0.0.1 PORT "hello"
"""

import asyncio
import sys

import udptcp  # instead of: import asyncio's open_connection/start_server


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything until the client half-closes, then close our side too."""
    peer = writer.get_extra_info("peername")
    while data := await reader.read(65536):  # b"" means the client sent its FIN
        writer.write(data)
        await writer.drain()  # real back-pressure: waits while the peer is slow
    print(f"{peer}: done, {writer.get_extra_info('stats')['bytes_received']} bytes echoed")
    writer.close()  # sends our FIN; the connection ends once it is acknowledged
    await writer.wait_closed()


async def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = await udptcp.start_server(handle, "127.0.0.1", port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    async with server:  # leaving the block closes the server and waits for it
        await server.serve_forever()


if __name__ == "__main__":
    udptcp.run(main())  # asyncio.run, on uvloop when it is installed
