"""The k-means estimator and model: parameters validated up front, then orchestration only.

``KMeans.fit`` caches the points (:func:`~.lloyd.prepare`), validates them in the load pass
(:func:`~.lloyd.validate`), initialises (:mod:`~.init`) and hands the iterations to one of the two
:data:`~.lloyd.RUNNERS` (broadcast per iteration, or one barrier stage). The maths every executor
runs is in :mod:`~.kernels`; the model's JSON schema is in :mod:`sparkml_jobs.io.models`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparkml_jobs.clustering import init, lloyd, rescale
from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.clustering.standardize import Standardizer
from sparkml_jobs.errors import InputError
from sparkml_jobs.io.dataset import BlockData
from sparkml_jobs.io.score import score_frame

log = logging.getLogger(__name__)

INITS = ("k-means||", "k-means++", "random")
SAMPLE_ROWS = 2000
DISTANCES = ("euclidean", "cosine")
MODES = ("auto", *lloyd.RUNNERS)


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
    mode: str = ""  # the iteration path that ran: "broadcast" or "barrier"
    mode_reason: str = ""  # why (``mode="auto"``) or "requested"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, kw_only=True)
class KMeansModel:
    """Fitted centres; ``predict`` gives the nearest centre and the distance to it.

    ``centers`` are always in the data's units. A model fitted with ``standardize=True`` also
    holds the training data's weighted ``mean`` and standard deviation ``scale`` per feature:
    rows and centres are then compared as ``(x − mean) / scale``, and the distance ``predict``
    reports (like the summary's cost and shifts) is measured in those standardised units.
    """

    features: list[str]
    centers: np.ndarray  # (k, n_features), in the data's units
    params: dict[str, Any]
    summary: KMeansSummary | None = None
    # a bounded sample of the training points and their clusters, for plots (not saved)
    sample: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    mean: np.ndarray | None = None  # (n_features,) with standardize=True
    scale: np.ndarray | None = None  # (n_features,) with standardize=True

    @property
    def distance(self) -> str:
        return self.params.get("distance", "euclidean")

    @property
    def standardizer(self) -> Standardizer | None:
        """The training data's scaling (``None`` for a model fitted without ``standardize``)."""
        if self.mean is None or self.scale is None:
            return None
        return Standardizer(mean=self.mean, scale=self.scale)

    def predict_array(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cluster, distance) per row: Euclidean distance, or ``1 − cos`` for cosine.

        With a standardised model the rows and the centres are first mapped to
        ``(x − mean) / scale`` and the distance is the Euclidean distance there (standardised
        units, what the fit minimised). Rows far beyond 1e±30 are assigned on rescaled
        coordinates (:class:`~.kernels.Rescale`), so ``‖x‖²`` cannot overflow; a row with a NaN
        gets a NaN distance (the loader refuses those before scoring).
        """
        scaler = self.standardizer
        if scaler is not None:
            plain = KMeansModel(
                features=self.features, centers=scaler.apply(self.centers), params=self.params
            )
            return plain.predict_array(scaler.apply(x))
        if self.distance == "cosine":
            labels, d2 = kk.assign(kk.normalize_rows(x), self.centers)
            return labels, d2 / 2.0
        both = np.vstack([x, self.centers])
        with np.errstate(invalid="ignore"):
            finite = np.where(np.isfinite(both), both, 0.0)
        scaling = rescale.Rescale.for_range(finite.min(axis=0), finite.max(axis=0))
        if scaling is None:
            labels, d2 = kk.assign(x, self.centers)
            return labels, np.sqrt(d2)
        labels, d2 = kk.assign(scaling.apply(x), scaling.apply(self.centers))
        with np.errstate(over="ignore"):
            return labels, np.ldexp(np.sqrt(d2), scaling.exponent)

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
    mode : {"auto", "broadcast", "barrier"}
        ``auto`` (default): ``barrier`` when its stage can get all its task slots (no dynamic
        allocation, enough free slots, bounded exchange), else ``broadcast``; the choice and its
        reason are logged and recorded in the summary (``mode``, ``mode_reason``).
        ``broadcast``: one Spark job per iteration with a fresh broadcast of the centres.
        ``barrier``: every iteration inside one barrier stage — each task keeps its rows in
        memory and the tasks exchange their per-cluster partials with ``allGather`` (the
        all-reduce pattern); needs as many free task slots as tasks (the cached data is
        spread over that many partitions) and gives the same model, bit for bit.
    chunk_rows : int, optional
        Rows per distance block; by default chosen from k and d so that one block stays within
        32 MB (:func:`~.kernels.chunk_rows_for`).
    checkpoint_dir : str, optional
        Checkpoint the cached points there (reliable storage on a cluster), so recovering a lost
        block does not go back to the input files.
    standardize : bool
        Cluster ``(x − mean) / std`` per feature, with the weighted mean and population
        (``ddof=0``) weighted standard deviation of the training data — scikit-learn's
        ``StandardScaler`` with ``sample_weight`` — computed in the load pass (no extra read).
        The model saves ``mean`` and ``scale``; its centres are in the data's units, while the
        cost, the shifts, ``tol`` and the predicted distances are in standardised units.
        ``initial_centers`` are given in the data's units. A constant column is refused.
        Euclidean distance only.
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
    chunk_rows: int | None = None
    mode: str = "auto"
    checkpoint_dir: str | None = None
    standardize: bool = False

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
            (
                not (self.standardize and self.distance == "cosine"),
                "--standardize applies to the euclidean distance only (cosine compares directions)",
            ),
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
        points = lloyd.prepare(data, self.distance)
        if self.checkpoint_dir:
            # cut the lineage back to the source: a lost cached block is re-read from the
            # checkpoint instead of recomputed from the input files
            points.context.setCheckpointDir(self.checkpoint_dir)
            points.checkpoint()
        try:
            if self.standardize:
                counts, moments = lloyd.validate(data, points, moments=True)
                p = data.n_features
                scaler = Standardizer.from_moments(
                    moments, data.features, counts.lo[:p], counts.hi[:p]
                )
                log.info("standardised features: mean %s, scale %s", scaler.mean, scaler.scale)
                points = lloyd.standardize(points, scaler)
                return self.fit_prepared(points, data, counts.rows, scaler=scaler)
            counts = lloyd.validate(data, points)
            points, scaling = lloyd.rescale(points, data, counts, self.distance)
            return self.fit_prepared(points, data, counts.rows, scaling)
        finally:
            points.unpersist()

    def fit_prepared(
        self,
        points,
        data: BlockData,
        n_rows: int,
        scaling: rescale.Rescale | None = None,
        scaler: Standardizer | None = None,
    ) -> KMeansModel:
        """Fit on the cached points of :func:`prepare`, checked by :func:`validate` and rescaled
        by :func:`~.lloyd.rescale` (``scaling``, or ``None`` if they were not) or standardised
        by :func:`~.lloyd.standardize` (``scaler``).

        Lets several fits share one read of the data (the k sweep); the caller unpersists.
        """
        mode, reason = self.mode, "requested"
        if mode == "auto":
            mode, reason = lloyd.choose_mode(
                points.context, points.getNumPartitions(), self.k, len(data.features)
            )
        log.info("k-means iterations in %s mode: %s", mode, reason)
        runs = [
            self._fit_once(
                points, data.features, n_rows, self.seed + i, scaling, (mode, reason), scaler
            )
            for i in range(self.n_init)
        ]
        centers, summary, sample = min(runs, key=lambda run: run[1].cost)
        if scaling is not None:
            centers = scaling.points_out(centers)
            if sample[0] is not None:
                sample = (scaling.points_out(sample[0]), sample[1])
        if scaler is not None:  # reported in the data's units; the fit ran on standardised ones
            centers = scaler.points_out(centers)
            if sample[0] is not None:
                sample = (scaler.points_out(sample[0]), sample[1])
        return KMeansModel(
            features=data.features,
            centers=centers,
            params=self.params(),
            summary=summary,
            sample=sample,
            mean=None if scaler is None else scaler.mean,
            scale=None if scaler is None else scaler.scale,
        )

    def _fit_once(
        self,
        points,
        features: list[str],
        n_rows: int,
        seed: int,
        scaling: rescale.Rescale | None,
        mode: tuple[str, str],
        scaler: Standardizer | None = None,
    ):
        """One run from one initialisation: (centres, summary, (sample points, labels)), the
        centres and sample still in the rescaled coordinates, the summary in the data's units."""
        cosine = self.distance == "cosine"
        d, tol = len(features), self.tol
        if self.initial_centers is not None:
            centers = np.array(self.initial_centers, dtype=np.float64)
            centers = kk.normalize_rows(centers) if cosine else centers
            centers = scaling.apply(centers) if scaling is not None else centers
            centers = scaler.apply(centers) if scaler is not None else centers
        else:
            centers = init.initialise(points, self.k, d, self.init, seed, self.init_steps)
            centers = init.ensure_distinct(points, centers, self.k)
        if scaling is not None:
            tol = scaling.length_in(tol)
        state = kk.LloydState(centers=centers, max_iter=self.max_iter, tol=tol, cosine=cosine)
        stride = max(1, n_rows // SAMPLE_ROWS)
        final = lloyd.RUNNERS[mode[0]](points, state, self.k, self.chunk_rows, stride)
        history = [
            {
                **entry,
                "cost": checked_cost(entry["cost"], scaling, features),
                "shift": scaling.length_out(entry["shift"]) if scaling else entry["shift"],
            }
            for entry in state.history
        ]
        summary = KMeansSummary(
            cost=checked_cost(final.cost / 2.0 if cosine else final.cost, scaling, features),
            cluster_sizes=[int(c) for c in final.counts],
            n_iter=state.n_iter,
            converged=state.converged,
            history=history,
            reseeded=state.reseeded,
            n=n_rows,
            init="given" if self.initial_centers is not None else self.init,
            mode=mode[0],
            mode_reason=mode[1],
        )
        return state.centers, summary, (final.sample_points, final.sample_labels)


def checked_cost(cost: float, scaling: rescale.Rescale | None, features: list[str]) -> float:
    """A k-means cost in the data's units, or an :class:`InputError` naming the column with the
    largest values when float64 cannot hold it (see :func:`~.kernels.unscaled_cost`)."""
    out = rescale.unscaled_cost(cost, scaling)
    if out is not None:
        return out
    if scaling is None:  # not reachable for data within 1e±30; said plainly if it ever is
        raise InputError(f"the k-means cost is not a finite number ({cost}); rescale the features")
    j = int(np.argmax(scaling.peak))
    name = f"column '{features[j]}'"
    peak = scaling.peak
    if scaling.exponent < 0:
        raise InputError(
            f"{name}: values as small as {peak[j]:.3g} make the k-means cost (a sum of squared "
            "distances) underflow float64; rescale the column(s)"
        )
    raise InputError(
        f"{name}: values up to {peak[j]:.3g} make the k-means cost (a sum of squared distances) "
        "overflow float64; rescale the column(s)"
    )
