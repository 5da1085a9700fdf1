"""``--workers N`` between real processes: one port served by several, the kernel spreading new
peers across them, and every established connection staying with its worker whatever
workers join or leave. The clients run in the test process, on udptcp's own client."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

import pytest
from echoes import Stream, close_all, echo_round
from procs import ENV, UDPTCP, StderrLog, run, server, wait_gone

import udptcp
from udptcp.addresses import format_address

pytestmark = pytest.mark.process

QUICK: dict[str, Any] = {"msl_s": 0.05, "rto_min_s": 0.05}
"""The test's own connections: a short TIME_WAIT, so that the test ends quickly."""
DEBUG_JSON = ["--log-level", "debug", "--log-json"]
"""Every record names its process (``pid``), and each connection has one ``established``."""
WAIT_S = 20.0
MAX_CONNECTIONS = 60
"""Connections opened at most while looking for enough that a given worker does not serve
(each has two chances in three, so reaching this means something is wrong)."""
KEPT = 6


async def served_by(log: StderrLog, writer: asyncio.StreamWriter) -> int:
    """The pid of the process that accepted the connection, from its ``established`` record."""
    peer = format_address(writer.get_extra_info("sockname"))
    records = await asyncio.to_thread(
        log.wait_for, lambda r: r["event"] == "established" and r.get("peer") == peer
    )
    return int(records[0]["pid"])


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, then the exit code (bounded)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_connections_spread_over_the_workers_and_all_echo(signum: signal.Signals) -> None:
    """24 connections to two processes: each echoes, both processes serve some (all on one:
    one chance in 2**23); the first process alone printed ``listening on``, and stopping it
    stops the other, exit code 0."""
    with server(["echo-server", "--workers", "2", *DEBUG_JSON]) as (group, host, port):
        assert group.stderr is not None and group.stdout is not None
        log = StderrLog(group.stderr)
        streams = await asyncio.gather(*(udptcp.open_connection(host, port, **QUICK) for _ in range(24)))
        await echo_round(streams, "spread")
        pids = {await served_by(log, writer) for _, writer in streams}
        assert len(pids) == 2 and group.pid in pids
        await close_all(streams)
        group.send_signal(signum)
        assert group.wait(30) == 0
        assert group.stdout.read() == ""  # nothing after the first line
    for pid in pids:
        await asyncio.to_thread(wait_gone, pid)


async def test_established_connections_stay_with_their_worker_when_workers_join_and_leave() -> None:
    """A group of three processes; connections to two of them. Then a fourth process joins the
    group on the port (a worker joining), the third process, which serves none of those
    connections, stops (a worker leaving), and the fourth stops too: after each change every
    connection still echoes, never reset. Without a socket of its own per connection, the
    kernel's hash would move about half of them at each change, to a process that answers
    them with RST.

    Deterministic: the process that leaves is chosen (the first worker seen that is not the
    first process) and the connections it got are closed before it stops; the one that joins
    comes after the connections. Where new peers go after the join is not checked: on Linux
    6.13 and later, a socket that binds an IPv4 address where connected sockets are forms a
    group of its own with one of them and takes every new peer (see udptcp/cli/workers.py).
    """
    with server(["echo-server", "--workers", "3", *DEBUG_JSON]) as (group, host, port):
        assert group.stderr is not None
        log = StderrLog(group.stderr)
        kept: list[Stream] = []
        leaver = None
        for _ in range(MAX_CONNECTIONS):
            stream = await udptcp.open_connection(host, port, **QUICK)
            pid = await served_by(log, stream[1])
            if leaver is None and pid != group.pid:
                leaver = pid
            if pid == leaver:
                await close_all([stream])
            else:
                kept.append(stream)
            if len(kept) >= KEPT and leaver is not None:
                break
        assert leaver is not None and len(kept) >= KEPT
        await echo_round(kept, "established")

        with server(["echo-server", "--port", str(port), "--workers", "1", *DEBUG_JSON]) as (joiner, _, _):
            await echo_round(kept, "after a join")
            os.kill(leaver, signal.SIGTERM)
            await asyncio.to_thread(wait_gone, leaver)
            await echo_round(kept, "after a leave")
            (record,) = await asyncio.to_thread(log.wait_for, lambda r: r["event"] == "worker exited")
            assert record["worker"] == leaver and record["code"] == 0
            assert await asyncio.to_thread(stop, joiner) == 0
        await echo_round(kept, "after another leave")
        assert [r for r in log.records if r["event"] == "connection failed"] == []
        await close_all(kept)


async def test_the_workers_stop_when_the_first_process_dies() -> None:
    """Killed outright, the first process cannot tell its workers: their standard input ends."""
    with server(["echo-server", "--workers", "3", "--log-level", "info", "--log-json"]) as (group, _, _):
        assert group.stderr is not None
        log = StderrLog(group.stderr)
        started = await asyncio.to_thread(log.wait_for, lambda r: r["event"] == "worker started", 2)
        workers = {int(r["worker"]) for r in started}
        group.kill()
        group.wait(10)
    for pid in workers:
        await asyncio.to_thread(wait_gone, pid)


def test_bench_server_counts_the_connections_of_all_its_workers() -> None:
    """``bench --role server --workers 2 --connections 8`` exits once eight clients are served,
    whichever process served each (all by the first one: one chance in 2**8)."""
    with server(["bench", "--role", "server", "--workers", "2", "--connections", "8"]) as (srv, host, port):
        argv = [*UDPTCP, "bench", "--role", "client", "--host", host, "--port", str(port),
                "--size-mb", "1", "--no-progress", "--json"]
        clients = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
                   for _ in range(8)]
        for client in clients:
            out, err = client.communicate(timeout=60)
            assert client.returncode == 0, err
            assert '"mb": 1.0' in out
        assert srv.wait(30) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["echo-server", "--workers", "0"], "1 or more"),
        (["bench", "--workers", "2"], "--workers applies to --role server only"),
    ],
)
def test_bad_workers_options_say_what_is_wrong(argv: list[str], message: str) -> None:
    done = run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
