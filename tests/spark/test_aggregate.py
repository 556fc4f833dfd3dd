"""``tree_aggregate`` on a real local Spark does exactly what its Spark-free plan says."""

from __future__ import annotations

import pytest

from sparkml_jobs.engine.aggregate import merge_levels, merge_locally, tree_aggregate


def nest(a, b):
    """A merge that records its own bracketing: the result shows exactly what merged with what."""
    return (a, b)


@pytest.mark.parametrize(
    ("partitions", "depth", "stream"),
    [(1, 2, False), (5, 2, False), (9, 2, False), (23, 2, False), (23, 2, True), (64, 3, True)],
)
def test_spark_merges_in_the_planned_tree_in_partition_order(spark, partitions, depth, stream):
    rdd = spark.sparkContext.parallelize(range(4 * partitions), partitions)
    got = tree_aggregate(rdd, (), lambda acc, x: (*acc, x), nest, depth, stream=stream)
    # partial i folds partition i from the zero: (4i, 4i+1, 4i+2, 4i+3)
    leaves = [(i, tuple(range(4 * i, 4 * i + 4))) for i in range(partitions)]
    assert got == merge_locally(leaves, (), nest, depth)
    assert bool(merge_levels(partitions, depth)) == (partitions > 6)  # levels ran on executors
