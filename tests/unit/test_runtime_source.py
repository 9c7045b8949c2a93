"""The consumer source's pure rule for 'this partition has handed over all the broker reported'."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.runtime.source import handed_over_all

offsets = st.integers(min_value=0, max_value=2**40)


@given(offsets, offsets)
def test_a_partition_is_caught_up_exactly_when_nothing_lies_between_what_was_handed_over_and_the_watermark(
    after, high
):
    assert handed_over_all(after, high) is (after >= high)


@given(offsets, st.integers(max_value=-1))
def test_an_unknown_watermark_never_counts_as_caught_up(after, high):
    assert handed_over_all(after, high) is False


def test_one_record_short_of_the_watermark_is_not_caught_up():
    assert not handed_over_all(104, 105) and handed_over_all(105, 105)
