"""Seeing a connection: the trace the library writes, the pcap file, and what is drawn from them.

``recorder`` watches one connection from its transport and writes JSON lines (``sink``) and
pcap records (``pcap``); ``schema`` reads a trace back, checked; ``model`` pairs both ends'
traces of one connection; ``ladder``, ``plots`` and ``summary`` turn that into pictures and
text; ``explain`` tells ``udptcp bench`` what held its sender. The schema is docs/TRACE.md.
"""
