"""Receive-window tuning: the window starts at what the driver's receive queue holds and grows
only as the path shows it needs, on the simulator's virtual clock."""

from __future__ import annotations

from dumbbell import Dumbbell

from udptcp.config import Config
from udptcp.core import Connection
from udptcp.core.autotune import WindowTuner
from udptcp.core.receiver import Receiver
from udptcp.core.rtt import RttEstimator
from udptcp.core.timers import Timers
from udptcp.wire import Segment

QUEUE_BYTES = 64 * 1024
"""A small socket receive queue (as Linux's default net.core.rmem_max grants about 208 KiB)."""
RATE_BPS = 50e6
MB = 1_000_000


def _tuned(ceiling: int = 16 * MB) -> tuple[WindowTuner, Receiver, RttEstimator]:
    rx = Receiver(ceiling, 1000, Timers())
    rx.start(0)
    rtt = RttEstimator(1.0, 0.2, 60.0)
    tuner = WindowTuner(rx, rtt, ceiling)
    tuner.set_receive_queue(QUEUE_BYTES)
    return tuner, rx, rtt


def _arrive(tuner: WindowTuner, rx: Receiver, octets_per_s: float, seconds: float, step_s: float) -> None:
    """In-order data at ``octets_per_s``, with an output pass every ``step_s``."""
    now = 0.0
    tuner.update(now)
    while now < seconds:
        now += step_s
        rx.rcv_nxt += int(octets_per_s * step_s)
        tuner.update(now)


def test_the_window_starts_at_the_queue_and_stays_there_on_a_short_path() -> None:
    tuner, rx, rtt = _tuned()
    rtt.on_sample(0.0002)  # loopback: what arrives in a round trip is far less than the queue
    _arrive(tuner, rx, 100 * MB, 1.0, 0.001)
    assert rx.buffer_bytes == QUEUE_BYTES


def test_a_zero_rtt_sample_and_passes_at_one_instant_change_nothing() -> None:
    """On a coarse clock an RTT sample can be 0, and several passes share one ``now``."""
    tuner, rx, rtt = _tuned()
    rtt.on_sample(0.0)
    tuner.update(5.0)
    rx.rcv_nxt += 100_000
    tuner.update(5.0)
    tuner.update(5.0)
    assert rx.buffer_bytes == QUEUE_BYTES


def test_on_a_long_path_it_grows_to_twice_what_arrives_per_round_trip() -> None:
    tuner, rx, rtt = _tuned()
    rtt.on_sample(0.1)
    _arrive(tuner, rx, 10 * MB, 2.0, 0.01)  # 1 MB per round trip
    assert 1.8 * MB <= rx.buffer_bytes <= 2.2 * MB
    assert rx.max_ooo_pieces >= 2 * rx.buffer_bytes // 1000  # reordering room grows along


def test_it_never_grows_past_recv_buffer_bytes_nor_under_memory_pressure() -> None:
    tuner, rx, rtt = _tuned(ceiling=QUEUE_BYTES * 4)
    rtt.on_sample(0.1)
    rx.pressure = True
    _arrive(tuner, rx, 10 * MB, 1.0, 0.01)
    assert rx.buffer_bytes == QUEUE_BYTES
    rx.pressure = False
    _arrive(tuner, rx, 10 * MB, 1.0, 0.01)
    assert rx.buffer_bytes == QUEUE_BYTES * 4


def test_the_syn_advertises_the_queue() -> None:
    conn = Connection(Config(), isn=1)
    conn.set_receive_queue(QUEUE_BYTES)
    conn.connect(0.0)
    assert Segment.decode(conn.datagrams_to_send(0.0)[0]).window == QUEUE_BYTES


def test_a_long_fast_path_is_still_filled() -> None:
    """50 Mbit/s over 60 ms (a 375 KB pipe) behind a 64 KiB receive queue: held to the
    queue's size, the window would allow 8.7 Mbit/s."""
    bell = Dumbbell([Config(mss=1380)], rate_bps=RATE_BPS, rtt_s=0.06, queue_bytes=375_000, seed=1)
    flow = bell.flows[0]
    flow.sender.conn.set_receive_queue(QUEUE_BYTES)
    flow.receiver.conn.set_receive_queue(QUEUE_BYTES)
    bell.start(0, bytes(int(RATE_BPS / 8 * 6)))
    bell.run_until(6.0)
    assert bell.goodput_bps(0, 3.0, 6.0) >= 0.8 * RATE_BPS
    assert QUEUE_BYTES < flow.receiver.conn.rx.buffer_bytes <= Config().recv_buffer_bytes
