"""`make demo`: an echo server and an echo client as two processes, with the log of both.

The server and client run the real `udptcp` command with `--log-level trace`, so standard
error shows every segment (SYN, SYN|ACK, ACK, ..., FIN) and every state change of the
handshake and the close.
"""

import subprocess
import sys

UDPTCP = [sys.executable, "-m", "udptcp"]


def main() -> int:
    server = subprocess.Popen(
        [*UDPTCP, "echo-server", "--port", "0", "--log-level", "trace"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline().strip()  # "listening on 127.0.0.1:PORT"
        print(f"== server: {first}", flush=True)
        host, port = first.removeprefix("listening on ").rsplit(":", 1)
        print("== client: udptcp echo-client ... 'hello, udptcp'", flush=True)
        client = subprocess.run(
            [*UDPTCP, "echo-client", host, port, "hello, udptcp", "--log-level", "trace"],
            stdout=subprocess.PIPE, text=True, timeout=30, check=False,
        )
        print(f"== client printed: {client.stdout.strip()!r} (exit {client.returncode})", flush=True)
        return client.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
