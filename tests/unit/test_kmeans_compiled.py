"""The compiled k-means row passes (numba) against numpy oracles and against the numpy kernels."""

from __future__ import annotations

import numpy as np
import pytest

from sparkml_jobs.clustering import compiled
from sparkml_jobs.clustering import kernels as kk

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba kernels not in use")


def _brute(x, centers, w=None):
    d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    labels = d2.argmin(1)
    w = np.ones(len(x)) if w is None else w
    sums = np.zeros_like(centers)
    np.add.at(sums, labels, x * w[:, None])
    return labels, d2[np.arange(len(x)), labels], sums


@pytest.mark.parametrize(
    ("n", "k", "d", "chunk"), [(1_000, 7, 4, 128), (513, 1, 3, 64), (300, 40, 2, 4096)]
)
@pytest.mark.parametrize("weighted", [False, True])
def test_partial_matches_brute_force(rng, n, k, d, chunk, weighted):
    x = rng.normal(size=(n, d)) * 3 + 100  # far from the origin: distances must not cancel
    centers = x[rng.choice(n, k, replace=False)] + 0.1
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    part = kk.lloyd_partial(x, centers, w, keep_far=3, chunk_rows=chunk)
    labels, d2, sums = _brute(x, centers, w)
    np.testing.assert_array_equal(part.counts, np.bincount(labels, minlength=k))
    np.testing.assert_allclose(part.sums, sums, rtol=1e-12)
    np.testing.assert_allclose(part.cost, d2 @ (np.ones(n) if w is None else w), rtol=1e-12)
    got_labels, got_d2 = kk.assign(x, centers, chunk_rows=chunk)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_d2, d2, rtol=1e-12)


def test_paths_agree_bit_for_bit(rng):
    """Fused pass, separate distances and separate sums: the same numbers, whatever the chunks."""
    x, centers = rng.normal(size=(2_000, 5)), rng.normal(size=(9, 5))
    fused = kk.lloyd_partial(x, centers, chunk_rows=300)
    labels, d2 = kk.assign(x, centers, chunk_rows=77)
    assert kk.own_distances(x, centers, labels).tobytes() == d2.tobytes()
    again = kk.partial_from_labels(x, centers, None, labels, d2, 0, 0, chunk_rows=1_000)
    assert again.sums.tobytes() == fused.sums.tobytes() and again.cost == fused.cost


def test_ties_go_to_the_first_centre_as_numpy_argmin():
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    centers = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # duplicates tie exactly
    labels, _ = kk.assign(x, centers)
    minus_two, sq = -2.0 * centers, (centers**2).sum(1)
    np.testing.assert_array_equal(labels, kk.nearest(x, minus_two, sq)[0])
    np.testing.assert_array_equal(labels, [0, 0, 0])


def test_layouts_give_the_same_result(rng):
    """Fortran-ordered blocks and strided views go through the same loops (copied to rows)."""
    x = rng.normal(size=(500, 6))
    centers = rng.normal(size=(4, 6))
    want = kk.lloyd_partial(x, centers, chunk_rows=64)
    for view in (np.asfortranarray(x), np.hstack([x, x])[:, :6]):
        got = kk.lloyd_partial(view, np.asfortranarray(centers), chunk_rows=64)
        assert got.sums.tobytes() == want.sums.tobytes() and got.cost == want.cost


def test_compiled_and_numpy_kernels_agree(rng, monkeypatch):
    x = rng.normal(size=(3_000, 10)) + 5
    w = rng.uniform(0.1, 3.0, size=3_000)
    centers = x[:12] + 0.01
    fast = kk.lloyd_partial(x, centers, w, keep_far=12, sample_stride=7)
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    slow = kk.lloyd_partial(x, centers, w, keep_far=12, sample_stride=7)
    np.testing.assert_array_equal(fast.counts, slow.counts)
    np.testing.assert_array_equal(fast.sample_labels, slow.sample_labels)
    np.testing.assert_allclose(fast.sums, slow.sums, rtol=1e-13)
    np.testing.assert_allclose(fast.cost, slow.cost, rtol=1e-13)
    np.testing.assert_allclose(fast.far_d2, slow.far_d2, rtol=1e-13)


@pytest.mark.parametrize("n", [1, 7, 1_000])
def test_kth_largest_is_numpy_partition(rng, n):
    values = np.round(rng.normal(size=n), 1)  # many duplicates
    for kth in sorted({1, 2, n // 2 or 1, n}):
        want = np.partition(values, n - kth)[n - kth]
        assert compiled.kth_largest(values, kth) == want


def test_partial_tallies_equal_the_bincounts(rng, monkeypatch):
    x, w = rng.normal(size=(5_000, 3)), rng.uniform(0.1, 2.0, size=5_000)
    centers = x[:6]
    fast = kk.lloyd_partial(x, centers, w)
    labels, _ = kk.assign(x, centers)
    assert fast.weights.tobytes() == np.bincount(labels, weights=w, minlength=6).tobytes()
    np.testing.assert_array_equal(fast.counts, np.bincount(labels, minlength=6))


@pytest.mark.parametrize("k", [1, 2, 9])
def test_nearest_two_matches_numpy(rng, monkeypatch, k):
    """Labels as ``assign`` picks them; the runner-up distance as numpy's masked minimum."""
    from sparkml_jobs.clustering import bounds

    x = rng.normal(size=(700, 4)) * 2
    centers = np.vstack([x[: max(k - 1, 1)], x[:1]])[:k]  # a duplicate centre: exact ties
    labels, second = bounds.nearest_two(x, centers, chunk_rows=128)
    np.testing.assert_array_equal(labels, kk.assign(x, centers)[0])
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    want_labels, want_second = bounds.nearest_two(x, centers, chunk_rows=128)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(second, want_second, rtol=1e-9, atol=1e-9)
    brute = np.sort(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    if k > 1:
        np.testing.assert_allclose(second, np.sqrt(brute[:, 1]), rtol=1e-6, atol=1e-6)
