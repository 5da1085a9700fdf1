"""udptcp's benchmarks: one harness, three entry points, run from the repository's root.

- ``python -m benchmarks.compare`` (``make compare``): bulk transfer over loopback, udptcp side
  by side with kernel TCP, raw UDP, aioquic and KCP, on the stock asyncio loop and on uvloop;
- ``python -m benchmarks.lossy`` (``make lossy``): goodput through an impaired path (delay,
  random loss, a rate-limited bottleneck) for udptcp's controllers, aioquic and KCP;
- ``python -m benchmarks.tunnel``: ``udptcp tunnel``'s bulk, request and connection rates
  beside the same relay over kernel TCP and direct TCP.

Modules:

- ``procs``: child processes (own process group, bounded waits, stderr tail) and the two lines
  every one of them prints (``listening on HOST:PORT`` first, a JSON result last);
- ``report``: statistics over repetitions, Markdown tables, machine facts, progress on stderr;
- ``peers``: the peer programs, one module each (``udp``, ``tcp``, ``quic``, ``kcp``; and
  ``tunnel_load``, both ends of the tunnel benchmark), and
  ``peers.settings``, every choice the harness makes for a configurable peer;
- ``compare``, ``compare_runs``, ``compare_report``: the loopback benchmark;
- ``lossy``, ``lossy_runs``, ``lossy_report``, ``netem``: the impaired-path benchmark;
- ``tunnel``: the tunnel benchmark (runs and report in one module).

``RESULTS.md`` holds the figures measured with them and how they compare with earlier ones.
"""
