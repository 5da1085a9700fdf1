"""udptcp: a TCP-like reliable byte stream over UDP, in pure Python, with asyncio streams."""

from udptcp.config import Config

__all__ = ["Config"]
__version__ = "0.1.0"
