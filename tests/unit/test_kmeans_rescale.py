"""Pure numpy: k-means on rescaled coordinates (``kernels.Rescale``), unit vectors of extreme rows,
and the column ranges the validation counts carry."""

from __future__ import annotations

import numpy as np
import pytest

from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.clustering import rescale
from sparkml_jobs.io.blocks import Block, Counts


def test_no_rescaling_within_1e30():
    assert rescale.Rescale.for_range(np.array([-1e29, 0.0]), np.array([1e29, 5.0])) is None
    assert rescale.Rescale.for_range(np.array([1e-29]), np.array([2e-29])) is None
    assert rescale.Rescale.for_range(np.zeros(2), np.zeros(2)) is None


@pytest.mark.parametrize("base, unit", [(1e160, 1e150), (-3e200, 1e195), (1e-200, 1e-201)])
def test_rescaled_lloyd_step_gives_the_means_and_cost_of_the_prescaled_data(rng, base, unit):
    labels = np.repeat([0, 1], 20)
    z = rng.standard_normal((40, 3)) + 20.0 * labels[:, None]  # two separated groups
    x = base + unit * z
    scaling = rescale.Rescale.for_range(x.min(0), x.max(0))
    assert scaling is not None
    scaled = scaling.apply(x)
    assert np.abs(scaled).max() <= 1.0  # the whole range fits in [-1, 1]
    centers = np.array([scaled[labels == j].mean(0) for j in range(2)])
    partial = kk.lloyd_partial(scaled, centers)
    got = scaling.points_out(partial.sums / partial.weights[:, None])
    expected = np.array([x[labels == j].mean(0) for j in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    zc = np.array([z[labels == j].mean(0) for j in range(2)])
    d2 = ((z[:, None, :] - zc[None]) ** 2).sum(-1).min(1).sum()
    cost = rescale.unscaled_cost(partial.cost, scaling)
    with np.errstate(over="ignore", under="ignore"):
        exact = np.float64(d2) * unit * unit
    if np.isfinite(exact) and exact > np.finfo(float).tiny:
        assert cost == pytest.approx(exact, rel=1e-6)
    else:
        assert cost is None  # float64 cannot hold this cost: the fit refuses


def test_cost_that_float64_cannot_hold_is_none():
    big = rescale.Rescale(shift=np.zeros(1), exponent=700, peak=np.array([2.0**700]))
    small = rescale.Rescale(shift=np.zeros(1), exponent=-700, peak=np.array([2.0**-700]))
    assert rescale.unscaled_cost(1.0, big) is None
    assert rescale.unscaled_cost(1.0, small) is None
    assert rescale.unscaled_cost(0.0, small) == 0.0
    assert rescale.unscaled_cost(3.0, None) == 3.0
    assert rescale.unscaled_cost(float("inf"), None) is None


def test_unit_rows_of_extreme_magnitudes():
    x = np.array([[3e200, 4e200], [3e-200, -4e-200], [0.0, 0.0], [1e308, 1e308]])
    with np.errstate(all="raise"):
        got = kk.normalize_rows(x)
    expected = np.array([[0.6, 0.8], [0.6, -0.8], [0.0, 0.0], [2**-0.5, 2**-0.5]])
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_counts_carry_column_ranges_and_weight_total():
    blocks = [
        Block(
            values=np.array([[1.0, np.inf, 2.0], [-5.0, 3.0, 0.5]]),
            nulls=np.zeros(3, np.int64),
            nonfinite=np.array([0, 1, 0]),
        ),
        Block(
            values=np.array([[7.0, -1.0, 1.5]]),
            nulls=np.zeros(3, np.int64),
            nonfinite=np.zeros(3, np.int64),
        ),
        Block(
            values=np.zeros((0, 3)), nulls=np.zeros(3, np.int64), nonfinite=np.zeros(3, np.int64)
        ),
    ]
    total = Counts.zero(3)
    for block in blocks:
        total = total.merge(Counts.of_block(block, weight_index=2))
    assert total.lo.tolist() == [-5.0, -1.0, 0.5] and total.hi.tolist() == [7.0, 3.0, 2.0]
    assert total.weight_total == 4.0
