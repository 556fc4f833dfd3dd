"""Pure numpy/scipy: the silhouette of a bounded sample, and the choice of k it recommends.

No Spark here: the sample was drawn by the final assignment pass of each fit, so scoring a k
costs no extra pass over the data.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

SILHOUETTE_ROWS = 2000
TIE_TOLERANCE = 1e-3


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
