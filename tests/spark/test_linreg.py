"""Linear regression on a real local Spark, against statsmodels / numpy closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from chispa import assert_approx_df_equality

from sparkml_jobs.io import dataset as D
from sparkml_jobs.io import models, read
from sparkml_jobs.regression import estimator as L
from tests.conftest import DATA


def _design(rng, n=3000, p=5):
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 50, size=p) + rng.normal(size=p) * 20
    y = x @ rng.normal(size=p) + 4.0 + rng.normal(size=n) * 2
    return x, y


def _check_against_statsmodels(model, ref, fit_intercept, rtol=1e-9):
    est = np.r_[model.intercept, model.coefficients] if fit_intercept else model.coefficients
    s = model.summary
    np.testing.assert_allclose(est, ref.params, rtol=rtol)
    np.testing.assert_allclose(s.std_errors, ref.bse, rtol=rtol)
    np.testing.assert_allclose(s.t_values, ref.tvalues, rtol=rtol)
    np.testing.assert_allclose(s.p_values, ref.pvalues, rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(s.r2, ref.rsquared, rtol=rtol)
    np.testing.assert_allclose(s.r2_adj, ref.rsquared_adj, rtol=rtol)
    np.testing.assert_allclose(s.residual_std, np.sqrt(ref.scale), rtol=rtol)
    assert s.n == int(ref.nobs) and s.df_resid == int(ref.df_resid)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_statsmodels(spark, rng, fit_intercept, weighted):
    x, y = _design(rng)
    w = rng.uniform(0.1, 4.0, size=len(y)) if weighted else None
    data = D.from_numpy(spark, x, y, w, num_partitions=3, blocks_per_partition=2)
    model = L.LinearRegression(fit_intercept=fit_intercept).fit(data)
    exog = sm.add_constant(x) if fit_intercept else x
    ref = (sm.WLS(y, exog, weights=w) if weighted else sm.OLS(y, exog)).fit()
    _check_against_statsmodels(model, ref, fit_intercept)
    resid = y - ref.fittedvalues
    ww = np.ones(len(y)) if w is None else w
    np.testing.assert_allclose(model.summary.rmse, np.sqrt(ww @ resid**2 / ww.sum()), rtol=1e-9)
    np.testing.assert_allclose(model.summary.mae, ww @ np.abs(resid) / ww.sum(), rtol=1e-9)
    assert model.summary.solver == "cholesky" and model.summary.condition_number >= 1.0


def test_same_model_for_any_partitioning(spark, rng):
    x, y = _design(rng, n=2000)
    models = [
        L.LinearRegression().fit(D.from_numpy(spark, x, y, num_partitions=p)) for p in (1, 3, 7)
    ]
    for other in models[1:]:
        np.testing.assert_allclose(other.coefficients, models[0].coefficients, rtol=1e-12)
        np.testing.assert_allclose(other.intercept, models[0].intercept, rtol=1e-12)
        np.testing.assert_allclose(
            other.summary.std_errors, models[0].summary.std_errors, rtol=1e-10
        )


def test_same_partitioning_is_bit_identical(spark, rng):
    x, y = _design(rng, n=2000)
    first, second = (
        L.LinearRegression().fit(D.from_numpy(spark, x, y, num_partitions=7)) for _ in range(2)
    )
    assert np.array_equal(first.coefficients, second.coefficients)
    assert first.summary == second.summary


def test_ridge_matches_closed_form(spark, rng):
    x, y = _design(rng, n=1000, p=4)
    lam = 0.05
    model = L.LinearRegression(reg_param=lam).fit(D.from_numpy(spark, x, y, num_partitions=3))
    xc, yc = x - x.mean(0), y - y.mean()
    beta = np.linalg.solve(xc.T @ xc + len(y) * lam * np.eye(4), xc.T @ yc)
    np.testing.assert_allclose(model.coefficients, beta, rtol=1e-10)
    np.testing.assert_allclose(model.intercept, y.mean() - x.mean(0) @ beta, rtol=1e-10)
    # the residual metrics use the ridge coefficients
    resid = y - (model.intercept + x @ beta)
    np.testing.assert_allclose(model.summary.rmse, np.sqrt(np.mean(resid**2)), rtol=1e-9)


def test_diamonds_matches_statsmodels(spark):
    """A real 53,940-row data set (ggplot2 diamonds) read from CSV through Spark's reader."""
    frame = pd.read_csv(DATA / "diamonds.csv")
    features = ["carat", "depth", "table", "x", "y", "z"]
    data = read.load(spark, str(DATA / "diamonds.csv"), "csv", label="price", num_partitions=4)
    assert data.features == features
    model = L.LinearRegression().fit(data)
    ref = sm.OLS(
        frame["price"].to_numpy(float), sm.add_constant(frame[features].to_numpy(float))
    ).fit()
    _check_against_statsmodels(model, ref, True, rtol=1e-6)
    assert model.summary.n == 53940


def test_predict_dataframe_keeps_columns_and_order(spark, rng):
    x, y = _design(rng, n=50, p=2)
    pdf = pd.DataFrame({"id": np.arange(50), "a": x[:, 0], "b": x[:, 1], "y": y})
    model = L.LinearRegression().fit(D.from_numpy(spark, x, y, features=["a", "b"]))
    frame = spark.createDataFrame(pdf).repartition(3)
    got = model.predict(frame)
    rows = frame.toPandas()  # same partitioning, same order as `got`
    rows["prediction"] = model.intercept + rows[["a", "b"]].to_numpy() @ model.coefficients
    expected = spark.createDataFrame(rows)
    assert got.columns == ["id", "a", "b", "y", "prediction"]
    assert_approx_df_equality(got, expected, precision=1e-9)


def test_evaluate_matches_numpy(spark, rng):
    x, y = _design(rng, n=800, p=3)
    model = L.LinearRegression().fit(D.from_numpy(spark, x[:400], y[:400]))
    metrics = model.evaluate(D.from_numpy(spark, x[400:], y[400:], num_partitions=3))
    resid = y[400:] - model.predict_array(x[400:])
    assert metrics["n"] == 400
    np.testing.assert_allclose(metrics["rmse"], np.sqrt(np.mean(resid**2)), rtol=1e-9)
    np.testing.assert_allclose(metrics["mae"], np.mean(np.abs(resid)), rtol=1e-9)
    tss = np.sum((y[400:] - y[400:].mean()) ** 2)
    np.testing.assert_allclose(metrics["r2"], 1 - resid @ resid / tss, rtol=1e-9)


def test_save_load_roundtrip(spark, rng, tmp_path):
    x, y = _design(rng, n=300, p=3)
    model = L.LinearRegression().fit(D.from_numpy(spark, x, y))
    models.save_linreg(model, str(tmp_path / "m"))
    back = models.load_linreg(str(tmp_path / "m"))
    np.testing.assert_array_equal(back.coefficients, model.coefficients)
    assert back.intercept == model.intercept and back.features == model.features
    assert back.summary.std_errors == model.summary.std_errors
    np.testing.assert_array_equal(back.stats.comoment, model.stats.comoment)
    assert (tmp_path / "m" / "_SUCCESS").exists()


def test_one_pass_fit_has_the_same_inference(spark, rng):
    x, y = _design(rng, n=1500)
    data = D.from_numpy(spark, x, y, num_partitions=3)
    full = L.LinearRegression().fit(data)
    one = L.LinearRegression(residual_pass=False).fit(data)
    np.testing.assert_array_equal(one.coefficients, full.coefficients)
    np.testing.assert_allclose(one.summary.std_errors, full.summary.std_errors, rtol=1e-9)
    np.testing.assert_allclose(one.summary.rmse, full.summary.rmse, rtol=1e-9)
    assert np.isnan(one.summary.mae) and not np.isnan(full.summary.mae)


def test_portable_mapinarrow_path_gives_the_same_blocks(spark, monkeypatch):
    """The fallback loader (mapInArrow + DataFrame.rdd) for Sparks without toArrowBatchRdd."""
    fast = L.LinearRegression().fit(
        read.load(spark, str(DATA / "diamonds.csv"), "csv", label="price")
    )
    monkeypatch.setattr(read, "_arrow_rdd_blocks", lambda *args: None)
    portable = read.load(spark, str(DATA / "diamonds.csv"), "csv", label="price")
    model = L.LinearRegression().fit(portable)
    np.testing.assert_array_equal(model.coefficients, fast.coefficients)
    assert model.summary.std_errors == fast.summary.std_errors
