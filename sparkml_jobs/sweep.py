"""Choosing k: fit a range of k on one cached read of the data; score a saved model.

:func:`sweep` reads and validates the data once (:func:`~sparkml_jobs.kmeans.prepare` /
:func:`~sparkml_jobs.kmeans.validate`), then fits every k on the same cached RDD with
:meth:`~sparkml_jobs.kmeans.KMeans.fit_prepared`. Each fit ends with an assignment pass that also
draws a bounded systematic sample of the rows and their clusters; the silhouette is computed on
that sample on the driver (:func:`silhouette`, plain numpy/scipy, at most
:data:`SILHOUETTE_ROWS` rows), so scoring a k costs no extra pass over the data.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from sparkml_jobs import kmeans as km
from sparkml_jobs import kmeans_kernels as kk
from sparkml_jobs.data import BlockData
from sparkml_jobs.errors import InputError
from sparkml_jobs.persist import atomic_output, dumps

log = logging.getLogger(__name__)

SILHOUETTE_ROWS = 2000
TIE_TOLERANCE = 1e-3
MAX_K = 1000
SWEEP_FILE = "sweep.json"
ELBOW_FILE = "elbow.png"


# --------------------------------------------------------------------------- pure numpy


def parse_k_range(text: str) -> list[int]:
    """``"2..20"`` (inclusive), ``"2,4,8"`` or ``"5"`` → sorted distinct k values, each ≥ 2."""
    text = text.strip()
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split("..", 1))
            ks = list(range(low, high + 1))
        else:
            ks = sorted({int(part) for part in re.split(r"\s*,\s*", text) if part})
    except ValueError:
        ks = []
    if not ks:
        raise InputError(f"--k must be a range like 2..20 or a list like 2,4,8, got {text!r}")
    if ks[0] < 2 or ks[-1] > MAX_K:
        raise InputError(
            f"--k values must lie in 2..{MAX_K} (the silhouette needs two clusters), got {text!r}"
        )
    return ks


def subsample(points: np.ndarray, labels: np.ndarray, limit: int = SILHOUETTE_ROWS):
    """At most ``limit`` evenly spaced rows of a sample (deterministic)."""
    if len(points) <= limit:
        return points, labels
    keep = np.unique(np.linspace(0, len(points) - 1, limit).round().astype(np.int64))
    return points[keep], labels[keep]


def silhouette(points: np.ndarray, labels: np.ndarray, metric: str = "euclidean") -> float:
    """Mean silhouette coefficient of ``points`` (m, d) clustered as ``labels`` (m,).

    For row i in cluster A: ``a`` = mean distance to the other rows of A, ``b`` = smallest mean
    distance to the rows of another cluster, ``s = (b − a) / max(a, b)``; a row alone in its
    cluster scores 0 (Rousseeuw 1987, as scikit-learn). Distances are exact pairwise
    (``scipy.spatial.distance.cdist``), so keep ``m`` bounded (O(m²) memory). Row weights are
    not used. NaN when there are fewer than 2 or more than ``m − 1`` distinct labels.
    """
    labels = np.asarray(labels)
    n = len(labels)
    clusters, codes = np.unique(labels, return_inverse=True)
    m = len(clusters)
    if not 2 <= m <= n - 1:
        return float("nan")
    onehot = np.zeros((n, m))
    onehot[np.arange(n), codes] = 1.0
    sums = cdist(points, points, metric=metric) @ onehot  # Σ distance to each cluster
    sizes = onehot.sum(axis=0)
    own = sizes[codes]
    rows = np.arange(n)
    a = sums[rows, codes] / np.maximum(own - 1, 1)
    means = sums / sizes
    means[rows, codes] = np.inf
    b = means.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.nan_to_num((b - a) / np.maximum(a, b))
    return float(np.where(own > 1, s, 0.0).mean())


def recommend_k(ks: list[int], silhouettes: list[float], tolerance: float = TIE_TOLERANCE) -> int:
    """The recommended k: highest sampled silhouette, ties going to the smaller k.

    Every k whose silhouette is within ``tolerance`` (absolute, default 0.001 — below the
    sampling noise of a 2000-row silhouette) of the best one counts as tied, and the smallest of
    them wins: fewer clusters that separate the data as well are the simpler answer. The cost
    always falls as k grows, so it is reported (the elbow plot) but does not pick k. When no
    silhouette is finite the smallest k is returned.
    """
    scores = np.asarray(silhouettes, dtype=float)
    finite = np.isfinite(scores)
    if not finite.any():
        return min(ks)
    best = scores[finite].max()
    tied = [k for k, s in zip(ks, scores, strict=True) if np.isfinite(s) and s >= best - tolerance]
    return min(tied)


# --------------------------------------------------------------------------- Spark


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
) -> SweepResult:
    """Fit k-means for every k in ``ks`` on one cached read of ``data`` (see module docstring)."""
    estimators = [
        km.KMeans(k=k, seed=seed, max_iter=max_iter, tol=tol, init=init, distance=distance)
        for k in ks
    ]  # all validated before any pass
    points = km.prepare(data, distance)
    costs, scores, centers, n_iter, converged, used = [], [], [], [], [], 0
    try:
        n_rows = km.validate(data, points)
        for estimator in estimators:
            model = estimator.fit_prepared(points, data, n_rows)
            score, used = sample_silhouette(model, sample_rows)
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
        params={"seed": seed, "max_iter": max_iter, "tol": tol, "init": init, "distance": distance},
    )


def evaluate(
    model: km.KMeansModel, data: BlockData, sample_rows: int = SILHOUETTE_ROWS
) -> dict[str, Any]:
    """Cost of a saved model's centres on ``data``, its cluster sizes and sampled silhouette.

    One pass: the assignment job that sums the cost also draws the silhouette sample.
    """
    if data.features != model.features:
        raise InputError(
            f"the model's features are {', '.join(model.features)}; "
            f"the data selection has {', '.join(data.features)}"
        )
    k = len(model.centers)
    points = km.prepare(data, model.distance)
    try:
        n_rows = km.validate(data, points)
        partial = km.lloyd_step(
            points.context,
            points,
            model.centers,
            k,
            kk.DEFAULT_CHUNK_ROWS,
            sample_stride=max(1, n_rows // sample_rows),
        )
    finally:
        points.unpersist()
    cost = partial.cost / 2.0 if model.distance == "cosine" else partial.cost
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


# --------------------------------------------------------------------------- output


def sweep_table(result: SweepResult) -> str:
    lines = [
        f"k-means sweep over k = {result.k[0]}..{result.k[-1]} on {result.n} rows "
        f"(silhouette on {result.silhouette_rows} sampled rows)",
        f"{'k':>5}{'cost':>16}{'silhouette':>12}{'iterations':>12}",
    ]
    for k, cost, score, iters, done in zip(
        result.k, result.cost, result.silhouette, result.n_iter, result.converged, strict=True
    ):
        mark = "  ← recommended" if k == result.recommended_k else ""
        lines.append(f"{k:>5}{cost:>16.6g}{score:>12.4f}{iters:>11}{'' if done else '*'}{mark}")
    if not all(result.converged):
        lines.append("* reached max_iter before converging")
    lines.append(f"recommended k = {result.recommended_k} (highest silhouette; ties → smaller k)")
    return "\n".join(lines)


def elbow_figure(ks: list[int], costs: list[float], silhouettes: list[float], recommended: int):
    """Cost against k (the elbow) and the sampled silhouette against k, recommended k marked."""
    from sparkml_jobs.visual import new_figure

    figure = new_figure(8.0, 3.6)
    left, right = figure.subplots(1, 2, sharex=True)
    left.plot(ks, costs, "o-", color="#1f77b4", ms=4)
    left.set_title("cost (within-cluster Σ w·d²)", fontsize=10)
    right.plot(ks, silhouettes, "o-", color="#2ca02c", ms=4)
    right.set_title("silhouette (sampled)", fontsize=10)
    for ax in (left, right):
        ax.axvline(
            recommended, color="#d62728", ls="--", lw=1.2, label=f"recommended k = {recommended}"
        )
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    right.legend(fontsize=9, frameon=False, loc="best")
    return figure


def write_sweep(
    result: SweepResult,
    path: str | Path,
    *,
    overwrite: bool = False,
    source: str = "",
    plots: bool = True,
) -> Path:
    """``sweep.json`` and, when ``plots``, ``elbow.png`` with a ``report.html``, atomically."""
    with atomic_output(path, overwrite) as tmp:
        tmp.mkdir(parents=True)
        (tmp / SWEEP_FILE).write_text(dumps(result.to_dict()))
        if plots:
            from sparkml_jobs import html_page, visual

            table = html_page.Table(
                caption="Every k",
                headers=["k", "cost", "silhouette", "iterations"],
                rows=[
                    [str(k), visual.num(c), visual.num(s, 4), str(i)]
                    for k, c, s, i in zip(
                        result.k, result.cost, result.silhouette, result.n_iter, strict=True
                    )
                ],
            )
            section = html_page.Section(
                title=f"Recommended k = {result.recommended_k}",
                image=ELBOW_FILE,
                figure=elbow_figure(result.k, result.cost, result.silhouette, result.recommended_k),
                tables=[table],
                caption="The cost falls as k grows (look for the elbow); the recommended "
                "k has the highest silhouette on a bounded sample, ties going to the "
                "smaller k.",
            )
            lines = [f"{len(result.k)} fits on {result.n:,} rows of {', '.join(result.features)}"]
            html_page.write_into(
                tmp, "k-means sweep", lines + ([f"data: {source}"] if source else []), [section]
            )
    return Path(path)
