"""The passive side of an endpoint: half-open connections, the accept queue, SYN cookies.

An :class:`~udptcp.endpoint.Endpoint` that listens routes SYNs and strangers' ACKs here; the
listener decides whether each opens a connection (``Endpoint.open_passive``), is answered with
a SYN cookie, or is dropped, and hands established connections to the application in order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from udptcp.core import State, syncookies
from udptcp.core.isn import SECRET_BYTES
from udptcp.transport import Address, StreamTransport, clock
from udptcp.wire import MalformedSegment, Options, decode_segment

if TYPE_CHECKING:
    from udptcp.endpoint import Endpoint

COOKIE_LIFETIME_S = syncookies.MAX_COOKIE_AGE_PERIODS * syncookies.COOKIE_PERIOD_S
"""How long a SYN cookie we sent stays valid: ACKs from strangers are checked for one so long."""


class Listener:
    """The passive side: half-open connections, the accept queue, SYN cookies, accepting.

    As Linux's listening socket: at most ``backlog`` half-open connections, and apart from
    them an accept queue (established, not yet accepted) of at most ``backlog``. Beyond the
    half-open bound, SYNs are answered with SYN cookies (``core.syncookies``) and cost no
    state, so a flood of SYNs never completed keeps no real client out, and no half-open
    connection is ever given up for another (its client, which holds a SYN-ACK, would meet a
    RST). With the accept queue full, SYNs and the handshakes' last ACKs are dropped: the
    clients retry (``tcp_abort_on_overflow=0``).
    """

    def __init__(
        self, endpoint: Endpoint, backlog: int, on_accept: Callable[[StreamTransport], None]
    ) -> None:
        self._endpoint = endpoint
        self._backlog = backlog
        self._on_accept = on_accept
        self._secret = os.urandom(SECRET_BYTES)
        self._cookie_sent_at: float | None = None
        self.accepting = True
        self.serving = False
        self.next_isn: int | None = None
        self.opened_at = clock()
        """When the application listened (the first event of a server connection's trace)."""
        self._half_open: dict[StreamTransport, None] = {}
        self._queue: deque[StreamTransport] = deque()

    @property
    def queue_full(self) -> bool:
        """The accept queue holds ``backlog`` connections: no more handshakes complete now."""
        return len(self._queue) >= self._backlog

    def on_syn(self, syn: bytes | memoryview, peer: Address) -> None:
        """A SYN from a new peer: a half-open connection if there is room, else a SYN cookie.

        The whole segment is checked first, options included: a SYN the connection would
        drop (and stay in LISTEN, outside the backlog's count) must cost no state."""
        counters = self._endpoint.counters
        if self.queue_full:
            counters.syns_dropped_backlog += 1  # the client will retry
            return
        try:
            _flags, seq, _ack, _wnd, _payload, ts, opts = decode_segment(syn)
        except MalformedSegment:
            counters.dropped_malformed += 1
            return
        if len(self._half_open) >= self._backlog:
            self._send_cookie(peer, seq, ts, opts)
            return
        isn, self.next_isn = self.next_isn, None
        transport = self._endpoint.open_passive(peer, syn, isn)
        if transport is None:
            return
        if transport.conn.state is State.SYN_RCVD:
            self._half_open[transport] = None
        elif transport.conn.state is State.LISTEN:
            transport.abort()  # the core dropped the SYN after all: nothing may stay behind

    def _send_cookie(
        self, peer: Address, seq: int, ts: tuple[int, int] | None, opts: Options | None
    ) -> None:
        endpoint = self._endpoint
        config = endpoint.config
        now = clock()
        answer = syncookies.syn_ack(
            self._secret, endpoint.local_addr, peer, seq, opts, ts[0] if ts is not None else None,
            announced_mss=config.announced_mss, sack=config.sack, timestamps=config.timestamps,
            window=min(config.recv_buffer_bytes, endpoint.receive_queue_bytes or config.recv_buffer_bytes),
            now=now,
        )
        self._cookie_sent_at = now
        endpoint.counters.syn_cookies_sent += 1
        endpoint.send_raw(answer, peer)

    def on_ack(self, ack: bytes | memoryview, peer: Address) -> bool:
        """An ACK from a stranger: if it returns a valid cookie, the connection it opens (or,
        with the accept queue full, the ACK dropped); False when it holds no cookie."""
        now = clock()
        sent_at = self._cookie_sent_at
        if sent_at is None or now - sent_at > COOKIE_LIFETIME_S:
            return False  # no cookie went out lately (Linux: tcp_synq_no_recent_overflow)
        endpoint = self._endpoint
        try:
            _flags, seq, ack32, _wnd, _payload, ts, _opts = decode_segment(ack)
        except MalformedSegment:
            return False
        grant = syncookies.grant(
            self._secret, endpoint.local_addr, peer, seq, ack32, ts[1] if ts is not None else None, now
        )
        if grant is None:
            # A cookie is checked against the peer's ISN (seq - 1), so only the segment that
            # follows the handshake can open: a later one (the FIN after data) of a client
            # whose opening segments were lost, or dropped for a full accept queue, fails the
            # check. Dropped, not reset (Linux resets): that client believes it is connected,
            # and its retransmission from seq = ISN + 1 opens. A forged ACK earns no answer.
            endpoint.counters.cookies_invalid += 1
            return True
        if self.queue_full:
            endpoint.counters.acks_dropped_accept_queue += 1
            return True
        if endpoint.open_passive(peer, ack, cookie=grant) is not None:
            endpoint.counters.syn_cookies_accepted += 1
        return True

    def on_established(self, transport: StreamTransport) -> None:
        self._half_open.pop(transport, None)
        if self.serving:
            self._accept(transport)
        else:
            self._queue.append(transport)

    def _accept(self, transport: StreamTransport) -> None:
        """Hand the connection to the application, then what arrived before (held since
        ``open_passive``)."""
        if transport.tracer is not None:
            transport.tracer.app("accept", clock())
        self._on_accept(transport)
        transport.accepted()

    def on_forget(self, transport: StreamTransport) -> None:
        self._half_open.pop(transport, None)
        if transport in self._queue:
            self._queue.remove(transport)

    def start_serving(self) -> None:
        self.serving = True
        while self._queue:
            self._accept(self._queue.popleft())

    def close(self) -> None:
        """Stop accepting: new SYNs get RST; unaccepted connections are reset."""
        self.accepting = False
        self.serving = False
        for transport in [*self._queue, *self._half_open]:
            transport.abort()
        self._queue.clear()
        self._half_open.clear()
