"""k-means kernels on small arrays, no Spark: against brute-force numpy."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.clustering import seeding, wire


def test_assign_matches_brute_force(rng):
    x = rng.normal(size=(1000, 4)) * 3 + 100  # far from the origin: the GEMM trick's weak spot
    centers = x[rng.choice(1000, 7, replace=False)]
    labels, d2 = kk.assign(x, centers, chunk_rows=128)
    brute = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, brute.argmin(1))
    np.testing.assert_allclose(d2, brute.min(1), rtol=1e-12)


def test_partials_merge_to_the_whole(rng):
    x = rng.normal(size=(600, 3))
    w = rng.uniform(0.5, 2, size=600)
    centers = x[:5]
    whole = kk.lloyd_partial(x, centers, w, keep_far=5)
    parts = [
        kk.lloyd_partial(x[s], centers, w[s], keep_far=5) for s in np.array_split(np.arange(600), 4)
    ]
    merged = reduce(kk.ClusterPartial.merge, parts, kk.ClusterPartial.zero(5, 3))
    np.testing.assert_allclose(merged.sums, whole.sums, rtol=1e-12)
    np.testing.assert_allclose(merged.weights, whole.weights, rtol=1e-12)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    np.testing.assert_allclose(merged.cost, whole.cost, rtol=1e-12)
    np.testing.assert_array_equal(merged.far_points, whole.far_points)
    labels = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    for j in range(5):
        np.testing.assert_allclose(merged.sums[j], (x[labels == j] * w[labels == j, None]).sum(0))


def test_empty_cluster_takes_farthest_point():
    x = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1], [10, 5]])
    centers = np.array([[0.0, 0.5], [10, 0.5], [100, 100]])
    partial = kk.lloyd_partial(x, centers, keep_far=3)
    updated, empty = kk.new_centers(partial, centers)
    assert empty == [2]
    np.testing.assert_array_equal(updated[2], [10, 5])  # 4.5 from its centre: the farthest
    np.testing.assert_allclose(updated[0], [0, 0.5])


# --------------------------------------------------------------------------- k-means++ seeding


def _exact_seed_pair_probabilities(points: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P(first = i, second = j) of classic k-means++ (Arthur & Vassilvitskii): the first centre
    ∝ w, the next ∝ w·d² to it."""
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    first = w / w.sum()
    second = w[None, :] * d2
    return first[:, None] * second / second.sum(axis=1, keepdims=True)


def test_kmeans_plus_plus_draws_with_probability_proportional_to_weight_times_d2():
    points = np.array([[0.0], [1.0], [3.0], [6.0]])
    w = np.array([1.0, 2.0, 1.0, 0.5])
    exact = _exact_seed_pair_probabilities(points, w)
    rng = np.random.default_rng(2024)
    n = 4000
    counts = np.zeros((4, 4))
    for _ in range(n):
        seeds = seeding.kmeans_plus_plus(points, w, 2, rng, n_trials=1)
        i, j = (int(np.flatnonzero(points[:, 0] == s[0])[0]) for s in seeds)
        counts[i, j] += 1
    assert np.trace(counts) == 0  # a drawn centre is never drawn again (its d² is 0)
    observed, expected = counts[exact > 0], n * exact[exact > 0]
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 40.0, (chi2, counts)  # 11 degrees of freedom: P(χ² > 40) ≈ 4e-5


def test_kmeans_plus_plus_seeds_distinct_points_among_duplicates_and_skips_zero_weights():
    distinct = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [9.0, 9.0], [5.0, 5.0]])
    points = np.repeat(distinct, [40, 1, 7, 1, 3], axis=0)
    w = np.ones(len(points))
    w[points[:, 0] == 9.0] = 0.0  # weight 0: never a centre
    rng = np.random.default_rng(7)
    for _ in range(50):
        seeds = seeding.kmeans_plus_plus(points, w, 4, rng)
        assert sorted(map(tuple, seeds)) == [(0.0, 0.0), (0.0, 3.0), (4.0, 0.0), (5.0, 5.0)]
    # more centres asked than there are weighted distinct points: stops at the distinct ones
    seeds = seeding.kmeans_plus_plus(points, w, 6, rng)
    assert sorted(map(tuple, seeds)) == [(0.0, 0.0), (0.0, 3.0), (4.0, 0.0), (5.0, 5.0)]


def test_greedy_kmeans_plus_plus_keeps_the_candidate_that_lowers_the_cost_most():
    """With many trials on a tiny set, every seeding is the best second centre for its first."""
    points = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    w = np.ones(5)

    def cost(centers: np.ndarray) -> float:
        return float(((points[:, None, :] - centers[None]) ** 2).sum(-1).min(axis=1) @ w)

    rng = np.random.default_rng(3)
    for _ in range(100):
        first, second = seeding.kmeans_plus_plus(points, w, 2, rng, n_trials=60)
        assert cost(np.array([first, second])) == min(cost(np.array([first, c])) for c in points)


# --------------------------------------------------------------------------- farthest points


def farthest_by_definition(d2: np.ndarray, points: np.ndarray, keep: int):
    """The documented rule, naively: by distance descending then coordinates ascending, each
    distinct point once (at its largest distance), the first ``keep``."""
    ranked = sorted(range(len(d2)), key=lambda i: (-d2[i], *points[i]))
    seen, chosen = set(), []
    for i in ranked:
        if tuple(points[i]) not in seen:
            seen.add(tuple(points[i]))
            chosen.append(i)
    chosen = chosen[:keep]
    return d2[chosen], points[chosen].reshape(len(chosen), points.shape[1])


@pytest.mark.parametrize("keep", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [0, 5, 40, 400])
def test_top_farthest_matches_the_definition_with_ties_and_duplicates(rng, n, keep):
    for _ in range(10):
        points = rng.integers(0, 4, size=(n, 2)).astype(float)  # many duplicate points
        d2 = rng.integers(0, 3, size=n).astype(float)  # many tied distances
        got_d2, got_points = kk.top_farthest(d2, points, keep)
        want_d2, want_points = farthest_by_definition(d2, points, keep)
        np.testing.assert_array_equal(got_points, want_points)
        np.testing.assert_array_equal(got_d2, want_d2)


def test_top_farthest_finds_distinct_points_behind_many_copies_of_the_farthest():
    d2 = np.array([9.0] * 9 + [5.0, 1.0])
    points = np.array([[1.0, 1.0]] * 9 + [[2.0, 2.0], [3.0, 3.0]])
    got_d2, got_points = kk.top_farthest(d2, points, 2)
    np.testing.assert_array_equal(got_points, [[1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_array_equal(got_d2, [9.0, 5.0])


def test_top_farthest_breaks_ties_by_coordinates_whatever_the_input_order(rng):
    points = rng.permutation(np.arange(100.0).reshape(50, 2))
    d2 = np.full(50, 7.0)
    d2[:3] = 8.0  # three clear winners, then a 47-way tie for the remaining places
    for _ in range(20):
        order = rng.permutation(50)
        got_d2, got_points = kk.top_farthest(d2[order], points[order], 5)
        tied = points[3:][np.lexsort(points[3:].T[::-1])]
        np.testing.assert_array_equal(got_points[3:], tied[:2])
        assert sorted(map(tuple, got_points[:3])) == sorted(map(tuple, points[:3]))
        np.testing.assert_array_equal(got_d2, [8, 8, 8, 7, 7])


def test_far_points_of_merged_partials_do_not_depend_on_the_split(rng):
    x = rng.integers(0, 6, size=(900, 2)).astype(float)  # duplicates and tied distances
    centers = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
    whole = kk.lloyd_partial(x, centers, keep_far=3)
    for parts in (2, 5, 9):
        cut = np.sort(rng.choice(np.arange(1, 900), parts - 1, replace=False))
        pieces = [kk.lloyd_partial(p, centers, keep_far=3) for p in np.split(x, cut)]
        for order in (pieces, pieces[::-1]):
            merged = reduce(kk.ClusterPartial.merge, order)
            np.testing.assert_array_equal(merged.far_points, whole.far_points)
            np.testing.assert_array_equal(merged.far_d2, whole.far_d2)


# --------------------------------------------------------------------------- barrier wire format


def _partial(rng, k: int, d: int, m: int) -> kk.ClusterPartial:
    return kk.ClusterPartial(
        sums=rng.normal(size=(k, d)) * 1e200,
        weights=rng.uniform(0, 1e-300, size=k),
        counts=rng.integers(0, 2**53, size=k),  # exact in float64 up to 2**53
        cost=float(rng.normal() * 1e-30),
        far_d2=np.sort(rng.uniform(size=m))[::-1],
        far_points=rng.normal(size=(m, d)),
        sample_points=rng.normal(size=(4, d)),
        sample_labels=rng.integers(0, k, size=4),
        keep=m + 2,
    )


@pytest.mark.parametrize(("k", "d", "m"), [(1, 1, 0), (3, 2, 3), (7, 5, 2)])
def test_partial_encode_decode_round_trip_is_bit_exact(rng, k, d, m):
    partial = _partial(rng, k, d, m)
    index, decoded = wire.decode_partial(wire.encode_partial(11, partial))
    assert index == 11
    assert len(wire.encode_partial(11, partial)) == 8 * (6 + k * d + 2 * k + m + m * d)
    for name in ("sums", "weights", "far_d2", "far_points"):
        got, want = getattr(decoded, name), getattr(partial, name)
        assert got.shape == want.shape and got.dtype == np.float64, name
        assert got.tobytes() == want.tobytes(), name
        assert got.flags.writeable, name  # a copy, not a view on the received bytes
    assert decoded.counts.dtype == np.int64
    np.testing.assert_array_equal(decoded.counts, partial.counts)
    assert decoded.cost == partial.cost and decoded.keep == partial.keep == m + 2
    assert decoded.sample_points is None and decoded.sample_labels is None  # stays on its task


def test_decoded_partials_merge_like_the_originals(rng):
    x = rng.normal(size=(300, 3))
    centers = x[:4]
    parts = [kk.lloyd_partial(p, centers, keep_far=4) for p in np.array_split(x, 3)]
    sent = [wire.decode_partial(wire.encode_partial(i, p)) for i, p in enumerate(parts)]
    assert [i for i, _ in sent] == [0, 1, 2]
    merged = reduce(kk.ClusterPartial.merge, parts)
    again = reduce(kk.ClusterPartial.merge, [p for _, p in sent])
    for name in ("sums", "weights", "counts", "far_d2", "far_points"):
        assert getattr(again, name).tobytes() == getattr(merged, name).tobytes(), name
    assert again.cost == merged.cost


def test_merge_keeps_keep_far_points_when_blocks_have_few_distinct_points():
    """Blocks [P x5], [Q x5], [C] with keep=3: each side holds 1 far point, the union needs 3.

    Before ``keep`` travelled with the partial, merging kept max(1, 1) = 1 point per merge and
    ended with [P, (3, 3), (0.2, 0.8)] instead of the whole data's [P, Q, (3, 3)].
    """
    p, q, c = [10.0, 10.0], [-9.0, -9.0], [3.0, 3.0]
    centers = np.array([[0.0, 0.0], [0.2, 0.8], [100.0, 100.0]])
    blocks = [np.array([p] * 5), np.array([q] * 5), np.array([c, [0.2, 0.8]])]
    whole = kk.lloyd_partial(np.vstack(blocks), centers, keep_far=3)
    parts = [kk.lloyd_partial(b, centers, keep_far=3) for b in blocks]
    sent = [wire.decode_partial(wire.encode_partial(i, part))[1] for i, part in enumerate(parts)]
    for pieces in (parts, sent):
        merged = reduce(kk.ClusterPartial.merge, pieces, kk.ClusterPartial.zero(3, 2))
        assert merged.far_points.tolist() == [p, q, c] == whole.far_points.tolist()
        np.testing.assert_array_equal(merged.far_d2, whole.far_d2)
    # the empty third cluster is re-seeded from the farthest point, the same for any split
    updated, empty = kk.new_centers(reduce(kk.ClusterPartial.merge, parts), centers)
    assert empty == [2] and updated[2].tolist() == p


@pytest.mark.parametrize(("k", "d"), [(1, 1), (10, 10), (1_000, 64), (4_096, 64), (100_000, 3)])
def test_chunk_rows_keep_the_distance_block_within_budget(k, d):
    rows = kk.chunk_rows_for(k, d)
    assert 1 <= rows <= kk.DEFAULT_CHUNK_ROWS
    assert rows * (k + d) * 8 <= kk.DISTANCE_BLOCK_BYTES
    cached = max(kk.MIN_CACHE_ROWS, kk.CACHE_BLOCK_BYTES // (8 * k))
    if (kk.DEFAULT_CHUNK_ROWS + 1) * (k + d) * 8 <= kk.DISTANCE_BLOCK_BYTES and cached >= 4_096:
        assert rows == kk.DEFAULT_CHUNK_ROWS  # small k: the measured cache-friendly size
    elif cached * (k + d) * 8 <= kk.DISTANCE_BLOCK_BYTES:  # in between: a cache-sized block
        assert rows == cached and rows >= kk.MIN_CACHE_ROWS
    else:  # the largest chunk within the budget
        assert (rows + 1) * (k + d) * 8 > kk.DISTANCE_BLOCK_BYTES
    assert kk.chunk_rows_for(4_096, 64) == 1_008
    assert kk.chunk_rows_for(1_000, 64) == 1_024


def test_large_k_assignment_is_chunked_within_budget(rng, monkeypatch):
    """k = 4,096: the distance block of every chunk stays within the budget, labels exact."""
    x, centers = rng.normal(size=(3_000, 8)), rng.normal(size=(4_096, 8))
    seen = []
    original = kk.distance_block

    def spy(chunk, minus_two, out=None):
        block = original(chunk, minus_two, out)
        seen.append(block.nbytes if out is None else out.nbytes)  # the reused buffer's size
        return block

    monkeypatch.setattr(kk, "distance_block", spy)
    labels, d2 = kk.assign(x, centers)
    assert len(seen) == 3 and max(seen) <= kk.DISTANCE_BLOCK_BYTES  # 3,000 rows in 1,022-row chunks
    direct = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, direct.argmin(1))
    np.testing.assert_allclose(d2, direct.min(1), rtol=1e-12)


# --------------------------------------------------------------------------- Hamerly bounds


def _partials_equal(a: kk.ClusterPartial, b: kk.ClusterPartial) -> None:
    for name in ("sums", "weights", "counts", "far_d2", "far_points", "sample_points"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert np.array_equal(a.sample_labels, b.sample_labels)
    assert a.cost == b.cost and a.keep == b.keep


@pytest.mark.parametrize(
    ("k", "d", "grid"), [(1, 2, False), (10, 10, False), (200, 16, False), (6, 2, True)]
)
def test_bounded_partial_equals_plain_lloyd_and_skips_rows(rng, monkeypatch, k, d, grid):
    """Every iteration of Lloyd with Hamerly bounds gives the plain kernel's partial, bit for bit
    (labels, sums, cost, far points), including a re-seeded empty cluster's big jump; once the
    centres settle, most rows skip the distance block."""
    from sparkml_jobs.clustering import bounds

    true = rng.normal(size=(max(k, 2), d)) * 6
    x = true[rng.integers(0, len(true), 4_000)] + rng.normal(size=(4_000, d))
    if grid:  # duplicates and exactly tied distances
        x = np.round(x / 3)
    w = rng.uniform(0.5, 2.0, len(x))
    centers = x[:k].copy()
    if k > 1:
        centers[-1] = 1e3  # empty in the first iteration: re-seeded far away
    seen: list[int] = []
    original = bounds.nearest_two
    monkeypatch.setattr(
        bounds, "nearest_two", lambda sub, c, rows: seen.append(len(sub)) or original(sub, c, rows)
    )
    state, per_iteration = None, []
    for _ in range(15):
        seen.clear()
        plain = kk.lloyd_partial(x, centers, w, keep_far=k, chunk_rows=512, sample_stride=7)
        fast, state = bounds.bounded_partial(
            x, centers, w, state, keep_far=k, chunk_rows=512, sample_stride=7
        )
        _partials_equal(fast, plain)
        per_iteration.append(sum(seen))
        centers, _ = kk.new_centers(plain, centers)
    assert per_iteration[0] == len(x)  # the first iteration: every row, bounds from scratch
    if k > 1:
        assert max(per_iteration[1:4]) > 0  # the re-seeded centre's jump forces recomputations
        assert sum(per_iteration[-5:]) < 0.2 * 5 * len(x), per_iteration  # later: most skip
    else:
        assert per_iteration[1:] == [0] * 14  # one centre: nothing to compare ever again
