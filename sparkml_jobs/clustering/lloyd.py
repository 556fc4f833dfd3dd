"""Lloyd's iterations on Spark: the cached points, their validation, and the two ways to iterate.

Both implementations share one interface, :data:`Runner`: ``run(points, state, k, chunk_rows,
stride) -> final partial`` advances a :class:`~.kernels.LloydState` until it is done and returns
the assignment to the final centres (with the plot sample).

- :func:`run_broadcast`: one Spark job per iteration: broadcast the centres, every partition
  emits its :class:`~.kernels.ClusterPartial`, a tree aggregation merges them in partition order,
  the driver advances the state. Lineage stays flat: the data RDD is never re-derived.
- :func:`run_barrier`: every iteration inside one barrier stage: each task keeps its rows in
  memory and the tasks exchange their partials through :class:`~sparkml_jobs.engine.allgather.
  AllGather`, merging them in partition order, so every task holds identical centres without a
  driver round trip. The JVM→Python transfer of the data happens once. If a task fails, Spark
  restarts the whole stage, which recomputes the same result.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import numpy as np

from sparkml_jobs import progress
from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.engine.aggregate import tree_aggregate
from sparkml_jobs.engine.allgather import AllGather
from sparkml_jobs.engine.broadcast import broadcast_scope
from sparkml_jobs.errors import InputError
from sparkml_jobs.io.blocks import Block, Counts
from sparkml_jobs.io.dataset import BlockData

log = logging.getLogger(__name__)

Runner = Callable[..., kk.ClusterPartial]


def prepare(data: BlockData, distance: str):
    """The cached RDD of :class:`~.kernels.PointBlock` the iterations read (features only)."""
    p = data.n_features
    weight_index = data.weight_index
    cosine = distance == "cosine"

    def to_points(block: Block) -> kk.PointBlock:
        values = block.values
        x = np.ascontiguousarray(values[:, :p])
        if cosine:
            x = kk.normalize_rows(x)
        w = np.ascontiguousarray(values[:, weight_index]) if weight_index is not None else None
        zero_norm = int((~(values[:, :p] != 0).any(axis=1)).sum()) if cosine else 0
        return kk.PointBlock(x, w, Counts.of_block(block, weight_index), zero_norm)

    points = data.blocks.map(to_points)
    if data.blocks.is_cached and not cosine:
        return points  # the caller's cache already holds the rows: no second copy
    return points.persist()


def validate(data: BlockData, points) -> Counts:
    """The load pass: materialises the cache and checks the validation counts it carries.

    Returns the merged counts (rows, and every column's range for :func:`rescale`).
    """
    zero = (Counts.zero(len(data.columns)), 0)
    counts, zero_norm = tree_aggregate(
        points,
        zero,
        lambda acc, block: (acc[0].merge(block.counts), acc[1] + block.zero_norm),
        lambda a, b: (a[0].merge(b[0]), a[1] + b[1]),
    )
    data.check(counts)
    if zero_norm:
        raise InputError(
            f"{data.source}: {zero_norm} of {counts.rows} rows are all zeros, "
            "which have no direction for the cosine distance"
        )
    log.info(
        "loaded %d rows x %d features (%d partitions)",
        counts.rows,
        data.n_features,
        points.getNumPartitions(),
    )
    return counts


def rescale(points, data: BlockData, counts: Counts, distance: str):
    """(points, ``Rescale``): the cached points rescaled when their magnitude needs it.

    Only for the Euclidean distance (cosine rows are unit vectors already) and only when
    :meth:`~.kernels.Rescale.for_range` says so: then the rescaled copy is cached and
    materialised and the original cache dropped, so a normal fit pays nothing.
    """
    p = data.n_features
    if distance != "euclidean" or counts.lo is None:
        return points, None
    scaling = kk.Rescale.for_range(counts.lo[:p], counts.hi[:p])
    if scaling is None:
        return points, None
    log.info("features beyond 1e+-30: k-means runs on (x - midpoint) * 2^%d", -scaling.exponent)

    def scale(block: kk.PointBlock) -> kk.PointBlock:
        return kk.PointBlock(scaling.apply(block.x), block.w, block.counts, block.zero_norm)

    scaled = points.map(scale).persist()
    scaled.count()
    points.unpersist()
    return scaled, scaling


def lloyd_step(
    points, centers: np.ndarray, k: int, chunk_rows: int, sample_stride: int = 0
) -> kk.ClusterPartial:
    """One Lloyd iteration = one Spark job with a fresh broadcast of the centres."""
    d = centers.shape[1]
    with broadcast_scope(points.context, centers) as shared:

        def add(acc: kk.ClusterPartial, block: kk.PointBlock) -> kk.ClusterPartial:
            part = kk.lloyd_partial(
                block.x,
                shared.value,
                block.w,
                keep_far=k,
                chunk_rows=chunk_rows,
                sample_stride=sample_stride,
            )
            return acc.merge(part)

        return tree_aggregate(points, kk.ClusterPartial.zero(k, d), add, kk.ClusterPartial.merge)


def run_broadcast(
    points, state: kk.LloydState, k: int, chunk_rows: int, stride: int
) -> kk.ClusterPartial:
    """Iterate with one job per iteration (see the module docstring); logs progress per step."""
    started = time.perf_counter()
    while not state.done:
        entry = state.advance(lloyd_step(points, state.centers, k, chunk_rows))
        elapsed = time.perf_counter() - started
        log.info(
            "iteration %d: cost %.6g shift %.3g%s (%.1fs)",
            entry["iteration"],
            entry["cost"],
            entry["shift"],
            f" reseeded {entry['empty']}" if entry["empty"] else "",
            elapsed,
            extra=progress.fields(
                entry["iteration"],
                state.max_iter,
                label=f"k-means k={k}",
                elapsed=elapsed,
                cost=entry["cost"],
                shift=entry["shift"],
            ),
        )
    return lloyd_step(points, state.centers, k, chunk_rows, sample_stride=stride)


def task_slots(sc) -> int:
    """Concurrent task slots the barrier stage may use (all its tasks must run at once)."""
    return max(1, int(sc.defaultParallelism))


def run_barrier(
    points, state: kk.LloydState, k: int, chunk_rows: int, stride: int
) -> kk.ClusterPartial:
    """Iterate inside one barrier stage (see the module docstring); updates ``state`` in place."""
    sc = points.context
    slots = task_slots(sc)
    # barrier stages refuse coalesce(); more partitions than slots need one shuffle (done once)
    rdd = points if points.getNumPartitions() <= slots else points.repartition(slots)
    start = kk.LloydState(
        centers=state.centers, max_iter=state.max_iter, tol=state.tol, cosine=state.cosine
    )
    n_tasks = rdd.getNumPartitions()
    authkey = os.urandom(32)

    def run(index, blocks):
        from pyspark import BarrierTaskContext

        resident = [(np.ascontiguousarray(b.x), b.w) for b in blocks]
        lloyd = kk.LloydState(
            centers=start.centers.copy(),
            max_iter=start.max_iter,
            tol=start.tol,
            cosine=start.cosine,
        )
        d = lloyd.centers.shape[1]
        with AllGather(BarrierTaskContext.get(), index, n_tasks, authkey) as channel:

            def exchange(sample_stride: int = 0) -> tuple[kk.ClusterPartial, kk.ClusterPartial]:
                """(this task's partial, the merged partial of all tasks, in partition order)."""
                mine = reduce(
                    kk.ClusterPartial.merge,
                    (
                        kk.lloyd_partial(
                            x,
                            lloyd.centers,
                            w,
                            keep_far=k,
                            chunk_rows=chunk_rows,
                            sample_stride=sample_stride,
                        )
                        for x, w in resident
                    ),
                    kk.ClusterPartial.zero(k, d),
                )
                messages = channel.all_gather(kk.encode_partial(index, mine))
                return mine, reduce(
                    kk.ClusterPartial.merge, (kk.decode_partial(m)[1] for m in messages)
                )

            while not lloyd.done:
                lloyd.advance(exchange()[1])
            mine, final = exchange(stride)  # the sample stays per task; sizes and cost are global
        yield BarrierResult(index, lloyd, final, mine.sample_points, mine.sample_labels)

    try:
        results = sorted(rdd.barrier().mapPartitionsWithIndex(run).collect(), key=lambda r: r.index)
    except Exception as exc:
        if "barrier" in str(exc).lower() and "slots" in str(exc).lower():
            raise InputError(f"barrier mode needs {n_tasks} free task slots: {exc}") from exc
        raise
    first = results[0]
    state.centers, state.history, state.reseeded = (
        first.state.centers,
        first.state.history,
        first.state.reseeded,
    )
    state.converged, state.n_iter = first.state.converged, first.state.n_iter
    for entry in state.history:
        log.info(
            "iteration %d: cost %.6g shift %.3g (barrier mode)",
            entry["iteration"],
            entry["cost"],
            entry["shift"],
        )
    samples = [r for r in results if r.sample_points is not None]
    return kk.ClusterPartial(
        first.final.sums,
        first.final.weights,
        first.final.counts,
        first.final.cost,
        first.final.far_d2,
        first.final.far_points,
        np.vstack([r.sample_points for r in samples]) if samples else None,
        np.concatenate([r.sample_labels for r in samples]) if samples else None,
    )


@dataclass(frozen=True, slots=True)
class BarrierResult:
    """What one barrier task sends back: its final state, the global final partial, its sample."""

    index: int
    state: kk.LloydState
    final: kk.ClusterPartial
    sample_points: np.ndarray | None
    sample_labels: np.ndarray | None


RUNNERS: dict[str, Runner] = {"broadcast": run_broadcast, "barrier": run_barrier}
