"""Segments forged by an off-path attacker who guessed right (RFC 5961's residual risk),
between two cores over the simulated network: what they can set off stays bounded."""

from __future__ import annotations

from sim import Sim, established_pair

from udptcp.config import Config
from udptcp.core import State
from udptcp.core.checks import CHALLENGE_ACKS_PER_S, OUT_OF_WINDOW_ACK_INTERVAL_S
from udptcp.netem import Impairment
from udptcp.wire import Flags, Segment

S = State
WIRE = Impairment(delay_s=0.01)
"""A clean 10 ms path: no loss, no reordering."""


def test_a_forged_segment_at_rcv_nxt_sets_off_no_ack_storm() -> None:
    """An off-path attacker who guesses the server's RCV.NXT and an acceptable ACK gets its
    10 octets accepted (RFC 5961 cannot tell them from the client's). The two sides then
    disagree on the client's sequence numbers: the client finds its data acknowledged
    beyond what it sent, the server finds the client's ACKs behind its window, and each
    would answer the other's every ACK. Both answers are rate limited, so the exchange
    settles into a trickle instead of running at full speed for as long as the client sends
    nothing new."""
    sim = established_pair(Sim(Config(), up=WIRE, down=WIRE))
    client, server = sim.client.conn, sim.server.conn
    forged = Segment(flags=Flags.ACK, seq=server.rx.rcv_nxt & 0xFFFFFFFF,
                     ack=server.tx.nxt & 0xFFFFFFFF, window=65535, payload=b"0123456789")
    sim.inject(sim.server, forged.encode())
    start, sent_before = sim.now, len(sim.wire)
    sim.run_for(STORM_WATCH_S)
    per_second = (len(sim.wire) - sent_before) / (sim.now - start)
    assert per_second <= STORM_BOUND_PER_S
    assert client.stats.acks_rate_limited + server.stats.acks_rate_limited > 0
    assert client.state is S.ESTABLISHED is server.state  # nobody reset on a forged segment


STORM_WATCH_S = 5.0
STORM_BOUND_PER_S = CHALLENGE_ACKS_PER_S + 2 / OUT_OF_WINDOW_ACK_INTERVAL_S
"""The challenge ACKs one side may send per second, and the other side's rate-limited answers."""
