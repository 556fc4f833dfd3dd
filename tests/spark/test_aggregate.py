"""``tree_aggregate`` on a real local Spark does exactly what its Spark-free plan says."""

from __future__ import annotations

import pytest

from sparkml_jobs.engine.aggregate import (
    Pieces,
    collect_jvm_garbage,
    merge_levels,
    merge_locally,
    tree_aggregate,
)


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


def _absorb(acc, records):
    size = next(records)
    items = tuple(records)
    assert len(items) == size  # every record of one partial, and only those
    return (*acc, items)


@pytest.mark.parametrize(("partitions", "depth"), [(3, 1), (23, 2)])
def test_streamed_partials_travel_in_pieces_and_merge_in_partition_order(spark, partitions, depth):
    """A partial cut into records (a header, then one record per item) is absorbed by the driver
    record by record: the result is the one the whole partials give, in partition order."""
    rdd = spark.sparkContext.parallelize(range(4 * partitions), partitions)
    concat = lambda a, b: (*a, *b)  # noqa: E731 - the fold's own merge
    levels = merge_levels(partitions, depth)
    size = 4 * (levels[0].width if levels else 1)  # items in the largest partial
    pieces = Pieces(split=lambda t: [len(t), *t], absorb=_absorb, count=1 + size)
    timings: dict[str, float] = {}
    got = tree_aggregate(rdd, (), lambda acc, x: (*acc, x), concat, depth, True, timings, pieces)
    assert len(got) == (levels[-1].groups if levels else partitions)  # one entry per partial
    assert [x for partial in got for x in partial] == list(range(4 * partitions))
    too_few = Pieces(split=pieces.split, absorb=_absorb, count=size)  # no room for the header
    with pytest.raises(Exception, match="more than"):
        tree_aggregate(rdd, (), lambda acc, x: (*acc, x), concat, depth, True, None, too_few)
    assert {"fold_s", "transfer_s", "merge_s"} <= set(timings)


def test_no_partitions_streamed_in_pieces_give_the_zero(spark):
    empty = spark.sparkContext.emptyRDD()
    pieces = Pieces(split=lambda t: [len(t), *t], absorb=_absorb, count=3)
    assert tree_aggregate(empty, (), lambda acc, x: (*acc, x), None, 1, True, None, pieces) == ()


def _full_collections(spark) -> int:
    """Full (old-generation) collections the driver JVM has run, from its own JMX beans."""
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    beans = management.getGarbageCollectorMXBeans()
    return sum(int(b.getCollectionCount()) for b in beans if "Old" in b.getName())


def test_streamed_pieces_end_with_a_full_collection_in_the_driver_jvm(spark):
    """The fetched records grow the driver JVM's heap; the transfer ends with a full collection
    (then the heap can be handed back), and a gateway that refuses it costs nothing."""
    rdd = spark.sparkContext.parallelize(range(8), 2)
    pieces = Pieces(split=lambda t: [len(t), *t], absorb=_absorb, count=1 + 8)
    before = _full_collections(spark)
    timings: dict[str, float] = {}
    tree_aggregate(rdd, (), lambda acc, x: (*acc, x), None, 1, True, timings, pieces)
    assert _full_collections(spark) > before
    assert timings["jvm_gc_s"] >= 0
    collect_jvm_garbage(object())  # no gateway at all: nothing raised
