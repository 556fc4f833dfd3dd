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

A = TypeVar("A")


def tree_aggregate(
    rdd: RDD,
    zero: A,
    seq_op: Callable[[A, Any], A],
    comb_op: Callable[[A, A], A],
    depth: int = 2,
) -> A:
    """Fold every partition with ``seq_op`` from ``zero``, then merge with ``comb_op`` in a tree.

    ``depth`` levels: partials are grouped ``fanout = ⌈P^(1/depth)⌉`` at a time on the executors
    until few enough remain to merge on the driver.
    """

    def fold(index: int, items: Iterable[Any]) -> list[tuple[int, A]]:
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
    collected = sorted(partials.collect(), key=lambda pair: pair[0])
    return reduce(comb_op, (value for _, value in collected), zero)
