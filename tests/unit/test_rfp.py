"""RFP storage and the wide solve built on it, against LAPACK's own conversions and numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from sparkml_jobs.regression import rfp
from sparkml_jobs.regression.packed import pack

ORDERS = [1, 2, 5, 6, 17, 300, 301]


def spd(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n + 3, n))
    return a.T @ a + np.eye(n)


def lapack_rfp(matrix: np.ndarray) -> np.ndarray:
    """Oracle: LAPACK's ``dtpttf`` of the packed upper triangle (TRANSR='N', UPLO='U')."""
    arf, info = linalg.lapack.dtpttf(len(matrix), pack(matrix), transr="N", uplo="U")
    assert info == 0
    return arf


@pytest.mark.parametrize("n", ORDERS)
def test_layout_equals_lapacks_conversion(n):
    matrix = spd(n, n)
    ones = np.ones(n)
    np.testing.assert_array_equal(rfp.from_upper(matrix, n, ones), lapack_rfp(matrix))
    np.testing.assert_array_equal(rfp.diagonal(lapack_rfp(matrix), n), np.diag(matrix))


@pytest.mark.parametrize("n", ORDERS)
def test_only_the_upper_triangle_of_a_wider_source_is_read(n):
    """``full`` may be the whole co-moment (one column more) and its lower half is never read."""
    matrix = spd(n, 2 * n)
    source = np.zeros((n + 1, n + 1))
    source[:n, :n] = np.triu(matrix)
    source[n, :] = source[:, n] = np.nan
    rng = np.random.default_rng(n)
    scale, m, w = rng.uniform(0.5, 3.0, n), rng.normal(size=n), 2.5
    want = (matrix + w * np.outer(m, m)) / np.outer(scale, scale)
    got = rfp.from_upper(source, n, scale, (w, m))
    np.testing.assert_allclose(got, lapack_rfp(want), rtol=1e-15, atol=0)


@pytest.mark.parametrize("n", ORDERS)
def test_norm_product_factor_solve_inverse_equal_numpy(n):
    matrix = spd(n, 3 * n)
    arf = rfp.from_upper(matrix, n, np.ones(n))
    assert rfp.one_norm(arf, n) == pytest.approx(np.abs(matrix).sum(axis=0).max(), rel=1e-14)
    x = np.random.default_rng(n).normal(size=n)
    np.testing.assert_allclose(rfp.matvec(arf, n, x), matrix @ x, rtol=1e-12, atol=1e-12)
    factor, info = rfp.cholesky(arf, n)
    assert info == 0
    np.testing.assert_allclose(rfp.solve(factor, n, x), np.linalg.solve(matrix, x), rtol=1e-10)
    inverse = np.linalg.inv(matrix)
    exact = np.abs(inverse).sum(axis=0).max()
    estimate = rfp.inverse_norm_estimate(factor, n)
    assert exact / 3 <= estimate <= exact * (1 + 1e-12)  # a lower estimate, within its guarantee
    inv = rfp.inverse(factor, n)
    np.testing.assert_allclose(rfp.diagonal(inv, n), np.diag(inverse), rtol=1e-10)
    np.testing.assert_allclose(inv, lapack_rfp(inverse), rtol=1e-9, atol=1e-12 * exact)


def test_the_estimate_equals_lapacks_dpocon():
    """Same algorithm (``dlacn2``) as LAPACK's condition estimate of the full factor."""
    for n, seed in ((40, 1), (301, 2), (600, 3)):
        scale = np.random.default_rng(seed).uniform(0.1, 10, n)
        matrix = spd(n, seed) * np.outer(scale, scale)  # badly scaled: a condition of ~1e6
        anorm = np.abs(matrix).sum(axis=0).max()
        chol = linalg.cholesky(matrix, lower=True)
        rcond, info = linalg.lapack.dpocon(chol, anorm, uplo="L")
        factor, _ = rfp.cholesky(rfp.from_upper(matrix, n, np.ones(n)), n)
        assert rfp.condition(factor, n, anorm) == pytest.approx(1 / rcond, rel=1e-9)


def test_an_indefinite_matrix_reports_its_failing_minor():
    matrix = spd(6, 1)
    matrix[3, 3] = -1.0
    _, info = rfp.cholesky(rfp.from_upper(matrix, 6, np.ones(6)), 6)
    assert info == 4
