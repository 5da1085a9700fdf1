"""Unmodified TCP programs through ``udptcp tunnel``: iperf3 and Redis (curl is in
test_tunnel.py, with the web server). Each test skips when its program is not installed
(Debian: ``apt-get install iperf3 redis-server``)."""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from procs import ENV, START_TIMEOUT_S, tunnel

pytestmark = pytest.mark.process

LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
RUN_TIMEOUT_S = 60.0


def needs(*programs: str) -> pytest.MarkDecorator:
    missing = [name for name in programs if shutil.which(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed")


def free_tcp_port() -> int:
    """A TCP port nothing listens on (these programs take a port, not 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def started(argv: list[str], ready: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv``; yield it once a line of its output contains ``ready`` (bounded)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    try:
        assert proc.stdout is not None
        fd, seen = proc.stdout.fileno(), b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while ready.encode() not in seen:  # raw reads: a buffered readline would hide lines from select
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise AssertionError(f"{argv[0]} not ready within {START_TIMEOUT_S} s: {seen!r}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"{argv[0]} exited ({proc.wait(5)}): {seen!r}")
            seen += chunk
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


@needs("iperf3")
@pytest.mark.parametrize("reverse", [False, True], ids=["upload", "download"])
def test_iperf3_through_the_tunnel(reverse: bool) -> None:
    """iperf3's control connection and its data connection, each a udptcp connection."""
    port = free_tcp_port()
    with started(["iperf3", "-s", "-p", str(port), "--forceflush"], "Server listening"), \
         tunnel(port, LOOP) as (_, _, tunnel_port):
        result = subprocess.run(
            ["iperf3", "-c", "127.0.0.1", "-p", str(tunnel_port), "-t", "1", "-J",
             *(["-R"] if reverse else [])],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        )
    report = json.loads(result.stdout)
    assert result.returncode == 0 and "error" not in report, result.stdout[-500:]
    assert report["end"]["sum_received"]["bytes"] > 0


@needs("redis-server", "redis-cli", "redis-benchmark")
def test_redis_through_the_tunnel() -> None:
    """A value set and read back with redis-cli, then redis-benchmark's pipelined load."""
    port = free_tcp_port()
    with started(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no"], "Ready to accept connections"), \
         tunnel(port, LOOP) as (_, _, tunnel_port):
        cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(tunnel_port)]
        assert subprocess.run([*cli, "set", "tunnel", "carried"], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=True).stdout.strip() == "OK"
        assert subprocess.run([*cli, "get", "tunnel"], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=True).stdout.strip() == "carried"
        bench = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(tunnel_port), "-n", "2000", "-c", "10",
             "-P", "4", "-t", "set,get", "--csv"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        )
    assert bench.returncode == 0, bench.stderr
    tests = {line.split(",")[0].strip('"') for line in bench.stdout.splitlines()[1:]}
    assert tests == {"SET", "GET"}, bench.stdout
