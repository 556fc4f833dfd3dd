"""The tree aggregation's plan and merges without Spark: partition order, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparkml_jobs.engine.aggregate import MergeLevel, merge_levels, merge_locally


def nest(a, b):
    """A merge that records its own bracketing: the result shows exactly what merged with what."""
    return (a, b)


def test_merge_levels_closed_form():
    assert merge_levels(9, 2) == [MergeLevel(width=3, groups=3)] == merge_levels(7, 2)
    assert merge_levels(6, 2) == []  # ≤ 2·fanout partials: the driver merges them itself
    assert merge_levels(1000, 3) == [
        MergeLevel(width=10, groups=100),
        MergeLevel(width=10, groups=10),
    ]
    assert merge_levels(1000, 1) == [] == merge_levels(1, 2)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [1, 2, 5, 9, 17, 64, 200, 1000])
def test_levels_shrink_to_a_driver_sized_merge(n, depth):
    levels = merge_levels(n, depth)
    fanout = max(2, math.ceil(n ** (1 / depth)))
    remaining = n
    for level in levels:
        assert level.width == fanout and level.groups == math.ceil(remaining / fanout)
        remaining = level.groups
    assert remaining <= 2 * fanout or depth == 1
    assert len(levels) <= max(depth - 1, 0)  # never deeper than asked


def test_merges_follow_partition_order_and_the_planned_tree():
    leaves = [(i, i) for i in range(9)]
    got = merge_locally(reversed(leaves), "zero", nest, depth=2)
    groups = [((0, 1), 2), ((3, 4), 5), ((6, 7), 8)]  # width 3, left to right
    assert got == ((("zero", groups[0]), groups[1]), groups[2])
    assert merge_locally(leaves[:4], "zero", nest, depth=2) == (((("zero", 0), 1), 2), 3)


@pytest.mark.parametrize(("n", "depth"), [(1, 2), (6, 2), (9, 2), (37, 2), (100, 3), (257, 4)])
def test_the_result_is_every_partial_once_in_partition_order(rng, n, depth):
    leaves = [(i, (i,)) for i in range(n)]
    order = rng.permutation(n)
    got = merge_locally([leaves[i] for i in order], (), lambda a, b: a + b, depth)
    assert got == tuple(range(n))


def test_float_sums_are_bit_identical_whatever_order_the_partials_arrive_in(rng):
    # magnitudes over 30 decades: a sum in another order differs in its last bits
    values = rng.normal(size=(50, 4)) * 10.0 ** rng.integers(-15, 15, size=(50, 4))
    leaves = [(i, values[i]) for i in range(50)]
    reference = merge_locally(leaves, np.zeros(4), np.add, depth=2)
    arrival_order_sums = set()
    for _ in range(30):
        order = rng.permutation(50)
        arrived = [leaves[i] for i in order]
        got = merge_locally(arrived, np.zeros(4), np.add, depth=2)
        assert got.tobytes() == reference.tobytes()
        arrival_order_sums.add(sum((v for _, v in arrived), np.zeros(4)).tobytes())
    # the test has teeth: merging in arrival order would not have been reproducible
    assert len(arrival_order_sums) > 1
    exact = np.array([math.fsum(column) for column in values.T])  # correctly rounded sums
    bound = len(values) * np.finfo(float).eps * np.abs(values).sum(axis=0)
    assert (np.abs(reference - exact) <= bound).all()
