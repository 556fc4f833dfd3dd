"""k-means on a real local Spark, against an independent numpy Lloyd and scikit-learn."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality
from sklearn.cluster import KMeans as SKMeans

from sparkml_jobs.clustering import estimator as K
from sparkml_jobs.clustering import lloyd
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import dataset as D
from sparkml_jobs.io import read
from tests.conftest import DATA, peak_rss_mb, reset_peak_rss


def reference_lloyd(x, centers, max_iter, tol=0.0):
    """Plain numpy Lloyd: brute-force distances; an empty cluster takes the point farthest from
    its centre (distinct points, ties by coordinates), as the job documents."""
    centers = centers.astype(float).copy()
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
        labels = d2.argmin(1)
        own = d2[np.arange(len(x)), labels]
        new = centers.copy()
        order = sorted(range(len(x)), key=lambda i: (-own[i], *x[i]))
        far, seen = [], set()
        for i in order:
            if own[i] > 0 and tuple(x[i]) not in seen:
                seen.add(tuple(x[i]))
                far.append(x[i])
        empty = [j for j in range(len(centers)) if not (labels == j).any()]
        for j in range(len(centers)):
            if (labels == j).any():
                new[j] = x[labels == j].mean(0)
        for j, point in zip(empty, far, strict=False):
            new[j] = point
        shift = np.sqrt(((new - centers) ** 2).sum(1)).max()
        centers = new
        if not empty and (shift < tol or shift == 0):
            break
    d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    return centers, d2.argmin(1), d2.min(1).sum(), n_iter


def _blobs(rng, k=4, per=250, d=3, spread=1.0, scale=8.0):
    true = rng.normal(size=(k, d)) * scale
    x = np.vstack([c + rng.normal(size=(per, d)) * spread for c in true])
    return x[rng.permutation(len(x))], true


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_matches_reference_lloyd(spark, rng, partitions):
    x, _ = _blobs(rng, spread=3.0)
    init = x[:4].copy()
    model = K.KMeans(k=4, initial_centers=init, max_iter=50, tol=0).fit(
        D.from_numpy(spark, x, num_partitions=partitions, blocks_per_partition=2)
    )
    centers, labels, cost, n_iter = reference_lloyd(x, init, 50)
    np.testing.assert_allclose(model.centers, centers, rtol=1e-9)
    np.testing.assert_allclose(model.summary.cost, cost, rtol=1e-9)
    got_labels, _ = model.predict_array(x)
    np.testing.assert_array_equal(got_labels, labels)
    assert model.summary.n_iter == n_iter
    assert model.summary.cluster_sizes == np.bincount(labels, minlength=4).tolist()
    assert len(model.summary.history) == n_iter


def test_empty_cluster_is_reseeded_and_reported(spark, rng):
    x, _ = _blobs(rng, k=2, per=100, d=2)
    init = np.vstack([x[:2], [[500.0, 500.0]]])  # the third centre attracts no point
    model = K.KMeans(k=3, initial_centers=init, max_iter=30, tol=0).fit(
        D.from_numpy(spark, x, num_partitions=3)
    )
    centers, _, cost, _ = reference_lloyd(x, init, 30)
    assert model.summary.reseeded[0] == {"iteration": 1, "cluster": 2}
    np.testing.assert_allclose(model.centers, centers, rtol=1e-9)
    np.testing.assert_allclose(model.summary.cost, cost, rtol=1e-9)
    assert min(model.summary.cluster_sizes) > 0


def test_same_seed_same_model_different_seeds_valid(spark, rng):
    x, _ = _blobs(rng, k=5, spread=2.0)
    data = D.from_numpy(spark, x, num_partitions=3)
    for init in ("k-means||", "k-means++", "random"):
        a, b = (K.KMeans(k=5, init=init, seed=7).fit(data) for _ in range(2))
        assert np.array_equal(a.centers, b.centers), init
        assert a.summary == b.summary
        other = K.KMeans(k=5, init=init, seed=8).fit(data)
        assert other.centers.shape == (5, 3) and len(np.unique(other.centers, axis=0)) == 5
        # the reported cost is that of the returned centres, each point to its nearest
        d2 = ((x[:, None, :] - other.centers[None]) ** 2).sum(-1).min(axis=1).sum()
        np.testing.assert_allclose(other.summary.cost, d2, rtol=1e-9)


def test_kmeans_parallel_finds_separated_blobs(spark, rng):
    x, true = _blobs(rng, k=6, per=300, d=5, spread=0.5, scale=30.0)
    model = K.KMeans(k=6, seed=3).fit(D.from_numpy(spark, x, num_partitions=4))
    gaps = np.sqrt(((true[:, None] - model.centers[None]) ** 2).sum(-1)).min(1)
    assert gaps.max() < 0.2, gaps
    assert model.summary.converged


def test_weights_equal_repeated_rows(spark, rng):
    x, _ = _blobs(rng, k=3, per=50, d=2)
    reps = rng.integers(1, 4, size=len(x))
    init = x[:3].copy()
    weighted = K.KMeans(k=3, initial_centers=init, tol=0, max_iter=50).fit(
        D.from_numpy(spark, x, w=reps.astype(float), num_partitions=2)
    )
    repeated = K.KMeans(k=3, initial_centers=init, tol=0, max_iter=50).fit(
        D.from_numpy(spark, np.repeat(x, reps, axis=0), num_partitions=2)
    )
    np.testing.assert_allclose(weighted.centers, repeated.centers, rtol=1e-9)
    np.testing.assert_allclose(weighted.summary.cost, repeated.summary.cost, rtol=1e-9)


def test_cosine_distance_clusters_directions(spark, rng):
    directions = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    x = np.vstack(
        [
            d * rng.uniform(1, 100, size=(100, 1)) + rng.normal(size=(100, 3)) * 0.05
            for d in directions
        ]
    )
    model = K.KMeans(k=3, distance="cosine", seed=1).fit(D.from_numpy(spark, x, num_partitions=2))
    np.testing.assert_allclose(np.linalg.norm(model.centers, axis=1), 1.0, rtol=1e-12)
    assert np.sort(np.abs(model.centers).argmax(1)).tolist() == [0, 1, 2]
    labels, dist = model.predict_array(x)
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True) * model.centers[labels]).sum(1)
    np.testing.assert_allclose(dist, 1 - cos, atol=1e-12)
    np.testing.assert_allclose(model.summary.cost, (1 - cos).sum(), rtol=1e-9)


def test_reproduces_sklearn_lloyd_on_real_data(spark):
    frame = pd.read_csv(DATA / "diamonds.csv")
    features = ["carat", "depth", "table", "x", "y", "z"]
    x = frame[features].to_numpy(float)
    init = x[[0, 100, 5000, 20000, 40000]]
    data = read.load(spark, str(DATA / "diamonds.csv"), "csv", features=features, num_partitions=4)
    model = K.KMeans(k=5, initial_centers=init, max_iter=300, tol=0).fit(data)
    ref = SKMeans(5, init=init, n_init=1, max_iter=300, tol=0, algorithm="lloyd").fit(x)
    np.testing.assert_allclose(model.centers, ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(model.summary.cost, ref.inertia_, rtol=1e-9)
    np.testing.assert_array_equal(model.predict_array(x)[0], ref.labels_)
    assert model.summary.converged


def test_cost_at_least_as_good_as_mllib(spark):
    from pyspark.ml.clustering import KMeans as MLKMeans
    from pyspark.ml.feature import VectorAssembler

    features = ["carat", "depth", "table", "x", "y", "z"]
    path = str(DATA / "diamonds.csv")
    frame = spark.read.csv(path, header=True, inferSchema=True)
    vectors = VectorAssembler(inputCols=features, outputCol="features").transform(frame).cache()
    data = read.load(spark, path, "csv", features=features, num_partitions=2)
    ours, theirs = [], []
    for seed in range(5):
        ours.append(K.KMeans(k=8, seed=seed).fit(data).summary.cost)
        theirs.append(MLKMeans(k=8, seed=seed).fit(vectors).summary.trainingCost)
    vectors.unpersist()
    print("kmeans cost ours vs mllib", sorted(ours), sorted(theirs))
    assert np.median(ours) <= np.median(theirs) * (1 + 1e-9), (ours, theirs)


def test_many_iterations_keep_broadcasts_and_memory_flat(spark, rng):
    """200 Lloyd steps on the one cached RDD: broadcast files, lineage and driver RSS stay flat."""
    x, _ = _blobs(rng, k=3, per=200, d=2)
    data = D.from_numpy(spark, x, num_partitions=2)
    points = lloyd.prepare(data, "euclidean")
    lloyd.validate(data, points)
    sc = spark.sparkContext
    lineage = points.toDebugString()
    centers = x[:3].copy()

    def broadcast_files():
        return len(os.listdir(sc._temp_dir))

    for _ in range(20):  # warm up
        lloyd.lloyd_step(points, centers, 3, 1024)
    files = broadcast_files()
    reset_peak_rss()  # the peak from here on is these 200 steps', not earlier tests'
    rss = peak_rss_mb()
    for step in range(200):
        partial = lloyd.lloyd_step(points, centers + step * 1e-6, 3, 1024)
        assert broadcast_files() == files  # each step's broadcast destroyed when it returns
    assert peak_rss_mb() - rss < 50
    assert points.toDebugString() == lineage
    assert partial.counts.sum() == len(x)
    points.unpersist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be an integer >= 1"),
        ({"k": 2, "max_iter": 0}, "max_iter"),
        ({"k": 2, "tol": -1.0}, "tol"),
        ({"k": 2, "init": "best"}, "init must be one of"),
        ({"k": 2, "distance": "manhattan"}, "distance must be one of"),
        ({"k": 2, "initial_centers": np.zeros((3, 2))}, "initial centres must be 2"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(InputError, match=message):
        K.KMeans(**kwargs)


def test_k_greater_than_distinct_points(spark):
    x = np.repeat([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], 20, axis=0)
    with pytest.raises(
        InputError, match=r"k=4 is greater than the number of distinct points \(3\)"
    ):
        K.KMeans(k=4, seed=0).fit(D.from_numpy(spark, x, num_partitions=2))
    model = K.KMeans(k=3, seed=0).fit(D.from_numpy(spark, x, num_partitions=2))
    assert model.summary.cost == 0.0


def test_predict_dataframe(spark, rng):
    x, _ = _blobs(rng, k=3, per=20, d=2)
    model = K.KMeans(k=3, seed=0).fit(D.from_numpy(spark, x, features=["a", "b"]))
    pdf = pd.DataFrame({"name": [f"r{i}" for i in range(len(x))], "a": x[:, 0], "b": x[:, 1]})
    frame = spark.createDataFrame(pdf).repartition(3)
    got = model.predict(frame)
    rows = frame.toPandas()
    labels, dist = model.predict_array(rows[["a", "b"]].to_numpy())
    rows["cluster"], rows["distance"] = labels.astype("int32"), dist
    expected = spark.createDataFrame(rows, schema=got.schema)
    assert_approx_df_equality(got, expected, precision=1e-12)


@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_barrier_mode_matches_reference(spark, rng, partitions):
    """All iterations in one barrier stage (TCP all-gather between tasks) give the same model."""
    x, _ = _blobs(rng, spread=3.0)
    init = x[:4].copy()
    data = D.from_numpy(spark, x, num_partitions=partitions, blocks_per_partition=2)
    model = K.KMeans(k=4, initial_centers=init, max_iter=50, tol=0, mode="barrier").fit(data)
    centers, labels, cost, n_iter = reference_lloyd(x, init, 50)
    np.testing.assert_allclose(model.centers, centers, rtol=1e-9)
    np.testing.assert_allclose(model.summary.cost, cost, rtol=1e-9)
    assert model.summary.n_iter == n_iter and model.summary.converged
    assert model.summary.cluster_sizes == np.bincount(labels, minlength=4).tolist()
    assert len(model.sample[0]) == len(model.sample[1]) > 0
    again = K.KMeans(k=4, initial_centers=init, max_iter=50, tol=0, mode="barrier").fit(data)
    assert np.array_equal(again.centers, model.centers)


def test_checkpointed_points_give_the_same_model(spark, rng, tmp_path):
    x, _ = _blobs(rng, k=3, per=100, d=2)
    data = D.from_numpy(spark, x, num_partitions=3)
    plain = K.KMeans(k=3, seed=4).fit(data)
    checked = K.KMeans(k=3, seed=4, checkpoint_dir=str(tmp_path / "ckpt")).fit(data)
    assert np.array_equal(plain.centers, checked.centers)
    assert any((tmp_path / "ckpt").rglob("part-*"))
