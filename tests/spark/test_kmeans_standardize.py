"""``KMeans(standardize=True)`` against scikit-learn's ``StandardScaler`` + ``KMeans`` (lloyd)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans as SKMeans
from sklearn.preprocessing import StandardScaler

from sparkml_jobs.clustering import estimator as K
from sparkml_jobs.clustering import sweep
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import dataset as D
from sparkml_jobs.io import models

MODES = ("broadcast", "barrier")


def make_data(rng, n=900):
    """Three clusters on columns of scales 1e4, 1 and 1e-3 (with a large offset): unscaled,
    the first column decides every assignment; standardised, all three count."""
    centres = np.array([[0.0, 0.0, 0.0], [1.0, 2.5, -1.5], [-1.5, 1.0, 2.0]])
    z = centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 3)) * 0.8
    return z * np.array([1e4, 1.0, 1e-3]) + np.array([5e6, -3.0, 0.02])


def reference(x, init, w=None):
    """scikit-learn from the same initial centres (given to it in standardised units)."""
    scaler = StandardScaler().fit(x, sample_weight=w)
    sk = SKMeans(
        n_clusters=len(init),
        init=scaler.transform(init),
        n_init=1,
        algorithm="lloyd",
        tol=0.0,
        max_iter=300,
    ).fit(scaler.transform(x), sample_weight=w)
    return scaler, sk


def check_against(model, x, init, w=None):
    scaler, sk = reference(x, init, w)
    np.testing.assert_allclose(model.mean, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(model.scale, scaler.scale_, rtol=1e-12)
    # saved centres are in the data's units; sklearn's mapped back to them
    mapped = sk.cluster_centers_ * scaler.scale_ + scaler.mean_
    np.testing.assert_allclose((model.centers - mapped) / scaler.scale_, 0.0, atol=1e-9)
    np.testing.assert_allclose(
        (model.centers - scaler.mean_) / scaler.scale_, sk.cluster_centers_, rtol=0, atol=1e-9
    )
    labels, _ = model.predict_array(x)
    assert np.array_equal(labels, sk.labels_)
    np.testing.assert_allclose(model.summary.cost, sk.inertia_, rtol=1e-9)
    return scaler, sk


@pytest.mark.parametrize("mode", MODES)
def test_standardised_fit_equals_standard_scaler_plus_sklearn_lloyd(spark, rng, mode, tmp_path):
    x = make_data(rng)
    init = x[[0, 1, 2]]
    data = D.from_numpy(spark, x, num_partitions=3, blocks_per_partition=2)
    model = K.KMeans(k=3, initial_centers=init, max_iter=300, tol=0, mode=mode, standardize=True)
    model = model.fit(data)
    assert model.summary.mode == mode
    scaler, sk = check_against(model, x, init)
    # standardising matters here: unscaled Lloyd from the same centres labels differently
    plain = K.KMeans(k=3, initial_centers=init, max_iter=300, tol=0, mode=mode).fit(data)
    assert not np.array_equal(plain.predict_array(x)[0], sk.labels_)

    new = make_data(rng, 200)
    labels, dist = model.predict_array(new)
    assert np.array_equal(labels, sk.predict(scaler.transform(new)))
    np.testing.assert_allclose(dist, sk.transform(scaler.transform(new)).min(axis=1), atol=1e-9)

    # the saved model keeps the scaling: same predictions after a round trip
    models.save_kmeans(model, str(tmp_path / "m"))
    loaded = models.load_kmeans(str(tmp_path / "m"))
    assert loaded.mean.tobytes() == model.mean.tobytes()
    assert loaded.scale.tobytes() == model.scale.tobytes()
    assert np.array_equal(loaded.predict_array(new)[0], labels)
    # evaluate scores in the model's standardised units: sklearn's inertia on the training rows
    metrics = sweep.evaluate(loaded, data)
    np.testing.assert_allclose(metrics["cost"], sk.inertia_, rtol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_weighted_standardised_fit_uses_the_weights(spark, rng, mode):
    x = make_data(rng, 600)
    w = rng.uniform(0.1, 5.0, len(x))
    init = x[[3, 4, 5]]
    data = D.from_numpy(spark, x, w=w, num_partitions=4)
    model = K.KMeans(k=3, initial_centers=init, max_iter=300, tol=0, mode=mode, standardize=True)
    check_against(model.fit(data), x, init, w)


def test_spark_predict_applies_the_saved_scaling(spark, rng):
    x = make_data(rng, 300)
    init = x[[0, 1, 2]]
    model = K.KMeans(k=3, initial_centers=init, max_iter=300, tol=0, standardize=True).fit(
        D.from_numpy(spark, x, num_partitions=2, features=["a", "b", "c"])
    )
    scaler, sk = reference(x, init)
    new = make_data(rng, 50)
    frame = spark.createDataFrame([tuple(map(float, r)) for r in new], ["a", "b", "c"])
    out = model.predict(frame).toPandas()
    assert np.array_equal(out["cluster"].to_numpy(), sk.predict(scaler.transform(new)))


def test_old_model_without_scaling_still_loads(spark, rng, tmp_path):
    x = make_data(rng, 200)
    model = K.KMeans(k=2, initial_centers=x[:2], max_iter=5).fit(D.from_numpy(spark, x))
    models.save_kmeans(model, str(tmp_path / "old"))
    path = tmp_path / "old" / "model.json"
    doc = json.loads(path.read_text())
    assert "standardize" not in doc  # written exactly as before
    del doc["params"]["standardize"]  # as a model of the version before the option
    path.write_text(json.dumps(doc))
    loaded = models.load_kmeans(str(tmp_path / "old"))
    assert loaded.mean is None and loaded.scale is None
    assert np.array_equal(loaded.predict_array(x)[0], model.predict_array(x)[0])


@pytest.mark.parametrize("weighted", [False, True])
def test_constant_column_is_refused_by_name(spark, rng, weighted):
    x = make_data(rng, 100)
    x[:, 1] = 7.25
    w = rng.uniform(0.5, 2.0, len(x)) if weighted else None
    data = D.from_numpy(spark, x, w=w, features=["a", "flat", "c"])
    with pytest.raises(InputError, match=r"'flat' are constant \(standard deviation 0\)"):
        K.KMeans(k=2, initial_centers=x[:2], standardize=True).fit(data)


def test_standardize_with_cosine_is_refused():
    with pytest.raises(InputError, match="euclidean distance only"):
        K.KMeans(k=2, distance="cosine", standardize=True)
