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
  driver round trip. The JVM→Python transfer of the data happens once, and with many clusters
  each resident block keeps Hamerly distance bounds (:mod:`~.bounds`) that skip most of the
  distance computations once the centres settle, with bit-identical partials. If a task fails,
  Spark restarts the whole stage, which recomputes the same result.
- :func:`choose_mode`: ``mode="auto"`` picks the barrier path when its stage can get all its task
  slots, else the broadcast path. Both fold every cached partition the same way and merge the
  partials in the same tree (:func:`merge_depth`), so they give the same model, bit for bit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import numpy as np

from sparkml_jobs import progress
from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.clustering import rescale as rs
from sparkml_jobs.clustering import wire
from sparkml_jobs.clustering.bounds import MIN_K, Bounds, bounded_partial
from sparkml_jobs.clustering.standardize import Moments, Standardizer
from sparkml_jobs.engine.aggregate import merge_locally, tree_aggregate
from sparkml_jobs.engine.allgather import AllGather, split_bundle
from sparkml_jobs.engine.broadcast import broadcast_scope
from sparkml_jobs.engine.faults import maybe_fail_barrier_once
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


def validate(data: BlockData, points, moments: bool = False):
    """The load pass: materialises the cache and checks the validation counts it carries.

    Returns the merged counts (rows, and every column's range for :func:`rescale`); with
    ``moments=True``, ``(counts, moments)``: the same single pass also merges every block's
    weighted feature :class:`~.standardize.Moments` (for :func:`standardize`), so standardising
    costs no second read of the data.
    """
    d = data.n_features

    def block_moments(block: kk.PointBlock) -> Moments:
        if not moments:
            return Moments.zero(0)  # nothing computed, nothing shipped
        with np.errstate(all="ignore"):  # a NaN/inf block is refused by data.check below
            return Moments.of(block.x, block.w)

    zero = (Counts.zero(len(data.columns)), 0, Moments.zero(d if moments else 0))
    counts, zero_norm, merged = tree_aggregate(
        points,
        zero,
        lambda acc, block: (
            acc[0].merge(block.counts),
            acc[1] + block.zero_norm,
            acc[2].merge(block_moments(block)),
        ),
        lambda a, b: (a[0].merge(b[0]), a[1] + b[1], a[2].merge(b[2])),
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
    return (counts, merged) if moments else counts


def standardize(points, scaler: Standardizer):
    """The cached points as ``(x − mean) / scale``: one map over the cache (not the input),
    cached and materialised, then the unscaled cache dropped.

    Materialised once rather than applied per block in every iteration, so the broadcast
    iterations, the initialisation passes and the barrier stage all read ready points at no extra
    cost per iteration; the price is a transient second copy while the map runs.
    """

    def scale(block: kk.PointBlock) -> kk.PointBlock:
        return kk.PointBlock(scaler.apply(block.x), block.w, block.counts, block.zero_norm)

    scaled = points.map(scale).persist()
    scaled.count()
    points.unpersist()
    return scaled


def rescale(points, data: BlockData, counts: Counts, distance: str):
    """(points, ``Rescale``): the cached points rescaled when their magnitude needs it.

    Only for the Euclidean distance (cosine rows are unit vectors already) and only when
    :meth:`~.kernels.Rescale.for_range` says so: then the rescaled copy is cached and
    materialised and the original cache dropped, so a normal fit pays nothing.
    """
    p = data.n_features
    if distance != "euclidean" or counts.lo is None:
        return points, None
    scaling = rs.Rescale.for_range(counts.lo[:p], counts.hi[:p])
    if scaling is None:
        return points, None
    log.info("features beyond 1e+-30: k-means runs on (x - midpoint) * 2^%d", -scaling.exponent)

    def scale(block: kk.PointBlock) -> kk.PointBlock:
        return kk.PointBlock(scaling.apply(block.x), block.w, block.counts, block.zero_norm)

    scaled = points.map(scale).persist()
    scaled.count()
    points.unpersist()
    return scaled, scaling


EXCHANGE_BUDGET = 256 * 2**20  # bytes of partials one barrier round may gather into every task
DRIVER_MERGE_BYTES = 32 * 2**20  # partials this small are merged on the driver: no shuffle


def merge_depth(k: int, d: int, n_partitions: int) -> int:
    """Tree depth of the per-iteration merge: 1 (everything on the driver, no shuffle stage)
    when all partials together are small, else 2. Both modes use it, so they merge alike."""
    return 1 if n_partitions * partial_bytes(k, d) <= DRIVER_MERGE_BYTES else 2


def partial_bytes(k: int, d: int) -> int:
    """Size of one encoded partial (sums, weights, counts and up to k far points)."""
    return 8 * (6 + k * d + 2 * k + k + k * d)


def block_partial(
    block: kk.PointBlock | tuple, centers: np.ndarray, k: int, chunk_rows: int | None, stride: int
) -> kk.ClusterPartial:
    x, w = (block.x, block.w) if isinstance(block, kk.PointBlock) else block
    return kk.lloyd_partial(x, centers, w, keep_far=k, chunk_rows=chunk_rows, sample_stride=stride)


def lloyd_step(
    points, centers: np.ndarray, k: int, chunk_rows: int | None, sample_stride: int = 0
) -> kk.ClusterPartial:
    """One Lloyd iteration = one Spark job with a fresh broadcast of the centres."""
    d = centers.shape[1]
    depth = merge_depth(k, d, points.getNumPartitions())
    with broadcast_scope(points.context, centers) as shared:

        def add(acc: kk.ClusterPartial, block: kk.PointBlock) -> kk.ClusterPartial:
            return acc.merge(block_partial(block, shared.value, k, chunk_rows, sample_stride))

        return tree_aggregate(
            points, kk.ClusterPartial.zero(k, d, k), add, kk.ClusterPartial.merge, depth=depth
        )


def run_broadcast(
    points, state: kk.LloydState, k: int, chunk_rows: int | None, stride: int
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
    """Concurrent task slots of the application (all tasks of a barrier stage run at once).

    Spark's own count (``SparkContext.maxNumConcurrentTasks`` of the default resource profile,
    what its barrier check uses): the cores of the executors registered now, divided by
    ``spark.task.cpus``. ``defaultParallelism`` is not it: on a standalone or YARN cluster it is
    at least 2 even with one core, and a barrier stage asking for more slots than exist waits
    for them (Spark retries its check for minutes). Without the internal call: the
    ``defaultParallelism`` estimate.
    """
    try:
        jsc = sc._jsc.sc()
        profile = jsc.resourceProfileManager().defaultResourceProfile()
        return int(jsc.maxNumConcurrentTasks(profile))
    except Exception:  # py4j: not in this Spark version
        cpus = max(1, int(sc.getConf().get("spark.task.cpus", "1")))
        return max(1, int(sc.defaultParallelism) // cpus)


def busy_slots(sc) -> int:
    """Tasks other jobs of this application are running now (they hold slots)."""
    tracker = sc.statusTracker()
    infos = (tracker.getStageInfo(s) for s in tracker.getActiveStageIds())
    return sum(info.numActiveTasks for info in infos if info is not None)


def choose_mode(sc, n_partitions: int, k: int, d: int) -> tuple[str, str]:
    """(mode, reason) for ``mode="auto"``: barrier when its stage can get all its task slots.

    A barrier stage needs every task running at once; it cannot run under dynamic allocation
    (Spark refuses it), and it waits if other jobs hold the slots. Its tasks exchange one partial
    per cached partition every round, which must stay bounded.
    """
    conf = sc.getConf()
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return "broadcast", "dynamic allocation is enabled (barrier stages cannot run with it)"
    slots = task_slots(sc)
    if slots < 1:
        return "broadcast", "no executor has registered yet (no task slots to hold a barrier stage)"
    tasks = min(n_partitions, slots)
    free = slots - busy_slots(sc)
    if free < tasks:
        return "broadcast", f"barrier needs {tasks} free task slots, {free} of {slots} are free"
    exchange = n_partitions * partial_bytes(k, d)
    if exchange > EXCHANGE_BUDGET:
        return "broadcast", (
            f"barrier rounds would gather {exchange / 2**20:.0f} MB of partials per task "
            f"({n_partitions} partitions, k={k}, d={d})"
        )
    regroup = f", {n_partitions} partitions regrouped once" if n_partitions > tasks else ""
    return "barrier", (
        f"{tasks} barrier tasks fit in {free} free of {slots} task slots{regroup}, "
        "no dynamic allocation"
    )


def barrier_blocks(points, slots: int):
    """The cached partitions as ``(source index, [(x, w), ...])`` pairs in at most ``slots``
    partitions (barrier stages refuse coalesce(): more partitions than slots cost one shuffle).

    Each task then folds every source partition it holds exactly as the broadcast mode does, so
    the merged partials — and the model — are bit-identical to the broadcast mode's.
    """
    tagged = points.mapPartitionsWithIndex(
        lambda index, blocks: [(index, [(b.x, b.w) for b in blocks])]
    )
    n = points.getNumPartitions()
    if n <= slots:
        return tagged
    width = -(-n // slots)  # contiguous source ranges per task
    return tagged.partitionBy(-(-n // width), lambda index: index // width)


def run_barrier(
    points, state: kk.LloydState, k: int, chunk_rows: int | None, stride: int
) -> kk.ClusterPartial:
    """Iterate inside one barrier stage (see the module docstring); updates ``state`` in place."""
    n_source = points.getNumPartitions()
    rdd = barrier_blocks(points, max(1, task_slots(points.context)))
    start = kk.LloydState(
        centers=state.centers, max_iter=state.max_iter, tol=state.tol, cosine=state.cosine
    )
    n_tasks = rdd.getNumPartitions()
    authkey = os.urandom(32)
    depth = merge_depth(k, state.centers.shape[1], n_source)

    def run(index, pairs):
        from pyspark import BarrierTaskContext

        maybe_fail_barrier_once(index, BarrierTaskContext.get())  # test-only, no-op unless set
        resident = sorted(
            ((source, [ResidentBlock(x, w) for x, w in blocks]) for source, blocks in pairs),
            key=lambda pair: pair[0],
        )
        lloyd = kk.LloydState(
            centers=start.centers.copy(),
            max_iter=start.max_iter,
            tol=start.tol,
            cosine=start.cosine,
        )
        d = lloyd.centers.shape[1]
        zero = kk.ClusterPartial.zero(k, d, k)
        with AllGather(BarrierTaskContext.get(), index, n_tasks, authkey) as channel:

            def exchange(sample_stride: int = 0) -> tuple[kk.ClusterPartial, kk.ClusterPartial]:
                """(this task's partial, every source partition's partial merged as the
                broadcast mode's tree aggregation merges them)."""
                mine = [
                    (
                        source,
                        reduce(
                            lambda acc, blk: acc.merge(
                                blk.partial(lloyd.centers, k, chunk_rows, sample_stride)
                            ),
                            blocks,
                            zero,
                        ),
                    )
                    for source, blocks in resident
                ]
                payload = b"".join(
                    len(m).to_bytes(8, "big") + m
                    for m in (wire.encode_partial(source, part) for source, part in mine)
                )
                gathered = [
                    wire.decode_partial(m)
                    for bundle in channel.all_gather(payload)
                    for m in split_bundle(bundle)
                ]
                merged = merge_locally(gathered, zero, kk.ClusterPartial.merge, depth)
                return reduce(kk.ClusterPartial.merge, (p for _, p in mine), zero), merged

            while not lloyd.done:
                lloyd.advance(exchange()[1])
            mine, final = exchange(stride)  # the sample stays per task; sizes and cost are global
        yield index, BarrierResult(index, lloyd, final, mine.sample_points, mine.sample_labels)

    try:
        # the shuffle after the stage makes it a ShuffleMapStage: Spark re-runs a failed barrier
        # ShuffleMapStage (every task, from the same initial centres, so the same model) but
        # aborts the job when a barrier ResultStage fails ("could not recover")
        gathered = rdd.barrier().mapPartitionsWithIndex(run).partitionBy(1).values().collect()
        results = sorted(gathered, key=lambda r: r.index)
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
    return dataclasses.replace(
        first.final,
        sample_points=np.vstack([r.sample_points for r in samples]) if samples else None,
        sample_labels=np.concatenate([r.sample_labels for r in samples]) if samples else None,
    )


class ResidentBlock:
    """A block kept in a barrier task across iterations, with its points' distance bounds."""

    def __init__(self, x: np.ndarray, w: np.ndarray | None) -> None:
        self.x, self.w = np.ascontiguousarray(x), w
        self.bounds: Bounds | None = None

    def partial(
        self, centers: np.ndarray, k: int, chunk_rows: int | None, stride: int
    ) -> kk.ClusterPartial:
        """The block's :func:`~.kernels.lloyd_partial`, bit for bit, skipping the distances its
        bounds prove unchanged (:mod:`~.bounds`)."""
        if k < MIN_K:
            return kk.lloyd_partial(
                self.x, centers, self.w, keep_far=k, chunk_rows=chunk_rows, sample_stride=stride
            )
        part, self.bounds = bounded_partial(
            self.x,
            centers,
            self.w,
            self.bounds,
            keep_far=k,
            chunk_rows=chunk_rows,
            sample_stride=stride,
        )
        return part


@dataclass(frozen=True, slots=True)
class BarrierResult:
    """What one barrier task sends back: its final state, the global final partial, its sample."""

    index: int
    state: kk.LloydState
    final: kk.ClusterPartial
    sample_points: np.ndarray | None
    sample_labels: np.ndarray | None


RUNNERS: dict[str, Runner] = {"broadcast": run_broadcast, "barrier": run_barrier}
