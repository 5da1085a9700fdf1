"""``RangeSet`` on its own: merging on ``add``, ``find``, ``missing``, ``discard_below``,
iteration and ``len``, then a property test of random operations against a ``set[int]`` model.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from udptcp.core.rangeset import RangeSet


def ranges_of(*pairs: tuple[int, int]) -> RangeSet:
    """A set built by adding ``pairs`` in the order given."""
    rs = RangeSet()
    for start, end in pairs:
        rs.add(start, end)
    return rs


# -- add ----------------------------------------------------------------------------------------


def test_add_disjoint_ranges_keeps_them_apart_in_order() -> None:
    rs = ranges_of((20, 30), (0, 5), (10, 12))
    assert list(rs) == [(0, 5), (10, 12), (20, 30)]
    assert len(rs) == 3


def test_add_touching_range_merges_on_either_side() -> None:
    assert list(ranges_of((3, 5), (1, 3))) == [(1, 5)]
    assert list(ranges_of((1, 3), (3, 5))) == [(1, 5)]


def test_add_overlapping_range_merges_and_widens() -> None:
    assert list(ranges_of((10, 20), (15, 25))) == [(10, 25)]
    assert list(ranges_of((10, 20), (5, 12))) == [(5, 20)]


def test_add_range_inside_an_existing_one_changes_nothing() -> None:
    assert list(ranges_of((10, 20), (12, 18))) == [(10, 20)]


def test_add_range_bridging_several_merges_them_all() -> None:
    rs = ranges_of((0, 2), (4, 6), (8, 10), (20, 22))
    rs.add(1, 9)
    assert list(rs) == [(0, 10), (20, 22)]


def test_add_range_covering_everything_leaves_one() -> None:
    rs = ranges_of((3, 4), (6, 7), (9, 10))
    rs.add(0, 100)
    assert list(rs) == [(0, 100)]


def test_add_empty_or_reversed_range_is_ignored() -> None:
    rs = ranges_of((5, 5), (9, 3))
    assert list(rs) == []
    assert not rs
    rs = ranges_of((0, 10), (10, 10), (20, 20))  # an empty range touching one is not added
    assert list(rs) == [(0, 10)]


def test_bool_and_len_count_ranges_not_integers() -> None:
    rs = RangeSet()
    assert not rs and len(rs) == 0
    rs.add(0, 1000)
    assert rs and len(rs) == 1


# -- find ---------------------------------------------------------------------------------------


def test_find_returns_the_holding_range_with_half_open_ends() -> None:
    rs = ranges_of((10, 20), (30, 40))
    assert rs.find(10) == (10, 20)
    assert rs.find(19) == (10, 20)
    assert rs.find(35) == (30, 40)
    assert rs.find(20) is None  # the end is not in the range
    assert rs.find(9) is None
    assert rs.find(25) is None
    assert rs.find(40) is None


def test_find_in_empty_set_is_none() -> None:
    assert RangeSet().find(0) is None


# -- missing ------------------------------------------------------------------------------------


def test_missing_in_empty_set_is_the_whole_query() -> None:
    assert RangeSet().missing(5, 15) == [(5, 15)]


def test_missing_lists_gaps_inside_and_around_ranges() -> None:
    rs = ranges_of((10, 20), (30, 40))
    assert rs.missing(0, 50) == [(0, 10), (20, 30), (40, 50)]


def test_missing_is_empty_when_the_query_is_covered() -> None:
    rs = ranges_of((10, 20))
    assert rs.missing(10, 20) == []
    assert rs.missing(12, 15) == []


def test_missing_clips_gaps_to_the_query() -> None:
    rs = ranges_of((10, 20), (30, 40))
    assert rs.missing(15, 35) == [(20, 30)]
    assert rs.missing(5, 12) == [(5, 10)]
    assert rs.missing(38, 45) == [(40, 45)]


def test_missing_starting_at_a_range_end_includes_the_gap_after_it() -> None:
    rs = ranges_of((10, 20), (30, 40))
    assert rs.missing(20, 30) == [(20, 30)]


def test_missing_of_empty_query_is_empty() -> None:
    assert ranges_of((10, 20)).missing(5, 5) == []


# -- discard_below ------------------------------------------------------------------------------


def test_discard_below_drops_ranges_wholly_below() -> None:
    rs = ranges_of((0, 5), (10, 15), (20, 25))
    rs.discard_below(15)
    assert list(rs) == [(20, 25)]


def test_discard_below_cuts_a_range_it_falls_inside() -> None:
    rs = ranges_of((0, 5), (10, 20), (30, 40))
    rs.discard_below(14)
    assert list(rs) == [(14, 20), (30, 40)]
    assert rs.find(13) is None and rs.find(14) == (14, 20)


def test_discard_below_a_start_or_below_everything_changes_nothing() -> None:
    rs = ranges_of((10, 20))
    rs.discard_below(10)
    assert list(rs) == [(10, 20)]
    rs.discard_below(-100)
    assert list(rs) == [(10, 20)]


def test_discard_below_past_everything_empties_the_set() -> None:
    rs = ranges_of((10, 20), (30, 40))
    rs.discard_below(1000)
    assert list(rs) == [] and len(rs) == 0


def test_add_after_discard_below_merges_with_the_cut_range() -> None:
    rs = ranges_of((10, 20))
    rs.discard_below(15)
    rs.add(12, 16)
    assert list(rs) == [(12, 20)]


def test_repr_shows_the_ranges() -> None:
    assert repr(ranges_of((1, 2), (5, 9))) == "RangeSet([(1, 2), (5, 9)])"


# -- property test against a set of integers ----------------------------------------------------

LIMIT = 64
"""Integers drawn in ``[0, LIMIT)``: small, so that ranges often overlap and touch."""

_bound = st.integers(0, LIMIT)
_op = st.one_of(
    st.tuples(st.just("add"), _bound, _bound),
    st.tuples(st.just("discard_below"), _bound, st.just(0)),
)


def model_ranges(members: set[int]) -> list[tuple[int, int]]:
    """The maximal runs of consecutive integers in ``members``, as half-open ranges."""
    runs: list[tuple[int, int]] = []
    for value in sorted(members):
        if runs and runs[-1][1] == value:
            runs[-1] = (runs[-1][0], value + 1)
        else:
            runs.append((value, value + 1))
    return runs


@settings(max_examples=150, deadline=None)
@given(st.lists(_op, max_size=25), st.integers(0, LIMIT), st.integers(0, LIMIT))
def test_random_operations_agree_with_a_set_of_integers(
    ops: list[tuple[str, int, int]], lo: int, hi: int
) -> None:
    rs = RangeSet()
    model: set[int] = set()
    for name, a, b in ops:
        if name == "add":
            rs.add(a, b)
            model |= set(range(a, b))
        else:
            rs.discard_below(a)
            model = {v for v in model if v >= a}
        assert list(rs) == model_ranges(model)
        assert len(rs) == len(model_ranges(model))
    for value in range(-1, LIMIT + 1):
        found = rs.find(value)
        if value in model:
            assert found is not None and found[0] <= value < found[1]
        else:
            assert found is None
    gaps = rs.missing(lo, hi)
    assert [v for start, end in gaps for v in range(start, end)] == [
        v for v in range(lo, hi) if v not in model
    ]
    assert all(start < end for start, end in gaps)  # no empty gaps
    assert all(a[1] < b[0] for a, b in pairwise(gaps))  # ordered, not touching
