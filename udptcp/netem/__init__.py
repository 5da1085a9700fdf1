"""``udptcp netem``: a UDP relay that impairs traffic between two endpoints, per direction."""

from udptcp.netem.impair import Impairment, Path, PathCounters, make_paths

__all__ = ["Impairment", "Path", "PathCounters", "make_paths"]
