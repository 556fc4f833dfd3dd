"""Sufficient statistics, merge and solve: pure numpy, against lstsq and closed forms."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import stats as st


def _stats(z, w=None, parts=1):
    pieces = np.array_split(np.arange(len(z)), parts)
    return reduce(
        st.SufficientStats.merge,
        [st.SufficientStats.of_block(z[i], None if w is None else w[i]) for i in pieces],
        st.SufficientStats.zero(z.shape[1]),
    )


def test_merge_equals_one_block_and_is_associative(rng):
    z = rng.normal(size=(1000, 5)) * [1, 10, 100, 1e3, 1] + [1e6, -3, 0, 5, 2]
    w = rng.uniform(0.1, 3, size=1000)
    # reference in extended precision
    zl, wl = z.astype(np.longdouble), w.astype(np.longdouble)
    mean = (wl @ zl) / wl.sum()
    centred = zl - mean
    comoment = (centred * wl[:, None]).T @ centred
    scale = np.sqrt(np.outer(np.diag(comoment), np.diag(comoment))).astype(float)
    for parts in (1, 2, 7, 31):
        merged = _stats(z, w, parts)
        assert merged.n == 1000
        np.testing.assert_allclose(merged.w_sum, float(wl.sum()), rtol=1e-13)
        np.testing.assert_allclose(merged.mean, mean.astype(float), rtol=1e-13)
        # a mean of 1e6 with unit spread is only known to ~1e-10 absolute in float64
        assert np.all(np.abs(merged.comoment - comoment.astype(float)) <= 1e-10 * scale)
    a, b, c = (st.SufficientStats.of_block(z[s], w[s]) for s in np.array_split(np.arange(1000), 3))
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    assert np.all(np.abs(left.comoment - right.comoment) <= 1e-10 * scale)


def test_centred_merge_keeps_digits_with_huge_means(rng):
    # x = 1e9 + small noise: raw Σx² would lose every digit of the variance in float64
    x = 1e9 + rng.normal(size=(4000, 1))
    z = np.hstack([x, x * 2])
    merged = _stats(z, parts=40)
    exact_var = np.var(x[:, 0] - 1e9) * len(x)
    np.testing.assert_allclose(merged.comoment[0, 0], exact_var, rtol=1e-6)


def test_subtract_undoes_merge(rng):
    z = rng.normal(size=(600, 4)) + 50
    a, b = st.SufficientStats.of_block(z[:400]), st.SufficientStats.of_block(z[400:])
    back = a.merge(b).subtract(b)
    assert back.n == 400
    np.testing.assert_allclose(back.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(back.comoment, a.comoment, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_solve_matches_lstsq(rng, fit_intercept, weighted):
    n, p = 500, 6
    x = rng.normal(size=(n, p)) * rng.uniform(0.1, 100, size=p) + rng.normal(size=p) * 10
    y = x @ rng.normal(size=p) + 3.0 + rng.normal(size=n)
    w = rng.uniform(0.2, 2.0, size=n) if weighted else np.ones(n)
    s = _stats(np.column_stack([x, y]), w if weighted else None, parts=5)
    sol = st.solve(s, fit_intercept=fit_intercept)
    design = np.column_stack([np.ones(n), x]) if fit_intercept else x
    sw = np.sqrt(w)
    ref = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)[0]
    got = np.r_[sol.intercept, sol.coefficients] if fit_intercept else sol.coefficients
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    # unscaled covariance = (XᵀWX)⁻¹
    inv = np.linalg.inv(design.T @ (design * w[:, None]))
    diag = (
        np.r_[sol.unscaled_var_intercept, sol.unscaled_var] if fit_intercept else (sol.unscaled_var)
    )
    np.testing.assert_allclose(diag, np.diag(inv), rtol=1e-8)


def test_ridge_matches_closed_form(rng):
    n, p, lam = 300, 4, 0.7
    x = rng.normal(size=(n, p)) * [1, 5, 0.2, 3] + [1, 2, 3, 4]
    y = x @ [1.0, -1.0, 2.0, 0.5] + rng.normal(size=n)
    sol = st.solve(_stats(np.column_stack([x, y])), reg_param=lam)
    xc, yc = x - x.mean(0), y - y.mean()
    # minimise (1/n)‖yc − xc β‖² + λ‖β‖²  ⇔  (xcᵀxc + nλI) β = xcᵀyc
    beta = np.linalg.solve(xc.T @ xc + n * lam * np.eye(p), xc.T @ yc)
    np.testing.assert_allclose(sol.coefficients, beta, rtol=1e-10)
    np.testing.assert_allclose(sol.intercept, y.mean() - x.mean(0) @ beta, rtol=1e-10)


def test_duplicated_column_is_named(rng):
    x = rng.normal(size=(100, 3))
    x = np.column_stack([x, x[:, 1]])
    y = x[:, 0] + rng.normal(size=100)
    s = _stats(np.column_stack([x, y]))
    with pytest.raises(InputError, match=r"'d' is a linear combination of 'b'"):
        st.solve(s, names=["a", "b", "c", "d"])
    sol = st.solve(s, names=["a", "b", "c", "d"], on_singular="drop")
    assert np.isnan(sol.coefficients[3]) and sol.aliased == [3]
    ref = np.linalg.lstsq(np.column_stack([np.ones(100), x[:, :3]]), y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[sol.intercept, sol.coefficients[:3]], ref, rtol=1e-9)
    ridge = st.solve(s, reg_param=0.1)
    assert np.isfinite(ridge.coefficients).all()


def test_constant_column_with_intercept_is_aliased(rng):
    x = np.column_stack([rng.normal(size=50), np.full(50, 4.0)])
    s = _stats(np.column_stack([x, x[:, 0] * 2]))
    with pytest.raises(InputError, match="'k' is constant"):
        st.solve(s, names=["z", "k"])


def test_inference_matches_closed_form(rng):
    n, p = 200, 3
    x = rng.normal(size=(n, p))
    y = x @ [0.5, 0.0, -1.0] + 1 + rng.normal(size=n)
    s = _stats(np.column_stack([x, y]))
    sol = st.solve(s)
    design = np.column_stack([np.ones(n), x])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    resid = y - design @ beta
    ssr = float(resid @ resid)
    np.testing.assert_allclose(st.residual_sum_of_squares(s, sol, True), ssr, rtol=1e-9)
    inf = st.inference(s, sol, ssr, fit_intercept=True)
    sigma2 = ssr / (n - p - 1)
    se = np.sqrt(np.diag(np.linalg.inv(design.T @ design)) * sigma2)
    np.testing.assert_allclose(inf.std_errors, se, rtol=1e-9)
    np.testing.assert_allclose(inf.t_values, beta / se, rtol=1e-9)
    from scipy import stats as sps

    np.testing.assert_allclose(inf.p_values, 2 * sps.t.sf(np.abs(beta / se), n - p - 1), rtol=1e-9)
    assert inf.df_resid == n - p - 1
