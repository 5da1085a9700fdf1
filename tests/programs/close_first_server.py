"""A udptcp server that closes first, so its side of every connection ends in TIME_WAIT.

Each connection sends an 8-octet length and a request; the server answers with the request's
sha256 repeated to REPLY_BYTES and closes at once (the active close). For every connection it
prints one line: ``conn N sha=<request digest> stats=<JSON of the connection's counters>``.

Usage: python close_first_server.py REPLY_BYTES [KEY=VALUE ...]  (prints "listening on HOST:PORT")
"""

import asyncio
import hashlib
import json
import sys

import udptcp


async def main(size: int, options: dict[str, str]) -> None:
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        length = int.from_bytes(await reader.readexactly(8), "big")
        digest = hashlib.sha256(await reader.readexactly(length)).hexdigest()
        writer.write((digest.encode() * (size // 64 + 1))[:size])
        writer.close()
        await writer.wait_closed()
        stats = writer.get_extra_info("stats")
        print(f"conn {count} sha={digest} stats={json.dumps(stats)}", flush=True)

    config = udptcp.Config(msl_s=1.5).replace(**{k: v == "true" for k, v in options.items()})
    server = await udptcp.start_server(handle, "127.0.0.1", 0, config=config)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


udptcp.run(main(int(sys.argv[1]), dict(arg.split("=", 1) for arg in sys.argv[2:])))
