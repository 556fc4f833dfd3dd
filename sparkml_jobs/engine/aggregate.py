"""A deterministic tree aggregation: like ``RDD.treeAggregate``, but merged in partition order.

PySpark's ``treeAggregate`` merges the partials of a level through ``reduceByKey``, whose merge
order follows the order shuffle blocks arrive in; floating-point sums then differ in the last bits
from run to run. Here every level sorts its inputs by partition index before merging, so the same
data and partitioning always give bit-identical results — and a retried task recomputes exactly
the partial it lost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import reduce
from typing import Any, TypeVar

from pyspark import RDD

from sparkml_jobs.engine.faults import maybe_fail

A = TypeVar("A")


def depth_for(partial_bytes: int, n_partitions: int, budget: int = 256 * 2**20) -> int:
    """Tree depth so that one merge level never gathers more than ``budget`` bytes of partials."""
    depth = 2
    while depth < 8 and partial_bytes * math.ceil(n_partitions ** (1.0 / depth)) > budget:
        depth += 1
    return depth


def tree_aggregate(
    rdd: RDD,
    zero: A,
    seq_op: Callable[[A, Any], A],
    comb_op: Callable[[A, A], A],
    depth: int = 2,
    stream: bool = False,
) -> A:
    """Fold every partition with ``seq_op`` from ``zero``, then merge with ``comb_op`` in a tree.

    ``depth`` levels: partials are grouped ``fanout = ⌈P^(1/depth)⌉`` at a time on the executors
    until few enough remain to merge on the driver. ``stream`` fetches the last level one
    partition at a time, for partials too large to collect together (a wide Gram matrix).
    """

    def fold(index: int, items: Iterable[Any]) -> list[tuple[int, A]]:
        maybe_fail(index)  # test-only fault injection (sparkml_jobs.faults); no-op unless enabled
        return [(index, reduce(seq_op, items, zero))]

    partials = rdd.mapPartitionsWithIndex(fold)
    n = partials.getNumPartitions()
    fanout = max(2, math.ceil(n ** (1.0 / max(depth, 1))))
    while depth > 1 and n > 2 * fanout:
        n = math.ceil(n / fanout)
        width = fanout

        def merge_group(group: tuple[int, Iterable[tuple[int, A]]]) -> tuple[int, A]:
            ordered = sorted(group[1], key=lambda pair: pair[0])
            return group[0], reduce(comb_op, (value for _, value in ordered))

        partials = (
            partials.map(lambda pair, width=width: (pair[0] // width, pair))
            .groupByKey(n)
            .map(merge_group)
        )
    if stream:  # one job per partition, but the driver holds only two partials at a time
        result = zero
        for _, value in partials.toLocalIterator():
            result = comb_op(result, value)
        return result
    collected = sorted(partials.collect(), key=lambda pair: pair[0])
    return reduce(comb_op, (value for _, value in collected), zero)
