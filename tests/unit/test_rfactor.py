"""TSQR's ``RFactor`` merges without Spark: against ``np.linalg.qr`` of all the rows stacked."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from sparkml_jobs.regression.tsqr import RFactor


def design(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, fit_intercept: bool) -> np.ndarray:
    """√w·[1?, X, y], built independently of the module."""
    z = np.column_stack([*([np.ones(len(x))] if fit_intercept else []), x, y])
    return z if w is None else z * np.sqrt(w)[:, None]


def r_of(z: np.ndarray) -> np.ndarray:
    """numpy's R of the whole stack, rows signed for a non-negative diagonal (R is then unique)."""
    r = np.linalg.qr(z, mode="r")
    return r * np.where(np.diag(r) < 0, -1.0, 1.0)[:, None]


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
# [3] * 60: blocks of fewer rows than columns, whose R is short
@pytest.mark.parametrize("sizes", [[500], [200, 1, 2, 150, 40], [3] * 60])
def test_merged_blocks_equal_the_qr_of_the_stacked_rows(rng, fit_intercept, weighted, sizes):
    n, p = sum(sizes), 4
    x = rng.normal(size=(n, p)) * [1.0, 1e3, 1e-3, 10.0] + [0.0, 5e3, 0.0, -7.0]
    y = x @ rng.normal(size=p) + rng.normal(size=n)
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    starts = np.cumsum([0, *sizes])
    blocks = [
        RFactor.of_block(x[a:b], y[a:b], None if w is None else w[a:b], fit_intercept=fit_intercept)
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]
    merged = reduce(RFactor.merge, blocks, RFactor.zero(p + 1 + fit_intercept))

    z = design(x, y, w, fit_intercept)
    want = r_of(z)
    assert merged.n == n
    assert merged.r.shape == want.shape
    np.testing.assert_array_equal(np.tril(merged.r, -1), 0.0)
    assert (np.diag(merged.r) >= 0).all()
    scale = np.abs(want).max(axis=0)  # per column: the error is relative to the column's size
    np.testing.assert_allclose(merged.r / scale, want / scale, rtol=0, atol=1e-12)
    # and RᵀR is ZᵀZ, whatever the factorisation
    gram = z.T @ z
    np.testing.assert_allclose(
        merged.r.T @ merged.r, gram, rtol=1e-10, atol=1e-10 * abs(gram).max()
    )


def test_short_blocks_stay_short_until_merged(rng):
    """A block with fewer rows than columns gives a (rows × m) R; stacking restores the square."""
    x1, y1 = rng.normal(size=(2, 5)), rng.normal(size=2)
    x2, y2 = rng.normal(size=(9, 5)), rng.normal(size=9)
    one = RFactor.of_block(x1, y1, None, fit_intercept=True)
    assert one.r.shape == (2, 7) and one.n == 2
    both = one.merge(RFactor.of_block(x2, y2, None, fit_intercept=True))
    assert both.r.shape == (7, 7) and both.n == 11
    want = r_of(np.vstack([design(x1, y1, None, True), design(x2, y2, None, True)]))
    np.testing.assert_allclose(both.r, want, rtol=0, atol=1e-12 * abs(want).max())


def test_zero_is_the_identity_and_merge_order_does_not_matter(rng):
    parts = [
        RFactor.of_block(rng.normal(size=(30, 3)), rng.normal(size=30), None, True)
        for _ in range(3)
    ]
    zero = RFactor.zero(5)
    for part in parts:
        assert zero.merge(part).r is part.r and part.merge(zero).r is part.r
        assert zero.merge(part).n == part.n == part.merge(zero).n
    a, b, c = parts
    left, right, swapped = a.merge(b).merge(c), a.merge(b.merge(c)), c.merge(a).merge(b)
    for other in (right, swapped):
        np.testing.assert_allclose(other.r, left.r, rtol=1e-12, atol=1e-12 * abs(left.r).max())
        assert other.n == left.n == 90


@pytest.mark.parametrize("shape", [(0, 4), (3, 5), (6, 6)])
def test_an_r_factor_pickles_as_its_upper_trapezoid_bit_for_bit(rng, shape):
    """Half the bytes on the wire (PySpark frames a pickle with a 32-bit length); the same R."""
    import pickle

    from sparkml_jobs.regression import tsqr

    r = np.triu(rng.normal(size=shape))
    factor = tsqr.RFactor(r, 17)
    back = pickle.loads(pickle.dumps(factor, protocol=5))
    assert back.n == 17 and back.r.shape == r.shape
    np.testing.assert_array_equal(back.r.view(np.uint64), r.view(np.uint64))
    k, m = shape
    assert len(tsqr.pack_rows(r)) == k * m - k * (k - 1) // 2
    stacked = pickle.loads(pickle.dumps(tsqr.StackedR(factor, (rng.normal(size=(2, m)),))))
    np.testing.assert_array_equal(stacked.factor.r, r)
