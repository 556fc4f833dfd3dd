"""The Spark passes of linear regression: statistics, TSQR factors, residuals, evaluation.

Each pass is one tree aggregation over the cached blocks of a :class:`~sparkml_jobs.io.dataset.
BlockData`; what runs on a block is a pure function from :mod:`~.stats`, :mod:`~.tsqr` or
:mod:`~.cv`, and whatever the executors need from the driver (coefficients) travels in a
:func:`~sparkml_jobs.engine.broadcast.broadcast_scope`. Every pass that reads rows also carries
their validation counts, so reading and validating are the same pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from sparkml_jobs.engine.aggregate import Pieces, depth_for, tree_aggregate
from sparkml_jobs.engine.broadcast import broadcast_scope
from sparkml_jobs.errors import InputError
from sparkml_jobs.io.blocks import Counts
from sparkml_jobs.io.dataset import BlockData
from sparkml_jobs.io.fs_parquet import release_memory
from sparkml_jobs.regression import cv, tsqr
from sparkml_jobs.regression import packed as pk
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression.guards import ColumnRange

log = logging.getLogger(__name__)


def _block_parts(values: np.ndarray, data_layout: tuple[int, int | None, int | None]):
    p, label_index, weight_index = data_layout
    x = values[:, :p]
    y = values[:, label_index] if label_index is not None else None
    w = values[:, weight_index] if weight_index is not None else None
    return x, y, w


def _layout(data: BlockData) -> tuple[int, int | None, int | None]:
    return data.n_features, data.label_index, data.weight_index


# A co-moment triangle above this many bytes makes a design "wide": one packed partial per task
# slot, computed in place (:mod:`~.packed`) and merged by streaming (8 MiB: about 1,450 columns).
WIDE_PARTIAL_BYTES = 8 * 2**20


def _check_and_count(block, weight_index: int | None, label_index: int):
    """(z, w, counts) of a block; ``z`` is ``None`` when the block is invalid (reported later)."""
    values = block.values
    w = values[:, weight_index] if weight_index is not None else None
    counts = Counts.of_block(block, weight_index)
    if counts.nulls.any() or counts.nonfinite.any() or (w is not None and (w < 0).any()):
        return None, w, counts  # invalid: reported by check(), no maths on NaN
    return values[:, : label_index + 1], w, counts


def aggregate_stats(
    data: BlockData,
    depth: int = 2,
    *,
    packed: bool | None = None,
    timings: dict[str, float] | None = None,
    cache: bool = True,
) -> tuple[st.SufficientStats | pk.PackedStats, Counts, ColumnRange]:
    """The one pass: per block statistics of ``[x, y]``, validation counts and every column's
    range (to tell overflow and underflow from constant columns), tree-merged.

    The blocks are persisted by this pass so later passes read them from memory, unless
    ``cache=False`` (a fit that reads its data once: caching would only cost). ``packed``
    forces (or refuses) the wide path, :func:`aggregate_wide`; by default it is taken when the
    co-moment triangle exceeds :data:`WIDE_PARTIAL_BYTES`.
    """
    width = data.n_features + 1
    partial_bytes = 8 * width * (width + 1) // 2
    if packed if packed is not None else partial_bytes > WIDE_PARTIAL_BYTES:
        return aggregate_wide(data, timings, cache=cache)
    n_cols = len(data.columns)
    weight_index = data.weight_index
    label_index = data.label_index
    zero = (st.SufficientStats.zero(width), Counts.zero(n_cols), ColumnRange.zero(n_cols))

    def add(acc, block):
        z, w, counts = _check_and_count(block, weight_index, label_index)
        if z is None:
            return acc[0], acc[1].merge(counts), acc[2]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: named by guards
            stats = st.SufficientStats.of_block(z, w)
        return (
            acc[0].merge(stats),
            acc[1].merge(counts),
            acc[2].merge(ColumnRange.of_block(block.values)),
        )

    def merge(a, b):
        with np.errstate(over="ignore", invalid="ignore"):
            return a[0].merge(b[0]), a[1].merge(b[1]), a[2].merge(b[2])

    if cache:
        data.cache()
    n_parts = data.blocks.getNumPartitions()
    depth = max(depth, depth_for(partial_bytes, n_parts))
    return tree_aggregate(
        data.blocks,
        zero,
        add,
        merge,
        depth,
        stream=partial_bytes * n_parts > 256 * 2**20,
        timings=timings,
    )


def aggregate_wide(
    data: BlockData, timings: dict[str, float] | None = None, cache: bool = True
) -> tuple[pk.PackedStats, Counts, ColumnRange]:
    """:func:`aggregate_stats` for a wide design: the number of partials, not the rows, is the cost.

    The blocks are regrouped (no shuffle) to one partition per task slot; each task adds
    its blocks in place to one packed triangle (:class:`~.packed.PackedStats`, half a GEMM per
    block) and ships it once, in records of a few MB (``Pieces`` of
    :mod:`~sparkml_jobs.engine.aggregate`); the driver adds them into its running triangle as
    they arrive, and the result stays packed (read-only: :meth:`~.packed.PackedStats.frozen`).
    ``timings`` receives ``partials``, ``fold_s`` (the parallel Gram job), ``transfer_s``,
    ``jvm_gc_s`` and ``merge_s``.
    """
    width = data.n_features + 1
    n_cols = len(data.columns)
    weight_index, label_index = data.weight_index, data.label_index
    # the zero ships with every task: no triangle in it, each task allocates its own
    zero = (None, Counts.zero(n_cols), ColumnRange.zero(n_cols))

    def add(acc, block):
        z, w, counts = _check_and_count(block, weight_index, label_index)
        if z is None:
            return acc[0], acc[1].merge(counts), acc[2]
        stats = acc[0] if acc[0] is not None else pk.PackedStats.zero(width)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: named by guards
            stats = stats.absorb(z, w)
        return stats, acc[1].merge(counts), acc[2].merge(ColumnRange.of_block(block.values))

    def merge(a, b):
        with np.errstate(over="ignore", invalid="ignore"):
            stats = b[0] if a[0] is None else (a[0] if b[0] is None else a[0].merge(b[0]))
        return stats, a[1].merge(b[1]), a[2].merge(b[2])

    if cache:
        data.cache()
    blocks = data.at_most(max(1, data.blocks.context.defaultParallelism))
    clock = timings if timings is not None else {}
    clock["partials"] = blocks.getNumPartitions()
    pieces = Pieces(_split_wide, _absorb_wide, 1 + pk.PackedStats.piece_count(width))
    packed, counts, ranges = tree_aggregate(
        blocks, zero, add, merge, 1, stream=True, timings=clock, pieces=pieces
    )
    # kept packed (read-only) through the solve, the summary and the model: the full matrix would
    # double the driver's share (8,193 columns: 537 MB, not 268)
    stats = (packed or pk.PackedStats.zero(width)).frozen()
    # the records were freed on glibc's heap (16 MB each: under its mmap threshold once that
    # has risen past them): handed back before the solve needs the memory
    release_memory()
    log.info(
        "wide statistics (%d columns, %d partials): Gram %.1f s, transfer %.1f s, JVM collection"
        " %.1f s, merge %.1f s",
        width,
        clock["partials"],
        clock.get("fold_s", 0.0),
        clock.get("transfer_s", 0.0),
        clock.get("jvm_gc_s", 0.0),
        clock.get("merge_s", 0.0),
        extra={"timings": dict(clock)},
    )
    return stats, counts, ranges


def _split_wide(partial):
    """A wide partial as records: its counts and ranges, then its triangle in pieces."""
    stats, counts, ranges = partial
    yield counts, ranges, stats is not None
    if stats is not None:
        yield from stats.pieces()


def _absorb_wide(acc, records):
    counts, ranges, has_stats = next(records)
    stats = acc[0]
    if has_stats:
        with np.errstate(over="ignore", invalid="ignore"):
            stats = pk.PackedStats.absorb_pieces(stats, records)
    return stats, acc[1].merge(counts), acc[2].merge(ranges)


def aggregate_r(data: BlockData, fit_intercept: bool, depth: int = 2) -> tsqr.RFactor:
    """The TSQR pass: every block's R factor, reduced up the tree (stacked R → QR)."""
    layout = _layout(data)
    width = data.n_features + 1 + int(fit_intercept)

    def add(acc: tsqr.RFactor, block) -> tsqr.RFactor:
        x, y, w = _block_parts(block.values, layout)
        return acc.merge(tsqr.RFactor.of_block(x, y, w, fit_intercept))

    zero, blocks = tsqr.RFactor.zero(width), data.blocks
    if 8 * width * (width + 1) // 2 > WIDE_PARTIAL_BYTES:
        # wide: as the statistics pass, one R per task slot, no shuffle of R factors, streamed;
        # blocks are stacked to a width of rows before each QR (:class:`~.tsqr.StackedR`)
        def add_wide(acc: tsqr.StackedR, block) -> tsqr.StackedR:
            x, y, w = _block_parts(block.values, layout)
            return acc.add(x, y, w, fit_intercept)

        blocks = data.at_most(max(1, blocks.context.defaultParallelism))
        size = pk.PIECE_BYTES
        pieces = Pieces(
            lambda stacked: stacked.pieces(size),
            tsqr.StackedR.absorb_pieces,
            tsqr.StackedR.piece_count(width, size),
        )
        stacked = tree_aggregate(
            blocks, tsqr.StackedR.zero(width), add_wide, tsqr.StackedR.merge, 1, True, None, pieces
        )
        return stacked.to_factor()
    return tree_aggregate(blocks, zero, add, tsqr.RFactor.merge, depth)


SAMPLE_ROWS = 2000


@dataclass(frozen=True)
class ResidualSums:
    """Σ w r², Σ w |r|, optionally Σ w r·[1, x], and a bounded sample of (fitted, residual)."""

    ssr: float
    sar: float
    sample: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    gradient: np.ndarray | None = None

    def merge(self, other: ResidualSums) -> ResidualSums:
        sample = np.vstack([self.sample, other.sample])[: 2 * SAMPLE_ROWS]
        gradient = (
            self.gradient
            if other.gradient is None
            else (other.gradient if self.gradient is None else self.gradient + other.gradient)
        )
        return ResidualSums(self.ssr + other.ssr, self.sar + other.sar, sample, gradient)


def residual_pass(
    sol: st.Solution,
    data: BlockData,
    n_rows: int = 0,
    *,
    precise: bool = False,
    gradient: bool = False,
    fit_intercept: bool = True,
    depth: int = 2,
) -> ResidualSums:
    """One pass of exact residual sums: Σw·r², Σw·|r| (no cancellation, unlike the Gram formula),
    every ⌈n/2000⌉-th row's (fitted, residual) for plots, and with ``gradient`` the refinement
    right-hand side Σ w r·[1, x_kept]. ``precise`` computes residuals in extended precision
    (``np.longdouble``), which ill-conditioned, near-exact fits need."""
    layout = _layout(data)
    stride = max(1, n_rows // SAMPLE_ROWS)

    def add(acc: ResidualSums, block) -> ResidualSums:
        beta, b0, kept = shared.value
        x, y, w = _block_parts(block.values, layout)
        if precise:
            xl = x.astype(np.longdouble)
            r_long = y.astype(np.longdouble) - (xl @ beta.astype(np.longdouble) + b0)
            r = r_long.astype(np.float64)
        else:
            r = y - (x @ beta + b0)
        ww = np.ones(len(r)) if w is None else w
        part = ResidualSums(
            float(ww @ (r * r)),
            float(ww @ np.abs(r)),
            np.column_stack([(y - r)[::stride], r[::stride]]),
        )
        if gradient:
            wr = (r_long * ww) if precise else r * ww
            g = (wr @ (xl[:, kept] if precise else x[:, kept])).astype(np.float64)
            head = [float(wr.sum())] if fit_intercept else []
            part = ResidualSums(part.ssr, part.sar, part.sample, np.concatenate([head, g]))
        return acc.merge(part)

    coefficients = (np.nan_to_num(sol.coefficients, nan=0.0), sol.intercept, sol.kept)
    with broadcast_scope(data.blocks.context, coefficients) as shared:
        return tree_aggregate(data.blocks, ResidualSums(0.0, 0.0), add, ResidualSums.merge, depth)


def evaluate(model, data: BlockData, depth: int = 2) -> dict[str, float]:
    """n, mse, rmse, mae, r2 of ``model`` on labelled ``data``, validated in the same pass."""
    if data.label is None:
        raise InputError("evaluation needs a label column")
    layout = _layout(data)
    weight_index = data.weight_index
    n_cols = len(data.columns)

    def add(acc, block):
        counts = Counts.of_block(block, weight_index)
        sums = np.zeros(5)  # Σw, Σw r², Σw|r|, Σw y, Σw y²
        if not (counts.nulls.any() or counts.nonfinite.any()):
            beta, b0 = shared.value
            x, y, w = _block_parts(block.values, layout)
            w = np.ones(len(y)) if w is None else w
            r = y - (x @ beta + b0)
            sums = np.array([w.sum(), w @ (r * r), w @ np.abs(r), w @ y, w @ (y * y)])
        return acc[0] + sums, acc[1].merge(counts)

    coefficients = (np.nan_to_num(model.coefficients, nan=0.0), model.intercept)
    with broadcast_scope(data.blocks.context, coefficients) as shared:
        sums, counts = tree_aggregate(
            data.blocks,
            (np.zeros(5), Counts.zero(n_cols)),
            add,
            lambda a, b: (a[0] + b[0], a[1].merge(b[1])),
            depth,
        )
    data.check(counts)
    w_sum, ssr, sar, sy, syy = sums
    tss = syy - sy * sy / w_sum
    return {
        "n": counts.rows,
        "mse": ssr / w_sum,
        "rmse": float(np.sqrt(ssr / w_sum)),
        "mae": sar / w_sum,
        "r2": 1.0 - ssr / tss if tss > 0 else float("nan"),
    }


def fold_stats(
    data: BlockData, folds: int, depth: int = 2
) -> tuple[list[st.SufficientStats], Counts, ColumnRange]:
    """The one pass: statistics of ``[x, y]`` per fold, the validation counts and ranges."""
    width = data.n_features + 1
    n_cols = len(data.columns)
    label_index, weight_index = data.label_index, data.weight_index
    zero = (
        [st.SufficientStats.zero(width) for _ in range(folds)],
        Counts.zero(n_cols),
        ColumnRange.zero(n_cols),
    )

    def add(acc, block):
        values = block.values
        counts = Counts.of_block(block, weight_index)
        if counts.nulls.any() or counts.nonfinite.any() or counts.negative_weights:
            return acc[0], acc[1].merge(counts), acc[2]
        fold = cv.fold_of_rows(values, folds)
        w = values[:, weight_index] if weight_index is not None else None
        z = values[:, : label_index + 1]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: named by guards
            merged = [
                acc[0][f].merge(
                    st.SufficientStats.of_block(z[fold == f], None if w is None else w[fold == f])
                )
                for f in range(folds)
            ]
        return merged, acc[1].merge(counts), acc[2].merge(ColumnRange.of_block(values))

    def merge(a, b):
        with np.errstate(over="ignore", invalid="ignore"):
            per_fold = [x.merge(y) for x, y in zip(a[0], b[0], strict=True)]
        return per_fold, a[1].merge(b[1]), a[2].merge(b[2])

    data.cache()
    return tree_aggregate(data.blocks, zero, add, merge, depth)
