"""k-means kernels (numpy, plus the compiled row passes of :mod:`.compiled`): what the
executors run on a block, and the driver-side steps.

No Spark here: functions take arrays and return arrays or a mergeable partial (unit-tested on
small inputs). With numba (the default install) a chunk's GEMM is followed by one compiled loop
over its rows, else by the numpy passes below (the same partials to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sparkml_jobs.clustering import compiled
from sparkml_jobs.io.blocks import Counts

DEFAULT_CHUNK_ROWS = 4_096  # measured: 4k-row chunks keep the GEMM temporaries in cache
DISTANCE_BLOCK_BYTES = 32 * 2**20  # one chunk's (rows x k) distances + (rows x d) differences
CACHE_BLOCK_BYTES = 4 * 2**20  # a distance block the compiled pass reads back while it is cached
MIN_CACHE_ROWS = 1_024  # below this the GEMM itself slows down (measured at k = 4,096)


def chunk_rows_for(k: int, d: int, budget: int = DISTANCE_BLOCK_BYTES) -> int:
    """Rows per chunk so that one chunk's float64 temporaries stay within ``budget`` bytes.

    A chunk holds a ``(rows, k)`` distance block and ``(rows, d)`` differences: with few clusters
    the measured cache-friendly :data:`DEFAULT_CHUNK_ROWS` applies, with thousands of clusters the
    budget shrinks the chunk (k = 4,096, d = 64: 1,008 rows, 32 MB, instead of 128 MB). In
    between, the block is kept near :data:`CACHE_BLOCK_BYTES` but at least
    :data:`MIN_CACHE_ROWS` rows (one thread, 250k × 64, k = 1,000: 1,024-row chunks 0.99 s per
    iteration against 1.17 s in 3,942-row ones; at k = 4,096 chunks under 1,000 rows lose).
    """
    cached = max(MIN_CACHE_ROWS, CACHE_BLOCK_BYTES // (8 * k))
    return max(1, min(DEFAULT_CHUNK_ROWS, budget // (8 * (k + d)), cached))


@dataclass(frozen=True, slots=True)
class PointBlock:
    """One cached block of points as the iterations read it (what crosses the RDD boundary).

    ``x`` holds the features only (unit-normalised rows for the cosine distance), ``w`` the row
    weights or ``None``; ``counts`` are the block's validation counts and ``zero_norm`` the number
    of all-zero rows (which have no direction under the cosine distance).
    """

    x: np.ndarray
    w: np.ndarray | None
    counts: Counts
    zero_norm: int = 0


def squared_distances(x: np.ndarray, centers: np.ndarray, center_sq: np.ndarray) -> np.ndarray:
    """‖x − c‖² for every row and centre, via ‖x‖² − 2x·c + ‖c‖² (one GEMM), clipped at 0."""
    d2 = x @ centers.T
    d2 *= -2.0
    d2 += center_sq
    d2 += np.einsum("ij,ij->i", x, x)[:, None]
    np.maximum(d2, 0.0, out=d2)
    return d2


def nearest(chunk: np.ndarray, minus_two_centers: np.ndarray, center_sq: np.ndarray):
    """(labels, ``‖c‖² − 2x·c``) of a chunk: the nearest centre by the GEMM identity.

    ``‖x‖²`` is the same for every centre, so the argmin needs neither it nor a clip at zero:
    the ``rows × k`` block is written by the GEMM and passed over twice (add, argmin) instead of
    five times. ``minus_two_centers`` is ``−2·centres`` (exact: a power of two), so the product
    is bit-identical to ``−2·(x·c)``. Every caller that needs labels uses this, so the labels of
    the plain, bounded and prediction paths are the same bit for bit.
    """
    g = distance_block(chunk, minus_two_centers)
    g += center_sq
    return g.argmin(axis=1), g


def distance_block(chunk: np.ndarray, minus_two_centers: np.ndarray, out=None) -> np.ndarray:
    """``−2·x·c`` for a chunk's rows and every centre (one GEMM): the ``rows × k`` block that
    :data:`DISTANCE_BLOCK_BYTES` bounds; into ``out[:rows]`` if given (a buffer reused across
    chunks: a fresh multi-MB block per chunk is page-faulted in every time — k = 1,000, 1,024
    rows, one thread: 0.81 s against 0.67 s of GEMM per 250k rows)."""
    if out is None:
        return chunk @ minus_two_centers.T
    return np.matmul(chunk, minus_two_centers.T, out=out[: len(chunk)])


def own_distances(x: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """‖x − c(label)‖² computed directly (no cancellation, unlike the GEMM identity)."""
    if compiled.AVAILABLE:
        out = np.empty(len(x))
        compiled.own_distances(compiled.rows(x), compiled.rows(centers), _labels(labels), out)
        return out
    diff = np.take(centers, labels, axis=0)
    np.subtract(x, diff, out=diff)
    return np.einsum("ij,ij->i", diff, diff)


def assign(
    x: np.ndarray, centers: np.ndarray, chunk_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every row and the exact squared distance to it.

    The GEMM trick picks the label (:func:`nearest`); the distance to the chosen centre is then
    recomputed directly (:func:`own_distances`), so costs carry no cancellation error.
    ``chunk_rows`` defaults to :func:`chunk_rows_for` the centres' shape.
    """
    chunk_rows = chunk_rows or chunk_rows_for(*centers.shape)
    centers = compiled.rows(centers)
    center_sq = np.einsum("ij,ij->i", centers, centers)
    minus_two = -2.0 * centers
    labels = np.empty(len(x), dtype=np.int64)
    dist2 = np.empty(len(x), dtype=np.float64)
    buffer = None
    for start in range(0, len(x), chunk_rows):
        stop = start + chunk_rows
        if compiled.AVAILABLE:
            buffer = _buffer(buffer, chunk_rows, x, centers)
            _finish(
                x[start:stop],
                minus_two,
                center_sq,
                centers,
                None,
                labels,
                dist2,
                start,
                None,
                buffer,
            )
            continue
        chunk = x[start:stop]
        lab, _ = nearest(chunk, minus_two, center_sq)
        labels[start:stop] = lab
        dist2[start:stop] = own_distances(chunk, centers, lab)
    return labels, dist2


def _labels(labels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(labels, dtype=np.int64)


def _buffer(buffer, chunk_rows: int, x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The distance block reused by every chunk of ``x`` (see :func:`distance_block`)."""
    return buffer if buffer is not None else np.empty((min(chunk_rows, len(x)), len(centers)))


def _finish(chunk, minus_two, center_sq, centers, w, labels, dist2, start, sums, buffer) -> None:
    """One chunk through the compiled pass (:func:`.compiled.finish_chunk`): the GEMM here, the
    labels, exact distances and (``sums`` given: ``(sums, tallies)``) per-cluster sums, weights
    and counts in one loop over its rows; the distances go to ``buffer``."""
    chunk = compiled.rows(chunk)
    stop = start + len(chunk)
    add = sums is not None
    sums, tallies = sums if add else (centers[:0], centers[:0])
    compiled.finish_chunk(
        chunk,
        distance_block(chunk, minus_two, buffer),
        center_sq,
        centers,
        compiled.NO_WEIGHTS if w is None else compiled.rows(w[start:stop]),
        labels[start:stop],
        dist2[start:stop],
        sums,
        tallies,
        add,
    )


def add_cluster_sums(
    flat_sums: np.ndarray, chunk: np.ndarray, w: np.ndarray | None, labels: np.ndarray
) -> None:
    """``flat_sums[label·d + j] += w·x[:, j]`` for one chunk: one ``bincount`` over the chunk's
    cells in memory order (the chunk is in cache), not ``d`` strided passes over the block."""
    k_d, d = len(flat_sums), chunk.shape[1]
    weighted = chunk if w is None else chunk * w[:, None]
    cells = (labels * d)[:, None] + np.arange(d)
    flat_sums += np.bincount(cells.ravel(), weights=weighted.ravel(), minlength=k_d)


@dataclass(frozen=True, slots=True)
class ClusterPartial:
    """Per-cluster sums of one or more blocks (a monoid under :meth:`merge`).

    ``far_points`` keeps the points farthest from their centres (at most ``keep`` of them), used
    to re-seed empty clusters deterministically. ``keep`` travels with the partial: a block with
    fewer distinct points than ``keep`` holds fewer far points, and a merge must still keep
    ``keep`` candidates from the union, not as many as the larger side happened to have.
    """

    sums: np.ndarray  # (k, d) Σ w x
    weights: np.ndarray  # (k,) Σ w
    counts: np.ndarray  # (k,) number of points
    cost: float  # Σ w ‖x − c‖²
    far_d2: np.ndarray  # (m,) descending
    far_points: np.ndarray  # (m, d)
    sample_points: np.ndarray | None = None  # a systematic sample of the rows, for plots
    sample_labels: np.ndarray | None = None
    keep: int = 0  # how many far points the partial may hold

    @classmethod
    def zero(cls, k: int, d: int, keep: int = 0) -> ClusterPartial:
        return cls(
            np.zeros((k, d)),
            np.zeros(k),
            np.zeros(k, np.int64),
            0.0,
            np.zeros(0),
            np.zeros((0, d)),
            keep=keep,
        )

    def _merged_sample(self, other: ClusterPartial):
        if self.sample_points is None or other.sample_points is None:
            return (
                (self.sample_points, self.sample_labels)
                if other.sample_points is None
                else (other.sample_points, other.sample_labels)
            )
        return (
            np.vstack([self.sample_points, other.sample_points]),
            np.concatenate([self.sample_labels, other.sample_labels]),
        )

    def merge(self, other: ClusterPartial) -> ClusterPartial:
        keep = max(self.keep, other.keep)
        far_d2, far_points = top_farthest(
            np.concatenate([self.far_d2, other.far_d2]),
            np.vstack([self.far_points, other.far_points]),
            keep,
        )
        return ClusterPartial(
            self.sums + other.sums,
            self.weights + other.weights,
            self.counts + other.counts,
            self.cost + other.cost,
            far_d2,
            far_points,
            *self._merged_sample(other),
            keep=keep,
        )


def top_farthest(d2: np.ndarray, points: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``keep`` largest distances, distinct points, ties broken by the points' coordinates.

    The order depends only on the values, so merging partials in any order gives the same result.
    """
    if keep == 0 or len(d2) == 0:
        return d2[:0], points[:0]
    size = 4 * keep
    while True:
        if len(d2) <= size:
            cand_d2, cand = d2, points
        else:
            # every distance tied with the size-th largest comes along, so the tie-break by
            # coordinates sees all of them and the input order cannot change the result
            mask = d2 >= _kth_largest(d2, size)
            cand_d2, cand = d2[mask], points[mask]
        order = np.lexsort(tuple(cand.T[::-1]) + (-cand_d2,))
        cand_d2, cand = cand_d2[order], cand[order]
        _, first = np.unique(cand, axis=0, return_index=True)
        if len(first) >= keep or len(cand_d2) == len(d2):
            first.sort()
            return cand_d2[first][:keep], cand[first][:keep]
        size *= 4  # copies of the same points filled the candidates: look further down


def _kth_largest(values: np.ndarray, kth: int) -> float:
    if compiled.AVAILABLE:
        return compiled.kth_largest(compiled.rows(values), kth)
    return np.partition(values, len(values) - kth)[len(values) - kth]


def lloyd_partial(
    x: np.ndarray,
    centers: np.ndarray,
    w: np.ndarray | None = None,
    *,
    keep_far: int = 0,
    chunk_rows: int | None = None,
    sample_stride: int = 0,
) -> ClusterPartial:
    """Assign the rows of ``x`` to ``centers`` and sum them per cluster (one block's share).

    Fused a chunk at a time: labels, exact distances and the per-cluster sums of a chunk are all
    computed while it is in cache, so the block is read from memory once per iteration.
    """
    k, d = centers.shape
    chunk_rows = chunk_rows or chunk_rows_for(k, d)
    centers = compiled.rows(centers)
    center_sq = np.einsum("ij,ij->i", centers, centers)
    minus_two = -2.0 * centers
    labels = np.empty(len(x), dtype=np.int64)
    dist2 = np.empty(len(x), dtype=np.float64)
    if compiled.AVAILABLE:
        sums, tallies = np.zeros((k, d)), np.zeros((2, k))
        buffer = _buffer(None, chunk_rows, x, centers)
        for start in range(0, len(x), chunk_rows):
            chunk = x[start : start + chunk_rows]
            _finish(
                chunk,
                minus_two,
                center_sq,
                centers,
                w,
                labels,
                dist2,
                start,
                (sums, tallies),
                buffer,
            )
        return _partial(x, w, labels, dist2, sums, keep_far, sample_stride, tallies)
    flat_sums = np.zeros(k * d)
    for start in range(0, len(x), chunk_rows):
        stop = start + chunk_rows
        chunk = x[start:stop]
        lab, _ = nearest(chunk, minus_two, center_sq)
        labels[start:stop] = lab
        dist2[start:stop] = own_distances(chunk, centers, lab)
        add_cluster_sums(flat_sums, chunk, None if w is None else w[start:stop], lab)
    return _partial(x, w, labels, dist2, flat_sums.reshape(k, d), keep_far, sample_stride)


def partial_from_labels(
    x: np.ndarray,
    centers: np.ndarray,
    w: np.ndarray | None,
    labels: np.ndarray,
    dist2: np.ndarray,
    keep_far: int,
    sample_stride: int,
    chunk_rows: int | None = None,
) -> ClusterPartial:
    """The partial of rows whose labels and squared distances to their centres are known.

    The sums are added chunk by chunk in :func:`lloyd_partial`'s order, so for the same labels
    the partial is bit-for-bit :func:`lloyd_partial`'s.
    """
    k, d = centers.shape
    if compiled.AVAILABLE:  # row by row: the chunks do not change the order
        sums, tallies = np.zeros((k, d)), np.zeros((2, k))
        weights = compiled.NO_WEIGHTS if w is None else compiled.rows(w)
        compiled.add_sums(sums, tallies, compiled.rows(x), weights, _labels(labels))
        return _partial(x, w, labels, dist2, sums, keep_far, sample_stride, tallies)
    chunk_rows = chunk_rows or chunk_rows_for(k, d)
    flat_sums = np.zeros(k * d)
    for start in range(0, len(x), chunk_rows):
        stop = start + chunk_rows
        add_cluster_sums(
            flat_sums, x[start:stop], None if w is None else w[start:stop], labels[start:stop]
        )
    return _partial(x, w, labels, dist2, flat_sums.reshape(k, d), keep_far, sample_stride)


def _partial(
    x, w, labels, dist2, sums, keep_far: int, sample_stride: int, tallies=None
) -> ClusterPartial:
    """The partial from labels, distances and sums; ``tallies`` = the compiled pass's
    ``(Σw, count)`` per cluster (the same sums, in the same order, as the ``bincount`` here)."""
    k = len(sums)
    weights = np.ones(len(x)) if w is None else w
    far_d2, far_points = top_farthest(dist2, x, keep_far)
    if tallies is None:
        cluster_w = np.bincount(labels, weights=weights, minlength=k).astype(np.float64)
        counts = np.bincount(labels, minlength=k)
    else:
        cluster_w, counts = tallies[0].copy(), tallies[1].astype(np.int64)
    return ClusterPartial(
        sums=sums,
        weights=cluster_w,
        counts=counts,
        cost=float(weights @ dist2),
        far_d2=far_d2,
        far_points=far_points,
        sample_points=x[::sample_stride] if sample_stride else None,
        sample_labels=labels[::sample_stride] if sample_stride else None,
        keep=keep_far,
    )


def new_centers(
    partial: ClusterPartial, old: np.ndarray, normalize: bool = False
) -> tuple[np.ndarray, list[int]]:
    """Means of the clusters; an empty cluster takes the farthest point not already used.

    Returns the new centres and the indices of the clusters that were re-seeded.
    """
    centers = old.copy()
    filled = partial.weights > 0
    centers[filled] = partial.sums[filled] / partial.weights[filled, None]
    empty = [int(j) for j in np.flatnonzero(~filled)]
    candidates = [p for p, d in zip(partial.far_points, partial.far_d2, strict=True) if d > 0]
    for j, point in zip(empty, candidates, strict=False):
        centers[j] = point
    if normalize:
        centers = normalize_rows(centers)
    return centers, empty


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), without overflow or underflow.

    Each row is first divided by its largest absolute value, so rows of 1e200 or 1e-200 have a
    norm too (``‖x‖²`` itself would be inf or 0).
    """
    peak = np.abs(x).max(axis=1, keepdims=True) if x.size else np.zeros((len(x), 1))
    scaled = x / np.where(peak > 0, peak, 1.0)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    return scaled / np.where(norms > 0, norms, 1.0)


@dataclass
class LloydState:
    """The driver-side state of Lloyd's iterations, advanced by one merged partial at a time.

    Shared by the broadcast-per-iteration loop (on the driver) and the barrier mode (identically on
    every task), so both stop by the same rule: every centre moved less than ``tol``, or the centres
    did not change at all (``tol=0``), and no cluster had to be re-seeded.
    """

    centers: np.ndarray
    max_iter: int
    tol: float
    cosine: bool = False
    n_iter: int = 0
    converged: bool = False
    history: list = field(default_factory=list)
    reseeded: list = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.converged or self.n_iter >= self.max_iter

    def advance(self, partial: ClusterPartial) -> dict:
        """Apply one iteration's merged partial; returns that iteration's history entry."""
        updated, empty = new_centers(partial, self.centers, normalize=self.cosine)
        shift = float(np.sqrt(((updated - self.centers) ** 2).sum(axis=1)).max())
        self.n_iter += 1
        entry = {
            "iteration": self.n_iter,
            "cost": partial.cost / 2.0 if self.cosine else partial.cost,
            "shift": shift,
        }
        self.history.append(entry)
        self.reseeded += [{"iteration": self.n_iter, "cluster": j} for j in empty]
        self.centers = updated
        self.converged = not empty and (shift < self.tol or shift == 0.0)
        return {**entry, "empty": empty}
