"""Packed-triangle statistics (:mod:`sparkml_jobs.regression.packed`) against numpy oracles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.linalg import blas

from sparkml_jobs.regression import packed as pk
from sparkml_jobs.regression import rfp
from sparkml_jobs.regression import stats as st


def oracle(z: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two-pass weighted mean and centred co-moment, straight from the definition."""
    w = np.ones(len(z)) if w is None else w
    mean = np.average(z, axis=0, weights=w)
    centred = z - mean
    return mean, (centred * w[:, None]).T @ centred


def absorb_all(z: np.ndarray, w: np.ndarray | None, cuts: list[int]) -> pk.PackedStats:
    acc = pk.PackedStats.zero(z.shape[1])
    for lo, hi in zip([0, *cuts], [*cuts, len(z)], strict=True):
        acc = acc.absorb(z[lo:hi], None if w is None else w[lo:hi])
    return acc


def test_packed_order_is_lapack_upper_packed():
    # dspr(lower=0) writes x xᵀ in LAPACK's upper packed order: pack must agree with it
    x = np.arange(1.0, 8.0)
    ap = blas.dspr(7, 1.0, x, np.zeros(28), lower=0)
    np.testing.assert_array_equal(ap, pk.pack(np.outer(x, x)))
    np.testing.assert_array_equal(pk.unpack(ap, 7), np.outer(x, x))
    assert list(pk.offsets(4)) == [0, 1, 3, 6, 10]


@pytest.mark.parametrize("weighted", [False, True])
def test_blocks_absorbed_in_place_are_as_accurate_as_the_full_matrix_path_with_large_means(
    weighted,
):
    rng = np.random.default_rng(1)
    # a mean 1e6 times the spread: raw Σx² would lose every digit (κ ~ 1e12 in variance); the
    # centred Chan update keeps ~10, its means' rounding (1e-10 absolute) being the limit
    z = rng.normal(size=(900, 300)) + 1e6
    w = rng.uniform(0.1, 3.0, size=900) if weighted else None
    cuts = [100, 101, 450, 899]
    got = absorb_all(z, w, cuts).to_stats()
    existing = st.SufficientStats.zero(300)
    for lo, hi in zip([0, *cuts], [*cuts, 900], strict=True):
        existing = existing.merge(
            st.SufficientStats.of_block(z[lo:hi], None if w is None else w[lo:hi])
        )
    mean, comoment = oracle(z, w)
    assert got.n == 900
    assert got.w_sum == pytest.approx(900 if w is None else w.sum(), rel=1e-14)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-14, atol=0)
    scale = np.sqrt(np.outer(np.diag(comoment), np.diag(comoment)))
    error = np.max(np.abs(got.comoment - comoment) / scale)
    error_existing = np.max(np.abs(existing.comoment - comoment) / scale)
    assert error < 1e-9
    assert error < 2 * error_existing + 1e-14


def test_merged_partials_equal_one_partial_and_the_full_matrix_path():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(600, 257)) * rng.uniform(0.1, 10, size=257) + 50.0  # 257: past a panel
    w = rng.uniform(0.5, 2.0, size=600)
    parts = [
        absorb_all(z[a:b], w[a:b], [(b - a) // 2]) for a, b in [(0, 170), (170, 171), (171, 600)]
    ]
    merged = pk.PackedStats.zero(257)
    for part in parts:
        merged = merged.merge(part)
    full_path = st.SufficientStats.of_block(z[:300], w[:300]).merge(
        st.SufficientStats.of_block(z[300:], w[300:])
    )
    got = merged.to_stats()
    np.testing.assert_allclose(got.mean, full_path.mean, rtol=1e-14)
    np.testing.assert_allclose(got.comoment, full_path.comoment, rtol=1e-11, atol=1e-9)
    assert got.n == 600


def test_zero_weight_and_empty_blocks_count_rows_but_add_nothing():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(40, 5))
    acc = pk.PackedStats.zero(5).absorb(z[:0]).absorb(z[:10], np.zeros(10)).absorb(z[10:])
    mean, comoment = oracle(z[10:])
    assert (acc.n, acc.w_sum) == (40, 30.0)
    np.testing.assert_allclose(acc.to_stats().comoment, comoment, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(acc.mean, mean, rtol=1e-14)
    empty = pk.PackedStats.zero(5)
    assert empty.merge(acc).to_stats().comoment == pytest.approx(acc.to_stats().comoment)


def test_solution_from_packed_stats_matches_lstsq_on_a_wide_design():
    rng = np.random.default_rng(4)
    n, p = 2000, 1000
    x = rng.normal(size=(n, p)) + rng.normal(size=p) * 3  # well conditioned, non-zero means
    beta = rng.normal(size=p)
    y = 1.5 + x @ beta + rng.normal(size=n)
    z = np.column_stack([x, y])
    packed = absorb_all(z, None, list(range(300, n, 300))).to_stats()
    sol = st.solve(packed)
    design = np.column_stack([np.ones(n), x])
    truth = np.linalg.lstsq(design, y, rcond=None)[0]
    rel = np.abs(np.concatenate([[sol.intercept], sol.coefficients]) - truth) / np.abs(truth).max()
    assert rel.max() < 1e-9
    reference = st.solve(st.SufficientStats.of_block(z))  # the existing full-matrix path
    np.testing.assert_allclose(sol.coefficients, reference.coefficients, rtol=1e-10, atol=1e-12)


def test_sufficient_stats_pickle_ships_the_triangle_and_round_trips():
    rng = np.random.default_rng(5)
    s = st.SufficientStats.of_block(rng.normal(size=(60, 40)))
    payload = pickle.dumps(s)
    back = pickle.loads(payload)
    np.testing.assert_array_equal(back.comoment, s.comoment)
    assert back.n == s.n and back.w_sum == s.w_sum
    assert len(payload) < 8 * (40 * 41 // 2 + 40) + 500  # the triangle and the mean, no more


def _copy(s: pk.PackedStats) -> pk.PackedStats:
    return pk.PackedStats(n=s.n, w_sum=s.w_sum, mean=s.mean.copy(), packed=s.packed.copy())


@pytest.mark.parametrize("piece_bytes", [8, 8 * 7, 8 * 1000, 8 * 10**6])
def test_statistics_shipped_in_pieces_merge_as_whole_partials(piece_bytes):
    """The records of :meth:`pieces`, pickled one by one as the JVM carries them, rebuild a
    partial bit for bit and merge into a running triangle bit for bit as :meth:`merge` does;
    and against the two-pass oracle."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(500, 40)) * rng.uniform(0.1, 10, size=40) + 7.0
    w = rng.uniform(0.5, 2.0, size=500)
    a, b = absorb_all(z[:200], w[:200], [50]), absorb_all(z[200:], w[200:], [100])
    records = [pickle.loads(pickle.dumps(r)) for r in b.pieces(piece_bytes)]
    assert all(np.asarray(r).nbytes <= max(piece_bytes, 8) for r in records[1:])
    rebuilt = pk.PackedStats.absorb_pieces(None, iter(records))
    assert rebuilt.packed.tobytes() == b.packed.tobytes()
    assert (rebuilt.n, rebuilt.w_sum, rebuilt.mean.tobytes()) == (b.n, b.w_sum, b.mean.tobytes())
    streamed = pk.PackedStats.absorb_pieces(_copy(a), iter(records))
    whole = _copy(a).merge(_copy(b))
    assert streamed.packed.tobytes() == whole.packed.tobytes()
    assert streamed.mean.tobytes() == whole.mean.tobytes() and streamed.n == whole.n == 500
    mean, comoment = oracle(z, w)
    np.testing.assert_allclose(streamed.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(streamed.to_stats().comoment, comoment, rtol=1e-11, atol=1e-9)


def test_merge_is_the_packed_rank_one_update():
    """The slice-wise rank-1 term equals BLAS's ``dspr`` on the whole triangle (to rounding)."""
    rng = np.random.default_rng(6)
    a = absorb_all(rng.normal(size=(30, 9)), None, [10])
    b = absorb_all(rng.normal(size=(20, 9)) + 3.0, None, [5])
    f, delta = a.w_sum * b.w_sum / (a.w_sum + b.w_sum), b.mean - a.mean
    expected = blas.dspr(9, f, delta, a.packed + b.packed, lower=0)
    np.testing.assert_allclose(_copy(a).merge(b).packed, expected, rtol=1e-14, atol=1e-13)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_packed_triangle_answers_what_the_solve_reads_as_the_full_matrix_does(fit_intercept):
    """Diagonal, columns, the first non-finite column, the scaled RFP array (entry for entry)
    and the RFP factorisation are the same read off the triangle as off the full matrix."""
    rng = np.random.default_rng(4)
    z = rng.normal(size=(60, 9)) + rng.uniform(-3, 3, size=9)
    packed = absorb_all(z, None, [20, 41])
    full = packed.to_stats()
    np.testing.assert_array_equal(packed.diagonal(), full.diagonal())
    for j in range(9):
        np.testing.assert_array_equal(packed.column(j), full.column(j))
    assert packed.nonfinite_column() is None is full.nonfinite_column()
    v = rng.normal(size=9)
    assert packed.quadratic(v) == pytest.approx(v @ full.comoment @ v, rel=1e-13)
    for n in (7, 8):  # odd and even orders of the leading block
        scale = rng.uniform(0.5, 2.0, size=n)
        shift = None if fit_intercept else (60.0, full.mean[:n])
        np.testing.assert_array_equal(
            packed.scaled_rfp(n, scale, shift), full.scaled_rfp(n, scale, shift)
        )
    ours, theirs = rfp.factored(packed, fit_intercept), rfp.factored(full, fit_intercept)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert packed.full().comoment.tolist() == full.comoment.tolist()


@pytest.mark.parametrize(("i", "j"), [(2, 6), (6, 6), (0, 8), (5, 7)])
def test_the_first_non_finite_column_of_the_triangle_is_the_full_matrixs(i, j):
    z = np.random.default_rng(5).normal(size=(30, 9))
    full = st.SufficientStats.of_block(z)
    comoment = full.comoment.copy()
    comoment[i, j] = comoment[j, i] = np.inf
    comoment[7, 8] = comoment[8, 7] = np.nan
    broken = st.SufficientStats(n=30, w_sum=30.0, mean=full.mean, comoment=comoment)
    packed = pk.PackedStats(n=30, w_sum=30.0, mean=full.mean, packed=pk.pack(comoment))
    assert packed.nonfinite_column() == broken.nonfinite_column() == min(i, 7)


def test_a_frozen_triangle_cannot_be_changed_in_place():
    """What a fitted model keeps: absorbing or merging into it raises; its full copy merges."""
    z = np.random.default_rng(6).normal(size=(40, 5))
    kept = absorb_all(z, None, [20]).frozen()
    before = kept.packed.copy()
    with pytest.raises(ValueError, match="read-only"):
        kept.absorb(z[:3])
    with pytest.raises(ValueError, match="read-only"):
        kept.merge(absorb_all(z, None, []))
    np.testing.assert_array_equal(kept.packed, before)
    merged = kept.full().merge(st.SufficientStats.of_block(z))
    assert merged.n == 80
