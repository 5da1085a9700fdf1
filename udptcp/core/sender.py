"""The sending half of a connection: the send buffer and the scoreboard of sent segments.

Sequence numbers are unwrapped. Application data sits in a :class:`SendBuffer` (the writes as
they came, from SND.UNA's octet on); segments are cut from it as views, so payload is copied
once, into the datagram.

Every transmission is a :class:`SentSegment` in ``recs`` (ordered by sequence) and in ``tsorted``
(ordered by transmission time). The scoreboard applies cumulative ACKs and SACK blocks, keeps
the pipe (RFC 6675: octets sent and neither SACKed nor judged lost) as a running count, and runs
RACK's time-based loss detection (RFC 8985) over ``tsorted``, which touches each transmission a
constant number of times. It also keeps the delivery-rate state that BBR samples.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import attrgetter, itemgetter

from udptcp.core.rangeset import RangeSet
from udptcp.core.sendbuffer import SendBuffer
from udptcp.wire import FIN, SYN

_start_of = attrgetter("start")
_sent_time_of = itemgetter(0)
COMPACT_AFTER = 1024


class SentSegment:
    """One segment in flight: its sequence range and what we know of its fate."""

    __slots__ = ("app_limited", "delivered", "delivered_at", "end", "first_sent_at", "lost",
                 "retransmitted", "sacked", "sent_at", "start")

    def __init__(self, start: int, end: int, sent_at: float) -> None:
        self.start = start
        self.end = end
        self.sent_at = sent_at
        self.retransmitted = False
        self.sacked = False
        self.lost = False
        self.delivered = 0
        self.delivered_at = 0.0
        self.first_sent_at = 0.0
        self.app_limited = False


class RateSample:
    """Delivery rate over the interval ending with this ACK (draft-cheng-iccrg-delivery-rate)."""

    __slots__ = ("delivered", "interval_s", "is_app_limited", "lost", "prior_delivered",
                 "prior_inflight", "rtt_s")

    def __init__(self) -> None:
        self.delivered = 0
        self.interval_s = 0.0
        self.is_app_limited = False
        self.lost = 0
        self.prior_delivered = 0
        self.prior_inflight = 0
        self.rtt_s = 0.0

    @property
    def rate(self) -> float:
        """Octets per second delivered over the sample, 0.0 when the interval is empty."""
        return self.delivered / self.interval_s if self.interval_s > 0.0 else 0.0


class AckOutcome:
    """What one ACK did to the scoreboard (kept by the sender and reused across ACKs)."""

    __slots__ = ("acked", "latest", "reordering", "rtt_sent_at", "sacked")

    def __init__(self) -> None:
        self.acked = 0
        self.sacked = 0
        self.latest: SentSegment | None = None
        self.reordering = False
        self.rtt_sent_at: float | None = None
        """When the earliest segment this ACK newly delivered was sent, if the ACK gives an
        unambiguous RTT sample: Karn's rule (no retransmitted segment among those it
        acknowledged), and no segment already given up as lost (when it arrived is unknown)."""

    def reset(self) -> None:
        """Forget the last ACK's outcome."""
        self.acked = 0
        self.sacked = 0
        self.latest = None
        self.reordering = False
        self.rtt_sent_at = None


class Sender:
    """Send buffer, scoreboard, RACK state and delivery-rate state of one connection."""

    __slots__ = (
        "app_limited_until", "buf", "delivered", "delivered_at", "fack",
        "fin_seq", "first_sent_at", "head", "iss", "lost", "lost_head", "max_seg", "max_wnd",
        "nxt",
        "outcome", "pipe", "rack_end", "rack_rtt_s", "rack_sent_at", "recs", "sacked",
        "sacked_count", "ts_head", "tsorted", "una", "wl1", "wl2", "wnd",
    )

    def __init__(self) -> None:
        self.iss = 0
        self.max_seg = 536
        self.una = 0
        self.nxt = 0
        self.buf = SendBuffer()
        """Queued octets from SND.UNA on (SND.UNA's own once data is queued)."""
        self.fin_seq: int | None = None
        self.wnd = 0
        self.wl1 = 0
        self.wl2 = 0
        self.max_wnd = 0
        self.recs: list[SentSegment] = []
        self.head = 0
        # Queues consumed from the front, as lists with a head index (compacted like ``recs``)
        # rather than deques: an empty deque costs 760 octets, an empty list 56, and a
        # server holds thousands of idle connections.
        self.tsorted: list[tuple[float, SentSegment]] = []
        self.ts_head = 0
        self.lost: list[SentSegment] = []
        self.lost_head = 0
        self.pipe = 0
        self.sacked: RangeSet | None = None
        """What the peer SACKed above SND.UNA; made by the first SACK block, dropped once
        SND.UNA passes it all (most connections never see a SACK block)."""
        self.sacked_count = 0
        self.fack = 0
        self.rack_sent_at = -1.0
        self.rack_end = 0
        self.rack_rtt_s = 0.0
        self.delivered = 0
        self.delivered_at = 0.0
        self.first_sent_at = 0.0
        self.app_limited_until = 0
        self.outcome = AckOutcome()

    def start(self, iss: int) -> None:
        """Our SYN takes ``iss``; data starts one after it."""
        self.iss = self.una = iss
        self.nxt = iss + 1
        self.buf = SendBuffer(iss + 1)
        self.fack = iss + 1

    # -- the stream ------------------------------------------------------------------------

    @property
    def data_end(self) -> int:
        """Sequence number just past the last octet the application queued."""
        buf = self.buf
        return buf.start + buf.size

    @property
    def unsent(self) -> int:
        """Queued octets never sent yet."""
        end = self.buf.end
        return end - self.nxt if self.nxt < end else 0

    @property
    def buffered(self) -> int:
        """Octets queued and not yet acknowledged: what the writer's flow control counts."""
        return self.buf.size

    @property
    def all_acked(self) -> bool:
        """Everything sent (data and any FIN) is acknowledged."""
        return self.una == self.nxt

    @property
    def in_flight(self) -> bool:
        """Some sent sequence space is not yet cumulatively acknowledged."""
        return self.una < self.nxt

    def update_window(self, seq: int, ack: int, wnd: int) -> None:
        """RFC 9293 3.10.7.4: take the peer's window from a segment newer than the last one
        that set it (by SND.WL1 and SND.WL2), so a reordered old segment cannot shrink it."""
        if self.wl1 < seq or (self.wl1 == seq and self.wl2 <= ack):
            if wnd != self.wnd:
                self.wnd = wnd
                self.max_wnd = max(self.max_wnd, wnd)
            self.wl1 = seq
            self.wl2 = ack

    def is_duplicate_ack(self, ack: int, wnd: int, data_len: int, flags: int) -> bool:
        """RFC 5681's duplicate ACK: data is outstanding, and the segment acknowledges nothing
        new and carries nothing else (no data, no window change, no SYN or FIN)."""
        return (
            ack == self.una and self.una < self.nxt and not data_len and wnd == self.wnd
            and not flags & (SYN | FIN)
        )

    def queue(self, data: bytes | bytearray | memoryview) -> None:
        """Append application data (``bytes`` kept as they are, anything else copied once)."""
        self.buf.append(data)

    def payload(self, start: int, end: int) -> bytes | memoryview:
        """The data octets of ``[start, end)`` (a FIN has none)."""
        return self.buf.take(start, end)

    def release(self) -> None:
        """The connection is over: let the queued octets and the record of what was sent go.
        The sequence numbers stay as they are, for the connection's statistics."""
        self.buf.clear()
        self.recs = []
        self.head = 0
        self.tsorted = []
        self.ts_head = 0
        self.lost = []
        self.lost_head = 0
        self.sacked = None
        self.sacked_count = 0

    # -- transmissions ---------------------------------------------------------------------

    def on_send_new(self, end: int, now: float) -> SentSegment:
        """New sequence space ``[nxt, end)`` went out."""
        rec = SentSegment(self.nxt, end, now)
        self._stamp(rec, now)
        self.recs.append(rec)
        self.tsorted.append((now, rec))
        self.pipe += end - rec.start
        self.nxt = end
        return rec

    def on_retransmit(self, rec: SentSegment, now: float) -> None:
        """``rec`` went out again (after being judged lost, or as a probe)."""
        if rec.lost:
            rec.lost = False
            self.pipe += rec.end - rec.start
        rec.retransmitted = True
        rec.sent_at = now
        self._stamp(rec, now)
        self.tsorted.append((now, rec))

    def _stamp(self, rec: SentSegment, now: float) -> None:
        if self.pipe == 0:
            self.first_sent_at = now
            self.delivered_at = now
        rec.first_sent_at = self.first_sent_at
        rec.delivered_at = self.delivered_at
        rec.delivered = self.delivered
        rec.app_limited = self.app_limited_until != 0

    def mark_app_limited(self) -> None:
        """Nothing left to send while the window had room: rate samples until now are low."""
        self.app_limited_until = max(self.delivered + self.pipe, 1)

    def next_lost(self) -> SentSegment | None:
        """The next segment judged lost that still needs a retransmission."""
        lost, una = self.lost, self.una
        i = self.lost_head
        while i < len(lost):
            rec = lost[i]
            if rec.lost and not rec.sacked and rec.end > una:
                if i > COMPACT_AFTER and i * 2 > len(lost):
                    del lost[:i]
                    i = 0
                self.lost_head = i
                return rec
            i += 1
        lost.clear()
        self.lost_head = 0
        return None

    def last_unsacked(self) -> SentSegment | None:
        """The highest segment in flight that the peer has not SACKed (a tail loss probe)."""
        recs = self.recs
        for i in range(len(recs) - 1, self.head - 1, -1):
            if not recs[i].sacked:
                return recs[i]
        return None

    # -- acknowledgements ------------------------------------------------------------------

    def on_ack(self, ack: int, blocks: list[tuple[int, int]], now: float) -> AckOutcome:
        """Apply a cumulative ACK (already validated) and the SACK blocks that came with it."""
        out = self.outcome
        out.reset()  # a method, not assignments here: a compiled build must not assume the
        # fields stay as assigned across the calls below, which change them
        if ack > self.una:
            self._cumulative(ack, out)
        if blocks:
            cumulative_at = out.rtt_sent_at
            # In sequence order, as Linux sorts them: the peer lists the most recent block
            # first, and two new blocks in one ACK would otherwise look like reordering.
            for start, end in sorted(blocks) if len(blocks) > 1 else blocks:
                if self.una <= start < end <= self.nxt:
                    self._sack(start, end, out)
            if cumulative_at is not None:  # as Linux: the cumulative sample takes precedence
                out.rtt_sent_at = cumulative_at
        delivered = out.acked + out.sacked
        if delivered:
            self.delivered += delivered
            self.delivered_at = now
            if self.app_limited_until and self.delivered > self.app_limited_until:
                self.app_limited_until = 0
        return out

    def _cumulative(self, ack: int, out: AckOutcome) -> None:
        recs, head, fack = self.recs, self.head, self.fack
        acked = 0
        latest = out.latest
        first_sent_at: float | None = None
        retransmitted = False
        while head < len(recs):
            rec = recs[head]
            if rec.end <= ack:
                head += 1
                if rec.sacked:
                    self.sacked_count -= 1
                    continue
                size = rec.end - rec.start
                acked += size
                if not rec.lost:
                    self.pipe -= size
                if rec.retransmitted:
                    retransmitted = True
                else:
                    if rec.end < fack:
                        out.reordering = True
                    if first_sent_at is None and not rec.lost:
                        first_sent_at = rec.sent_at
                if latest is None or rec.sent_at >= latest.sent_at:
                    latest = rec
            else:
                if rec.start < ack and not rec.sacked:
                    part = ack - rec.start
                    acked += part
                    if not rec.lost:
                        self.pipe -= part
                    rec.start = ack
                break
        out.acked = acked
        out.latest = latest
        out.rtt_sent_at = None if retransmitted else first_sent_at
        if head == len(recs):
            # Everything sent is acknowledged: let the records go now (an idle connection
            # should keep none), and RACK's time-ordered entries of them with them.
            recs.clear()
            head = 0
            self.tsorted.clear()
            self.ts_head = 0
        elif head > COMPACT_AFTER and head * 2 > len(recs):
            del recs[:head]
            head = 0
        self.head = head
        self.buf.trim_to(ack)
        self.una = ack
        if ack > fack:
            self.fack = ack
        sacked_ranges = self.sacked
        if sacked_ranges is not None:
            sacked_ranges.discard_below(ack)
            if not sacked_ranges:
                self.sacked = None

    def _sack(self, start: int, end: int, out: AckOutcome) -> None:
        recs = self.recs
        latest = out.latest
        sacked = 0
        ranges = self.sacked
        if ranges is None:
            ranges = self.sacked = RangeSet()
        for lo, hi in ranges.missing(start, end):
            i = max(self.head, bisect_right(recs, lo, lo=self.head, key=_start_of) - 1)
            while i < len(recs):
                rec = recs[i]
                if rec.start >= hi:
                    break
                i += 1
                if rec.sacked or rec.start < start or rec.end > end:
                    continue
                rec.sacked = True
                self.sacked_count += 1
                size = rec.end - rec.start
                sacked += size
                if not rec.lost:
                    self.pipe -= size
                if not rec.retransmitted:
                    if rec.end < self.fack:
                        out.reordering = True
                    if not rec.lost and (out.rtt_sent_at is None or rec.sent_at < out.rtt_sent_at):
                        out.rtt_sent_at = rec.sent_at
                if latest is None or rec.sent_at >= latest.sent_at:
                    latest = rec
        ranges.add(start, end)
        self.fack = max(self.fack, end)
        out.sacked += sacked
        out.latest = latest

    def rate_sample(self, rec: SentSegment, now: float, sample: RateSample) -> None:
        """Fill ``sample`` from the most recently sent segment this ACK delivered."""
        sample.prior_delivered = rec.delivered
        sample.is_app_limited = rec.app_limited
        send_elapsed = rec.sent_at - rec.first_sent_at
        ack_elapsed = self.delivered_at - rec.delivered_at
        self.first_sent_at = rec.sent_at
        sample.delivered = self.delivered - rec.delivered
        sample.interval_s = max(send_elapsed, ack_elapsed)
        # Karn: an ACK of a retransmitted segment may be for its first copy; no RTT from it.
        sample.rtt_s = -1.0 if rec.retransmitted else now - rec.sent_at

    # -- RACK ------------------------------------------------------------------------------

    def rack_update(self, rec: SentSegment, rtt_s: float) -> None:
        """RFC 8985 6.2 step 2: remember the most recently sent segment that was delivered."""
        if rec.sent_at > self.rack_sent_at or (
            rec.sent_at == self.rack_sent_at and rec.end > self.rack_end
        ):
            self.rack_sent_at = rec.sent_at
            self.rack_end = rec.end
            self.rack_rtt_s = rtt_s

    def rack_detect(self, now: float, reo_wnd_s: float) -> tuple[int, float | None]:
        """Mark lost every segment sent a reordering window before the last delivered one.

        Returns the octets newly judged lost and, if some segment may yet be judged lost,
        the time at which to look again (RFC 8985 6.2 step 5).
        """
        tsorted, una = self.tsorted, self.una
        rack_sent_at, rack_end = self.rack_sent_at, self.rack_end
        deadline_gap = self.rack_rtt_s + reo_wnd_s
        newly_lost = 0
        again_at: float | None = None
        i = self.ts_head
        while i < len(tsorted):
            sent_at, rec = tsorted[i]
            if rec.sent_at != sent_at or rec.sacked or rec.lost or rec.end <= una:
                i += 1  # superseded by a retransmission, or already settled
                continue
            if sent_at > rack_sent_at or (sent_at == rack_sent_at and rec.end >= rack_end):
                break  # sent after the last delivered segment: not yet
            expires = sent_at + deadline_gap
            if expires > now:
                again_at = expires
                break
            i += 1
            self._mark_lost(rec)
            newly_lost += rec.end - rec.start
        if i >= len(tsorted):
            tsorted.clear()
            i = 0
        elif i > COMPACT_AFTER and i * 2 > len(tsorted):
            del tsorted[:i]
            i = 0
        self.ts_head = i
        return newly_lost, again_at

    def mark_all_lost(self) -> int:
        """The retransmission timer expired: everything in flight and not SACKed is lost.

        The queue of segments to resend is rebuilt in sequence order, so that the first
        retransmission is the segment at SND.UNA (RFC 6298 5.4) whatever was queued before.
        """
        newly_lost = 0
        recs = self.recs
        self.lost.clear()
        self.lost_head = 0
        for i in range(self.head, len(recs)):
            rec = recs[i]
            if rec.sacked:
                continue
            if rec.lost:
                self.lost.append(rec)
            else:
                self._mark_lost(rec)
                newly_lost += rec.end - rec.start
        self.tsorted.clear()
        self.ts_head = 0
        return newly_lost

    def mark_first_lost(self) -> int:
        """Judge the segment at SND.UNA lost (fast retransmit without SACK); octets marked."""
        recs = self.recs
        if self.head < len(recs):
            rec = recs[self.head]
            if not rec.lost and not rec.sacked:
                self._mark_lost(rec)
                lost = self.lost
                lost.insert(self.lost_head, lost.pop())  # it goes first: it holds up everything
                return rec.end - rec.start
        return 0

    def unmark_lost(self) -> None:
        """The losses were spurious: segments awaiting retransmission are in flight after all.

        They go back into ``tsorted`` at their send times, so that RACK still judges them in
        time order (behind a later retransmission they would never be looked at).
        """
        restored = False
        for rec in self.lost[self.lost_head :]:
            if rec.lost and not rec.sacked and rec.end > self.una:
                rec.lost = False
                self.pipe += rec.end - rec.start
                self.tsorted.append((rec.sent_at, rec))
                restored = True
        self.lost.clear()
        self.lost_head = 0
        if restored:
            self.tsorted = sorted(self.tsorted[self.ts_head :], key=_sent_time_of)
            self.ts_head = 0

    def split_lost(self, max_seg: int) -> None:
        """Cut every segment awaiting retransmission to at most ``max_seg`` octets of sequence
        space: the path stopped carrying datagrams as large as they were sent in."""
        waiting = self.lost[self.lost_head :]
        if not any(rec.end - rec.start > max_seg for rec in waiting):
            return
        pieces: dict[int, list[SentSegment]] = {}
        recs: list[SentSegment] = []
        for rec in self.recs[self.head :]:
            if rec.lost and not rec.sacked and rec.end - rec.start > max_seg:
                cut = _cut(rec, max_seg)
                pieces[id(rec)] = cut
                recs.extend(cut)
            else:
                recs.append(rec)
        self.recs = recs
        self.head = 0
        self.lost = [piece for rec in waiting for piece in pieces.get(id(rec), [rec])]
        self.lost_head = 0

    def _mark_lost(self, rec: SentSegment) -> None:
        rec.lost = True
        self.pipe -= rec.end - rec.start
        self.lost.append(rec)


def _cut(rec: SentSegment, max_seg: int) -> list[SentSegment]:
    """``rec`` shortened to ``max_seg``, then copies of it for the rest of its range."""
    end = rec.end
    parts = [rec]
    rec.end = rec.start + max_seg
    start = rec.end
    while start < end:
        piece = SentSegment(start, min(start + max_seg, end), rec.sent_at)
        piece.retransmitted = rec.retransmitted
        piece.lost = rec.lost
        piece.delivered = rec.delivered
        piece.delivered_at = rec.delivered_at
        piece.first_sent_at = rec.first_sent_at
        piece.app_limited = rec.app_limited
        parts.append(piece)
        start = piece.end
    return parts
