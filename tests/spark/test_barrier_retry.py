"""A failed barrier task: Spark re-runs the whole barrier stage and the model is unchanged.

A barrier *ResultStage* cannot be retried (Spark aborts the job: "could not recover from a failed
barrier ResultStage"), so the k-means barrier stage ends in a shuffle, which makes it a
ShuffleMapStage that Spark re-runs — here even in ``local[2]``, where a plain task gets no retry.
"""

from __future__ import annotations

import numpy as np

from sparkml_jobs.engine import faults
from sparkml_jobs.io import dataset as D
from tests.spark.test_kmeans import _blobs, reference_lloyd
from tests.spark.test_kmeans_modes import _fit


def test_a_failed_barrier_task_reruns_the_stage_to_the_identical_model(spark, rng, tmp_path):
    x, _ = _blobs(rng, k=4, per=150, d=3, spread=2.5)
    init = x[:4].copy()
    data = D.from_numpy(spark, x, num_partitions=2)
    clean = _fit(data, init, "barrier")
    marker = tmp_path / "barrier-failed-once"
    sc = spark.sparkContext
    sc.setLocalProperty(faults.BARRIER_PROPERTY, str(marker))
    try:
        retried = _fit(data, init, "barrier")
    finally:
        sc.setLocalProperty(faults.BARRIER_PROPERTY, None)
    assert marker.exists()  # task 0 of the first stage attempt did fail
    assert retried.summary.mode == "barrier"
    assert retried.centers.tobytes() == clean.centers.tobytes()
    assert retried.summary.history == clean.summary.history
    centers, labels, cost, n_iter = reference_lloyd(x, init, 50)
    np.testing.assert_allclose(retried.centers, centers, rtol=1e-12, atol=1e-12)
    assert retried.summary.n_iter == n_iter
    assert retried.summary.cluster_sizes == np.bincount(labels, minlength=4).tolist()
