"""Pure kernels of the regression solvers (no Spark): the TSQR rank tolerance, the one solver
interface and the checks on untrustworthy statistics (RFactor merges: test_rfactor.py)."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import guards, tsqr
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression.solver import Solver


def _factor(x, y, w=None, parts=1, fit_intercept=True):
    chunks = np.array_split(np.arange(len(x)), parts)
    factors = [
        tsqr.RFactor.of_block(x[i], y[i], None if w is None else w[i], fit_intercept)
        for i in chunks
    ]
    return reduce(tsqr.RFactor.merge, factors, tsqr.RFactor.zero(x.shape[1] + 1 + fit_intercept))


def _stats(x, y, w=None):
    return st.SufficientStats.of_block(np.column_stack([x, y]), w)


def test_default_alias_tol_is_lapack_practice_capped_at_r():
    eps = np.finfo(float).eps
    assert tsqr.default_alias_tol(82, 11) == 82 * eps
    assert tsqr.default_alias_tol(5, 40) == 40 * eps
    assert tsqr.default_alias_tol(10**12, 3) == tsqr.R_ALIAS_TOL == 1e-7


@pytest.mark.parametrize("n", [8, 30, 1000])
@pytest.mark.parametrize("parts", [1, 4])
def test_exact_collinearity_is_caught_at_every_size(rng, n, parts):
    """Rounding leaves an exactly dependent column ~eps of its norm: below n·eps at any n."""
    a, b, c = rng.normal(size=(3, n)) * np.array([[1.0], [1e4], [1e-4]])
    y = rng.normal(size=n)
    for d in (a - 2 * c, 0.1 * a + 0.3 * b - 7 * c, b / 3):
        factor = _factor(np.column_stack([a, b, c, d]), y, parts=min(parts, n // 5))
        with pytest.raises(InputError, match="'x4' is a linear combination"):
            tsqr.solve_r(factor, w_sum=n)


def test_solver_interface_agrees_with_lstsq_for_both_kinds(rng):
    x = rng.normal(size=(400, 3))
    y = x @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=400)
    stats, factor = _stats(x, y), _factor(x, y, parts=3)
    expected = np.linalg.lstsq(np.column_stack([np.ones(400), x]), y, rcond=None)
    ssr = float(np.sum((y - np.column_stack([np.ones(400), x]) @ expected[0]) ** 2))
    for kind in ("cholesky", "tsqr"):
        sol, got_ssr = Solver(kind=kind).solve(stats, factor)
        np.testing.assert_allclose(np.r_[sol.intercept, sol.coefficients], expected[0], rtol=1e-10)
        assert got_ssr == pytest.approx(ssr, rel=1e-9)
    resolved, condition = Solver().resolve(stats)
    assert resolved.kind == "cholesky" and condition == st.gram_condition(stats, True)
    with pytest.raises(ValueError, match="resolve"):
        Solver().solve(stats)


def test_auto_resolves_to_tsqr_when_ill_conditioned(rng):
    t = rng.uniform(10, 11, size=200)
    x = np.column_stack([t, t**2, t**3])
    resolved, condition = Solver().resolve(_stats(x, t))
    assert resolved.kind == "tsqr" and resolved.needs_factor and condition > 1e4


def test_update_rules_never_switch_solvers():
    Solver(kind="cholesky").check_update(None, removing=True)  # statistics subtract
    Solver(kind="tsqr").check_update(tsqr.RFactor.zero(3), removing=False)
    with pytest.raises(InputError, match="cannot remove rows"):
        Solver(kind="tsqr").check_update(tsqr.RFactor.zero(3), removing=True)
    with pytest.raises(InputError, match="no saved R factor"):
        Solver(kind="tsqr").check_update(None, removing=False)


@pytest.mark.parametrize("bad", [0.0, 1.0, -1e-7, float("nan"), "1e-7"])
def test_alias_tol_is_validated(bad):
    with pytest.raises(InputError, match="alias_tol"):
        Solver(alias_tol=bad)


def test_alias_tol_applies_to_cholesky_in_norm_units(rng):
    """A column left with 1e-6 of its norm: aliased by Cholesky's default (1e-5), kept at 1e-7."""
    a, b = rng.normal(size=(2, 2000))
    d = a + b + 1e-6 * rng.normal(size=2000)
    stats = _stats(np.column_stack([a, b, d]), a - b + rng.normal(size=2000))
    with pytest.raises(InputError, match="'x3' is a linear combination of 'x1', 'x2'"):
        Solver(kind="cholesky").solve(stats)
    sol, _ = Solver(kind="cholesky", alias_tol=1e-7).solve(stats)
    assert sol.aliased == []


def test_weights_summing_to_zero_are_named():
    stats = st.SufficientStats.of_block(np.ones((5, 3)), np.zeros(5))
    with pytest.raises(InputError, match="weight column 'w': weights sum to zero"):
        guards.check_statistics(stats, ["a", "b", "y"], weight="w")


@pytest.mark.parametrize(
    ("scale", "column", "message"),
    [
        (1e200, 1, "column 'b': values up to 3.*e\\+200 overflow the sums of squares; rescale it"),
        (1e-200, 0, "column 'a': values of magnitude .*e-200 .* underflow"),
    ],
)
def test_untrustworthy_statistics_name_the_column(rng, scale, column, message):
    values = rng.normal(size=(50, 3))
    values[:, column] *= scale
    values[0, column] = 3 * scale
    with np.errstate(over="ignore", invalid="ignore"):
        stats = st.SufficientStats.of_block(values)
    ranges = guards.ColumnRange.of_block(values)
    with pytest.raises(InputError, match=message):
        guards.check_statistics(stats, ["a", "b", "y"], ranges=ranges)


def test_a_constant_column_is_not_mistaken_for_underflow(rng):
    values = rng.normal(size=(50, 3))
    values[:, 0] = 1e-250  # constant: exactly zero spread, reported later as "constant"
    guards.check_statistics(
        st.SufficientStats.of_block(values),
        ["a", "b", "y"],
        ranges=guards.ColumnRange.of_block(values),
    )


def test_subnormal_or_missing_estimates_are_refused():
    kept = np.array([True, True])
    guards.check_fitted(1.0, np.array([1e-300, 2.0]), kept, [0.1, 1e-301, 0.2], 5, ["a", "b"])
    with pytest.raises(InputError, match="column 'a': its coefficient is below"):
        guards.check_fitted(1.0, np.array([1e-310, 2.0]), kept, [0.1, 0.1, 0.2], 5, ["a", "b"])
    with pytest.raises(InputError, match="non-finite"):
        guards.check_fitted(1.0, np.array([1.0, 2.0]), kept, [0.1, None, 0.2], 5, ["a", "b"])
    # no residual degrees of freedom: standard errors are legitimately unknown
    guards.check_fitted(1.0, np.array([1.0, 2.0]), kept, [None, None, None], 0, ["a", "b"])


def test_solver_and_guards_are_pure():
    from tests.unit.test_pure_imports import import_without_pyspark

    proc = import_without_pyspark(
        ["sparkml_jobs.regression.solver", "sparkml_jobs.regression.guards"]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
