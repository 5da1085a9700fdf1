"""Loss recovery: RACK-TLP (RFC 8985), the retransmission timer (RFC 6298) and undo.

The scoreboard (``sender.Sender``) knows what was sent and what arrived; this module decides
what is lost and when, tells the congestion controller, and keeps the three timers that drive
it: RACK's reordering timer, the tail loss probe (PTO) and the RTO. With a peer that does not
do SACK, RACK would see no segment delivered beyond a hole, so it stays off and the floor
applies instead: fast retransmit on the third duplicate ACK and NewReno's partial ACKs
(RFC 5681, RFC 6582). It
also detects spurious retransmissions with timestamps (Eifel, RFC 3522) and DSACK
(RFC 2883), undoing the window reduction (RFC 4015) and widening RACK's reordering window.

Every ACK that delivers something comes through :meth:`LossRecovery.on_ack`, which applies it
to the scoreboard, takes the RTT and delivery-rate samples, and tells the congestion
controller, in that order.
"""

from __future__ import annotations

from typing import Final

from udptcp.core.checks import rtt_sample
from udptcp.core.congestion.base import CongestionControl
from udptcp.core.rtt import RttEstimator
from udptcp.core.sender import AckOutcome, RateSample, Sender
from udptcp.core.seqnum import seq_lt
from udptcp.core.stats import ConnectionStats
from udptcp.core.timers import Timer, Timers

DUP_THRESH: Final = 3
REO_WND_PERSIST_ROUNDS: Final = 16
TLP_MIN_S: Final = 0.01
"""Floor of the probe timeout: timers finer than this are not kept by the drivers anyway."""


class LossRecovery:
    """Which segments are lost, when to probe, and when to time out."""

    __slots__ = (
        "after_rto",
        "cc",
        "delayed_ack_s",
        "dsack_round",
        "dupacks",
        "rate_sample",
        "recovery_point",
        "reo_persist",
        "reo_wnd_mult",
        "reordering_seen",
        "rtt",
        "sack",
        "stats",
        "timeouts",
        "timers",
        "tlp_end",
        "tlp_flight",
        "tlp_retransmitted",
        "tlp_ts",
        "tx",
        "undo_marker",
        "undo_retrans",
        "undo_seq",
        "undo_ts",
    )

    def __init__(
        self, tx: Sender, rtt: RttEstimator, cc: CongestionControl, stats: ConnectionStats,
        timers: Timers, delayed_ack_s: float,
    ) -> None:
        self.tx = tx
        self.rtt = rtt
        self.cc = cc
        self.stats = stats
        self.timers = timers
        self.delayed_ack_s = delayed_ack_s
        self.rate_sample = RateSample()
        self.sack = False
        self.reordering_seen = False
        self.reo_wnd_mult = 1
        self.reo_persist = 0
        self.dsack_round: int | None = None
        self.recovery_point: int | None = None
        self.undo_ts: int | None = None
        self.undo_seq = 0
        self.undo_marker: int | None = None
        self.undo_retrans = 0
        self.tlp_end: int | None = None
        self.tlp_flight = 0
        self.tlp_retransmitted = False
        self.tlp_ts: int | None = None
        self.timeouts = 0
        self.dupacks = 0
        self.after_rto = False

    @property
    def in_recovery(self) -> bool:
        """A loss episode (fast recovery or after an RTO) is under way."""
        return self.recovery_point is not None

    @property
    def in_fast_recovery(self) -> bool:
        """Fast recovery, when the window holds still; after an RTO it slow-starts instead
        (RFC 5681 3.1), or the many segments to resend would go one per round trip."""
        return self.recovery_point is not None and not self.after_rto

    def reo_wnd(self) -> float:
        """RACK's reordering window (RFC 8985 6.2 step 4)."""
        if not self.reordering_seen and (
            self.recovery_point is not None or self.tx.sacked_count >= DUP_THRESH
        ):
            return 0.0
        rtt = self.rtt
        min_rtt = rtt.min_rtt_s or 0.0
        return min(min_rtt / 4.0 * self.reo_wnd_mult, rtt.srtt_s or 0.0)

    # -- events from the connection --------------------------------------------------------

    def on_sent(self, now: float) -> None:
        """Data went out: make sure a timer guards it (RFC 6298 5.1) and arm a probe."""
        self.timers.arm_if_idle(Timer.RTO, now + self.rtt.rto_s)
        self._arm_probe(now)

    def on_retransmit(self, end: int, tsval: int | None, now: float) -> None:
        """A retransmission went out; the first of an episode is the one undo compares with."""
        self.timers.arm_if_idle(Timer.RTO, now + self.rtt.rto_s)
        self.stats.retransmitted_segments += 1
        if self.undo_marker is not None:
            self.undo_retrans += 1
        if self.undo_ts is None and tsval is not None and self.recovery_point is not None:
            self.undo_ts = tsval
            self.undo_seq = end

    def on_ack(
        self, ack: int, blocks: list[tuple[int, int]], dsack: tuple[int, int] | None,
        tsecr: int | None, echo_age_s: float | None, now: float,
    ) -> AckOutcome:
        """An ACK that moves SND.UNA or carries SACK blocks: apply it to the scoreboard, take
        its RTT and delivery-rate samples, grow the window, then look for losses.

        ``tsecr`` is the timestamp it echoes and ``echo_age_s`` how long ago we sent that.
        """
        tx = self.tx
        out = tx.on_ack(ack, blocks, now)
        delivered = out.acked + out.sacked
        if delivered:
            sample_s = rtt_sample(out, echo_age_s, now)
            if sample_s is not None:
                self.rtt.on_sample(sample_s, max(1, (tx.nxt - tx.una) // tx.max_seg))
            sample = None
            latest = out.latest
            if latest is not None:
                sample = self.rate_sample
                sample.prior_inflight = tx.pipe + delivered
                tx.rate_sample(latest, now, sample)
            self.cc.on_ack(now, delivered, tx.pipe, self.rtt, sample, self.in_fast_recovery)
        self._learn(out, now, tsecr, dsack)
        out.latest = None  # let the acknowledged record go: an idle connection keeps none
        return out

    def _learn(
        self, out: AckOutcome, now: float, tsecr: int | None, dsack: tuple[int, int] | None
    ) -> None:
        """Apply what one ACK taught us: RACK state, losses, undo, timers."""
        tx = self.tx
        if dsack is not None:
            self._on_dsack(*dsack)
        if out.reordering and not self.reordering_seen:
            self.reordering_seen = True
            self.stats.reordering_events += 1
        rec = out.latest
        if rec is not None:
            rtt_s = now - rec.sent_at
            # A retransmission delivered sooner than any round trip must be its original's
            # delivery (RFC 8985 6.2, as Linux's tcp_rack_advance). TSecr cannot tell here:
            # while a hole stays open TS.Recent does not move, so it echoes old values.
            if not (rec.retransmitted and rtt_s < (self.rtt.min_rtt_s or 0.0)):
                tx.rack_update(rec, rtt_s)
        if out.acked and self.undo_ts is not None and tsecr is not None and tx.una >= self.undo_seq:
            if seq_lt(tsecr, self.undo_ts):
                self._undo()
            self.undo_ts = None
        if self.tlp_end is not None and tx.una >= self.tlp_end:
            self._end_probe(now, tsecr)
        if out.acked:
            self.dupacks = 0
            if not self.sack and self.recovery_point is not None and tx.una < self.recovery_point:
                self._on_lost(now, tx.mark_first_lost())  # NewReno: a partial ACK shows the next hole
        self._detect(now)
        if self.recovery_point is not None and tx.una >= self.recovery_point:
            self._exit_recovery(now)
        if out.acked:
            self.timeouts = 0
            if tx.all_acked:
                self.timers.cancel(Timer.RTO)
            else:
                self.timers.arm(Timer.RTO, now + self.rtt.rto_s)
        self._arm_probe(now)

    def on_duplicate_ack(self, now: float) -> None:
        """A duplicate ACK (RFC 5681): the third one, without SACK, means the first segment is lost."""
        self.dupacks += 1
        if self.dupacks == DUP_THRESH and not self.sack and self.recovery_point is None:
            lost = self.tx.mark_first_lost()
            if lost:
                self.stats.fast_retransmits += 1
                self._on_lost(now, lost)

    def _detect(self, now: float) -> None:
        if not self.sack:
            # Without SACK nothing beyond a hole is known to have arrived: a cumulative ACK
            # would make RACK judge the whole rest of the window lost. Duplicate ACKs and
            # NewReno's partial ACKs find the holes instead (as Linux does for such peers).
            return
        lost, recheck_at = self.tx.rack_detect(now, self.reo_wnd())
        if recheck_at is None:
            self.timers.cancel(Timer.REORDER)
        else:
            self.timers.arm(Timer.REORDER, recheck_at)
        if lost:
            self._on_lost(now, lost)

    def _on_lost(self, now: float, lost: int) -> None:
        if not lost:
            return
        self.cc.on_loss(now, lost)
        if self.recovery_point is None:
            tx = self.tx
            self.stats.loss_episodes += 1
            self.cc.on_congestion_event(now, tx.nxt - tx.una, self.rtt)
            self.recovery_point = tx.nxt
            self.undo_ts = None
            self._start_undo_count()
            self.timers.cancel(Timer.PROBE)

    def _exit_recovery(self, now: float) -> None:
        self.recovery_point = None
        self.after_rto = False
        self.undo_ts = None
        if self.reo_persist > 0:
            self.reo_persist -= 1
            if self.reo_persist == 0:
                self.reo_wnd_mult = 1
        self.cc.on_recovery_exit(now)

    def _start_undo_count(self) -> None:
        """A new loss episode: count its retransmissions, which DSACKs may prove spurious."""
        self.undo_marker = self.tx.una
        self.undo_retrans = 0

    def _on_dsack(self, start: int, end: int) -> None:
        tx = self.tx
        self.stats.dsacks_received += 1
        marker = self.undo_marker
        if marker is not None and end > marker and self.undo_retrans > 0:
            # RFC 2883 / Linux's undo_retrans: each duplicate the peer reports is one of our
            # retransmissions it did not need; once all of them are reported, the episode
            # was spurious (reordering or a late ACK, not loss) and its reduction is undone.
            self.undo_retrans -= -(-(end - start) // tx.max_seg)
            if self.undo_retrans <= 0:
                self._undo()
        if self.dsack_round is not None and tx.una >= self.dsack_round:
            self.dsack_round = None
        if self.dsack_round is None:
            self.dsack_round = tx.nxt
            self.reo_wnd_mult += 1
            self.reo_persist = REO_WND_PERSIST_ROUNDS
            self.reordering_seen = True

    def _undo(self) -> None:
        """Every retransmission of the episode was spurious: the originals arrived."""
        self.stats.spurious_undos += 1
        self.cc.undo()
        self.tx.unmark_lost()
        self.undo_marker = None
        self.undo_ts = None
        self.recovery_point = None
        self.after_rto = False
        self.reordering_seen = True

    # -- timers ----------------------------------------------------------------------------

    def _arm_probe(self, now: float) -> None:
        tx = self.tx
        srtt = self.rtt.srtt_s
        if (
            not self.sack
            or self.tlp_end is not None
            or self.recovery_point is not None
            or srtt is None
            or not tx.in_flight
        ):
            self.timers.cancel(Timer.PROBE)
            return
        pto = 2.0 * srtt
        if tx.pipe <= tx.max_seg:
            pto += self.delayed_ack_s
        pto_at = now + max(pto, TLP_MIN_S)
        rto_at = self.timers.deadline(Timer.RTO)
        if rto_at is not None and rto_at < pto_at:
            self.timers.cancel(Timer.PROBE)
        else:
            self.timers.arm(Timer.PROBE, pto_at)

    def on_reorder_timer(self, now: float) -> None:
        """RACK's timer: segments waiting out the reordering window may be lost now."""
        self._detect(now)

    def on_probe_sent(self, now: float, retransmitted: bool, tsval: int | None) -> None:
        """A tail loss probe went out: wait for its ACK, with the RTO as the backstop."""
        self.stats.tail_loss_probes += 1
        self.timers.cancel(Timer.PROBE)
        self.tlp_end = self.tx.nxt
        self.tlp_flight = self.tx.nxt - self.tx.una
        self.tlp_retransmitted = retransmitted
        self.tlp_ts = tsval
        self.timers.arm(Timer.RTO, now + self.rtt.rto_s)

    def _end_probe(self, now: float, tsecr: int | None) -> None:
        """RFC 8985 7.4: a retransmitted probe that repaired a loss still signals congestion."""
        repaired = self.tlp_retransmitted and not (
            tsecr is not None and self.tlp_ts is not None and seq_lt(tsecr, self.tlp_ts)
        )
        self.tlp_end = None
        if repaired and self.recovery_point is None:
            self.stats.loss_episodes += 1
            # The flight when the probe went out: the probe's ACK usually acknowledges it all.
            self.cc.on_congestion_event(now, self.tlp_flight, self.rtt)
            self.cc.on_recovery_exit(now)

    def on_rto(self, now: float) -> None:
        """The retransmission timer expired: back off, and resend everything unSACKed."""
        tx = self.tx
        self.timeouts += 1
        self.stats.timeouts += 1
        self.rtt.on_timeout()
        self.cc.on_rto(now, tx.nxt - tx.una)
        lost = tx.mark_all_lost()
        if lost:
            self.cc.on_loss(now, lost)
        self.recovery_point = tx.nxt
        self.after_rto = True
        self.undo_ts = None
        self._start_undo_count()
        self.tlp_end = None
        self.timers.cancel(Timer.PROBE)
        self.timers.cancel(Timer.REORDER)
        self.timers.arm(Timer.RTO, now + self.rtt.rto_s)
