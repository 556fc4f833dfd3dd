"""One solver interface for fit / update; the rank tolerance; statistics that cannot be trusted.

Every expected value comes from numpy's ``lstsq`` or statsmodels on the merged rows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm

from sparkml_jobs.cli import main
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import dataset as D
from sparkml_jobs.io import models
from sparkml_jobs.regression import estimator as L
from sparkml_jobs.regression import stats as st


def _ols(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None):
    design = sm.add_constant(x, has_constant="add")
    return (sm.WLS(y, design, weights=w) if w is not None else sm.OLS(y, design)).fit()


def _ill_conditioned(rng, n: int):
    """A cubic on a narrow range: κ of the scaled Gram ≈ 1e9, so ``auto`` picks TSQR."""
    t = rng.uniform(10, 11, size=n)
    x = np.column_stack([t, t**2, t**3])
    y = 1 + 0.5 * t - 0.2 * t**2 + 0.01 * t**3 + rng.normal(size=n) * 0.01
    return x, y


def test_cholesky_update_matches_statsmodels_and_keeps_its_solver(spark, rng):
    x = rng.normal(size=(900, 3)) * [1, 5, 0.1]
    y = x @ [1.0, -2.0, 30.0] + 4 + rng.normal(size=900)
    w = rng.uniform(0.5, 2.0, size=900)
    old = L.LinearRegression(solver="cholesky").fit(D.from_numpy(spark, x[:500], y[:500], w[:500]))
    new = L.update(old, added=D.from_numpy(spark, x[500:], y[500:], w[500:], num_partitions=3))
    ref = _ols(x, y, w)
    np.testing.assert_allclose(np.r_[new.intercept, new.coefficients], ref.params, rtol=1e-9)
    np.testing.assert_allclose(new.summary.std_errors, ref.bse, rtol=1e-8)
    assert new.summary.solver == "cholesky"
    # the condition number means the same thing after an update as after a fit on the union
    union = L.LinearRegression(solver="cholesky").fit(D.from_numpy(spark, x, y, w))
    assert new.summary.condition_number == pytest.approx(union.summary.condition_number, rel=1e-9)
    assert new.summary.condition_number == pytest.approx(
        st.gram_condition(new.stats, True), rel=1e-12
    )
    # ridge: the update solves the same penalised problem as a fit on the union (closed form on
    # the weighted, centred rows) and still reports the Gram condition, not the ridge system's
    lam = 0.5
    ridge_old = L.LinearRegression(solver="cholesky", reg_param=lam).fit(
        D.from_numpy(spark, x[:500], y[:500], w[:500])
    )
    ridge = L.update(ridge_old, added=D.from_numpy(spark, x[500:], y[500:], w[500:]))
    xm, ym = w @ x / w.sum(), w @ y / w.sum()
    xc, yc = (x - xm) * np.sqrt(w)[:, None], (y - ym) * np.sqrt(w)
    beta = np.linalg.solve(xc.T @ xc + lam * w.sum() * np.eye(3), xc.T @ yc)
    np.testing.assert_allclose(ridge.coefficients, beta, rtol=1e-9)
    assert ridge.intercept == pytest.approx(ym - xm @ beta, rel=1e-9)
    assert ridge.summary.condition_number == pytest.approx(union.summary.condition_number, rel=1e-9)


def test_tsqr_model_is_updated_by_tsqr_after_save_and_load(spark, rng, tmp_path):
    x, y = _ill_conditioned(rng, 1200)
    old = L.LinearRegression().fit(D.from_numpy(spark, x[:700], y[:700]))
    assert old.summary.solver == "tsqr" and old.params["solver"] == "auto"
    models.save_linreg(old, str(tmp_path / "m"))
    assert (tmp_path / "m" / "r_factor.npy").exists()
    loaded = models.load_linreg(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.factor.r, old.factor.r)
    new = L.update(loaded, added=D.from_numpy(spark, x[700:], y[700:], num_partitions=3))
    assert new.summary.solver == "tsqr"  # auto resolves to the solver the fit used
    design = np.column_stack([np.ones(len(y)), x])
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[new.intercept, new.coefficients], expected, rtol=1e-7)
    ref = _ols(x, y)
    np.testing.assert_allclose(new.summary.std_errors, ref.bse, rtol=1e-6)
    assert new.summary.r2 == pytest.approx(ref.rsquared, rel=1e-10)
    assert new.summary.n == 1200
    assert new.summary.condition_number == pytest.approx(
        st.gram_condition(new.stats, True), rel=1e-12
    )
    # the merged R is the R of all the rows: RᵀR equals the Gram of the stacked design
    stacked = np.column_stack([design, y])
    np.testing.assert_allclose(
        new.factor.r.T @ new.factor.r, stacked.T @ stacked, rtol=1e-10, atol=1e-8
    )
    models.save_linreg(new, str(tmp_path / "m2"))
    again = models.load_linreg(str(tmp_path / "m2"))
    assert again.summary.solver == "tsqr" and again.factor.n == 1200


def test_tsqr_cannot_subtract_nor_update_without_its_factor(spark, rng, tmp_path):
    x, y = _ill_conditioned(rng, 300)
    model = L.LinearRegression(solver="tsqr").fit(D.from_numpy(spark, x, y))
    with pytest.raises(InputError, match="TSQR.*cannot remove rows"):
        L.update(model, removed=D.from_numpy(spark, x[:50], y[:50]))
    models.save_linreg(model, str(tmp_path / "m"))
    (tmp_path / "m" / "r_factor.npy").unlink()  # as a model saved before R was kept
    old = models.load_linreg(str(tmp_path / "m"))
    assert old.factor is None and old.summary.solver == "tsqr"
    with pytest.raises(InputError, match="no saved R factor"):
        L.update(old, added=D.from_numpy(spark, x[:50], y[:50]))


def test_cli_subtract_from_a_tsqr_model_exits_2_with_one_line(spark, rng, tmp_path, capsys):
    x, y = _ill_conditioned(rng, 200)
    csv = tmp_path / "d.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="a,b,c,y", comments="")
    fit = ["linreg", "fit", "--input", str(csv), "--label", "y", "--solver", "tsqr"]
    assert main([*fit, "--output", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    code = main(
        ["linreg", "update", "--model", str(tmp_path / "m"), "--subtract", str(csv)]
        + ["--output", str(tmp_path / "u")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot remove rows" in err and "\n" not in err
    assert not (tmp_path / "u").exists()


def test_weights_that_sum_to_zero_are_refused(spark, rng, tmp_path, capsys):
    x = rng.normal(size=(100, 2))
    y = x @ [1.0, 2.0] + rng.normal(size=100)
    for solver in ("auto", "tsqr"):
        with pytest.raises(InputError, match="weights sum to zero"):
            L.LinearRegression(solver=solver).fit(D.from_numpy(spark, x, y, np.zeros(100)))
    csv = tmp_path / "d.csv"
    np.savetxt(
        csv, np.column_stack([x, y, np.zeros(100)]), delimiter=",", header="a,b,y,w", comments=""
    )
    argv = ["linreg", "fit", "--input", str(csv), "--label", "y", "--weight-col", "w"]
    code = main([*argv, "--output", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "weights sum to zero" in err and "constant" not in err


@pytest.mark.parametrize(
    ("case", "column", "cause"),
    [
        ("label 1e200", "y", "overflow"),
        ("cell 1e308", "x2", "overflow"),
        ("feature x 1e200", "x1", "overflow"),
        ("feature x 1e-200", "x1", "underflow"),
    ],
)
@pytest.mark.parametrize("solver", ["auto", "tsqr"])
def test_statistics_that_cannot_be_trusted_name_the_column(spark, rng, case, column, cause, solver):
    x = rng.normal(size=(200, 2))
    y = x @ [1.0, 2.0] + rng.normal(size=200)
    if case == "label 1e200":
        y = y * 1e200
    elif case == "cell 1e308":
        x[17, 1] = 1e308
    elif case == "feature x 1e200":
        x[:, 0] *= 1e200
    else:
        x[:, 0] *= 1e-200
    data = D.from_numpy(spark, x, y)
    with pytest.raises(InputError, match=f"column '{column}'.*{cause}.*rescale"):
        L.LinearRegression(solver=solver).fit(data)


def test_large_but_representable_values_fit_correctly(spark, rng):
    """1e100-scale columns square to 1e200: no overflow, so the fit must be right, not refused."""
    x = rng.normal(size=(300, 2)) * [1e100, 1.0]
    y = x @ [3e-100, 2.0] * 1e100 + rng.normal(size=300) * 1e100
    model = L.LinearRegression().fit(D.from_numpy(spark, x, y))
    # statsmodels' pinv cuts the unit-scale column off next to 1e100 ones: give it scaled
    # columns and scale its answer back (β_j = γ_j·s_y/s_j)
    s_x, s_y = np.abs(x).max(0), np.abs(y).max()
    ref = _ols(x / s_x, y / s_y)
    scale = s_y / np.r_[1.0, s_x]
    np.testing.assert_allclose(
        np.r_[model.intercept, model.coefficients], ref.params * scale, rtol=1e-9
    )
    np.testing.assert_allclose(model.summary.std_errors, ref.bse * scale, rtol=1e-8)


@pytest.mark.parametrize("solver", ["cholesky", "tsqr"])
def test_opposite_extreme_scales_give_finite_standard_errors(spark, rng, solver):
    """Label ×2^465 (≈1e140), a feature ×2^-465: the coefficient is ≈1e280 and its variance
    ≈1e560 overflows, but its standard error does not; it was null (t = 0, p = 1) before."""
    z = rng.normal(size=(200, 2))
    u = 1 + z @ [0.7, -1.3] + rng.normal(size=200)
    x, y = np.ldexp(z, [-465, 0]), np.ldexp(u, 465)
    model = L.LinearRegression(solver=solver).fit(D.from_numpy(spark, x, y))
    ref = _ols(z, u)  # the same fit with the exact power-of-two scalings taken out
    scale = np.ldexp(1.0, np.array([465, 930, 465]))
    np.testing.assert_allclose(
        np.r_[model.intercept, model.coefficients], ref.params * scale, rtol=1e-9
    )
    np.testing.assert_allclose(model.summary.std_errors, ref.bse * scale, rtol=1e-8)
    np.testing.assert_allclose(model.summary.t_values, ref.tvalues, rtol=1e-8)


@pytest.mark.parametrize("solver", ["auto", "tsqr", "cholesky"])
def test_exact_collinearity_is_still_caught_by_default(spark, rng, solver):
    n = 4000
    a, b, c = rng.normal(size=(3, n)) * np.array([[1.0], [1e3], [1e-3]])
    cases = {
        "'d' is a linear combination of 'a', 'c'": a - 2 * c,
        "'d' is a linear combination of 'a', 'b', 'c'": 0.1 * a + 0.3 * b - 7 * c,
        "'d' is a linear combination of 'b'": b.copy(),
    }
    for message, d in cases.items():
        x = np.column_stack([a, b, c, d])
        y = a + b + c + rng.normal(size=n)
        data = D.from_numpy(
            spark, x, y, num_partitions=3, blocks_per_partition=2, features=["a", "b", "c", "d"]
        )
        with pytest.raises(InputError, match=message):
            L.LinearRegression(solver=solver).fit(data)


def test_alias_tol_gives_r_behaviour(spark, rng, tmp_path, capsys):
    """A column independent at 1e-9 relative: kept by default (LAPACK-like), aliased at R's 1e-7."""
    a, b = rng.normal(size=(2, 500))
    d = a + b + 1e-9 * rng.normal(size=500)
    x = np.column_stack([a, b, d])
    y = a - b + rng.normal(size=500)
    data = D.from_numpy(spark, x, y, features=["a", "b", "d"])
    model = L.LinearRegression(solver="tsqr").fit(data)
    ref = np.linalg.lstsq(np.column_stack([np.ones(500), x]), y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[model.intercept, model.coefficients], ref, rtol=1e-6)
    with pytest.raises(InputError, match="'d' is a linear combination of 'a', 'b'"):
        L.LinearRegression(solver="tsqr", alias_tol=1e-7).fit(data)
    with pytest.raises(InputError, match="alias_tol"):
        L.LinearRegression(alias_tol=2.0)
    csv = tmp_path / "d.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="a,b,d,y", comments="")
    argv = ["linreg", "fit", "--input", str(csv), "--label", "y", "--solver", "tsqr"]
    assert main([*argv, "--alias-tol", "1e-7", "--output", str(tmp_path / "r")]) == 2
    assert "'d' is a linear combination" in capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "m")]) == 0
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["params"]["alias_tol"] is None and doc["summary"]["solver"] == "tsqr"
