"""Round-trip time estimation and the retransmission timeout (RFC 6298, RFC 7323 appendix G)."""

from __future__ import annotations

from typing import Final

CLOCK_GRANULARITY_S: Final = 0.001
"""G of RFC 6298: the coarsest timer the drivers promise (uvloop's timers tick in ms)."""
RTO_AFTER_LOST_SYN_S: Final = 3.0
"""RFC 6298 5.7: the RTO once data flows, if the handshake itself needed a retransmission."""


class RttEstimator:
    """SRTT, RTTVAR, the minimum RTT seen, and the RTO with exponential backoff.

    Karn's rule is the caller's: only feed samples that cannot belong to a retransmission
    (timestamps make every ACK such a sample). When samples come once per segment rather than
    once per round trip, RFC 7323 appendix G scales the gains down by the number of samples
    expected per window, so that RTTVAR does not collapse; ``flight_segments`` gives that count.
    A sample above SRTT keeps RFC 6298's full gains, so the RTO rises as fast as a queue
    builds (Linux lets its deviation rise fast and decay slowly for the same reason).
    """

    __slots__ = (
        "_rto_base_s",
        "backoff",
        "latest_s",
        "min_rtt_s",
        "rto_max_s",
        "rto_min_s",
        "rttvar_s",
        "srtt_s",
    )

    def __init__(self, rto_initial_s: float, rto_min_s: float, rto_max_s: float) -> None:
        self.rto_min_s = rto_min_s
        self.rto_max_s = rto_max_s
        self.srtt_s: float | None = None
        self.rttvar_s = 0.0
        self.min_rtt_s: float | None = None
        self.latest_s: float | None = None
        self.backoff = 0
        self._rto_base_s = rto_initial_s

    @property
    def rto_s(self) -> float:
        """The current timeout, backoff included: at least SRTT + rto_min_s, at most rto_max_s."""
        return min(self._rto_base_s * (1 << self.backoff), self.rto_max_s)

    def on_sample(self, rtt_s: float, flight_segments: int = 1) -> None:
        """Take one RTT measurement, in seconds; a fresh sample ends any backoff."""
        if rtt_s < 0.0:
            return
        self.latest_s = rtt_s
        if self.min_rtt_s is None or rtt_s < self.min_rtt_s:
            self.min_rtt_s = rtt_s
        srtt = self.srtt_s
        if srtt is None:
            srtt = rtt_s
            rttvar = rtt_s / 2.0
        else:
            # Appendix G's small gains only on the way down: a queue can double the RTT in a
            # few rounds, and an RTO that lags behind it fires while the data is only queued.
            samples = 1 if rtt_s > srtt else max(1, flight_segments // 2)
            beta = 0.25 / samples
            alpha = 0.125 / samples
            rttvar = (1.0 - beta) * self.rttvar_s + beta * abs(srtt - rtt_s)
            srtt = (1.0 - alpha) * srtt + alpha * rtt_s
        self.srtt_s = srtt
        self.rttvar_s = rttvar
        self.backoff = 0
        # RFC 6298's SRTT + max(G, 4 * RTTVAR), with rto_min_s as the floor of the variance
        # term rather than of the whole (as Linux): an RTO of rto_min_s on a path whose RTT is
        # close to it fires whenever a repair takes a second round trip.
        self._rto_base_s = srtt + max(self.rto_min_s, CLOCK_GRANULARITY_S, 4.0 * rttvar)

    def on_timeout(self) -> None:
        """The retransmission timer expired: double the timeout (RFC 6298 5.5)."""
        if self._rto_base_s * (1 << self.backoff) < self.rto_max_s:
            self.backoff += 1

    def on_handshake_retransmitted(self) -> None:
        """RFC 6298 5.7: without a sample, start data transfer with an RTO of 3 s."""
        if self.srtt_s is None:
            self._rto_base_s = max(self._rto_base_s, RTO_AFTER_LOST_SYN_S)
            self.backoff = 0
