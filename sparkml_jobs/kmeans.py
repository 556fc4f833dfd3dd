"""k-means as iterative map/reduce over one cached RDD of blocks, centres carried by broadcasts.

Each Lloyd iteration is one Spark job: broadcast the centres, every partition assigns its points
(:func:`~sparkml_jobs.kmeans_kernels.lloyd_partial`) and emits per-cluster sums, counts and cost,
the partials are tree-merged in partition order, the driver computes the new centres and destroys
the old broadcast. The data RDD is never re-derived, so lineage stays flat however many iterations
run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparkml_jobs import kmeans_kernels as kk
from sparkml_jobs import progress
from sparkml_jobs.aggregate import tree_aggregate
from sparkml_jobs.data import Block, BlockData, Counts, score_frame
from sparkml_jobs.errors import InputError

log = logging.getLogger(__name__)

INITS = ("k-means||", "k-means++", "random")
SAMPLE_ROWS = 2000
DISTANCES = ("euclidean", "cosine")
MODES = ("broadcast", "barrier")
KIND = "kmeans"


@dataclass(frozen=True, kw_only=True)
class KMeansSummary:
    cost: float
    cluster_sizes: list[int]
    n_iter: int
    converged: bool
    history: list[dict[str, float]]
    reseeded: list[dict[str, int]] = field(default_factory=list)
    n: int = 0
    init: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, kw_only=True)
class KMeansModel:
    """Fitted centres; ``predict`` gives the nearest centre and the distance to it."""

    features: list[str]
    centers: np.ndarray  # (k, n_features)
    params: dict[str, Any]
    summary: KMeansSummary | None = None
    # a bounded sample of the training points and their clusters, for plots (not saved)
    sample: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def distance(self) -> str:
        return self.params.get("distance", "euclidean")

    def predict_array(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cluster, distance) per row: Euclidean distance, or ``1 − cos`` for cosine."""
        if self.distance == "cosine":
            labels, d2 = kk.assign(kk.normalize_rows(x), self.centers)
            return labels, d2 / 2.0
        labels, d2 = kk.assign(x, self.centers)
        return labels, np.sqrt(d2)

    def predict(self, frame: DataFrame) -> DataFrame:
        """All columns of ``frame`` plus ``cluster`` (int) and ``distance``, row order kept."""

        def score(x: np.ndarray) -> dict[str, np.ndarray]:
            labels, dist = self.predict_array(x)
            return {"cluster": labels.astype(np.int32), "distance": dist}

        out = T.StructType(
            [T.StructField("cluster", T.IntegerType()), T.StructField("distance", T.DoubleType())]
        )
        return score_frame(frame, self.features, score, out)


@dataclass(frozen=True, kw_only=True)
class KMeans:
    """Lloyd's k-means on a :class:`BlockData` (numpy on the executors, Spark for the wiring).

    Parameters
    ----------
    k : int
        Number of clusters.
    init : {"k-means||", "k-means++", "random"}
        Initialisation, ignored when ``initial_centers`` is given.
    initial_centers : ndarray of shape (k, n_features), optional
        Explicit starting centres.
    max_iter : int
        Maximum number of Lloyd iterations (default 20, as MLlib).
    tol : float
        Stop when every centre moved less than ``tol`` (Euclidean); with ``tol=0`` stop only when
        the centres no longer change (the assignment is stable) or at ``max_iter``.
    seed : int
        Seeds every random choice; executor-side draws use (seed, partition, round).
    distance : {"euclidean", "cosine"}
    n_init : int
        Number of runs with seeds ``seed, seed+1, …`` on the same cached data; the best is kept.
    init_steps : int
        Rounds of k-means|| oversampling (2, as MLlib).
    mode : {"broadcast", "barrier"}
        ``broadcast``: one Spark job per iteration with a fresh broadcast of the centres.
        ``barrier``: every iteration inside one barrier stage — each task keeps its rows in
        memory and the tasks exchange their per-cluster partials with ``allGather`` (the
        all-reduce pattern); needs as many free task slots as tasks (the cached data is
        spread over that many partitions) and gives the same result.
    checkpoint_dir : str, optional
        Checkpoint the cached points there (reliable storage on a cluster), so recovering a lost
        block does not go back to the input files.
    """

    k: int = 2
    init: str = "k-means||"
    initial_centers: np.ndarray | None = None
    max_iter: int = 20
    tol: float = 1e-4
    seed: int = 0
    distance: str = "euclidean"
    n_init: int = 1
    init_steps: int = 2
    chunk_rows: int = kk.DEFAULT_CHUNK_ROWS
    mode: str = "broadcast"
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.k, int) and self.k >= 1, f"k must be an integer >= 1, got {self.k!r}"),
            (
                self.init in INITS,
                f"init must be one of {', '.join(INITS)} or a file, got {self.init!r}",
            ),
            (self.max_iter >= 1, f"max_iter must be >= 1, got {self.max_iter!r}"),
            (self.tol >= 0, f"tol must be >= 0, got {self.tol!r}"),
            (
                self.distance in DISTANCES,
                f"distance must be one of {DISTANCES}, got {self.distance!r}",
            ),
            (self.n_init >= 1, f"n_init must be >= 1, got {self.n_init!r}"),
            (self.init_steps >= 1, f"init_steps must be >= 1, got {self.init_steps!r}"),
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {self.mode!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        if self.initial_centers is not None:
            centers = np.asarray(self.initial_centers, dtype=np.float64)
            if centers.ndim != 2 or len(centers) != self.k or not np.isfinite(centers).all():
                raise InputError(
                    f"initial centres must be {self.k} finite rows, got shape {centers.shape}"
                )

    def params(self) -> dict[str, Any]:
        params = {k: v for k, v in self.__dict__.items() if k != "initial_centers"}
        params["init"] = "given" if self.initial_centers is not None else self.init
        return params

    # ------------------------------------------------------------------ fit

    def fit(self, data: BlockData) -> KMeansModel:
        """Run k-means on ``data`` (cached for the duration of the fit)."""
        d = data.n_features
        if self.initial_centers is not None and np.shape(self.initial_centers)[1] != d:
            raise InputError(
                f"initial centres have {np.shape(self.initial_centers)[1]} columns, "
                f"the data has {d} features ({', '.join(data.features)})"
            )
        points = prepare(data, self.distance)
        if self.checkpoint_dir:
            # cut the lineage back to the source: a lost cached block is re-read from the
            # checkpoint instead of recomputed from the input files
            points.context.setCheckpointDir(self.checkpoint_dir)
            points.checkpoint()
        try:
            return self.fit_prepared(points, data, validate(data, points))
        finally:
            points.unpersist()

    def fit_prepared(self, points, data: BlockData, n_rows: int) -> KMeansModel:
        """Fit on the cached points of :func:`prepare`, already checked by :func:`validate`.

        Lets several fits share one read of the data (the k sweep); the caller unpersists.
        """
        runs = [
            self._fit_once(points, data.n_features, n_rows, self.seed + i)
            for i in range(self.n_init)
        ]
        centers, summary, sample = min(runs, key=lambda run: run[1].cost)
        return KMeansModel(
            features=data.features,
            centers=centers,
            params=self.params(),
            summary=summary,
            sample=sample,
        )

    def _fit_once(self, points, d: int, n_rows: int, seed: int):
        """One run from one initialisation: (centres, summary, (sample points, labels))."""
        sc = points.context
        cosine = self.distance == "cosine"
        if self.initial_centers is not None:
            centers = np.array(self.initial_centers, dtype=np.float64)
            centers = kk.normalize_rows(centers) if cosine else centers
        else:
            centers = initialise(points, self.k, d, self.init, seed, self.init_steps)
            centers = ensure_distinct(points, centers, self.k)
        state = kk.LloydState(centers=centers, max_iter=self.max_iter, tol=self.tol, cosine=cosine)
        stride = max(1, n_rows // SAMPLE_ROWS)
        if self.mode == "barrier":
            from sparkml_jobs.kmeans_barrier import run_barrier

            final = run_barrier(points, state, self.k, self.chunk_rows, stride)
            for entry in state.history:
                log.info(
                    "iteration %d: cost %.6g shift %.3g (barrier mode)",
                    entry["iteration"],
                    entry["cost"],
                    entry["shift"],
                )
        else:
            started = time.perf_counter()
            while not state.done:
                entry = state.advance(
                    lloyd_step(sc, points, state.centers, self.k, self.chunk_rows)
                )
                elapsed = time.perf_counter() - started
                empty = entry["empty"]
                log.info(
                    "iteration %d: cost %.6g shift %.3g%s (%.1fs)",
                    entry["iteration"],
                    entry["cost"],
                    entry["shift"],
                    f" reseeded {empty}" if empty else "",
                    elapsed,
                    extra=progress.fields(
                        entry["iteration"],
                        self.max_iter,
                        label=f"k-means k={self.k}",
                        elapsed=elapsed,
                        cost=entry["cost"],
                        shift=entry["shift"],
                    ),
                )
            final = lloyd_step(
                sc, points, state.centers, self.k, self.chunk_rows, sample_stride=stride
            )
        centers, n_iter, converged = state.centers, state.n_iter, state.converged
        history, reseeded = state.history, state.reseeded
        summary = KMeansSummary(
            cost=final.cost / 2.0 if cosine else final.cost,
            cluster_sizes=[int(c) for c in final.counts],
            n_iter=n_iter,
            converged=converged,
            history=history,
            reseeded=reseeded,
            n=n_rows,
            init="given" if self.initial_centers is not None else self.init,
        )
        return centers, summary, (final.sample_points, final.sample_labels)


# ---------------------------------------------------------------------- Spark wiring


def prepare(data: BlockData, distance: str):
    """The cached RDD of (x, w) pairs the iterations read: features only, normalised for cosine."""
    p = data.n_features
    weight_index = data.weight_index
    cosine = distance == "cosine"

    def to_points(block: Block):
        values = block.values
        x = np.ascontiguousarray(values[:, :p])
        if cosine:
            x = kk.normalize_rows(x)
        w = np.ascontiguousarray(values[:, weight_index]) if weight_index is not None else None
        counts = Counts.of_block(block, weight_index)
        zero_norm = int((np.linalg.norm(values[:, :p], axis=1) == 0).sum()) if cosine else 0
        return x, w, counts, zero_norm

    points = data.blocks.map(to_points)
    if data.blocks.is_cached and not cosine:
        return points  # the caller's cache already holds the rows: no second copy
    return points.persist()


def validate(data: BlockData, points) -> int:
    """The load pass: materialises the cache and checks the validation counts it carries."""
    zero = (Counts.zero(len(data.columns)), 0)
    counts, zero_norm = tree_aggregate(
        points,
        zero,
        lambda acc, item: (acc[0].merge(item[2]), acc[1] + item[3]),
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
    return counts.rows


def lloyd_step(
    sc, points, centers: np.ndarray, k: int, chunk_rows: int, sample_stride: int = 0
) -> kk.ClusterPartial:
    """One Lloyd iteration = one Spark job with a fresh broadcast (destroyed when done)."""
    broadcast = sc.broadcast(centers)
    d = centers.shape[1]

    def add(acc: kk.ClusterPartial, item) -> kk.ClusterPartial:
        x, w = item[0], item[1]
        part = kk.lloyd_partial(
            x, broadcast.value, w, keep_far=k, chunk_rows=chunk_rows, sample_stride=sample_stride
        )
        return acc.merge(part)

    try:
        return tree_aggregate(points, kk.ClusterPartial.zero(k, d), add, kk.ClusterPartial.merge)
    finally:
        broadcast.destroy()


def _rng(seed: int, partition: int, round_: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, partition, round_])


def sample_uniform(points, count: int, seed: int, round_: int) -> np.ndarray:
    """``count`` rows drawn with probability ∝ weight, without replacement, deterministically.

    Each row gets the key ``u^(1/w)`` from a generator seeded by (seed, partition, round); the rows
    with the largest keys win (Efraimidis–Spirakis).
    """

    def draw(index: int, items):
        rng = _rng(seed, index, round_)
        best_keys, best_rows = np.zeros(0), None
        for x, w, *_ in items:
            u = rng.random(len(x))
            keys = np.log(u) / (np.ones(len(x)) if w is None else np.where(w > 0, w, np.nan))
            keys = np.nan_to_num(keys, nan=-np.inf)
            rows = x if best_rows is None else np.vstack([best_rows, x])
            keys = np.concatenate([best_keys, keys])
            top = np.argsort(-keys, kind="stable")[:count]
            best_keys, best_rows = keys[top], rows[top]
        return [(best_keys, best_rows)] if best_rows is not None else []

    drawn = points.mapPartitionsWithIndex(draw).collect()
    keys = np.concatenate([k for k, _ in drawn])
    rows = np.vstack([r for _, r in drawn])
    return rows[np.argsort(-keys, kind="stable")[:count]]


def cost_to(sc, points, centers: np.ndarray) -> float:
    """Σ w · min_c ‖x − c‖² over the data (one job)."""
    broadcast = sc.broadcast(centers)

    def add(acc: float, item) -> float:
        x, w = item[0], item[1]
        _, d2 = kk.assign(x, broadcast.value)
        return acc + float(d2.sum() if w is None else w @ d2)

    try:
        return tree_aggregate(points, 0.0, add, lambda a, b: a + b)
    finally:
        broadcast.destroy()


def sample_by_cost(
    points, centers: np.ndarray, factor: float, total: float, seed: int, round_: int
):
    """k-means|| oversampling: keep each row with probability min(1, factor · w·d² / total)."""
    sc = points.context
    broadcast = sc.broadcast(centers)

    def draw(index: int, items):
        rng = _rng(seed, index, round_)
        chosen = []
        for x, w, *_ in items:
            _, d2 = kk.assign(x, broadcast.value)
            mass = d2 if w is None else w * d2
            chosen.append(x[rng.random(len(x)) < factor * mass / total])
        return chosen

    try:
        picked = [c for c in points.mapPartitionsWithIndex(draw).collect() if len(c)]
    finally:
        broadcast.destroy()
    return np.vstack(picked) if picked else np.zeros((0, centers.shape[1]))


def candidate_weights(points, candidates: np.ndarray) -> np.ndarray:
    """Weight of every candidate = total weight of the rows closest to it (one job)."""
    sc = points.context
    broadcast = sc.broadcast(candidates)
    m = len(candidates)

    def add(acc: np.ndarray, item) -> np.ndarray:
        x, w = item[0], item[1]
        labels, _ = kk.assign(x, broadcast.value)
        return acc + np.bincount(labels, weights=w, minlength=m)

    try:
        return tree_aggregate(points, np.zeros(m), add, lambda a, b: a + b)
    finally:
        broadcast.destroy()


def initialise(points, k: int, d: int, method: str, seed: int, init_steps: int) -> np.ndarray:
    """Initial centres by ``random``, ``k-means++`` (k passes) or ``k-means||`` (Bahmani et al.)."""
    sc = points.context
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 1_000_003])
    if method == "random":
        return sample_uniform(points, k, seed, 0)
    centers = sample_uniform(points, 1, seed, 0)
    if method == "k-means++":
        for step in range(1, k):
            total = cost_to(sc, points, centers)
            if total <= 0:
                break
            nxt = sample_proportional(points, centers, seed, step)
            centers = np.vstack([centers, nxt])
        return centers
    for step in range(1, init_steps + 1):
        total = cost_to(sc, points, centers)
        if total <= 0:
            break
        picked = sample_by_cost(points, centers, 2.0 * k, total, seed, step)
        centers = np.unique(np.vstack([centers, picked]), axis=0)
    log.info("k-means||: %d candidates after %d rounds", len(centers), init_steps)
    if len(centers) <= k:
        return centers
    weights = candidate_weights(points, centers)
    seeds = kk.kmeans_plus_plus(centers, weights, k, rng)
    return kk.local_lloyd(centers, weights, seeds)


def sample_proportional(points, centers: np.ndarray, seed: int, round_: int) -> np.ndarray:
    """One row drawn with probability ∝ w · d²(x, centres) (exponential keys; deterministic)."""
    sc = points.context
    broadcast = sc.broadcast(centers)

    def draw(index: int, items):
        rng = _rng(seed, index, round_)
        best = (-np.inf, None)
        for x, w, *_ in items:
            _, d2 = kk.assign(x, broadcast.value)
            mass = d2 if w is None else w * d2
            with np.errstate(divide="ignore"):
                keys = np.log(rng.random(len(x))) / mass
            keys = np.where(mass > 0, keys, -np.inf)
            i = int(np.argmax(keys))
            if keys[i] > best[0]:
                best = (float(keys[i]), x[i])
        return [best] if best[1] is not None else []

    try:
        drawn = points.mapPartitionsWithIndex(draw).collect()
    finally:
        broadcast.destroy()
    return max(drawn, key=lambda pair: pair[0])[1][None, :]


def ensure_distinct(points, centers: np.ndarray, k: int) -> np.ndarray:
    """k distinct starting centres, or an input error if the data has fewer distinct points.

    Only when the initialisation found fewer than k distinct centres is the data scanned for
    up to k distinct rows, which then complete the set.
    """
    unique = np.unique(centers, axis=0)
    if len(unique) >= k and len(centers) == k:
        return centers
    found = tree_aggregate(
        points,
        np.zeros((0, centers.shape[1])),
        lambda acc, item: kk.distinct_rows(np.vstack([acc, item[0]]), k),
        lambda a, b: kk.distinct_rows(np.vstack([a, b]), k),
    )
    if len(found) < k:
        raise InputError(f"k={k} is greater than the number of distinct points ({len(found)})")
    extra = [row for row in found if not (row == unique).all(axis=1).any()]
    return np.vstack([unique, *extra])[:k] if extra else unique[:k]


# ---------------------------------------------------------------------- persistence


def save_model(model: KMeansModel, path: str, overwrite: bool = False) -> None:
    """Directory with ``model.json`` (centres inline, and as ``centers.npy``) and ``_SUCCESS``."""
    from sparkml_jobs import persist

    document = {
        "kind": KIND,
        "features": model.features,
        "centers": model.centers,
        "params": model.params,
        "summary": model.summary.to_dict() if model.summary else None,
    }
    persist.write_model_dir(path, document, {"centers": model.centers}, overwrite)


def load_model(path: str) -> KMeansModel:
    """Load a saved model without Spark; a tampered or inconsistent file is rejected."""
    from sparkml_jobs import persist

    doc, where = persist.read_model_dir(path, KIND)
    features = persist.string_list(doc.get("features"), where, "features")
    rows = doc.get("centers")
    persist.require(
        isinstance(rows, list) and len(rows) >= 1, where, "'centers' must be a list of rows"
    )
    for row in rows:
        persist.float_list(row, len(features), where, "centers")
    centers = np.array(rows, dtype=np.float64)
    if (where / "centers.npy").exists():
        stored = persist.load_array(where, "centers", centers.shape)
        persist.require(np.array_equal(stored, centers), where, "'centers' differ from centers.npy")
    params = doc.get("params")
    persist.require(isinstance(params, dict), where, "'params' must be an object")
    persist.require(params.get("k") == len(centers), where, "'params.k' does not match the centres")
    persist.require(
        params.get("distance", "euclidean") in DISTANCES, where, "unknown 'params.distance'"
    )
    summary = None
    if isinstance(doc.get("summary"), dict):
        try:
            summary = KMeansSummary(**doc["summary"])
        except TypeError as exc:
            raise InputError(f"{where / persist.MODEL_FILE}: invalid 'summary': {exc}") from exc
    return KMeansModel(features=features, centers=centers, params=params, summary=summary)
