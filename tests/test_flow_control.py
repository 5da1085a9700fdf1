"""Flow control: a slow reader holds its sender back, and nobody is told to take data back.

The receiving application stops reading with ``pause_reading()``; its window shrinks to zero,
the sender stops and probes, and ``resume_reading()`` reopens the window. Receiver-side
silly window avoidance (RFC 9293 3.8.6.2.2) keeps window updates in useful steps, and the
right edge of the advertised window never moves left (RFC 9293 3.8.6).
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from peer import ACK, BASIC, ISS, PEER_ISS, RST, Peer, established
from sim import App, Sim, established_pair

from udptcp.config import Config
from udptcp.core import CloseReason, ConnectionFailed, DataReceived, State
from udptcp.netem import Impairment
from udptcp.wire import Flags, Segment

S = State
SEQ = 2**32
BUFFER_BYTES = 32 * 1024
MSS_BYTES = 1000
RTT_S = 0.02
FLOW = Config(recv_buffer_bytes=BUFFER_BYTES, mss=MSS_BYTES, rto_min_s=0.2, msl_s=1.0)
WIRE = Impairment(delay_s=RTT_S / 2)


def data(seed: int, size: int) -> bytes:
    """Reproducible payload that would show any reordering or duplication."""
    return random.Random(seed).randbytes(size)


def unwrapped(values: list[int], ref: int) -> list[int]:
    """32-bit sequence values on the number line, each within 2**31 of the one before.

    ``ref`` is where the line starts (a 32-bit value taken as already unwrapped).
    """
    out: list[int] = []
    for v in values:
        step = (v - ref) % SEQ
        ref += step if step < 2**31 else step - SEQ
        out.append(ref)
    return out


def right_edges(sim: Sim, receiver: str) -> list[tuple[float, int]]:
    """(time, ack + window) of every ACK ``receiver`` sent, in the sender's sequence space."""
    sender = "client" if receiver == "server" else "server"
    isn = sim.segments(sender)[0].seq
    acks = [(t, s) for t, who, s in sim.wire
            if who == receiver and s.flags & Flags.ACK and not s.flags & Flags.RST]
    edges = unwrapped([(s.ack + s.window) % SEQ for _, s in acks], isn)
    return [(t, edge) for (t, _), edge in zip(acks, edges, strict=True)]


def is_probe(seg: Segment, una: int) -> bool:
    """A zero-window probe here: an ACK carrying no data, one below SND.UNA (RFC 9293 3.8.6.1)."""
    return seg.flags == Flags.ACK and not seg.payload and seg.seq == (una - 1) % SEQ


def resume(sim: Sim, app: App) -> None:
    """The application starts reading again; whatever that makes the core send goes out now."""
    app.conn.resume_reading()
    sim.flush()


def assert_never_beyond_window(sim: Sim, sender: str, receiver: str) -> None:
    """No data segment ends right of the largest edge the receiver had advertised by then."""
    edges = right_edges(sim, receiver)
    sent = [(t, s) for t, who, s in sim.wire if who == sender]
    seqs = unwrapped([s.seq for _, s in sent], sent[0][1].seq)
    i, best = 0, None
    for (t, s), seq in zip(sent, seqs, strict=True):
        while i < len(edges) and edges[i][0] <= t:
            best = edges[i][1] if best is None else max(best, edges[i][1])
            i += 1
        if s.payload:
            assert best is not None and seq + len(s.payload) <= best, (
                f"{sender} sent [{seq}, {seq + len(s.payload)}) beyond the edge {best} at {t}"
            )


# -- a paused reader ----------------------------------------------------------------------------


def paused_transfer(size: int = 200_000, pause_s: float = 60.0) -> tuple[Sim, bytes]:
    """The server stops reading before the client sends ``size`` octets; ``pause_s`` passes."""
    sim = established_pair(Sim(FLOW, up=WIRE, down=WIRE, seed=5))
    sim.server.conn.pause_reading()
    payload = data(5, size)
    sim.client.to_send, sim.client.close_when_sent = payload, True
    sim.server.shutdown_on_eof = True
    sim.flush()
    sim.run_for(pause_s)
    return sim, payload


def test_paused_reader_closes_the_window_and_stops_the_sender() -> None:
    """Exactly one buffer's worth is sent and held; then only probes, for as long as it takes."""
    sim, _ = paused_transfer()
    client, server = sim.client.conn, sim.server.conn
    assert sim.server.received == b""
    assert server.rx.held_bytes == BUFFER_BYTES  # everything the window allowed, nothing more
    assert client.stats.bytes_sent == BUFFER_BYTES  # the sender stopped at the window's edge
    assert client.tx.una == client.tx.nxt  # all of it acknowledged: only new data is blocked
    last = sim.segments("server")[-1]
    assert last.window == 0
    assert right_edges(sim, "server")[-1][1] == right_edges(sim, "server")[0][1]
    # A minute of zero window: the sender keeps probing and does not give up (RFC 9293 3.8.6.1).
    assert client.state is S.FIN_WAIT_1 and sim.client.failed is None
    assert client.stats.window_probes >= 6  # backing off from 2 * RTO towards rto_max_s
    assert client.stats.retransmitted_segments == 0
    assert_never_beyond_window(sim, "client", "server")


def test_zero_window_probes_are_empty_acks_that_the_receiver_answers() -> None:
    """Every probe is answered with an ACK still showing the zero window."""
    sim, _ = paused_transfer(pause_s=10.0)
    una = sim.client.conn.tx.una
    probes = [t for t, who, s in sim.wire if who == "client" and is_probe(s, una)]
    assert len(probes) == sim.client.conn.stats.window_probes >= 5
    answers = [t for t, who, s in sim.wire if who == "server" and s.window == 0 and t > probes[0]]
    assert len(answers) >= len(probes) - 1
    gaps = [b - a for a, b in pairwise(probes)]
    assert all(g >= FLOW.rto_min_s - 1e-9 for g in gaps)
    assert all(b >= a - 1e-9 for a, b in pairwise(gaps))  # never faster


def test_resume_delivers_held_data_in_order_and_updates_the_window() -> None:
    """Held data goes up at once, a window update goes out at once, then the transfer ends."""
    sim, payload = paused_transfer(pause_s=5.0)
    before = len(sim.segments("server"))
    resume(sim, sim.server)
    assert sim.server.received == payload[:BUFFER_BYTES]
    update = sim.segments("server")[before:]
    assert len(update) == 1 and update[0].flags == Flags.ACK
    assert update[0].window == BUFFER_BYTES
    sim.run(lambda: sim.client.terminated and sim.server.terminated, max_time=300.0)
    assert sim.server.received == payload
    assert sim.server.eof and sim.client.send_complete
    assert sim.client.failed is None and sim.server.failed is None
    assert_never_beyond_window(sim, "client", "server")


def test_lost_window_update_is_recovered_by_the_next_probe() -> None:
    """The update after resume is dropped; the sender's probe fetches the open window."""
    sim, payload = paused_transfer(pause_s=5.0)
    probes_before = sim.client.conn.stats.window_probes
    sim.drop_next["server"] = 1
    resume(sim, sim.server)
    assert sim.drop_next["server"] == 0  # the update was sent, and lost
    sim.run(lambda: sim.client.terminated and sim.server.terminated, max_time=300.0)
    assert sim.client.conn.stats.window_probes == probes_before + 1
    assert sim.server.received == payload and sim.client.failed is None


def test_right_edge_never_moves_left_across_pauses_and_loss() -> None:
    """RFC 9293 3.8.6: ack + window never decreases, in any ACK the receiver sends."""
    lossy = Impairment(loss=0.05, reorder=0.1, delay_s=RTT_S / 2, jitter_s=0.005)
    sim = established_pair(Sim(FLOW, up=lossy, down=lossy, seed=11))
    payload = data(11, 400_000)
    sim.client.to_send, sim.client.close_when_sent = payload, True
    sim.server.shutdown_on_eof = True
    sim.flush()
    for _ in range(6):  # read in bursts: pause long enough to fill the window, then catch up
        sim.server.conn.pause_reading()
        sim.run_for(1.0)
        resume(sim, sim.server)
        sim.run_for(0.1)
    sim.run(lambda: sim.client.terminated and sim.server.terminated, max_time=600.0)
    assert sim.server.received == payload
    assert sim.up.counters.dropped > 0
    edges = [edge for _, edge in right_edges(sim, "server")]
    assert any(s.window == 0 for s in sim.segments("server"))  # the pauses did close it
    assert len(set(edges)) > 10  # the edge did move, many times
    assert all(b >= a for a, b in pairwise(edges))
    assert_never_beyond_window(sim, "client", "server")


def test_receiver_moves_its_right_edge_only_in_useful_steps() -> None:
    """Receiver-side SWS avoidance over a whole paused/resumed transfer (RFC 9293 3.8.6.2.2)."""
    sim, payload = paused_transfer(pause_s=2.0)
    resume(sim, sim.server)
    sim.run(lambda: sim.client.terminated and sim.server.terminated, max_time=300.0)
    assert sim.server.received == payload
    edges = [edge for _, edge in right_edges(sim, "server")]
    steps = [b - a for a, b in pairwise(edges) if b != a]
    assert steps and min(steps) >= min(BUFFER_BYTES // 2, MSS_BYTES)


# -- scripted: silly window avoidance ------------------------------------------------------------

SWS = BASIC.replace(mss=1000, recv_buffer_bytes=4000)
"""Buffer 4000, MSS 1000: the right edge may only move in steps of min(4000/2, 1000) = 1000."""


def test_small_segments_move_the_right_edge_only_after_an_mss_is_freed() -> None:
    """Reading keeps up, but 100-octet segments do not each widen the window by 100."""
    p = established(SWS)
    base = PEER_ISS + 1
    windows = []
    for i in range(12):
        p.send(ACK, base + 100 * i, ISS + 1, bytes([i]) * 100)
        ack = p.recv_one()
        assert ack.ack == base + 100 * (i + 1)
        windows.append(ack.window)
    assert windows == [3900, 3800, 3700, 3600, 3500, 3400, 3300, 3200, 3100, 4000, 3900, 3800]
    assert len(p.taken(DataReceived)) == 12  # the data itself was not held back


def test_resume_with_little_held_data_sends_no_window_update() -> None:
    """Freeing 300 octets of a 4000-octet window is not worth a segment."""
    p = established(SWS)
    p.conn.pause_reading()
    p.send(ACK, PEER_ISS + 1, ISS + 1, b"a" * 300)
    assert p.recv_one().window == 3700
    p.conn.resume_reading()
    p.recv_nothing()
    assert len(p.taken(DataReceived)) == 1


def test_resume_after_a_zero_window_sends_an_update_at_once() -> None:
    p = established(SWS)
    p.conn.pause_reading()
    base = PEER_ISS + 1
    windows = []
    for i in range(4):
        p.send(ACK, base + 1000 * i, ISS + 1, bytes([i]) * 1000)
        windows.append(p.recv_one().window)
    assert windows == [3000, 2000, 1000, 0]
    p.send(ACK, base + 4000, ISS + 1, b"z" * 1000)  # beyond the closed window: refused
    assert p.recv_one().window == 0
    p.conn.resume_reading()
    update = p.recv_one()
    assert (update.ack, update.window) == (base + 4000, 4000)
    got = b"".join(bytes(e.data) for e in p.events if isinstance(e, DataReceived))
    assert got == b"".join(bytes([i]) * 1000 for i in range(4))


# -- scripted: the sender's side of a zero window --------------------------------------------------

PERSIST = BASIC.replace(mss=100, rto_min_s=0.2, retries=4)


def zero_window_sender() -> Peer:
    """Everything sent is acknowledged with a zero window, and more data is waiting."""
    p = established(PERSIST)
    p.conn.send(b"x" * 300)
    assert len(p.recv()) == 3
    p.send(ACK, PEER_ISS + 1, ISS + 301, window=0)
    p.conn.send(b"y" * 300)
    p.recv_nothing()  # no data into a zero window
    return p


def probe_and_answer(p: Peer, rounds: int) -> list[float]:
    """Let ``rounds`` probes go out, answering each with the zero window; returns the gaps."""
    gaps = []
    for _ in range(rounds):
        gaps.append(p.fire_timer())
        probe = p.recv_one()
        assert is_probe(probe, ISS + 301)
        p.send(ACK, PEER_ISS + 1, ISS + 301, window=0)
        p.recv_nothing()
    return gaps


def test_answered_probes_keep_the_connection_open_indefinitely() -> None:
    """RFC 9293 3.8.6.1: no timeout while the receiver keeps acknowledging the probes."""
    p = zero_window_sender()
    probe_and_answer(p, 4 * PERSIST.retries)
    assert p.state is S.ESTABLISHED
    assert p.conn.stats.window_probes == 4 * PERSIST.retries
    p.send(ACK, PEER_ISS + 1, ISS + 301, window=300)  # the window opens: data flows at once
    sent = p.recv()
    assert [s.seq for s in sent] == [ISS + 301, ISS + 401, ISS + 501]
    assert b"".join(s.payload for s in sent) == b"y" * 300


def test_answered_probe_intervals_grow() -> None:
    """RFC 9293 3.8.6.1: SHOULD increase exponentially the interval between successive probes."""
    p = zero_window_sender()
    gaps = probe_and_answer(p, 6)
    assert all(b > a for a, b in pairwise(gaps)), gaps


def test_unanswered_probes_back_off_then_time_out() -> None:
    """A receiver that vanished behind a zero window: exponential backoff, then TIMED_OUT."""
    p = zero_window_sender()
    gaps = []
    for _ in range(PERSIST.retries):
        gaps.append(p.fire_timer())
        assert is_probe(p.recv_one(), ISS + 301)
    rto = PERSIST.rto_min_s
    assert gaps == pytest.approx([rto * 2**k for k in range(PERSIST.retries)])
    assert p.fire_timer() == pytest.approx(rto * 2**PERSIST.retries)
    assert p.recv_one().flags & RST
    assert p.state is S.CLOSED
    assert p.taken(ConnectionFailed) == [ConnectionFailed(CloseReason.TIMED_OUT)]


def test_window_shrunk_to_zero_with_data_in_flight_does_not_time_out() -> None:
    """RFC 9293 3.8.6.1: a sender must be robust to shrinking and not time out an answering peer."""
    p = established(PERSIST)
    p.conn.send(b"x" * 300)
    assert len(p.recv()) == 3
    p.send(ACK, PEER_ISS + 1, ISS + 201, window=0)  # 100 octets in flight, right edge moved left
    for _ in range(2 * PERSIST.retries):
        p.fire_timer()
        sent = p.recv()
        assert sent and not sent[0].flags & RST, "reset although every probe was answered"
        p.send(ACK, PEER_ISS + 1, ISS + 201, window=0)
        p.recv()
    assert p.state is S.ESTABLISHED


def test_out_of_order_pieces_are_capped_so_tiny_segments_cannot_bloat_memory() -> None:
    """A peer that cuts its data into one-octet segments and sends them out of order would
    make each octet of the window cost a dictionary entry; past a bound (here 1024 pieces, for
    a 64 KiB window) new pieces are dropped and acknowledged, and the sender resends them."""
    p = established(BASIC.replace(recv_buffer_bytes=65536))
    limit = p.conn.rx.max_ooo_pieces
    assert limit == 1024
    for k in range(1, 2 * limit + 1):  # every other octet, beyond a hole at PEER_ISS + 1
        p.send(ACK, PEER_ISS + 1 + 2 * k, ISS + 1, b"x")
    assert p.conn.rx.ooo is not None and len(p.conn.rx.ooo.starts) == limit
    assert p.conn.rx.ooo_dropped == limit
    p.recv()
    p.send(ACK, PEER_ISS + 1, ISS + 1, bytes(2 * limit + 2))  # the sender resends it all
    assert p.conn.rx.rcv_nxt == PEER_ISS + 1 + 2 * limit + 2
    assert p.conn.rx.ooo is None  # every hole filled: the reassembly is let go
