"""Choosing k on Spark: fit a range of k on one cached read of the data; score a saved model.

:func:`sweep` reads and validates the data once (:func:`~.lloyd.prepare` /
:func:`~.lloyd.validate`), then fits every k on the same cached RDD with
:meth:`~.estimator.KMeans.fit_prepared`. Each fit ends with an assignment pass that also
draws a bounded systematic sample of the rows and their clusters; the silhouette is computed on
that sample on the driver (:func:`silhouette`, plain numpy/scipy, at most
:data:`SILHOUETTE_ROWS` rows), so scoring a k costs no extra pass over the data.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkml_jobs.clustering import estimator as km
from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.clustering import lloyd, rescale
from sparkml_jobs.clustering.silhouette import SILHOUETTE_ROWS, recommend_k, silhouette, subsample
from sparkml_jobs.clustering.standardize import Standardizer
from sparkml_jobs.errors import InputError
from sparkml_jobs.io.dataset import BlockData

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """Cost and sampled silhouette of every k (lists aligned with ``k``)."""

    k: list[int]
    cost: list[float]
    silhouette: list[float]
    recommended_k: int
    centers: list[np.ndarray]  # the fitted centres of every k, (k, n_features) each
    n_iter: list[int]
    converged: list[bool]
    n: int
    silhouette_rows: int
    features: list[str]
    params: dict[str, Any]
    # with standardize=True: the one scaling every k was fitted under (centres stay in data units)
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sample_silhouette(
    model: km.KMeansModel, sample_rows: int = SILHOUETTE_ROWS
) -> tuple[float, int]:
    """(silhouette, rows used) on the model's bounded sample; cosine models use cosine distance."""
    if model.sample is None:
        return float("nan"), 0
    points, labels = subsample(*model.sample, sample_rows)
    metric = "cosine" if model.distance == "cosine" else "euclidean"
    if metric == "euclidean" and len(points):
        # the silhouette is invariant under translation and uniform scaling: keep the pairwise
        # distances of data far beyond 1e±30 finite
        scaling = rescale.Rescale.for_range(points.min(axis=0), points.max(axis=0))
        points = scaling.apply(points) if scaling is not None else points
    return silhouette(points, labels, metric), len(points)


def sweep(
    data: BlockData,
    ks: list[int],
    *,
    seed: int = 0,
    max_iter: int = 20,
    tol: float = 1e-4,
    init: str = "k-means||",
    distance: str = "euclidean",
    sample_rows: int = SILHOUETTE_ROWS,
    standardize: bool = False,
) -> SweepResult:
    """Fit k-means for every k in ``ks`` on one cached read of ``data`` (see module docstring).

    With ``standardize`` the scaling is computed once, in the validation pass, and every k is
    fitted on the same standardised points (as ``KMeans(standardize=True)`` would for each k):
    the centres are reported in the data's units, the costs and silhouettes in standardised ones.
    """
    estimators = [
        km.KMeans(
            k=k,
            seed=seed,
            max_iter=max_iter,
            tol=tol,
            init=init,
            distance=distance,
            standardize=standardize,
        )
        for k in ks
    ]  # all validated before any pass
    points = lloyd.prepare(data, distance)
    costs, scores, centers, n_iter, converged, used = [], [], [], [], [], 0
    scaler = None
    try:
        points, n_rows, scaling, scaler = _prepared(points, data, distance, standardize)
        for estimator in estimators:
            model = estimator.fit_prepared(points, data, n_rows, scaling, scaler)
            score, used = sample_silhouette(_standardized_sample(model), sample_rows)
            costs.append(model.summary.cost)
            centers.append(model.centers)
            scores.append(score)
            n_iter.append(model.summary.n_iter)
            converged.append(model.summary.converged)
            log.info(
                "k=%d: cost %.6g silhouette %.4f (%d iterations%s)",
                estimator.k,
                model.summary.cost,
                score,
                model.summary.n_iter,
                "" if model.summary.converged else ", not converged",
            )
    finally:
        points.unpersist()
    return SweepResult(
        k=list(ks),
        cost=costs,
        silhouette=scores,
        recommended_k=recommend_k(ks, scores),
        centers=centers,
        n_iter=n_iter,
        converged=converged,
        n=n_rows,
        silhouette_rows=used,
        features=list(data.features),
        params={
            "seed": seed,
            "max_iter": max_iter,
            "tol": tol,
            "init": init,
            "distance": distance,
            "standardize": standardize,
        },
        mean=None if scaler is None else scaler.mean,
        scale=None if scaler is None else scaler.scale,
    )


def _prepared(points, data: BlockData, distance: str, standardize: bool):
    """(points, rows, rescaling, standardizer): the cached points validated, then standardised
    (one scaling for every k, from the validation pass's moments) or rescaled if need be."""
    if standardize:
        counts, moments = lloyd.validate(data, points, moments=True)
        p = data.n_features
        scaler = Standardizer.from_moments(moments, data.features, counts.lo[:p], counts.hi[:p])
        log.info("standardised features: mean %s, scale %s", scaler.mean, scaler.scale)
        return lloyd.standardize(points, scaler), counts.rows, None, scaler
    counts = lloyd.validate(data, points)
    points, scaling = lloyd.rescale(points, data, counts, distance)
    return points, counts.rows, scaling, None


def _standardized_sample(model: km.KMeansModel) -> km.KMeansModel:
    """``model`` with its sample in the standardised units its fit minimised (the silhouette's
    units, as :func:`evaluate` scores a standardised model)."""
    scaler = model.standardizer
    if scaler is None or model.sample is None or model.sample[0] is None:
        return model
    return dataclasses.replace(model, sample=(scaler.apply(model.sample[0]), model.sample[1]))


def evaluate(
    model: km.KMeansModel, data: BlockData, sample_rows: int = SILHOUETTE_ROWS
) -> dict[str, Any]:
    """Cost of a saved model's centres on ``data``, its cluster sizes and sampled silhouette.

    One pass: the assignment job that sums the cost also draws the silhouette sample. For a
    standardised model the cost and silhouette are in its standardised units (its saved scaling).
    """
    if data.features != model.features:
        raise InputError(
            f"the model's features are {', '.join(model.features)}; "
            f"the data selection has {', '.join(data.features)}"
        )
    k = len(model.centers)
    points = lloyd.prepare(data, model.distance)
    try:
        counts = lloyd.validate(data, points)
        n_rows = counts.rows
        scaler = model.standardizer
        if scaler is not None:  # the model's own scaling (not this data's): standardised units
            points = lloyd.standardize(points, scaler)
            counts = dataclasses.replace(counts, lo=None)  # rescale() steps aside
        elif model.distance == "euclidean":  # the centres' range counts as much as the data's
            p = len(model.features)
            counts.lo[:p] = np.minimum(counts.lo[:p], model.centers.min(axis=0))
            counts.hi[:p] = np.maximum(counts.hi[:p], model.centers.max(axis=0))
        points, scaling = lloyd.rescale(points, data, counts, model.distance)
        centers = scaling.apply(model.centers) if scaling is not None else model.centers
        centers = scaler.apply(centers) if scaler is not None else centers
        partial = lloyd.lloyd_step(
            points,
            centers,
            k,
            kk.DEFAULT_CHUNK_ROWS,
            sample_stride=max(1, n_rows // sample_rows),
        )
    finally:
        points.unpersist()
    cost = partial.cost / 2.0 if model.distance == "cosine" else partial.cost
    cost = km.checked_cost(cost, scaling, model.features)
    if scaling is not None and partial.sample_points is not None:
        partial = dataclasses.replace(
            partial, sample_points=scaling.points_out(partial.sample_points)
        )
    scored = km.KMeansModel(
        features=model.features,
        centers=model.centers,
        params=model.params,
        sample=(partial.sample_points, partial.sample_labels),
    )
    score, used = sample_silhouette(scored, sample_rows)
    return {
        "n": n_rows,
        "k": k,
        "cost": cost,
        "cost_per_row": cost / n_rows,
        "cluster_sizes": [int(c) for c in partial.counts],
        "silhouette": score,
        "silhouette_rows": used,
    }
