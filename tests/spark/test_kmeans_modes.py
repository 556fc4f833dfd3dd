"""The two iteration paths (broadcast per iteration, one barrier stage) and ``mode="auto"``.

Both paths fold every cached partition the same way and merge the partials in the same tree, so
their models are bit-identical; both equal an independent numpy Lloyd from the same centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from sparkml_jobs.clustering import estimator as K
from sparkml_jobs.clustering import lloyd
from sparkml_jobs.io import dataset as D
from tests.spark.test_kmeans import _blobs, reference_lloyd


def _fit(data, init, mode, **kwargs):
    params = {"max_iter": 50, "tol": 0.0, **kwargs}
    return K.KMeans(k=len(init), initial_centers=init, mode=mode, **params).fit(data)


@pytest.mark.parametrize("partitions", [1, 2, 3, 7])
def test_both_modes_give_the_reference_model_bit_for_bit_alike(spark, rng, partitions):
    x, _ = _blobs(rng, k=5, per=120, d=3, spread=3.0)
    init = np.vstack([x[:4], [[500.0, 500.0, 500.0]]])  # the far centre empties: re-seeded
    data = D.from_numpy(spark, x, num_partitions=partitions, blocks_per_partition=2)
    centers, labels, cost, n_iter = reference_lloyd(x, init, 50)
    models = {mode: _fit(data, init, mode) for mode in ("broadcast", "barrier")}
    for mode, model in models.items():
        np.testing.assert_allclose(model.centers, centers, rtol=1e-12, atol=1e-12, err_msg=mode)
        np.testing.assert_allclose(model.summary.cost, cost, rtol=1e-12, err_msg=mode)
        assert model.summary.n_iter == n_iter and model.summary.converged, mode
        assert model.summary.cluster_sizes == np.bincount(labels, minlength=5).tolist(), mode
        assert model.summary.reseeded[0] == {"iteration": 1, "cluster": 4}, mode
        assert (model.summary.mode, model.summary.mode_reason) == (mode, "requested")
    broadcast, barrier = models["broadcast"], models["barrier"]
    assert broadcast.centers.tobytes() == barrier.centers.tobytes()
    assert broadcast.summary.history == barrier.summary.history
    assert broadcast.summary.cost == barrier.summary.cost
    # the plot sample: the same rows in the same order (partition order in both)
    assert broadcast.sample[0].tobytes() == barrier.sample[0].tobytes()
    assert np.array_equal(broadcast.sample[1], barrier.sample[1])


def test_more_partitions_than_slots_are_regrouped_without_changing_the_model(spark, rng):
    x, _ = _blobs(rng, k=4, per=100, d=2, spread=2.0)
    init = x[:4].copy()
    data = D.from_numpy(spark, x, num_partitions=7)
    assert lloyd.task_slots(spark.sparkContext) == 2 < 7  # 7 partitions into 2 barrier tasks
    broadcast, barrier = (_fit(data, init, mode) for mode in ("broadcast", "barrier"))
    assert broadcast.centers.tobytes() == barrier.centers.tobytes()
    assert broadcast.summary.history == barrier.summary.history


def test_auto_picks_barrier_on_an_idle_local_session_and_records_why(spark, rng, caplog):
    x, _ = _blobs(rng, k=3, per=80, d=2)
    init = x[:3].copy()
    data = D.from_numpy(spark, x, num_partitions=3)
    with caplog.at_level("INFO", logger="sparkml_jobs.clustering.estimator"):
        auto = _fit(data, init, "auto")
    assert auto.summary.mode == "barrier"
    assert "2 barrier tasks fit in 2 free of 2 task slots" in auto.summary.mode_reason
    assert f"k-means iterations in barrier mode: {auto.summary.mode_reason}" in caplog.text
    assert K.KMeans().mode == "auto"
    broadcast = _fit(data, init, "broadcast")
    assert auto.centers.tobytes() == broadcast.centers.tobytes()


def test_k_4096_on_small_data_runs_in_both_modes(spark, rng):
    """Many clusters: chunked distance blocks; one iteration equals numpy's assignment + means."""
    x = rng.normal(size=(6_000, 4))
    init = x[:4_096].copy()
    data = D.from_numpy(spark, x, num_partitions=2)

    def nearest(centers):
        return np.concatenate(
            [
                ((c[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
                for c in np.array_split(x, 12)
            ]
        )

    labels = nearest(init)
    sizes = np.bincount(labels, minlength=4_096)
    assert sizes.min() >= 1  # every centre is a data point: nothing re-seeded
    sums = np.stack([np.bincount(labels, weights=x[:, j], minlength=4_096) for j in range(4)], 1)
    want = sums / sizes[:, None]
    final = nearest(want)  # the summary describes the assignment to the final centres
    models = [_fit(data, init, mode, max_iter=1) for mode in ("broadcast", "barrier")]
    for model in models:
        np.testing.assert_allclose(model.centers, want, rtol=1e-12, atol=1e-12)
        assert model.summary.cluster_sizes == np.bincount(final, minlength=4_096).tolist()
        np.testing.assert_allclose(model.summary.cost, ((x - want[final]) ** 2).sum(), rtol=1e-12)
    assert models[0].centers.tobytes() == models[1].centers.tobytes()


# --------------------------------------------------------------------------- the auto rule


@dataclass
class _Stage:
    numActiveTasks: int  # noqa: N815 - PySpark's name


@dataclass
class _Tracker:
    running: list[int] = field(default_factory=list)

    def getActiveStageIds(self):  # noqa: N802 - PySpark's name
        return list(range(len(self.running)))

    def getStageInfo(self, stage):  # noqa: N802 - PySpark's name
        return _Stage(self.running[stage])


@dataclass
class _Context:
    """What :func:`lloyd.choose_mode` reads from a SparkContext."""

    defaultParallelism: int  # noqa: N815 - PySpark's name
    conf: dict = field(default_factory=dict)
    running: list[int] = field(default_factory=list)

    def getConf(self):  # noqa: N802 - PySpark's name
        return self.conf

    def statusTracker(self):  # noqa: N802 - PySpark's name
        return _Tracker(self.running)


@pytest.mark.parametrize(
    ("context", "partitions", "k", "mode", "reason"),
    [
        (_Context(8), 4, 10, "barrier", "4 barrier tasks fit in 8 free of 8 task slots"),
        (_Context(8), 20, 10, "barrier", "8 barrier tasks fit in 8 free of 8 task slots, 20 "),
        (
            _Context(8, {"spark.dynamicAllocation.enabled": "true"}),
            4,
            10,
            "broadcast",
            "dynamic allocation",
        ),
        (_Context(8, running=[3, 2]), 4, 10, "broadcast", "needs 4 free task slots, 3 of 8"),
        (_Context(8, running=[3]), 4, 10, "barrier", "4 barrier tasks fit in 5 free of 8"),
        (_Context(8, {"spark.task.cpus": "4"}), 4, 10, "barrier", "2 barrier tasks fit in 2"),
        (_Context(8), 200, 4_096, "broadcast", "would gather"),
    ],
)
def test_auto_rule(context, partitions, k, mode, reason):
    got_mode, got_reason = lloyd.choose_mode(context, partitions, k, 64)
    assert got_mode == mode and reason in got_reason, got_reason


@pytest.mark.parametrize("partitions", [1, 3])
def test_barrier_with_distance_bounds_equals_broadcast_and_reference(spark, rng, partitions):
    """k ≥ bounds.MIN_K: the barrier tasks skip distances with Hamerly bounds; same model."""
    from sparkml_jobs.clustering import bounds

    k = bounds.MIN_K + 8
    x, _ = _blobs(rng, k=k, per=40, d=4, spread=1.5, scale=6.0)
    init = x[:k].copy()
    data = D.from_numpy(spark, x, num_partitions=partitions, blocks_per_partition=2)
    broadcast, barrier = (_fit(data, init, mode, max_iter=30) for mode in ("broadcast", "barrier"))
    assert broadcast.centers.tobytes() == barrier.centers.tobytes()
    assert broadcast.summary.history == barrier.summary.history
    centers, labels, cost, n_iter = reference_lloyd(x, init, 30)
    np.testing.assert_allclose(barrier.centers, centers, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(barrier.summary.cost, cost, rtol=1e-12)
    assert barrier.summary.n_iter == n_iter
    assert barrier.summary.cluster_sizes == np.bincount(labels, minlength=k).tolist()
