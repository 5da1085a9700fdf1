"""Sequence-number arithmetic modulo 2**32, in one place.

The core keeps sequence numbers *unwrapped*: plain Python ints that start at the ISN and grow
without bound, so every comparison inside the core is an ordinary ``<``. Numbers are wrapped
only on the wire (``& SEQ_MASK``) and unwrapped on arrival with :func:`unwrap`, relative to a
nearby known number. The serial comparisons (RFC 1982) are here for code that handles raw
32-bit values, such as the relay and the tests.
"""

from typing import Final

SEQ_MOD: Final = 1 << 32
SEQ_MASK: Final = SEQ_MOD - 1
_HALF: Final = 1 << 31


def unwrap(value: int, near: int) -> int:
    """The unwrapped number congruent to 32-bit ``value`` that lies nearest to ``near``."""
    delta = (value - near) & SEQ_MASK
    if delta >= _HALF:
        delta -= SEQ_MOD
    return near + delta


def seq_add(a: int, n: int) -> int:
    """``a + n`` on the 32-bit circle."""
    return (a + n) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """The signed distance ``a - b`` on the 32-bit circle, in ``[-2**31, 2**31)``."""
    delta = (a - b) & SEQ_MASK
    return delta - SEQ_MOD if delta >= _HALF else delta


def seq_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b`` on the 32-bit circle."""
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    """``a`` comes before ``b`` or equals it."""
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    """``a`` comes after ``b``."""
    return seq_diff(a, b) > 0


def seq_ge(a: int, b: int) -> bool:
    """``a`` comes after ``b`` or equals it."""
    return seq_diff(a, b) >= 0
