"""Both ends' traces paired, textbook labels and bands, on hand-made traces (no processes)."""

from __future__ import annotations

from typing import Any

import pytest

from udptcp.trace.labels import Namer
from udptcp.trace.ladder import COLLAPSE_MIN_SEGMENTS, _Band, _items, _marks
from udptcp.trace.model import Side, build, pair

ISN_A = 1000
ISN_B = 2**32 - 10  # B's numbers wrap: names and offsets must not care


def _seg(t: float, direction: str, flags: str, seq: int, ack: int, length: int = 0, **extra: Any
         ) -> dict[str, Any]:
    return {"t": t, "cid": "c", "type": "segment", "dir": direction, "flags": flags,
            "seq": seq % 2**32, "ack": ack % 2**32, "win": 65535, "len": length, "crc": 0, **extra}


def _sides(data_segments: int = 1, lose_first_fin: bool = False) -> tuple[Side, Side]:
    """A textbook connection: handshake, data from A, A closes first, four-segment close."""
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    t = 0.0

    def send(sender: list[dict[str, Any]], receiver: list[dict[str, Any]], flags: str, seq: int, ack: int,
             length: int = 0, lost: bool = False, **extra: Any) -> None:
        nonlocal t
        t += 1.0
        sender.append(_seg(t, "sent", flags, seq, ack, length, **extra))
        if not lost:
            receiver.append(_seg(t + 0.5, "received", flags, seq, ack, length))

    x, y = ISN_A, ISN_B
    send(a, b, "SYN", x, 0)
    send(b, a, "SYN|ACK", y, x + 1)
    a.append({"t": t + 0.6, "cid": "c", "type": "state", "old": "SYN-SENT", "new": "ESTABLISHED"})
    send(a, b, "ACK", x + 1, y + 1)
    seq = x + 1
    for _ in range(data_segments):
        send(a, b, "ACK", seq, y + 1, 100)
        seq += 100
    send(b, a, "ACK", y + 1, seq)
    u = seq
    a.append({"t": t + 0.6, "cid": "c", "type": "state", "old": "ESTABLISHED", "new": "FIN-WAIT-1"})
    send(a, b, "ACK|FIN", u, y + 1, lost=lose_first_fin)
    if lose_first_fin:
        send(a, b, "ACK|FIN", u, y + 1, retransmission="rto")
    send(b, a, "ACK", y + 1, u + 1)
    send(b, a, "ACK|FIN", y + 1, u + 1)
    send(a, b, "ACK", u + 1, y + 2)
    side_a = Side("ca", "client", ISN_A, sorted(a, key=lambda e: e["t"]), "a.jsonl", irs=ISN_B)
    side_b = Side("cb", "server", ISN_B, sorted(b, key=lambda e: e["t"]), "b.jsonl", irs=ISN_A)
    return side_a, side_b


def test_both_ends_pair_by_their_isns_and_the_client_is_a() -> None:
    a, b = _sides()
    (exchange,) = pair([b, a])
    assert exchange.a is a and exchange.b is b
    assert len(exchange.arrows) == 9 and not any(arrow.lost for arrow in exchange.arrows)


@pytest.mark.parametrize(("numbering", "expected"), [
    ("symbolic", ["SYN=1, seq=x", "SYN=1, ACK=1, seq=y, ack=x+1", "ACK=1, seq=x+1, ack=y+1",
                  "ACK=1, seq=x+1, ack=y+1, 100 bytes", "ACK=1, seq=y+1, ack=x+101",
                  "FIN=1, seq=u", "ACK=1, seq=v, ack=u+1", "FIN=1, ACK=1, seq=w, ack=u+1",
                  "ACK=1, seq=u+1, ack=w+1"]),
    ("relative", ["SYN=1, seq=0", "SYN=1, ACK=1, seq=0, ack=1", "ACK=1, seq=1, ack=1",
                  "ACK=1, seq=1, ack=1, 100 bytes", "ACK=1, seq=1, ack=101",
                  "FIN=1, ACK=1, seq=101, ack=1", "ACK=1, seq=1, ack=102", "FIN=1, ACK=1, seq=1, ack=102",
                  "ACK=1, seq=102, ack=2"]),
])
def test_labels_as_the_textbook_writes_them(numbering: str, expected: list[str]) -> None:
    exchange = build(*_sides())
    namer = Namer(exchange, numbering)
    assert [namer.label(arrow) for arrow in exchange.arrows] == expected


def test_absolute_numbers_are_the_fields() -> None:
    exchange = build(*_sides())
    label = Namer(exchange, "absolute").label(exchange.arrows[1])
    assert label == f"SYN=1, ACK=1, seq={ISN_B}, ack={ISN_A + 1}"
    with pytest.raises(ValueError, match="numbers must be one of"):
        Namer(exchange, "roman")


def test_a_lost_fin_and_its_retransmission() -> None:
    exchange = build(*_sides(lose_first_fin=True))
    namer = Namer(exchange)
    fins = [namer.label(arrow) for arrow in exchange.arrows if "FIN" in arrow.segment["flags"]]
    assert fins == ["FIN=1, seq=u (lost)", "FIN=1, seq=u (retransmission: rto)",
                    "FIN=1, ACK=1, seq=w, ack=u+1"]


def test_a_run_of_data_becomes_one_band_unless_expanded() -> None:
    exchange = build(*_sides(data_segments=COLLAPSE_MIN_SEGMENTS + 5))
    marks = _marks(exchange)
    items = _items(exchange, marks, expand=False)
    bands = [item for item in items if isinstance(item, _Band)]
    assert len(bands) == 1
    assert bands[0].describe() == f"{COLLAPSE_MIN_SEGMENTS + 5} data segments, 1.3 kB; 2 ACKs"
    assert len(_items(exchange, marks, expand=True)) == len(exchange.arrows)


def test_one_end_alone_draws_the_peer_from_what_arrived() -> None:
    a, _b = _sides()
    exchange = build(a, None)
    senders = [arrow.sender for arrow in exchange.arrows]
    assert senders == ["A", "B", "A", "A", "B", "A", "B", "B", "A"]
    assert all(arrow.estimated and not arrow.lost for arrow in exchange.arrows)
    assert Namer(exchange).label(exchange.arrows[1]) == "SYN=1, ACK=1, seq=y, ack=x+1"
