"""Batch-pipeline workflows: mergeable models (update / sliding window) and one-pass ridge CV."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparkml_jobs.cli import main
from sparkml_jobs.io import dataset as D
from sparkml_jobs.regression import cv
from sparkml_jobs.regression import estimator as L
from sparkml_jobs.regression import stats as st


def _days(rng, n_days=3, rows=400):
    beta = np.array([1.5, -2.0, 0.5])
    frames = []
    for day in range(n_days):
        x = rng.normal(size=(rows, 3)) * [1, 3, 10] + day
        y = x @ beta + 2 + rng.normal(size=rows)
        frames.append(pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}))
    return frames


def test_fit_then_update_equals_fit_on_union(spark, rng):
    a, b, c = _days(rng)

    def load(frame):
        return D.from_numpy(
            spark,
            frame[["a", "b", "c"]].to_numpy(),
            frame["y"].to_numpy(),
            features=["a", "b", "c"],
        )

    model_a = L.LinearRegression().fit(load(a))
    updated = L.update(model_a, added=load(b))
    union = L.LinearRegression().fit(load(pd.concat([a, b])))
    np.testing.assert_allclose(updated.coefficients, union.coefficients, rtol=1e-9)
    np.testing.assert_allclose(updated.intercept, union.intercept, rtol=1e-9)
    np.testing.assert_allclose(updated.summary.std_errors, union.summary.std_errors, rtol=1e-9)
    np.testing.assert_allclose(updated.summary.r2, union.summary.r2, rtol=1e-9)
    assert updated.summary.n == 800
    # sliding window: (A ∪ B) + C − A = B ∪ C
    window = L.update(L.update(union, added=load(c)), removed=load(a))
    expected = L.LinearRegression().fit(load(pd.concat([b, c])))
    np.testing.assert_allclose(window.coefficients, expected.coefficients, rtol=1e-9)
    np.testing.assert_allclose(window.summary.std_errors, expected.summary.std_errors, rtol=1e-8)


def test_update_cli_round_trip(spark, rng, tmp_path, capsys):
    days = _days(rng)
    paths = []
    for i, frame in enumerate(days):
        paths.append(tmp_path / f"day{i}.csv")
        frame.to_csv(paths[-1], index=False)
    run = lambda *argv: main([str(a) for a in argv])  # noqa: E731
    assert (
        run("linreg", "fit", "--input", paths[0], "--label", "y", "--output", tmp_path / "m0") == 0
    )
    assert (
        run(
            "linreg",
            "update",
            "--model",
            tmp_path / "m0",
            "--input",
            paths[1],
            "--output",
            tmp_path / "m1",
        )
        == 0
    )
    assert (
        run(
            "linreg",
            "update",
            "--model",
            tmp_path / "m1",
            "--input",
            paths[2],
            "--subtract",
            paths[0],
            "--output",
            tmp_path / "m2",
        )
        == 0
    )
    both = pd.concat(days[1:])
    both.to_csv(tmp_path / "both.csv", index=False)
    assert (
        run(
            "linreg",
            "fit",
            "--input",
            tmp_path / "both.csv",
            "--label",
            "y",
            "--output",
            tmp_path / "ref",
        )
        == 0
    )
    got = json.loads((tmp_path / "m2" / "model.json").read_text())
    ref = json.loads((tmp_path / "ref" / "model.json").read_text())
    np.testing.assert_allclose(got["coefficients"], ref["coefficients"], rtol=1e-9)
    np.testing.assert_allclose(got["intercept"], ref["intercept"], rtol=1e-9)
    assert got["summary"]["n"] == ref["summary"]["n"] == 800
    assert got["summary"]["mae"] is None  # no pass over the old rows
    capsys.readouterr()
    assert run("linreg", "update", "--model", tmp_path / "m0", "--output", tmp_path / "x") == 2
    assert "needs --input" in capsys.readouterr().err


def test_folds_do_not_depend_on_partitioning(rng):
    values = rng.normal(size=(1000, 4))
    folds = cv.fold_of_rows(values, 5)
    assert set(folds.tolist()) == {0, 1, 2, 3, 4}
    assert np.all(np.bincount(folds) > 150)
    np.testing.assert_array_equal(cv.fold_of_rows(values[::-1], 5), folds[::-1])


def test_cross_validation_matches_explicit_refits(spark, rng):
    n, p = 600, 5
    x = rng.normal(size=(n, p))
    y = x @ rng.normal(size=p) * 0.3 + rng.normal(size=n) * 2
    lambdas = [0.001, 0.1, 1.0, 10.0]
    data = D.from_numpy(spark, x, y, num_partitions=3)
    model = L.LinearRegression().fit_cv(data, lambdas, 4)
    result = model.summary.cross_validation
    folds = cv.fold_of_rows(np.column_stack([x, y]), 4)
    expected = []
    for lam in lambdas:  # explicit refits with numpy, fold by fold
        sse = 0.0
        for f in range(4):
            tr, te = folds != f, folds == f
            xc = x[tr] - x[tr].mean(0)
            beta = np.linalg.solve(
                xc.T @ xc + tr.sum() * lam * np.eye(p), xc.T @ (y[tr] - y[tr].mean())
            )
            b0 = y[tr].mean() - x[tr].mean(0) @ beta
            sse += np.sum((y[te] - b0 - x[te] @ beta) ** 2)
        expected.append(sse / n)
    np.testing.assert_allclose(result["cv_mse"], expected, rtol=1e-9)
    assert result["best_reg_param"] == lambdas[int(np.argmin(expected))]
    assert model.params["reg_param"] == result["best_reg_param"]
    direct = L.LinearRegression(reg_param=result["best_reg_param"]).fit(data)
    np.testing.assert_allclose(model.coefficients, direct.coefficients, rtol=1e-10)


def test_cv_cli(spark, rng, tmp_path, capsys):
    frame = _days(rng, n_days=1, rows=500)[0]
    frame.to_csv(tmp_path / "d.csv", index=False)
    code = main(
        [
            "linreg",
            "fit",
            "--input",
            str(tmp_path / "d.csv"),
            "--label",
            "y",
            "--reg-param",
            "0.01,0.1,1,10",
            "--cv",
            "5",
            "--output",
            str(tmp_path / "m"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "5-fold cross-validation" in out and "<- chosen" in out
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert len(doc["summary"]["cross_validation"]["cv_mse"]) == 4
    code = main(
        [
            "linreg",
            "fit",
            "--input",
            str(tmp_path / "d.csv"),
            "--label",
            "y",
            "--reg-param",
            "0.01,0.1",
            "--output",
            str(tmp_path / "n"),
        ]
    )
    assert code == 2 and "needs --cv" in capsys.readouterr().err


def test_wide_design_thousands_of_features(spark, rng):
    """No feature cap: 2,000 features (MLlib's normal solver stops at 4,096; the test keeps
    CI time small — the benchmark runs 8,192)."""
    n, p = 2400, 2000
    x = rng.normal(size=(n, p))
    beta = rng.normal(size=p)
    y = x @ beta + rng.normal(size=n) * 0.1
    model = L.LinearRegression(solver="cholesky").fit(
        D.from_numpy(spark, x, y, num_partitions=2, blocks_per_partition=3)
    )
    ref = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)[0]
    np.testing.assert_allclose(
        np.r_[model.intercept, model.coefficients], ref, rtol=1e-8, atol=1e-10
    )
    assert len(model.summary.std_errors) == p + 1


@pytest.mark.parametrize("parts", [1, 4])
def test_held_out_sse_formula(rng, parts):
    z = rng.normal(size=(200, 4)) + 3
    folds = [st.SufficientStats.of_block(b) for b in np.array_split(z, parts)]
    sol = st.solve(folds[0] if parts == 1 else folds[1])
    got = sum(cv.held_out_sse(f, sol) for f in folds)
    resid = z[:, -1] - sol.intercept - z[:, :-1] @ sol.coefficients
    np.testing.assert_allclose(got, resid @ resid, rtol=1e-10)
