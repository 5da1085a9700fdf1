"""Congestion controllers, chosen per connection by name (``Config.congestion_control``)."""

from typing import Final

from udptcp.core.congestion.base import CongestionControl
from udptcp.core.congestion.bbr import Bbr
from udptcp.core.congestion.cubic import Cubic
from udptcp.core.congestion.newreno import NewReno

CONTROLLERS: Final[dict[str, type[CongestionControl]]] = {
    NewReno.name: NewReno,
    Cubic.name: Cubic,
    Bbr.name: Bbr,
}


def create(name: str, mss: int, initial_window_segments: int) -> CongestionControl:
    """A fresh controller of the named algorithm."""
    try:
        cls = CONTROLLERS[name]
    except KeyError:
        raise ValueError(
            f"unknown congestion control {name!r}; choose one of {', '.join(CONTROLLERS)}"
        ) from None
    return cls(mss, initial_window_segments)


__all__ = ["CONTROLLERS", "Bbr", "CongestionControl", "Cubic", "NewReno", "create"]
