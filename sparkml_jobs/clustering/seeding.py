"""Pure numpy: seeding k-means on an in-memory set (k-means++, and the Lloyd refinement of the
k-means|| candidates), and the distinct-rows check."""

from __future__ import annotations

import numpy as np

from sparkml_jobs.clustering.kernels import lloyd_partial, new_centers


def kmeans_plus_plus(
    points: np.ndarray,
    weights: np.ndarray,
    k: int,
    rng: np.random.Generator,
    n_trials: int | None = None,
) -> np.ndarray:
    """Weighted *greedy* k-means++ seeding on an in-memory array.

    Each step draws ``n_trials`` candidates with probability ∝ w·d² and keeps the one that lowers
    the cost most (as scikit-learn, default ``2 + ⌊ln k⌋`` trials); ``n_trials=1`` is the classic
    k-means++ of Arthur & Vassilvitskii.
    """
    trials = n_trials or 2 + int(np.log(k))
    first = rng.choice(len(points), p=weights / weights.sum())
    centers = [points[first]]
    d2 = np.sum((points - points[first]) ** 2, axis=1)
    for _ in range(1, k):
        mass = weights * d2
        total = mass.sum()
        if total <= 0:
            break  # every point coincides with a centre: fewer distinct points than k
        picks = rng.choice(len(points), size=trials, p=mass / total)
        options = np.minimum(d2, ((points[None, :, :] - points[picks][:, None, :]) ** 2).sum(-1))
        best = int(np.argmin(options @ weights))
        centers.append(points[picks[best]])
        d2 = options[best]
    return np.array(centers)


def local_lloyd(
    points: np.ndarray, weights: np.ndarray, centers: np.ndarray, max_iter: int = 30
) -> np.ndarray:
    """Weighted Lloyd iterations on a small in-memory set (the k-means|| candidates)."""
    for _ in range(max_iter):
        partial = lloyd_partial(points, centers, weights)
        updated, _ = new_centers(partial, centers)
        if np.array_equal(updated, centers):
            break
        centers = updated
    return centers


def distinct_rows(x: np.ndarray, limit: int) -> np.ndarray:
    """Up to ``limit`` distinct rows of ``x`` (sorted), for the k > distinct points check."""
    return np.unique(x, axis=0)[:limit]
