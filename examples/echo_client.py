"""An echo client on udptcp: connect, send, half-close, read the echo until the server closes.

Run:  python examples/echo_client.py HOST PORT [MESSAGE]
"""

import sys

import udptcp


async def main(host: str, port: int, message: bytes) -> None:
    # The handshake happens here; ConnectionRefusedError if nothing listens,
    # TimeoutError if nobody answers. Options are udptcp.Config fields.
    reader, writer = await udptcp.open_connection(host, port, msl_s=1.0)
    writer.write(message)
    await writer.drain()
    writer.write_eof()  # half-close: "no more data from me", but keep reading
    echoed = await reader.read()  # everything until the server's FIN
    print(echoed.decode(errors="replace"))
    writer.close()
    await writer.wait_closed()
    # The connection now sits in TIME_WAIT for 2 * msl_s; udptcp.run waits for it on exit,
    # as the kernel would keep a TCP connection's TIME_WAIT after the process ends.


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: echo_client.py HOST PORT [MESSAGE]")
    text = sys.argv[3] if len(sys.argv) > 3 else "hello over udptcp"
    udptcp.run(main(sys.argv[1], int(sys.argv[2]), text.encode()))
