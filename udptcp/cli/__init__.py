"""The ``udptcp`` command line: thin asyncio programs over the public API."""
