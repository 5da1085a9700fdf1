"""udptcp: a TCP-like reliable byte stream over UDP, in pure Python, with asyncio streams.

The API is asyncio's: ``reader, writer = await udptcp.open_connection(host, port)`` and
``server = await udptcp.start_server(callback, host, port)`` for streams,
``udptcp.create_connection(protocol_factory, host, port)`` and
``udptcp.create_server(protocol_factory, host, port)`` for protocols; ``ssl=`` for TLS. The protocol core is
sans-I/O (``udptcp.core``); ``udptcp.wire`` is the segment codec.
"""

from udptcp import corebuild

corebuild.install()  # before the core is imported: compiled, or its .py files (see corebuild)

from udptcp.config import Config  # noqa: E402
from udptcp.core import CloseReason, State  # noqa: E402
from udptcp.protocols import Network, create_connection, create_server  # noqa: E402
from udptcp.server import Server  # noqa: E402
from udptcp.streams import DEFAULT_LIMIT, StreamWriter, open_connection, run, start_server  # noqa: E402

__all__ = [
    "DEFAULT_LIMIT",
    "CloseReason",
    "Config",
    "Network",
    "Server",
    "State",
    "StreamWriter",
    "create_connection",
    "create_server",
    "open_connection",
    "run",
    "start_server",
]
__version__ = "0.1.0"
