"""Initial centres on Spark: random, k-means++ and k-means|| (Bahmani et al.), deterministically.

Every executor-side draw uses a generator seeded by (seed, partition, round), never global state,
so the same data, partitioning and seed give the same centres, and a retried task redraws exactly
what it lost. Centres reach the executors through :func:`~sparkml_jobs.engine.broadcast.
broadcast_scope`, one broadcast per pass.
"""

from __future__ import annotations

import logging

import numpy as np

from sparkml_jobs.clustering import kernels as kk
from sparkml_jobs.clustering import seeding
from sparkml_jobs.engine.aggregate import tree_aggregate
from sparkml_jobs.engine.broadcast import broadcast_scope
from sparkml_jobs.errors import InputError

log = logging.getLogger(__name__)


def _rng(seed: int, partition: int, round_: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, partition, round_])


def _mass(block: kk.PointBlock, centers: np.ndarray) -> np.ndarray:
    """w · d²(x, nearest centre) of every row of the block."""
    _, d2 = kk.assign(block.x, centers)
    return d2 if block.w is None else block.w * d2


def sample_uniform(points, count: int, seed: int, round_: int) -> np.ndarray:
    """``count`` rows drawn with probability ∝ weight, without replacement, deterministically.

    Each row gets the key ``u^(1/w)`` from a generator seeded by (seed, partition, round); the rows
    with the largest keys win (Efraimidis–Spirakis).
    """

    def draw(index: int, blocks):
        rng = _rng(seed, index, round_)
        best_keys, best_rows = np.zeros(0), None
        for block in blocks:
            x, w = block.x, block.w
            u = rng.random(len(x))
            keys = np.log(u) / (np.ones(len(x)) if w is None else np.where(w > 0, w, np.nan))
            keys = np.nan_to_num(keys, nan=-np.inf)
            rows = x if best_rows is None else np.vstack([best_rows, x])
            keys = np.concatenate([best_keys, keys])
            top = np.argsort(-keys, kind="stable")[:count]
            best_keys, best_rows = keys[top], rows[top]
        return [(best_keys, best_rows)] if best_rows is not None else []

    drawn = points.mapPartitionsWithIndex(draw).collect()
    keys = np.concatenate([k for k, _ in drawn])
    rows = np.vstack([r for _, r in drawn])
    return rows[np.argsort(-keys, kind="stable")[:count]]


def cost_to(points, centers: np.ndarray) -> float:
    """Σ w · min_c ‖x − c‖² over the data (one job)."""
    with broadcast_scope(points.context, centers) as shared:
        return tree_aggregate(
            points,
            0.0,
            lambda acc, block: acc + float(_mass(block, shared.value).sum()),
            lambda a, b: a + b,
        )


def sample_by_cost(
    points, centers: np.ndarray, factor: float, total: float, seed: int, round_: int
) -> np.ndarray:
    """k-means|| oversampling: keep each row with probability min(1, factor · w·d² / total)."""
    with broadcast_scope(points.context, centers) as shared:

        def draw(index: int, blocks):
            rng = _rng(seed, index, round_)
            return [
                block.x[rng.random(len(block.x)) < factor * _mass(block, shared.value) / total]
                for block in blocks
            ]

        picked = [c for c in points.mapPartitionsWithIndex(draw).collect() if len(c)]
    return np.vstack(picked) if picked else np.zeros((0, centers.shape[1]))


def candidate_weights(points, candidates: np.ndarray) -> np.ndarray:
    """Weight of every candidate = total weight of the rows closest to it (one job)."""
    m = len(candidates)
    with broadcast_scope(points.context, candidates) as shared:

        def add(acc: np.ndarray, block: kk.PointBlock) -> np.ndarray:
            labels, _ = kk.assign(block.x, shared.value)
            return acc + np.bincount(labels, weights=block.w, minlength=m)

        return tree_aggregate(points, np.zeros(m), add, lambda a, b: a + b)


def sample_proportional(points, centers: np.ndarray, seed: int, round_: int) -> np.ndarray | None:
    """One row drawn with probability ∝ w · d²(x, centres), in one pass, or ``None`` when every
    row coincides with a centre (zero total mass).

    Exponential keys ``log(u) / mass`` make the draw a maximum, so no total is needed beforehand:
    each partition keeps its best key and the driver the best of those (deterministic).
    """
    with broadcast_scope(points.context, centers) as shared:

        def draw(index: int, blocks):
            rng = _rng(seed, index, round_)
            best = (-np.inf, None)
            for block in blocks:
                mass = _mass(block, shared.value)
                with np.errstate(divide="ignore"):
                    keys = np.log(rng.random(len(block.x))) / mass
                keys = np.where(mass > 0, keys, -np.inf)
                i = int(np.argmax(keys))
                if keys[i] > best[0]:
                    best = (float(keys[i]), block.x[i])
            return [best] if best[1] is not None else []

        drawn = points.mapPartitionsWithIndex(draw).collect()
    if not drawn:
        return None
    return max(drawn, key=lambda pair: pair[0])[1][None, :]


def initialise(points, k: int, d: int, method: str, seed: int, init_steps: int) -> np.ndarray:
    """Initial centres by ``random``, ``k-means++`` (one pass per centre) or ``k-means||``."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 1_000_003])
    if method == "random":
        return sample_uniform(points, k, seed, 0)
    centers = sample_uniform(points, 1, seed, 0)
    if method == "k-means++":
        for step in range(1, k):
            nxt = sample_proportional(points, centers, seed, step)
            if nxt is None:
                break  # fewer distinct points than k: ensure_distinct says so
            centers = np.vstack([centers, nxt])
        return centers
    for step in range(1, init_steps + 1):
        total = cost_to(points, centers)
        if total <= 0:
            break
        picked = sample_by_cost(points, centers, 2.0 * k, total, seed, step)
        centers = np.unique(np.vstack([centers, picked]), axis=0)
    log.info("k-means||: %d candidates after %d rounds", len(centers), init_steps)
    if len(centers) <= k:
        return centers
    weights = candidate_weights(points, centers)
    seeds = seeding.kmeans_plus_plus(centers, weights, k, rng)
    return seeding.local_lloyd(centers, weights, seeds)


def ensure_distinct(points, centers: np.ndarray, k: int) -> np.ndarray:
    """k distinct starting centres, or an input error if the data has fewer distinct points.

    Only when the initialisation found fewer than k distinct centres is the data scanned for
    up to k distinct rows, which then complete the set.
    """
    unique = np.unique(centers, axis=0)
    if len(unique) >= k and len(centers) == k:
        return centers
    found = tree_aggregate(
        points,
        np.zeros((0, centers.shape[1])),
        lambda acc, block: seeding.distinct_rows(np.vstack([acc, block.x]), k),
        lambda a, b: seeding.distinct_rows(np.vstack([a, b]), k),
    )
    if len(found) < k:
        raise InputError(f"k={k} is greater than the number of distinct points ({len(found)})")
    extra = [row for row in found if not (row == unique).all(axis=1).any()]
    return np.vstack([unique, *extra])[:k] if extra else unique[:k]
