"""The normal-equations solve on a wide design: accuracy past the exact-condition cut-off, the
in-place memory bound, and TSQR's stacked fold — against numpy/scipy oracles."""

from __future__ import annotations

import tracemalloc
from functools import reduce

import numpy as np
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import packed as pk
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression.tsqr import RFactor, StackedR

P = st.EXACT_CONDITION_MAX_P + 100  # the LAPACK-estimate branch of the condition number


def wide_problem(seed: int, n: int, p: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 20.0, size=p) + rng.normal(size=p) * 5
    y = 2.0 + x @ rng.normal(size=p) + rng.normal(size=n)
    return x, y


def statistics(z: np.ndarray, storage: str):
    """The full matrix, or the packed triangle a wide fit keeps (read-only, as in a model)."""
    if storage == "full":
        return st.SufficientStats.of_block(z)
    return pk.PackedStats.zero(z.shape[1]).absorb(z).frozen()


@pytest.fixture(scope="module", params=["full", "packed"])
def wide(request):
    x, y = wide_problem(7, 2 * P, P)
    return x, y, statistics(np.column_stack([x, y]), request.param)


def test_wide_solve_matches_lstsq_and_the_explicit_inverse(wide):
    x, y, stats = wide
    sol = st.solve(stats)
    design = np.column_stack([np.ones(len(x)), x])
    truth = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(sol.intercept, truth[0], rtol=1e-9)
    np.testing.assert_allclose(
        sol.coefficients, truth[1:], rtol=1e-8, atol=1e-10 * abs(truth).max()
    )
    got = np.concatenate([[sol.intercept], sol.coefficients])
    assert np.abs(got - truth).max() <= 1e-9 * np.abs(truth).max()  # the bound
    centred = x - x.mean(axis=0)
    inverse = np.linalg.inv(centred.T @ centred)
    np.testing.assert_allclose(sol.unscaled_var, np.diag(inverse), rtol=1e-9)
    mean = x.mean(axis=0)
    want = 1 / len(x) + mean @ inverse @ mean
    assert sol.unscaled_var_intercept == pytest.approx(want, rel=1e-9)
    # the condition number: LAPACK's estimate (dpocon) on the full scaled Gram, which the RFP
    # path reproduces step for step; a lower bound of the exact 1-norm condition number
    corr, _, _ = st.scaled_gram(stats, True)
    assert sol.condition_number == pytest.approx(st.condition_number(corr), rel=1e-9)
    assert sol.condition_number <= np.linalg.cond(corr, 1) * (1 + 1e-9)
    assert st.gram_condition(stats, True) == sol.condition_number


def test_wide_ridge_and_no_intercept_match_their_closed_forms(wide):
    x, y, stats = wide
    lam = 0.3
    ridge = st.solve(stats, reg_param=lam)
    xc, yc = x - x.mean(axis=0), y - y.mean()
    a = xc.T @ xc + lam * len(x) * np.eye(P)
    np.testing.assert_allclose(ridge.coefficients, np.linalg.solve(a, xc.T @ yc), rtol=1e-8)
    a_inv = np.linalg.inv(a)
    sandwich = a_inv @ xc.T @ xc @ a_inv
    np.testing.assert_allclose(ridge.unscaled_var, np.diag(sandwich), rtol=1e-6)
    origin = st.solve(stats, fit_intercept=False)
    np.testing.assert_allclose(origin.coefficients, np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-8)
    np.testing.assert_allclose(origin.unscaled_var, np.diag(np.linalg.inv(x.T @ x)), rtol=1e-8)
    full = st.condition_number(st.scaled_gram(stats, False)[0])
    assert st.gram_condition(stats, False) == pytest.approx(full, rel=1e-9)
    assert origin.condition_number == st.gram_condition(stats, False)


def test_wide_aliased_column_is_named_or_dropped(wide):
    x, y, _ = wide
    x = x.copy()
    x[:, 5] = 2 * x[:, 1] - x[:, 3]
    stats = statistics(
        np.column_stack([x, y]), "packed" if isinstance(wide[2], pk.PackedStats) else "full"
    )
    with pytest.raises(InputError, match="'x6' is a linear combination of 'x2', 'x4'"):
        st.solve(stats)
    dropped = st.solve(stats, on_singular="drop")
    assert dropped.aliased == [5] and np.isnan(dropped.coefficients[5])
    keep = [j for j in range(P) if j != 5]
    truth = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x[:, keep]]), y, rcond=None)[0]
    np.testing.assert_allclose(
        dropped.coefficients[keep], truth[1:], rtol=1e-8, atol=1e-10 * abs(truth).max()
    )


def test_wide_solve_holds_half_a_gram_sized_array(wide):
    """The scaled Gram is built in RFP storage (half a ``p × p`` array), factored, solved and
    inverted in that memory: beyond the statistics the solve's peak is about half a Gram-sized
    array, where the full path held one (and the path before it six to eight copies). The
    solution keeps only the variances: the ``p × p`` covariance does not outlive the solve."""
    _, _, stats = wide
    gram = 8 * P * P
    st.solve(stats)  # warm caches (scipy's LAPACK wrappers)
    tracemalloc.start()
    try:
        sol = st.solve(stats)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sol.unscaled_var.shape == (P,)
    assert peak <= 0.55 * gram, f"solve peaked at {peak / gram:.2f} Gram-sized arrays"


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_stacked_fold_equals_the_qr_of_all_rows(fit_intercept, weighted):
    rng = np.random.default_rng(3)
    p = 40  # blocks of 7 rows: many blocks per fold of a width of rows
    sizes = [7] * 30 + [3, 50, 1]
    n = sum(sizes)
    x = rng.normal(size=(n, p)) + 4.0
    y = x @ rng.normal(size=p) + rng.normal(size=n)
    w = rng.uniform(0.2, 2.0, size=n) if weighted else None
    starts = np.cumsum([0, *sizes])
    parts = []
    for half in (slice(0, 16), slice(16, len(sizes))):  # two "partitions", merged at the end
        acc = StackedR.zero(p + 1 + fit_intercept)
        for a, b in zip(starts[:-1][half], starts[1:][half], strict=True):
            acc = acc.add(x[a:b], y[a:b], None if w is None else w[a:b], fit_intercept)
            assert acc.waiting < p + 1 + fit_intercept  # folded as soon as a width waits
        parts.append(acc)
    factor = reduce(StackedR.merge, parts).to_factor()
    z = np.column_stack([*([np.ones(n)] if fit_intercept else []), x, y])
    z = z if w is None else z * np.sqrt(w)[:, None]
    r = np.linalg.qr(z, mode="r")
    r *= np.where(np.diag(r) < 0, -1.0, 1.0)[:, None]
    assert factor.n == n
    np.testing.assert_allclose(factor.r, r, atol=1e-9 * abs(r).max())
    blockwise = reduce(
        RFactor.merge,
        [
            RFactor.of_block(x[a:b], y[a:b], None if w is None else w[a:b], fit_intercept)
            for a, b in zip(starts[:-1], starts[1:], strict=True)
        ],
    )
    np.testing.assert_allclose(factor.r, blockwise.r, atol=1e-9 * abs(r).max())


@pytest.mark.parametrize(("n", "block"), [(1, 4), (7, 3), (64, 16), (65, 16), (100, 128)])
def test_blocked_cholesky_equals_lapack(rng, n, block):
    """The blocked factorisation (used past 8,192 columns, where threaded OpenBLAS's dsyrk
    crashes) gives LAPACK's factor, upper triangle zeroed, in the matrix's own memory."""
    from sparkml_jobs.regression import dense

    a = rng.normal(size=(n + 3, n))
    spd = a.T @ a + np.eye(n)
    want = np.linalg.cholesky(spd)
    work = spd.copy()
    chol, info = dense.blocked_cholesky_in_place(work, block=block)
    assert info == 0 and np.shares_memory(chol, work)
    np.testing.assert_allclose(chol, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    assert not np.triu(chol, 1).any()


def test_blocked_cholesky_reports_the_first_failing_minor(rng):
    from sparkml_jobs.regression import dense

    a = rng.normal(size=(40, 40))
    spd = a.T @ a + np.eye(40)
    spd[25, :] = spd[:, 25] = 0.0  # minor 26 is singular
    _, info = dense.blocked_cholesky_in_place(spd.copy(), block=8)
    from scipy import linalg

    _, want = linalg.lapack.dpotrf(spd, lower=1)
    assert info == want == 26


@pytest.mark.parametrize(("rows", "piece_bytes"), [(60, 8 * 5), (60, 8 * 10**6), (9, 8 * 3)])
def test_stacked_r_shipped_in_pieces_merges_as_the_whole_factor(rows, piece_bytes):
    """The records of ``pieces`` (pickled one by one), absorbed by the driver, merge bit for bit
    as the whole partial does; a short R (fewer rows than columns) travels too."""
    import pickle

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(rows + 30, 12)), rng.normal(size=rows + 30)
    a = StackedR.zero(14).add(x[:30], y[:30], None, True)
    b = StackedR.zero(14).add(x[30:], y[30:], None, True)
    records = [pickle.loads(pickle.dumps(r)) for r in b.pieces(piece_bytes)]
    assert len(records) <= StackedR.piece_count(14, piece_bytes)
    got = StackedR.absorb_pieces(a, iter(records)).to_factor()
    whole = a.merge(b).to_factor()
    assert got.n == whole.n == rows + 30
    # equal values (zeros below the diagonal travel as +0.0, as a pickled RFactor's do)
    np.testing.assert_array_equal(got.r, whole.r)
    first = StackedR.absorb_pieces(StackedR.zero(14), iter(records)).to_factor()
    np.testing.assert_array_equal(first.r, b.to_factor().r)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ssr_from_the_statistics_equals_the_residuals_without_a_gram_sized_copy(
    wide, fit_intercept
):
    """The solver's SSR ``vᵀ M v`` equals Σ r² of numpy's residuals, read off the statistics as
    kept: at most a few vectors, whether they hold the full matrix or the packed triangle."""
    x, y, stats = wide
    sol = st.solve(stats, fit_intercept=fit_intercept)
    r = y - sol.intercept - x @ sol.coefficients
    tracemalloc.start()
    try:
        ssr = st.residual_sum_of_squares(stats, sol, fit_intercept)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ssr == pytest.approx(float(r @ r), rel=1e-7)
    assert peak <= 64 * P * 8, f"the SSR allocated {peak / (8 * P * P):.3f} Gram-sized arrays"
