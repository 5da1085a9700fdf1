"""Sequence arithmetic modulo 2**32."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from udptcp.core.seqnum import SEQ_MASK, seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt, unwrap

u32 = st.integers(0, SEQ_MASK)
small = st.integers(-(2**31) + 1, 2**31 - 1)


@given(u32, small)
def test_adding_then_comparing_respects_order_across_the_wrap(a: int, n: int) -> None:
    b = seq_add(a, n)
    assert seq_diff(b, a) == n
    assert seq_lt(a, b) == (n > 0)
    assert seq_gt(a, b) == (n < 0)
    assert seq_le(a, b) == (n >= 0)
    assert seq_ge(a, b) == (n <= 0)


def test_comparisons_at_the_wrap() -> None:
    assert seq_lt(SEQ_MASK, 0)
    assert seq_lt(0xFFFFFFF0, 0x10)
    assert seq_gt(0x10, 0xFFFFFFF0)
    assert seq_add(SEQ_MASK, 1) == 0


@given(st.integers(0, 2**40), small)
def test_unwrap_finds_the_nearby_absolute_number(near: int, offset: int) -> None:
    target = near + offset
    assert unwrap(target & SEQ_MASK, near) == target
