"""`make demo`: an echo server and an echo client as two processes, with the log of both, and
the ladder diagram of their connection drawn from the traces they wrote.

The server and client run the real `udptcp` command with `--log-level trace`, so standard
error shows every segment (SYN, SYN|ACK, ACK, ..., FIN) and every state change of the
handshake and the close; `--trace` has each write its trace, and `udptcp trace ladder` draws
the textbook's picture of the connection from both.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

UDPTCP = [sys.executable, "-m", "udptcp"]
LADDER = Path("demo-ladder.svg")


def main() -> int:
    traces = Path(tempfile.mkdtemp(prefix="udptcp-demo-"))
    trace = ["--trace", f"{traces}/"]
    server = subprocess.Popen(
        [*UDPTCP, "echo-server", "--port", "0", "--log-level", "trace", *trace],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline().strip()  # "listening on 127.0.0.1:PORT"
        print(f"== server: {first}", flush=True)
        host, port = first.removeprefix("listening on ").rsplit(":", 1)
        print("== client: udptcp echo-client ... 'hello, udptcp'", flush=True)
        client = subprocess.run(
            [*UDPTCP, "echo-client", host, port, "hello, udptcp", "--log-level", "trace", *trace],
            stdout=subprocess.PIPE, text=True, timeout=30, check=False,
        )
        print(f"== client printed: {client.stdout.strip()!r} (exit {client.returncode})", flush=True)
    finally:
        server.terminate()  # it closes its connection gracefully first, so its trace is whole
        server.wait(timeout=30)
    if client.returncode:
        return client.returncode
    drawn = subprocess.run(
        [*UDPTCP, "trace", "ladder", *map(str, sorted(traces.glob("*.jsonl"))), "-o", str(LADDER)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if drawn.returncode:
        print(f"== no ladder diagram: {drawn.stderr.strip()}", flush=True)
        return drawn.returncode
    print(f"== the ladder diagram of this connection: {LADDER.resolve()}", flush=True)
    print(f"== its traces (JSON lines, docs/TRACE.md): {traces}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
