"""The k-sweep kernels without Spark: silhouette against scikit-learn, the k rule, k ranges."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from sparkml_jobs.cli import parse_k_range
from sparkml_jobs.clustering import silhouette as sweep


def _blobs(rng, k: int, per: int, d: int = 3, spread: float = 1.0):
    centres = rng.normal(size=(k, d)) * 10
    labels = np.repeat(np.arange(k), per)
    return centres[labels] + rng.normal(size=(k * per, d)) * spread, labels


@pytest.mark.parametrize(("k", "per", "spread"), [(2, 60, 1.0), (4, 50, 3.0), (7, 30, 6.0)])
def test_silhouette_matches_sklearn(rng, k, per, spread):
    x, labels = _blobs(rng, k, per, spread=spread)
    noisy = labels.copy()
    noisy[rng.choice(len(x), size=len(x) // 10, replace=False)] = rng.integers(0, k, len(x) // 10)
    for lab in (labels, noisy):
        assert sweep.silhouette(x, lab) == pytest.approx(silhouette_score(x, lab), abs=1e-9)


def test_silhouette_cosine_metric_and_singletons(rng):
    x, labels = _blobs(rng, 3, 40)
    labels[0], labels[1] = 7, 9  # two clusters of one row each score 0, as in sklearn
    for metric in ("euclidean", "cosine"):
        ours = sweep.silhouette(x, labels, metric)
        assert ours == pytest.approx(silhouette_score(x, labels, metric=metric), abs=1e-9)


def test_silhouette_on_duplicate_points_matches_sklearn():
    x = np.array([[0.0, 0], [0, 0], [0, 0], [5, 5], [5, 5], [5, 6]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert sweep.silhouette(x, labels) == pytest.approx(silhouette_score(x, labels), abs=1e-12)


@pytest.mark.parametrize("labels", [np.zeros(5, int), np.arange(5)])
def test_silhouette_undefined_is_nan(labels):
    assert np.isnan(sweep.silhouette(np.arange(10.0).reshape(5, 2), labels))


def test_subsample_is_bounded_even_and_deterministic(rng):
    x, labels = _blobs(rng, 2, 3000)
    points, lab = sweep.subsample(x, labels, 2000)
    assert len(points) == 2000 and (points[0] == x[0]).all() and (points[-1] == x[-1]).all()
    again, _ = sweep.subsample(x, labels, 2000)
    np.testing.assert_array_equal(points, again)
    assert len(sweep.subsample(x[:10], labels[:10], 2000)[0]) == 10


def test_recommend_k_takes_the_best_silhouette_and_ties_go_to_the_smaller_k():
    assert sweep.recommend_k([2, 3, 4, 5], [0.5, 0.6, 0.8, 0.7]) == 4
    assert sweep.recommend_k([2, 3, 4, 5], [0.5, 0.8, 0.8004, 0.7]) == 3  # within 1e-3: a tie
    assert sweep.recommend_k([2, 3, 4], [0.5, 0.8, 0.802]) == 4  # beyond it: not a tie
    assert sweep.recommend_k([3, 4], [float("nan"), 0.2]) == 4
    assert sweep.recommend_k([3, 4], [float("nan"), float("nan")]) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2..6", [2, 3, 4, 5, 6]), ("8,2, 4", [2, 4, 8]), ("5", [5]), (" 3..3 ", [3])],
)
def test_parse_k_range(text, expected):
    assert parse_k_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("two..five", "a range like 2..20"),
        ("6..2", "a range like 2..20"),
        ("", "a range like"),
        ("1..5", "2..1000"),
        ("2,5000", "2..1000"),
    ],
)
def test_parse_k_range_rejects(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_k_range(text)
