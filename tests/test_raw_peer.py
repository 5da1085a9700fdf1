"""The CLI against a peer that speaks the wire format by hand (``udptcp.wire`` only, no options).

The peer is this test process; the other end is a real ``udptcp`` process. This is how an
outside checker sees udptcp: segments on a UDP socket, with timing it controls.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from procs import ENV, UDPTCP

from udptcp.wire import Flags, MalformedSegment, Segment

pytestmark = pytest.mark.process

SYN, ACK, FIN, RST = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST
PEER_ISS = 700
WINDOW_BYTES = 65535


class RawPeer:
    """A UDP socket that sends and receives basic segments, with bounded waits."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.remote: tuple[str, int] | None = None

    def send(self, flags: Flags, seq: int, ack: int = 0, payload: bytes = b"") -> None:
        assert self.remote is not None
        seg = Segment(flags=flags, seq=seq % 2**32, ack=ack % 2**32, window=WINDOW_BYTES, payload=payload)
        self.sock.sendto(seg.encode(), self.remote)

    def recv(self, timeout_s: float) -> Segment | None:
        """The next valid segment within ``timeout_s``, or None."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                return None
            self.remote = addr
            try:
                return Segment.decode(data)
            except MalformedSegment:
                continue
        return None

    def expect(self, flags: Flags, timeout_s: float = 5.0) -> Segment:
        """The next segment carrying all of ``flags`` (others are skipped)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            seg = self.recv(left)
            if seg is not None and seg.flags & flags == flags:
                return seg
        raise AssertionError(f"no {flags!r} segment within {timeout_s} s")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peer() -> Iterator[RawPeer]:
    p = RawPeer()
    yield p
    p.close()


def _connect(peer: RawPeer, *options: str) -> tuple[subprocess.Popen[bytes], Segment]:
    """Start ``udptcp connect`` to ``peer``, complete its handshake; returns (process, its SYN)."""
    proc = subprocess.Popen(
        [*UDPTCP, "connect", "127.0.0.1", str(peer.port), *options],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )
    syn = peer.expect(SYN)
    peer.send(SYN | ACK, PEER_ISS, syn.seq + 1)
    return proc, syn


def _exit_code(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    try:
        return proc.wait(timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_time_wait_restarted_by_a_retransmitted_fin_keeps_the_process_answering(peer: RawPeer) -> None:
    """The client closes first and sits in TIME_WAIT (2*MSL = 2 s). A FIN retransmitted 1 s in
    restarts the timer, so a FIN retransmitted at 2.5 s, after the first 2 s would have ended,
    is still acknowledged: the exiting process waits for TIME_WAIT as it really is."""
    proc, syn = _connect(peer, "--msl", "1")
    assert proc.stdin is not None
    proc.stdin.close()  # end of stdin: the client's FIN
    fin = peer.expect(FIN)
    assert fin.seq == (syn.seq + 1) % 2**32
    peer.send(FIN | ACK, PEER_ISS + 1, fin.seq + 1)  # acknowledges theirs, and ours goes too
    assert peer.expect(ACK).ack == PEER_ISS + 2
    entered = time.monotonic()
    for at_s in (1.0, 2.5):
        time.sleep(max(0.0, entered + at_s - time.monotonic()))  # the peer's retransmission timer
        peer.send(FIN | ACK, PEER_ISS + 1, fin.seq + 1)
        again = peer.expect(ACK, timeout_s=0.4)
        assert (again.seq, again.ack) == ((fin.seq + 1) % 2**32, PEER_ISS + 2)
    assert _exit_code(proc, 10) == 0
    assert time.monotonic() - entered >= 3.0  # restarted at 2.5 s: 2*MSL more


def test_close_that_cannot_complete_resets_before_the_process_exits(peer: RawPeer) -> None:
    """A FIN that is never acknowledged is retransmitted a bounded number of times; then the
    connection resets, and the RST leaves before the exiting process closes its socket."""
    proc, syn = _connect(peer, "-o", "retries=2", "-o", "rto_initial_s=0.2")
    assert proc.stdin is not None
    proc.stdin.close()
    fins = [peer.expect(FIN) for _ in range(3)]  # the FIN and two retransmissions
    assert {f.seq for f in fins} == {(syn.seq + 1) % 2**32}
    rst = peer.expect(RST, timeout_s=10)
    assert rst.seq == (syn.seq + 2) % 2**32
    assert _exit_code(proc, 10) == 4  # timed out


def test_listen_is_not_blocked_by_a_strangers_half_open_syn() -> None:
    """``udptcp listen`` takes one connection; a SYN that never completes must not keep the real
    client out until its SYN-ACK retries run out."""
    listener = subprocess.Popen([*UDPTCP, "listen", "0"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    stranger = RawPeer()
    try:
        assert listener.stderr is not None
        line = listener.stderr.readline().decode().strip()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])
        stranger.remote = ("127.0.0.1", port)
        stranger.send(SYN, 1234)
        assert stranger.expect(SYN | ACK).ack == 1235
        client = subprocess.run([*UDPTCP, "connect", "127.0.0.1", str(port)], input=b"through",
                                capture_output=True, timeout=30, env=ENV, check=False)
        assert client.returncode == 0, client.stderr
        out, _ = listener.communicate(timeout=30)
        assert out == b"through"
    finally:
        stranger.close()
        if listener.poll() is None:
            listener.kill()
            listener.wait(5)


def test_stopped_echo_server_resets_a_peer_that_never_lets_it_close(peer: RawPeer) -> None:
    """SIGTERM: the server closes its connections (FIN); one whose peer goes silent cannot
    close, and must not keep the process alive for the length of its retries: after a grace
    period it is reset, and the process exits."""
    proc = subprocess.Popen([*UDPTCP, "echo-server", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("listening on "), line
        peer.remote = ("127.0.0.1", int(line.rsplit(":", 1)[1]))
        peer.send(SYN, PEER_ISS)
        synack = peer.expect(SYN | ACK)
        peer.send(ACK, PEER_ISS + 1, synack.seq + 1)  # established; from now on, silence
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        fin = peer.expect(FIN)
        assert fin.seq == (synack.seq + 1) % 2**32
        rst = peer.expect(RST, timeout_s=15)
        assert rst.seq == (synack.seq + 2) % 2**32
        assert _exit_code(proc, 20) == 0
        assert time.monotonic() - stopped < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
