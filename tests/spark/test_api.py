"""The DataFrame-first API: fit a DataFrame, transform one, save/load, and Spark ML in memory."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_approx_df_equality
from pyspark.ml.feature import VectorAssembler
from sklearn.cluster import KMeans as SKMeans

from sparkml_jobs import KMeans, LinearRegression, LinearRegressionModel, as_blocks
from sparkml_jobs.api import KMeansModel
from sparkml_jobs.errors import InputError


@pytest.fixture(scope="module")
def regression(spark):
    """(DataFrame, X, y): 200 rows of y = 3 + X·[1, -2, 0.5] + noise, with an id column."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    y = 3.0 + x @ [1.0, -2.0, 0.5] + rng.normal(scale=0.2, size=200)
    rows = [(i, *map(float, x[i]), float(y[i])) for i in range(200)]
    df = spark.createDataFrame(rows, ["id", "a", "b", "c", "y"]).repartition(3)
    return df, x, y


@pytest.fixture(scope="module")
def blobs(spark):
    """(DataFrame, X, initial centres): three separated 2-d blobs of 60 points."""
    rng = np.random.default_rng(4)
    means = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]])
    x = np.vstack([m + rng.normal(size=(60, 2)) for m in means])
    df = spark.createDataFrame([(i, *map(float, r)) for i, r in enumerate(x)], ["id", "u", "v"])
    return df, x, x[[0, 60, 120]]


def test_linear_regression_on_a_dataframe(regression):
    df, x, y = regression
    model = LinearRegression().fit(df, label="y", features=["a", "b", "c"])
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(model.intercept, beta[0], rtol=1e-10)
    np.testing.assert_allclose(model.coefficients, beta[1:], rtol=1e-10)
    residuals = y - design @ beta
    np.testing.assert_allclose(model.summary.rmse, np.sqrt(np.mean(residuals**2)), rtol=1e-10)

    scored = model.transform(df)
    assert scored.columns == [*df.columns, "prediction"]
    expected = df.sparkSession.createDataFrame(
        [(i, float(design[i] @ beta)) for i in range(len(x))], ["id", "prediction"]
    )
    assert_approx_df_equality(
        scored.select("id", "prediction"), expected, 1e-12, ignore_row_order=True
    )
    np.testing.assert_allclose(model.predict(x), design @ beta, rtol=0, atol=1e-12)


def test_defaults_and_parameter_names(regression):
    df, x, y = regression
    # features default to every column but the label: id joins them
    model = LinearRegression(fit_intercept=False, reg_param=0.0).fit(df, label="y")
    assert model.features == ["id", "a", "b", "c"]
    design = np.column_stack([np.arange(len(x)), x])
    np.testing.assert_allclose(
        model.coefficients, np.linalg.lstsq(design, y, rcond=None)[0], rtol=1e-9
    )
    assert model.intercept == 0.0
    # ridge: (XᵀX/n + λI)β = Xᵀy/n on centred data, intercept unpenalised
    lam = 0.5
    ridge = LinearRegression(reg_param=lam, prediction_col="yhat").fit(df, "y", ["a", "b", "c"])
    xc, yc = x - x.mean(axis=0), y - y.mean()
    beta = np.linalg.solve(xc.T @ xc / len(x) + lam * np.eye(3), xc.T @ yc / len(x))
    np.testing.assert_allclose(ridge.coefficients, beta, rtol=1e-10)
    assert "yhat" in ridge.transform(df).columns


def test_refusals(regression):
    df, _, _ = regression
    with pytest.raises(InputError, match="needs label="):
        LinearRegression().fit(df)
    with pytest.raises(InputError, match="reg_param|penalty|λ|>= 0"):
        LinearRegression(reg_param=-1.0)
    with pytest.raises(InputError, match="unknown feature column"):
        LinearRegression().fit(df, label="y", features=["a", "nope"])
    with pytest.raises(InputError, match="k must be"):
        KMeans(k=0)
    with pytest.raises(TypeError):
        LinearRegression(regParam=0.1)  # Spark ML's camelCase is not ours: a typo must not pass


def test_save_load_and_block_data(spark, regression, tmp_path):
    df, x, y = regression
    model = LinearRegression().fit(df, label="y", features=["a", "b", "c"])
    model.save(str(tmp_path / "model"))
    loaded = LinearRegressionModel.load(str(tmp_path / "model"))
    assert loaded.coefficients.tolist() == model.coefficients.tolist()
    assert loaded.intercept == model.intercept and loaded.features == model.features
    # the block RDD stays available: the same fit from BlockData gives the same numbers
    blocks = as_blocks(df, label="y", features=["a", "b", "c"])
    again = LinearRegression().fit(blocks)
    np.testing.assert_allclose(again.coefficients, model.coefficients, rtol=1e-13)
    metrics = loaded.evaluate(df)
    np.testing.assert_allclose(metrics["r2"], model.summary.r2, rtol=1e-10)


def test_spark_ml_model_in_memory_and_on_disk(spark, regression, tmp_path):
    df, _, _ = regression
    model = LinearRegression().fit(df, label="y", features=["a", "b", "c"])
    assembled = VectorAssembler(inputCols=model.features, outputCol="features").transform(df)
    theirs = model.to_spark_ml().transform(assembled).select("id", "prediction")
    ours = model.transform(df).select("id", "prediction")
    # Spark ML's prediction column is not nullable, ours is
    theirs = spark.createDataFrame(theirs.rdd, ours.schema)
    assert_approx_df_equality(theirs, ours, 1e-12, ignore_row_order=True)
    model.save_spark_ml(str(tmp_path / "spark"))
    back = LinearRegressionModel.load(str(tmp_path / "spark"))  # features from our sidecar
    assert back.features == model.features
    assert back.coefficients.tolist() == model.coefficients.tolist()


def test_kmeans_on_a_dataframe(spark, blobs, tmp_path):
    df, x, start = blobs
    model = KMeans(k=3, initial_centers=start, max_iter=100, tol=0.0).fit(df, ["u", "v"])
    ref = SKMeans(3, init=start, n_init=1, max_iter=100, tol=0, algorithm="lloyd").fit(x)
    np.testing.assert_allclose(model.centers, ref.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(model.cost, ref.inertia_, rtol=1e-10)
    scored = model.transform(df).orderBy("id")
    assert [r.cluster for r in scored.collect()] == ref.labels_.tolist()
    distances = np.linalg.norm(x - ref.cluster_centers_[ref.labels_], axis=1)
    np.testing.assert_allclose(
        [r.distance for r in scored.collect()], distances, rtol=1e-10, atol=1e-12
    )
    assert model.predict(x).tolist() == ref.labels_.tolist()

    model.save(str(tmp_path / "ours"))
    model.save_spark_ml(str(tmp_path / "spark"))
    for path in ("ours", "spark"):
        loaded = KMeansModel.load(str(tmp_path / path))
        assert loaded.centers.tolist() == model.centers.tolist()
    # Spark ML's own assignment with the exported centres
    assembled = VectorAssembler(inputCols=["u", "v"], outputCol="features").transform(df)
    spark_scored = model.to_spark_ml().transform(assembled).orderBy("id")
    assert [r.prediction for r in spark_scored.collect()] == ref.labels_.tolist()


def test_kmeans_seeded_fit_is_reproducible(blobs):
    df, _, _ = blobs
    first = KMeans(k=3, seed=9).fit(df.select("u", "v"))
    second = KMeans(k=3, seed=9).fit(df.select("u", "v"))
    assert first.centers.tolist() == second.centers.tolist()
    assert sum(first.summary.cluster_sizes) == df.count()


def test_formula_fit_and_transform_match_statsmodels(spark, tmp_path):
    import pandas as pd
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(11)
    n = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "g": rng.choice(["north", "south", "west"], size=n),
        }
    )
    effect = frame["g"].map({"north": 0.0, "south": 1.5, "west": -2.0})
    frame["y"] = 1.0 + 2.0 * frame["a"] + effect + 0.5 * frame["a"] * (frame["g"] == "west")
    frame["y"] += 0.1 * rng.normal(size=n)
    df = spark.createDataFrame(frame)
    formula = "y ~ a + g + a:g"
    model = LinearRegression(formula=formula).fit(df)
    oracle = smf.ols(formula, frame).fit()
    names = ["Intercept", *model.model.features]
    assert model.model.features == list(oracle.params.index[1:])
    np.testing.assert_allclose(
        [model.intercept, *model.coefficients], oracle.params[names].to_numpy(), rtol=1e-8
    )
    np.testing.assert_allclose(model.summary.std_errors, oracle.bse[names].to_numpy(), rtol=1e-8)
    scored = model.transform(df).toPandas()
    np.testing.assert_allclose(scored["prediction"], oracle.predict(frame), rtol=1e-10)
    model.save(str(tmp_path / "m"))
    again = LinearRegressionModel.load(str(tmp_path / "m"))
    np.testing.assert_allclose(
        again.transform(df).toPandas()["prediction"], scored["prediction"], rtol=0
    )
    unseen = spark.createDataFrame(frame.assign(g="east").head(5))
    with pytest.raises(InputError, match="east"):
        model.transform(unseen).collect()
