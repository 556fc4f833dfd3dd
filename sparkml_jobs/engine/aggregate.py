"""A deterministic tree aggregation: like ``RDD.treeAggregate``, but merged in partition order.

PySpark's ``treeAggregate`` merges the partials of a level through ``reduceByKey``, whose merge
order follows the order shuffle blocks arrive in; floating-point sums then differ in the last bits
from run to run. Here every level sorts its inputs by partition index before merging, so the same
data and partitioning always give bit-identical results — and a retried task recomputes exactly
the partial it lost.

The plan (:func:`merge_levels`) and the merges (:func:`merge_group`, :func:`merge_final`) are pure
functions shared by the Spark wiring (:func:`tree_aggregate`) and its Spark-free twin
(:func:`merge_locally`), which the unit tests check for order and determinism.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sparkml_jobs.engine.faults import maybe_fail

if TYPE_CHECKING:  # only for annotations: the plan and the merges run without Spark
    from pyspark import RDD

A = TypeVar("A")


@dataclass(frozen=True, kw_only=True, slots=True)
class MergeLevel:
    """One executor-side merge level: partials ``i`` with equal ``i // width`` merge into group
    ``i // width``, one of ``groups`` (numbered ``0 … groups − 1``, the next level's indices)."""

    width: int
    groups: int


@dataclass(frozen=True, slots=True)
class Pieces(Generic[A]):
    """How a streamed partial travels as records of bounded size (see :func:`tree_aggregate`).

    ``split(partial)`` cuts one partial into at most ``count`` records on the executor, after its
    last merge; ``absorb(result, records)`` merges one partial's records, in order, into the
    driver's running result as they arrive. Shipped as one record, a wide triangle (8,193
    columns: 268 MB) is held whole by every hop — pickled beside itself in the worker, as byte
    arrays in the JVM (the stored block, the task result, its serialised copies), pickled again
    in the driver; as records of a few MB, each in its own shuffle partition, by none of them.
    """

    split: Callable[[A], Iterable[Any]]
    absorb: Callable[[A, Iterator[Any]], A]
    count: int


def depth_for(partial_bytes: int, n_partitions: int, budget: int = 256 * 2**20) -> int:
    """Tree depth so that one merge level never gathers more than ``budget`` bytes of partials."""
    depth = 2
    while depth < 8 and partial_bytes * math.ceil(n_partitions ** (1.0 / depth)) > budget:
        depth += 1
    return depth


def merge_levels(n_partitions: int, depth: int) -> list[MergeLevel]:
    """The executor-side levels for ``n_partitions`` partials and a tree of ``depth``.

    Partials are grouped ``fanout = ⌈P^(1/depth)⌉`` at a time until at most ``2·fanout`` remain,
    which the driver merges itself; ``depth ≤ 1`` merges everything on the driver.
    """
    fanout = max(2, math.ceil(n_partitions ** (1.0 / max(depth, 1))))
    levels: list[MergeLevel] = []
    n = n_partitions
    while depth > 1 and n > 2 * fanout:
        n = math.ceil(n / fanout)
        levels.append(MergeLevel(width=fanout, groups=n))
    return levels


def merge_group(pairs: Iterable[tuple[int, A]], comb_op: Callable[[A, A], A]) -> A:
    """Merge ``(index, partial)`` pairs in index order, whatever order they arrived in."""
    return reduce(comb_op, (value for _, value in sorted(pairs, key=itemgetter(0))))


def merge_final(pairs: Iterable[tuple[int, A]], zero: A, comb_op: Callable[[A, A], A]) -> A:
    """The driver's last merge: ``zero`` then every partial, in index order."""
    return reduce(comb_op, (value for _, value in sorted(pairs, key=itemgetter(0))), zero)


def merge_locally(
    partials: Iterable[tuple[int, A]], zero: A, comb_op: Callable[[A, A], A], depth: int = 2
) -> A:
    """What :func:`tree_aggregate` computes from its folded partials, without Spark.

    ``partials`` are ``(partition index, partial)`` pairs, one per partition ``0 … P − 1``, in any
    order; the same levels and merges as on the cluster are applied in memory.
    """
    pairs = list(partials)
    for level in merge_levels(len(pairs), depth):
        groups: dict[int, list[tuple[int, A]]] = {}
        for index, value in pairs:
            groups.setdefault(index // level.width, []).append((index, value))
        pairs = [(key, merge_group(members, comb_op)) for key, members in groups.items()]
    return merge_final(pairs, zero, comb_op)


def tree_aggregate(
    rdd: RDD,
    zero: A,
    seq_op: Callable[[A, Any], A],
    comb_op: Callable[[A, A], A],
    depth: int = 2,
    stream: bool = False,
    timings: dict[str, float] | None = None,
    pieces: Pieces[A] | None = None,
) -> A:
    """Fold every partition with ``seq_op`` from ``zero``, then merge with ``comb_op`` in a tree.

    ``depth`` levels: partials are grouped ``fanout = ⌈P^(1/depth)⌉`` at a time on the executors
    until few enough remain to merge on the driver (:func:`merge_levels`). ``stream`` is for
    partials too large to collect together (a wide Gram matrix): the last level is computed in
    one parallel job and kept on the executors' disks, then fetched one partition at a time, so
    the driver holds only two partials at once — or, with ``pieces``, cut into records that are
    fetched one at a time (:func:`_stream_pieces`). ``timings``, when given, receives ``fold_s``
    (the parallel job), ``transfer_s`` (fetching streamed partials) and ``merge_s`` (driver
    merges).
    """

    def fold(index: int, items: Iterable[Any]) -> list[tuple[int, A]]:
        maybe_fail(index)  # test-only fault injection (sparkml_jobs.faults); no-op unless enabled
        return [(index, reduce(seq_op, items, zero))]

    partials = rdd.mapPartitionsWithIndex(fold)
    for level in merge_levels(partials.getNumPartitions(), depth):
        partials = (
            partials.map(lambda pair, width=level.width: (pair[0] // width, pair))
            .groupByKey(level.groups)
            .map(lambda group: (group[0], merge_group(group[1], comb_op)))
        )
    clock = timings if timings is not None else {}
    if stream and pieces is not None:
        return _stream_pieces(partials, zero, pieces, clock)
    if stream:
        return _stream_merge(partials, zero, comb_op, clock)
    started = time.perf_counter()
    collected = partials.collect()
    clock["fold_s"] = time.perf_counter() - started
    started = time.perf_counter()
    result = merge_final(collected, zero, comb_op)
    clock["merge_s"] = time.perf_counter() - started
    return result


def _stream_merge(partials: RDD, zero: A, comb_op: Callable[[A, A], A], clock: dict) -> A:
    """Compute every partial in one job (to the executors' disks), then merge them one by one.

    ``toLocalIterator`` alone would run one job per partition, one after the other: the folds,
    the expensive part, would never run in parallel. Disk, not memory: a wide partial is hundreds
    of MB and the executors' heap holds the cached data already.
    """
    from pyspark import StorageLevel

    started = time.perf_counter()
    partials.persist(StorageLevel.DISK_ONLY)
    try:
        partials.count()
        clock["fold_s"] = time.perf_counter() - started
        # partition i holds only group i (a small int key hashes to itself): index order
        arriving = _Timed(iter(partials.toLocalIterator()))
        started, result = time.perf_counter(), zero
        for pair in arriving:
            result = comb_op(result, pair[1])
            del pair  # the driver holds the running merge and one partial, never more
        clock["transfer_s"] = arriving.waited
        clock["merge_s"] = time.perf_counter() - started - arriving.waited
        return result
    finally:
        partials.unpersist()


def _stream_pieces(partials: RDD, zero: A, pieces: Pieces[A], clock: dict) -> A:
    """Every partial cut into records (in the task that made it: never pickled whole), record
    ``j`` of partial ``i`` shuffled to its own partition ``i·count + j``, then fetched one
    partition at a time and absorbed in that order.

    The shuffle is the one parallel job (its map stage runs with the first fetch): the records
    wait on the executors' disks, and each later fetch is a small job moving one record, so no
    JVM or Python process holds more than a record of it. ``fold_s`` is the time until the
    first record arrives.
    """
    split, count = pieces.split, pieces.count

    def records(pair):
        for j, record in enumerate(split(pair[1])):
            if j >= count:
                raise ValueError(f"a partial was cut into more than {count} records")
            yield (pair[0], j), record

    n = partials.getNumPartitions()  # the partials' keys are 0 … n − 1
    slots = max(1, n * count)  # an RDD of no partitions still gives a (zero) result
    shuffled = partials.flatMap(records).partitionBy(slots, lambda key: key[0] * count + key[1])
    arriving = _Timed(iter(shuffled.toLocalIterator()))
    started, result = time.perf_counter(), zero
    for _, group in groupby(arriving, key=lambda item: item[0][0]):
        result = pieces.absorb(result, (record for _, record in group))
    first = arriving.waited if arriving.first is None else arriving.first
    clock["fold_s"], clock["transfer_s"] = first, arriving.waited - first
    clock["merge_s"] = time.perf_counter() - started - arriving.waited
    started = time.perf_counter()
    collect_jvm_garbage(partials.context)
    clock["jvm_gc_s"] = time.perf_counter() - started
    return result


def collect_jvm_garbage(sc) -> None:
    """A full collection in the driver's JVM, which then hands heap it no longer needs back to
    the system. The fetched records pass through that heap; G1 keeps every region they touched:
    at 8,193 columns (two 268 MB triangles in 16 MB records) the JVM grew from 0.33 to 0.72 GB
    and stayed there through the solve and the residual pass; after this, 0.52. ~0.1 s."""
    try:
        sc._jvm.java.lang.System.gc()
    except Exception:  # noqa: BLE001 - py4j gone or refused: only memory is at stake
        pass


class _Timed:
    """An iterator that adds up the time spent waiting for its items (``waited``; ``first``: for
    the first one)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items, self.waited, self.first = items, 0.0, None

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> Any:
        started = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.waited += time.perf_counter() - started
            if self.first is None:
                self.first = self.waited
