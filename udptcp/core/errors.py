"""The core's one exception type for misuse by the local caller.

What the *peer* does wrong never raises: the core drops the segment, counts it, and may answer
with an ACK or RST (h11 draws the same line between local and remote errors).
"""


class LocalProtocolError(RuntimeError):
    """The local application asked for something the connection's state does not allow."""
