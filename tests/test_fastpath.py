"""Header prediction (``core.fastpath``) does exactly what the full path of RFC 9293 3.10.7 does.

A segment that carries an option the connection did not agree to (SACK blocks, without SACK)
is left to the full path, where the option means nothing. So the same exchange, run once with
plain segments (predicted) and once with that option added (the full path), must leave the
two connections alike: the same events, the same segments sent, the same timers, window and
round-trip estimate.
"""

from __future__ import annotations

from typing import Any

import pytest
from peer import ACK, BASIC, ISS, PEER_ISS, PEER_WINDOW_BYTES, Peer, established

from udptcp.config import Config
from udptcp.core import DataReceived

DELAYED_ACKS = Config(sack=False, timestamps=False, pacing=False, msl_s=30.0)
"""As ``BASIC``, but the second segment (or the delayed-ACK timer) is acknowledged, not each."""
RTT_S = 0.01


def _snapshot(p: Peer) -> dict[str, Any]:
    conn = p.conn
    return {
        "state": conn.state, "una": conn.tx.una, "nxt": conn.tx.nxt, "wnd": conn.tx.wnd,
        "wl1": conn.tx.wl1, "wl2": conn.tx.wl2, "rcv_nxt": conn.rx.rcv_nxt,
        "buffered": conn.send_buffered, "timer": conn.get_timer(), "srtt": conn.rtt.srtt_s,
        "rto": conn.rtt.rto_s, "cwnd": conn.cc.cwnd, "stats": conn.stats.as_dict(),
        "events": [(type(e).__name__, bytes(e.data) if isinstance(e, DataReceived) else None)
                   for e in p.events],
    }


def _request_response(config: Config, *, full_path: bool) -> list[dict[str, Any]]:
    """Three requests, each answered by a reply that acknowledges it: the first reply shrinks
    the window, the second leaves it, the third opens it again; then a lone data segment
    that acknowledges nothing new. A snapshot after each step."""
    options: dict[str, Any] = {"sack": ((PEER_ISS, PEER_ISS + 1),)} if full_path else {}
    p = established(config)
    p.events.clear()
    snapshots = []
    seq, ack = PEER_ISS + 1, ISS + 1
    for window, reply in ((PEER_WINDOW_BYTES - 1, b"one"), (PEER_WINDOW_BYTES - 1, b"two"),
                          (PEER_WINDOW_BYTES, b"three")):
        request = b"request"
        p.conn.send(request)
        p.recv_one()
        ack += len(request)
        p.advance(RTT_S)
        p.send(ACK, seq, ack, reply, window=window, **options)
        seq += len(reply)
        snapshots.append(_snapshot(p) | {"sent": [s.describe() for s in p.recv()]})
    p.send(ACK, seq, ack, b"more", window=PEER_WINDOW_BYTES, **options)
    snapshots.append(_snapshot(p) | {"sent": [s.describe() for s in p.recv()]})
    p.advance(1.0)
    snapshots.append(_snapshot(p) | {"sent": [s.describe() for s in p.recv()]})
    return snapshots


@pytest.mark.parametrize("config", [BASIC, DELAYED_ACKS], ids=["ack-each", "delayed-ack"])
def test_a_reply_that_acknowledges_a_request_is_predicted_as_the_full_path_would_take_it(
    config: Config,
) -> None:
    predicted = _request_response(config, full_path=False)
    full = _request_response(config, full_path=True)
    assert predicted == full
    last_reply = predicted[2]
    assert last_reply["buffered"] == 0  # every request acknowledged by its reply
    assert last_reply["wnd"] == PEER_WINDOW_BYTES
    # each reply's ACK is a round-trip sample of RTT_S (the handshake's was 0)
    assert 0 < predicted[0]["srtt"] < predicted[1]["srtt"] < predicted[2]["srtt"] < RTT_S
    assert predicted[0]["wnd"] == PEER_WINDOW_BYTES - 1
    assert [name for name, _ in predicted[-1]["events"]] == ["DataReceived"] * 4
