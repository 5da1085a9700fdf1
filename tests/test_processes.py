"""End to end between real OS processes over loopback: the CLI as users run it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from procs import (
    ENV,
    PROGRAMS,
    UDPTCP,
    free_udp_port,
    json_log,
    program,
    random_file,
    relay,
    run,
    server,
    sha256,
)

pytestmark = pytest.mark.process

FAST = ["-o", "rto_min_s=0.05"]
"""Retransmission timers for a lossy relay on loopback, where RTTs are well under 50 ms."""


def test_echo_server_and_client_as_two_processes() -> None:
    with server(["echo-server", "--port", "0"]) as (_, host, port):
        done = run(["echo-client", host, str(port), "hello, udptcp"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello, udptcp"
        piped = run(["echo-client", host, str(port)], input=b"x" * 300_000, capture_output=True)
        assert piped.returncode == 0 and piped.stdout == b"x" * 300_000


def test_echo_server_serves_many_connections_at_once(tmp_path: Path) -> None:
    with server(["echo-server"]) as (_, host, port):
        clients = [
            subprocess.Popen([*UDPTCP, "echo-client", host, str(port), f"message {i}"],
                             stdout=subprocess.PIPE, text=True, env=ENV)
            for i in range(8)
        ]
        outputs = [c.communicate(timeout=60)[0] for c in clients]
        assert outputs == [f"message {i}" for i in range(8)]
        assert all(c.returncode == 0 for c in clients)


def _netcat(tmp_path: Path, size: int, *relay_specs: str, options: list[str] | None = None) -> None:
    source = random_file(tmp_path / "in.bin", size)
    received = tmp_path / "out.bin"
    extra = options or []
    with received.open("wb") as sink, server(
        ["listen", "0", "--mss", "8192", *extra], stdout=sink, first_line_on_stderr=True
    ) as (listener, host, port):
        if relay_specs:
            with relay(port, *relay_specs) as (netem, front):
                with source.open("rb") as feed:
                    client = run(["connect", host, str(front), "--mss", "8192", *extra],
                                 stdin=feed, capture_output=True, timeout=120)
                netem.send_signal(signal.SIGTERM)
                summary = netem.communicate(timeout=10)[0]
        else:
            with source.open("rb") as feed:
                client = run(["connect", host, str(port), "--mss", "8192", *extra],
                             stdin=feed, capture_output=True, timeout=120)
            summary = ""
        assert client.returncode == 0, client.stderr
        assert listener.wait(30) == 0
    assert sha256(received) == sha256(source), summary


def test_listen_connect_moves_20mb_file(tmp_path: Path) -> None:
    _netcat(tmp_path, 20_000_000)


def test_listen_connect_moves_5mb_through_lossy_relay(tmp_path: Path) -> None:
    impair = "loss=5%,duplicate=5%,reorder=5%"
    _netcat(tmp_path, 5_000_000, "--both", impair, options=FAST)


def test_listen_connect_moves_10mb_through_10_percent_loss_corruption_and_reordering(
    tmp_path: Path,
) -> None:
    impair = "loss=10%,corrupt=1%,reorder=5%,duplicate=1%"
    _netcat(tmp_path, 10_000_000, "--both", impair, options=FAST)


def test_half_close_client_still_receives_reply_sent_after_its_eof() -> None:
    program = str(Path(__file__).parent / "programs" / "reply_after_eof.py")
    proc = subprocess.Popen([sys.executable, program, "2000000"], stdout=subprocess.PIPE, text=True,
                            env=ENV)
    try:
        assert proc.stdout is not None
        host, port = proc.stdout.readline().strip().removeprefix("listening on ").rsplit(":", 1)
        request = b"request " * 1000
        done = run(["echo-client", host, port], input=request, capture_output=True)
        assert done.returncode == 0, done.stderr
        digest = hashlib.sha256(request).hexdigest().encode()
        assert len(done.stdout) == 2_000_000
        assert done.stdout.startswith(digest * 10)
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_fin_retransmission_when_relay_drops_first_two_fins() -> None:
    with server(["echo-server", *FAST]) as (_, host, port):
        with relay(port, "--both", "drop-flags=FIN:2") as (netem, front):
            done = run(["echo-client", host, str(front), "bye", *FAST], capture_output=True, text=True)
            netem.send_signal(signal.SIGTERM)
            summary = netem.communicate(timeout=10)[0]
        assert done.returncode == 0, done.stderr
        assert done.stdout == "bye"
        assert summary.count("dropped_flag=2") == 2, summary


def test_a_client_that_gives_up_on_its_fin_resets_the_server_through_a_challenge_ack() -> None:
    """The relay loses every FIN of the client, which gives up and resets at SND.NXT, one past
    the FIN the server never got. The server (RFC 5961 3.2) challenges that RST with an ACK;
    the client's endpoint, kept after the connection ended, answers it with a RST at exactly
    the server's RCV.NXT, and the server's connection ends instead of waiting for ever."""
    with server(["listen", "0"], stdin=subprocess.PIPE, first_line_on_stderr=True) as (srv, host, port), \
            relay(port, "--up", "drop-flags=FIN:1000") as (_, front), \
            program("give_up_on_fin.py", host, str(front)) as (_, first):
        assert first == "failed: TimeoutError"
        out, err = srv.communicate(timeout=15)
    assert out == "hello\n"
    assert srv.returncode != 0 and "reset" in err, err


def test_time_wait_reacknowledges_fin_when_last_ack_is_lost() -> None:
    """The active closer's last ACK is lost: the passive closer retransmits its FIN, the active
    closer (in TIME_WAIT) acknowledges it again, and the passive closer closes through that ACK."""
    logging = ["--log-level", "trace", "--log-json"]
    with server(["echo-server", *FAST, *logging]) as (srv, host, port):
        with relay(port, "--up", "drop-fin-ack=1") as (netem, front):
            client = run(["echo-client", host, str(front), "last ack", *FAST, *logging],
                         capture_output=True, text=True)
            netem.send_signal(signal.SIGTERM)
            summary = netem.communicate(timeout=10)[0]
        assert client.returncode == 0, client.stderr
        assert "dropped_fin_ack=1" in summary
        srv.send_signal(signal.SIGTERM)
        server_log = json_log(srv.communicate(timeout=30)[1])
    client_log = json_log(client.stderr)
    server_fins = [r for r in server_log if r["event"] == "segment sent" and "FIN" in r["segment"]]
    assert len(server_fins) >= 2  # the passive closer retransmitted its FIN
    reacks = [r for r in client_log if r["event"] == "segment received" and "FIN" in r["segment"]
              and r["state"] == "TIME_WAIT"]
    assert reacks, "the active closer never saw the retransmitted FIN in TIME_WAIT"
    closes = [r for r in server_log if r["event"] == "state change" and r["new"] == "CLOSED"]
    assert [(r["old"], r["cause"]) for r in closes] == [("LAST_ACK", "rcv ACK of FIN")]
    assert not [r for r in server_log if r["event"] == "connection failed"]


def test_connect_to_port_without_listener_is_refused() -> None:
    port = free_udp_port()
    done = run(["echo-client", "127.0.0.1", str(port), "hi"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 3, done.stderr
    assert "refused" in done.stderr


def test_connect_to_udptcp_endpoint_without_listener_gets_rst_and_is_refused() -> None:
    with server(["listen", "0"], stdin=subprocess.PIPE, first_line_on_stderr=True) as (srv, host, port):
        first = subprocess.Popen([*UDPTCP, "connect", host, str(port)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        try:
            assert first.stdin is not None and srv.stdin is not None
            first.stdin.write(b"ping\n")
            first.stdin.flush()
            assert srv.stdout is not None and srv.stdout.readline() == "ping\n"  # accepted
            second = run(["echo-client", host, str(port), "hi"], capture_output=True, text=True)
            assert second.returncode == 3, second.stderr
            assert "refused" in second.stderr
        finally:
            first.kill()
            first.wait(10)


def test_connect_to_silent_port_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        port = blackhole.getsockname()[1]
        done = run(["echo-client", "127.0.0.1", str(port), "hi", "-o", "syn_retries=2",
                    "-o", "rto_initial_s=0.2"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 4, done.stderr
    assert "timed out" in done.stderr


@pytest.mark.parametrize("victim", ["server", "client"])
def test_peer_killed_mid_transfer_ends_in_error_not_hang(tmp_path: Path, victim: str) -> None:
    """The side still sending notices the dead peer within its retries (4, RTO <= 0.5 s)."""
    retries = ["-o", "retries=4", "-o", "rto_min_s=0.1", "-o", "rto_initial_s=0.2", "-o", "rto_max_s=0.5"]
    source = random_file(tmp_path / "in.bin", 40_000_000)
    server_feed = source.open("rb") if victim == "client" else subprocess.DEVNULL
    client_feed = source.open("rb") if victim == "server" else subprocess.DEVNULL
    with server(["listen", "0", *retries], stdin=server_feed, first_line_on_stderr=True) as (
        listener, host, port,
    ):
        client = subprocess.Popen([*UDPTCP, "connect", host, str(port), *retries], stdin=client_feed,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        receiver, sender = (listener, client) if victim == "server" else (client, listener)
        assert receiver.stdout is not None
        getattr(receiver.stdout, "buffer", receiver.stdout).read(1_000_000)  # mid-transfer now
        receiver.kill()
        receiver.wait(10)
        code = sender.wait(30)  # 4 retries with the RTO capped at 0.5 s end in a few seconds
        assert sender.stderr is not None
        message = sender.stderr.read()
        message = message.decode() if isinstance(message, bytes) else message
        assert code == 4, message
        assert "timed out" in message
        client.kill()
        client.wait(10)


@pytest.mark.parametrize(("linger", "low_s", "high_s"), [("none", 1.9, 5.0), ("0.2", 0.15, 1.0)])
def test_leaving_asyncio_run_waits_for_time_wait(linger: str, low_s: float, high_s: float) -> None:
    """TIME_WAIT outlives the application: leaving udptcp.run waits 2*MSL (here 2 s) by
    default, or as long as shutdown_linger_s allows."""
    program = str(Path(__file__).parent / "programs" / "close_and_exit.py")
    with server(["echo-server"]) as (_, _, port):
        done = subprocess.run([sys.executable, program, str(port), "1.0", linger],
                              capture_output=True, text=True, timeout=60, env=ENV, check=False)
    assert done.returncode == 0, done.stderr
    state, waited = done.stdout.split()
    assert state == "TIME_WAIT"
    assert low_s <= float(waited) <= high_s


def test_a_connection_left_open_is_closed_when_the_program_ends() -> None:
    """Leaving udptcp.run with a connection still open closes it (a FIN after what was
    written), as the kernel closes the sockets of a process that exits: the peer sees the end
    of the stream at once instead of finding out by its timeouts."""
    with server(["listen", "0", "--msl", "0.1"], first_line_on_stderr=True) as (listener, _, port):
        done = subprocess.run([sys.executable, str(PROGRAMS / "leave_open_and_exit.py"), str(port), "0.1"],
                              capture_output=True, text=True, timeout=60, env=ENV, check=False)
        assert done.returncode == 0, done.stderr
        out, _ = listener.communicate(timeout=10)  # listen ends once its peer has closed
        assert out == "left open\n"
        assert listener.returncode == 0


def test_examples_echo_server_and_client() -> None:
    examples = Path(__file__).parent.parent / "examples"
    proc = subprocess.Popen([sys.executable, str(examples / "echo_server.py")], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        port = line.rsplit(":", 1)[1]
        done = subprocess.run([sys.executable, str(examples / "echo_client.py"), "127.0.0.1", port,
                               "copied code works"], capture_output=True, text=True, timeout=60,
                              env=ENV, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "copied code works"
    finally:
        proc.terminate()
        proc.wait(30)


REQUEST_BYTES = 2_000_000
"""What the client sends on each of the two connections (see the test below)."""


@pytest.mark.parametrize("timestamps", ["true", "false"])
def test_new_connection_on_the_same_addresses_never_accepts_a_segment_of_the_old_one(
    timestamps: str,
) -> None:
    """TIME_WAIT's second duty. The server closes first and sits in TIME_WAIT (2*MSL = 3 s)
    when the client opens a second connection from the same port, and a relay replays every
    datagram of the first connection at both sides. With timestamps the SYN reopens the pair
    at once (RFC 6191) and the replay lands in the middle of the new connection, where PAWS
    drops it; without them the pair stays closed until TIME_WAIT ends, and the replay lands
    while it holds. Either way the second connection's data must be exact.

    Without timestamps the hold is only certain while the second SYN's sequence number lies
    below what the first connection received (RFC 1122 4.2.2.13 lets a higher one reopen the
    pair): the ISN clock advances 250,000 a second, so the request is large enough that the
    first connection would have to last 8 s before the clock passes it."""
    option = f"timestamps={timestamps}"
    reopen_early = timestamps == "true"
    with program("close_first_server.py", "300000", option) as (srv, line):
        port = line.rsplit(":", 1)[1]
        with program("replay_relay.py", port, "data" if reopen_early else "syn") as (relay_proc, relay_line):
            front = relay_line.split()[1].rsplit(":", 1)[1]
            client = subprocess.run(
                [sys.executable, str(PROGRAMS / "connect_twice.py"), "127.0.0.1", front,
                 str(free_udp_port()), str(REQUEST_BYTES), option],
                capture_output=True, text=True, timeout=60, env=ENV, check=False,
            )
            assert client.returncode == 0, client.stderr
            assert relay_proc.stdout is not None
            replayed = relay_proc.stdout.readline().split()
        assert replayed[0] == "replayed" and int(replayed[1]) > 100
        assert srv.stdout is not None
        served = [srv.stdout.readline().split(" ", 3) for _ in range(2)]
    sent = [row.split() for row in client.stdout.splitlines()]
    for (_, _, request, reply, _), (_, _, digest, _) in zip(sent, served, strict=True):
        assert request == digest  # the server got exactly what the client sent
        expected = (digest.removeprefix("sha=").encode() * (300000 // 64 + 1))[:300000]
        assert reply == "reply=" + hashlib.sha256(expected).hexdigest()
    second_open_s = float(sent[1][4].removeprefix("open_s="))
    if reopen_early:
        assert second_open_s < 1.0
        stats = json.loads(served[1][3].removeprefix("stats="))
        towards_server = int(replayed[2])
        assert stats["paws_rejected"] >= towards_server * 3 // 4  # they reached it, and were dropped
    else:
        assert second_open_s > 1.5  # held off by the server's TIME_WAIT


@pytest.mark.parametrize("timestamps", ["true", "false"])
def test_a_restarted_client_reopens_pairs_the_server_holds_in_time_wait_at_once(timestamps: str) -> None:
    """A client process reconnects from the local ports of a client process that just ended,
    while the server, which closed first, holds each pair of addresses in TIME_WAIT (3 s). Its
    SYNs carry newer timestamps and sequence numbers than the old connections' (one ISN key per
    user and boot, ``udptcp/hostkey.py``), so each takes its pair over at once (RFC 6191). With
    a key per process, about half of them looked older and were refused, retransmissions too,
    until TIME_WAIT ended (3 s here); 8 ports make that certain to show."""
    option = f"timestamps={timestamps}"
    ports = ",".join(str(free_udp_port()) for _ in range(8))
    with program("close_first_server.py", "100", option) as (srv, line):
        port = line.rsplit(":", 1)[1]
        runs = [
            subprocess.run([sys.executable, str(PROGRAMS / "connect_from_ports.py"), "127.0.0.1", port,
                            "100", ports, option],
                           capture_output=True, text=True, timeout=60, env=ENV, check=False)
            for _ in range(2)
        ]
        assert srv.stdout is not None
        served = [srv.stdout.readline() for _ in range(16)]
    for done in runs:
        assert done.returncode == 0, done.stderr
    assert all(row.startswith(f"conn {n} ") for n, row in enumerate(served, start=1))
    reopened = [float(row.split("open_s=")[1]) for row in runs[1].stdout.splitlines()]
    assert len(reopened) == 8
    assert max(reopened) < 1.0, reopened  # a SYN retransmitted once would take 1 s


@pytest.mark.parametrize("how", ["terminated", "killed"])
def test_the_receiver_learns_that_the_sending_process_died(tmp_path: Path, how: str) -> None:
    """A process told to stop (SIGTERM) resets its connections first, as the kernel does for a
    dying process's TCP sockets: the peer fails at once with a reset. One killed outright
    (SIGKILL) says nothing, and a side that only receives has nothing to retransmit: keepalive
    finds the silence (here after 1 s, probes 0.3 s apart) and the receiver fails, not hangs."""
    source = random_file(tmp_path / "in.bin", 40_000_000)
    keepalive = ["-o", "keepalive_s=1", "-o", "keepalive_interval_s=0.3"]
    with server(["listen", "0", *keepalive], first_line_on_stderr=True) as (listener, host, port):
        with source.open("rb") as feed:
            sender = subprocess.Popen([*UDPTCP, "connect", host, str(port)], stdin=feed,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        assert listener.stdout is not None
        stdout_fd = listener.stdout.fileno()
        midway = threading.Event()

        def drain() -> None:  # the receiver must not block on a full pipe
            received = 0
            while chunk := os.read(stdout_fd, 65536):
                received += len(chunk)
                if received >= 1_000_000:
                    midway.set()

        threading.Thread(target=drain, daemon=True).start()
        assert midway.wait(30)
        sender.send_signal(signal.SIGTERM if how == "terminated" else signal.SIGKILL)
        assert sender.wait(10) == (130 if how == "terminated" else -signal.SIGKILL)
        code = listener.wait(15)
        assert listener.stderr is not None
        message = listener.stderr.read()
    if how == "terminated":
        assert code == 5, message
        assert "reset by peer" in message
    else:
        assert code == 4, message
        assert "keepalive" in message
