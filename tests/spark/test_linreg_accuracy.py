"""Certification-grade accuracy: ill-conditioned designs against exact rational arithmetic."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import dataset as D
from sparkml_jobs.regression import estimator as L


def exact_ols(x: np.ndarray, y: np.ndarray):
    """Exact least squares with an intercept, in rationals (the floats are taken as exact)."""
    design = [[Fraction(1)] + [Fraction(v) for v in row] for row in x]
    target = [Fraction(v) for v in y]
    m = len(design[0])
    gram = [[sum(r[a] * r[b] for r in design) for b in range(m)] for a in range(m)]
    rhs = [sum(r[a] * t for r, t in zip(design, target, strict=True)) for a in range(m)]
    # Gauss-Jordan on [G | rhs | I] gives the solution and G⁻¹
    rows = [gram[i] + [rhs[i]] + [Fraction(int(i == j)) for j in range(m)] for i in range(m)]
    for c in range(m):
        pivot = next(r for r in range(c, m) if rows[r][c] != 0)
        rows[c], rows[pivot] = rows[pivot], rows[c]
        lead = rows[c][c]
        rows[c] = [v / lead for v in rows[c]]
        for r in range(m):
            if r != c and rows[r][c] != 0:
                f = rows[r][c]
                rows[r] = [u - f * v for u, v in zip(rows[r], rows[c], strict=True)]
    beta = [rows[i][m] for i in range(m)]
    inv_diag = [rows[i][m + 1 + i] for i in range(m)]
    resid = [
        t - sum(b * v for b, v in zip(beta, r, strict=True))
        for r, t in zip(design, target, strict=True)
    ]
    ssr = sum(e * e for e in resid)
    sigma2 = ssr / (len(design) - m)
    se = [float(sigma2 * d) ** 0.5 for d in inv_diag]
    return np.array([float(b) for b in beta]), np.array(se)


def significant_digits(got, ref) -> float:
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    err = np.abs(got - ref) / np.abs(ref)
    return float(-np.log10(max(err.max(), 1e-17)))


def _fit(spark, x, y, **kwargs):
    model = L.LinearRegression(**kwargs).fit(D.from_numpy(spark, x, y, num_partitions=3))
    return model, np.r_[model.intercept, model.coefficients]


@pytest.mark.parametrize("degree", [5, 8, 10])
def test_polynomial_on_integers(spark, degree):
    """y = 1 + x + … + x^d ± 100 on x = 0…20 (Wampler-style); κ of the scaled Gram up to 1e14."""
    x = np.arange(21.0)
    design = np.column_stack([x**i for i in range(1, degree + 1)])
    y = 1 + design.sum(1) + np.where(np.arange(21) % 2 == 0, 100.0, -100.0)
    beta, se = exact_ols(design, y)
    model, est = _fit(spark, design, y)
    assert model.summary.solver == "tsqr"
    assert significant_digits(est, beta) >= 7
    assert significant_digits(model.summary.std_errors, se) >= 6


@pytest.mark.parametrize("degree", [6, 10])
def test_polynomial_on_a_grid_with_noise(spark, degree):
    rng = np.random.default_rng(degree)
    x = np.arange(-10, 31) / 10.0
    design = np.column_stack([x**i for i in range(1, degree + 1)])
    y = np.round(design @ rng.integers(-5, 6, size=degree) + 3 + rng.normal(size=len(x)), 3)
    beta, se = exact_ols(design, y)
    model, est = _fit(spark, design, y)
    assert significant_digits(est, beta) >= 7
    assert significant_digits(model.summary.std_errors, se) >= 6


def test_near_exact_fit(spark):
    """Wampler1: y = 1 + x + … + x⁵ exactly: coefficients all 1, residuals and errors zero."""
    x = np.arange(21.0)
    design = np.column_stack([x**i for i in range(1, 6)])
    y = 1 + design.sum(1)
    model, est = _fit(spark, design, y)
    np.testing.assert_allclose(est, np.ones(6), rtol=1e-9)
    assert model.summary.r2 == pytest.approx(1.0, abs=1e-15)
    assert max(model.summary.std_errors) < 1e-7


def test_longley(spark):
    """Longley's collinear macro-economic series (NIST StRD), exact answer in rationals."""
    frame = sm.datasets.longley.load_pandas().data
    x, y = frame.iloc[:, 1:].to_numpy(float), frame.iloc[:, 0].to_numpy(float)
    beta, se = exact_ols(x, y)
    for solver in ("auto", "cholesky", "tsqr"):
        model, est = _fit(spark, x, y, solver=solver)
        assert significant_digits(est, beta) >= 7, solver
        assert significant_digits(model.summary.std_errors, se) >= 6, solver
    # NIST's certified values for two of them
    assert est[1] == pytest.approx(15.0618722713733, rel=1e-9)
    assert model.summary.r2 == pytest.approx(0.995479004577296, rel=1e-9)


# NIST StRD, Filip (Filippelli, NIST): y = B0 + B1·x + … + B10·x¹⁰, 82 observations. The data
# (tests/data/filip.csv) and the certified values below are NIST's, computed by NIST in
# 500-digit arithmetic; exact rational arithmetic on the decimal data reproduces them to 15 digits.
FILIP_CERTIFIED = [  # (estimate, standard deviation of the estimate), B0 … B10
    (-1467.48961422980, 298.084530995537),
    (-2772.17959193342, 559.779865474950),
    (-2316.37108160893, 466.477572127796),
    (-1127.97394098372, 227.204274477751),
    (-354.478233703349, 71.6478660875927),
    (-75.1242017393757, 15.2897178747400),
    (-10.8753180355343, 2.23691159816033),
    (-1.06221498588947, 0.221624321934227),
    (-0.670191154593408e-01, 0.142363763154724e-01),
    (-0.246781078275479e-02, 0.535617408889821e-03),
    (-0.402962525080404e-04, 0.896632837373868e-05),
]
FILIP_RESIDUAL_SD = 0.334801051324544e-02
FILIP_R2 = 0.996727416185620


def _filip():
    path = Path(__file__).resolve().parent.parent / "data" / "filip.csv"
    y, x = np.loadtxt(path, delimiter=",", skiprows=1, unpack=True)
    return np.column_stack([x**i for i in range(1, 11)]), y


def test_filip_certified_values(spark):
    """NIST's hardest linear set (scaled-Gram κ ≈ 1e17) is solved by default, not refused: the
    float64 powers of x alone move the answer ~2e-8 from NIST's, so ≥ 7 digits is the bar."""
    design, y = _filip()
    assert design.shape == (82, 10)
    model, est = _fit(spark, design, y)
    assert model.summary.solver == "tsqr" and model.summary.aliased == []
    certified = np.array(FILIP_CERTIFIED)
    assert significant_digits(est, certified[:, 0]) >= 7
    assert significant_digits(model.summary.std_errors, certified[:, 1]) >= 7
    assert significant_digits(model.summary.residual_std, FILIP_RESIDUAL_SD) >= 7
    assert significant_digits(model.summary.r2, FILIP_R2) >= 9
    # R's lm tolerance (1e-7) is still available, and refuses Filip as R does
    with pytest.raises(InputError, match="'x10' is a linear combination"):
        _fit(spark, design, y, alias_tol=1e-7)


def test_tsqr_equals_cholesky_on_well_conditioned_data(spark, rng):
    x = rng.normal(size=(2000, 6))
    y = x @ rng.normal(size=6) + rng.normal(size=2000)
    w = rng.uniform(0.5, 2, size=2000)
    data = D.from_numpy(spark, x, y, w, num_partitions=4)
    a = L.LinearRegression(solver="cholesky").fit(data)
    b = L.LinearRegression(solver="tsqr").fit(data)
    assert a.summary.solver == "cholesky" and b.summary.solver == "tsqr"
    np.testing.assert_allclose(b.coefficients, a.coefficients, rtol=1e-10)
    np.testing.assert_allclose(b.summary.std_errors, a.summary.std_errors, rtol=1e-10)
    np.testing.assert_allclose(b.summary.r2, a.summary.r2, rtol=1e-12)
    ridge = [L.LinearRegression(solver=s, reg_param=0.3).fit(data) for s in ("cholesky", "tsqr")]
    np.testing.assert_allclose(ridge[1].coefficients, ridge[0].coefficients, rtol=1e-10)
    np.testing.assert_allclose(ridge[1].summary.std_errors, ridge[0].summary.std_errors, rtol=1e-9)


def test_tsqr_rank_deficiency_named_and_dropped(spark, rng):
    x = rng.normal(size=(300, 3))
    x = np.column_stack([x, x[:, 0] - 2 * x[:, 2]])
    y = x[:, :3] @ [1.0, 2.0, 3.0] + rng.normal(size=300)
    data = D.from_numpy(spark, x, y, num_partitions=2, features=["a", "b", "c", "d"])
    with pytest.raises(InputError, match="'d' is a linear combination of 'a', 'c'"):
        L.LinearRegression(solver="tsqr").fit(data)
    model = L.LinearRegression(solver="tsqr", on_singular="drop").fit(data)
    assert np.isnan(model.coefficients[3]) and model.summary.aliased == ["d"]
    ref = sm.OLS(y, sm.add_constant(x[:, :3])).fit()
    np.testing.assert_allclose(
        np.r_[model.intercept, model.coefficients[:3]], ref.params, rtol=1e-9
    )
    assert model.summary.std_errors[4] is None
    np.testing.assert_allclose(model.summary.std_errors[:4], ref.bse, rtol=1e-9)
