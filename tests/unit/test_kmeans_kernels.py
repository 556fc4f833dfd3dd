"""k-means kernels on small arrays, no Spark: against brute-force numpy."""

from __future__ import annotations

from functools import reduce

import numpy as np

from sparkml_jobs.clustering import kernels as kk


def test_assign_matches_brute_force(rng):
    x = rng.normal(size=(1000, 4)) * 3 + 100  # far from the origin: the GEMM trick's weak spot
    centers = x[rng.choice(1000, 7, replace=False)]
    labels, d2 = kk.assign(x, centers, chunk_rows=128)
    brute = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, brute.argmin(1))
    np.testing.assert_allclose(d2, brute.min(1), rtol=1e-12)


def test_partials_merge_to_the_whole(rng):
    x = rng.normal(size=(600, 3))
    w = rng.uniform(0.5, 2, size=600)
    centers = x[:5]
    whole = kk.lloyd_partial(x, centers, w, keep_far=5)
    parts = [
        kk.lloyd_partial(x[s], centers, w[s], keep_far=5) for s in np.array_split(np.arange(600), 4)
    ]
    merged = reduce(kk.ClusterPartial.merge, parts, kk.ClusterPartial.zero(5, 3))
    np.testing.assert_allclose(merged.sums, whole.sums, rtol=1e-12)
    np.testing.assert_allclose(merged.weights, whole.weights, rtol=1e-12)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    np.testing.assert_allclose(merged.cost, whole.cost, rtol=1e-12)
    np.testing.assert_array_equal(merged.far_points, whole.far_points)
    labels = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    for j in range(5):
        np.testing.assert_allclose(merged.sums[j], (x[labels == j] * w[labels == j, None]).sum(0))


def test_empty_cluster_takes_farthest_point():
    x = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1], [10, 5]])
    centers = np.array([[0.0, 0.5], [10, 0.5], [100, 100]])
    partial = kk.lloyd_partial(x, centers, keep_far=3)
    updated, empty = kk.new_centers(partial, centers)
    assert empty == [2]
    np.testing.assert_array_equal(updated[2], [10, 5])  # 4.5 from its centre: the farthest
    np.testing.assert_allclose(updated[0], [0, 0.5])


def test_kmeans_plus_plus_picks_distinct_points(rng):
    points = np.repeat(np.eye(3), 5, axis=0)
    seeds = kk.kmeans_plus_plus(points, np.ones(15), 3, rng)
    assert len(np.unique(seeds, axis=0)) == 3
