"""k-means fit on already-cached data, in one shared SparkSession.

Two benchmarks: a fixed number of Lloyd iterations from the same initial centres (ours in both
modes, MLlib's JVM ``RDD[Vector]`` KMeans, ``pyspark.mllib`` on a Python RDD of rows,
scikit-learn), and each system's default initialisation and stopping rule. Also records the
cached footprint of each system's copy of the data.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from functools import partial

import numpy as np

from benchmarks import common
from benchmarks.harness import (
    IterationLog,
    K,
    Measurement,
    medians_of,
    run_rotated,
    say,
    summarise,
    timed,
)


@dataclass(frozen=True, kw_only=True)
class KMeansCase:
    """The cached copies of one k-means data set, shared by the systems that read them."""

    x: np.ndarray
    centres: np.ndarray
    iterations: int
    data: object = None  # our cached BlockData
    vectors: object = None  # MLlib's cached JVM RDD[Vector]
    rows: object = None  # pyspark.mllib's cached Python RDD of numpy rows
    assembled: object = None  # MLlib's cached assembled DataFrame
    spark: object = None


def kmeans_setup(spark, path: str):
    """Our blocks of ``path``, cached and materialised."""
    from sparkml_jobs.io import read as sdr

    data = sdr.load(spark, path, "parquet")
    data.cache()
    data.blocks.count()
    return data


def _result(seconds: float, n_iter: int | None, cost: float, l0: float, l1: float, per: int):
    return {
        "seconds": seconds,
        "iterations": n_iter,
        "per_iter_s": seconds / per,
        "cost": cost,
        "loadavg_before": l0,
        "loadavg_after": l1,
    }


def ours_kmeans(data, centres: np.ndarray | None, x: np.ndarray, **params) -> Measurement:
    """Our ``KMeans(**params).fit(data)``, with the steady-state time between iteration logs."""
    from sparkml_jobs.clustering.estimator import KMeans

    handler = IterationLog()
    logger = logging.getLogger("sparkml_jobs.clustering.lloyd")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        estimator = KMeans(initial_centers=centres, **params)
        seconds, model, l0, l1 = timed(estimator.fit, data)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    n_iter = model.summary.n_iter
    out = _result(seconds, n_iter, common.kmeans_cost(x, model.centers), l0, l1, n_iter)
    return {**out, "steady_per_iter_s": handler.steady(), "reported_cost": model.summary.cost}


def _ours_given(case: KMeansCase, **params) -> Measurement:
    return ours_kmeans(
        case.data, case.centres, case.x, k=K, max_iter=case.iterations, tol=0.0, **params
    )


def _mllib_jvm(case: KMeansCase) -> Measurement:
    algo = common.jvm_kmeans(case.spark, K, case.iterations, 0.0, case.centres)
    seconds, jmodel, l0, l1 = timed(algo.run, case.vectors)
    n_iter = int(jmodel.numIter())
    cost = common.kmeans_cost(case.x, common.jvm_centres(jmodel))
    return _result(seconds, n_iter, cost, l0, l1, n_iter)


def _mllib_pyrdd(case: KMeansCase) -> Measurement:
    from pyspark.mllib.clustering import KMeans, KMeansModel

    seconds, model, l0, l1 = timed(
        KMeans.train,
        case.rows,
        K,
        maxIterations=case.iterations,
        epsilon=0.0,
        initialModel=KMeansModel(case.centres),
    )
    cost = common.kmeans_cost(case.x, np.array(model.clusterCenters))
    # pyspark.mllib does not report its iteration count: per iteration assumes all of them ran
    return _result(seconds, None, cost, l0, l1, case.iterations)


def _sklearn_given(case: KMeansCase) -> Measurement:
    from sklearn.cluster import KMeans

    est = KMeans(
        n_clusters=K,
        init=case.centres,
        n_init=1,
        max_iter=case.iterations,
        tol=0.0,
        algorithm="lloyd",
    )
    seconds, model, l0, l1 = timed(est.fit, case.x)
    n_iter = int(model.n_iter_)
    cost = common.kmeans_cost(case.x, model.cluster_centers_)
    return _result(seconds, n_iter, cost, l0, l1, n_iter)


def _cache_copies(spark, path: str, x: np.ndarray, names: list[str], footprint: dict) -> dict:
    """Our blocks, MLlib's JVM vectors and pyspark.mllib's rows, cached; footprints recorded."""
    from pyspark import StorageLevel

    sc, raw = spark.sparkContext, x.size * 8
    data = kmeans_setup(spark, path)
    footprint["ours_kmeans_blocks"] = {
        **common.cached_bytes(sc, rdd_id=data.blocks.id()),
        "raw_bytes": raw,
    }
    before = common.storage_info(sc)
    assembled = common.assembled_frame(spark, path, names)
    vectors = common.jvm_vector_rdd(spark, assembled)
    vectors.persist(sc._jvm.org.apache.spark.storage.StorageLevel.MEMORY_ONLY())
    vectors.count()
    footprint["mllib_kmeans_jvm_vectors"] = {**common.cached_bytes(sc, before), "raw_bytes": raw}
    rows = data.blocks.flatMap(lambda block: list(block.values)).persist(StorageLevel.MEMORY_ONLY)
    rows.count()
    footprint["pyspark_mllib_python_rows"] = {
        **common.cached_bytes(sc, rdd_id=rows.id()),
        "raw_bytes": raw,
    }
    return {"data": data, "assembled": assembled, "vectors": vectors, "rows": rows}


def bench_kmeans(spark, args: argparse.Namespace, paths: dict, results: dict) -> None:
    """Measure k-means from the same centres into ``results["kmeans_cached"]`` (and the rest)."""
    path = str(paths["kmeans"])
    x, names = common.parquet_to_numpy(path)
    footprint = results.setdefault("footprint", {})
    copies = _cache_copies(spark, path, x, names, footprint)
    case = KMeansCase(
        x=x, centres=paths["centres_array"], iterations=args.iterations, spark=spark, **copies
    )
    r, r2 = args.repeats, args.secondary_repeats
    systems = {
        "ours": (partial(_ours_given, case), r),
        "ours_barrier": (partial(_ours_given, case, mode="barrier"), r),
        "mllib": (partial(_mllib_jvm, case), r),
        "mllib_pyrdd": (partial(_mllib_pyrdd, case), r2),
        "sklearn": (partial(_sklearn_given, case), r),
    }
    say(
        f"k-means fit on cached data, {case.iterations} iterations from the same centres "
        f"({len(x):,} x {x.shape[1]}, k={K})"
    )
    runs = run_rotated(systems, "kmeans")
    case.rows.unpersist()
    case.vectors.unpersist(False)
    section = {name: summarise(rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        keys = ("per_iter_s", "steady_per_iter_s", "cost", "iterations")
        section[name].update(medians_of(rs, keys))
    section["partitions"] = case.data.blocks.getNumPartitions()
    results["kmeans_cached"] = section
    if "kmeans-default" in args.sections:
        bench_kmeans_default(spark, args, case, results)
    if "footprint" in args.sections:
        _points_footprint(spark, case, footprint)
    case.data.unpersist()


def _points_footprint(spark, case: KMeansCase, footprint: dict) -> None:
    """The bytes of the RDD our iterations read (0 when they read the cached blocks directly)."""
    from sparkml_jobs.clustering.lloyd import prepare

    points = prepare(case.data, "euclidean")
    points.count()
    footprint["ours_kmeans_points"] = {
        **common.cached_bytes(spark.sparkContext, rdd_id=points.id()),
        "raw_bytes": case.x.size * 8,
    }
    points.unpersist()


def _ours_default(case: KMeansCase) -> Measurement:
    return ours_kmeans(case.data, None, case.x, k=K, seed=0)


def _mllib_default(case: KMeansCase) -> Measurement:
    from pyspark.ml.clustering import KMeans

    seconds, model, l0, l1 = timed(KMeans(k=K, seed=0).fit, case.assembled)
    n_iter = model.summary.numIter
    cost = common.kmeans_cost(case.x, np.array(model.clusterCenters()))
    out = _result(seconds, n_iter, cost, l0, l1, n_iter)
    return {**out, "reported_cost": model.summary.trainingCost}


def _sklearn_default(case: KMeansCase) -> Measurement:
    from sklearn.cluster import KMeans

    seconds, model, l0, l1 = timed(KMeans(n_clusters=K, random_state=0).fit, case.x)
    n_iter = int(model.n_iter_)
    return _result(
        seconds, n_iter, common.kmeans_cost(case.x, model.cluster_centers_), l0, l1, n_iter
    )


DEFAULTS = {
    "ours": f"KMeans(k={K}): init k-means|| (2 steps), tol 1e-4, max_iter 20",
    "mllib": f"pyspark.ml.clustering.KMeans(k={K}): initMode k-means|| (2 steps), tol 1e-4, "
    "maxIter 20",
    "sklearn": f"KMeans(n_clusters={K}): init k-means++, n_init=1 ('auto'), tol 1e-4, max_iter 300",
}


def bench_kmeans_default(spark, args: argparse.Namespace, case: KMeansCase, results: dict):
    """Each system's default k-means into ``results["kmeans_default_cached"]``."""
    sc = spark.sparkContext
    before = common.storage_info(sc)
    case.assembled.cache()
    case.assembled.count()
    results.setdefault("footprint", {})["mllib_kmeans_dataframe"] = {
        **common.cached_bytes(sc, before),
        "raw_bytes": case.x.size * 8,
    }
    systems = {"ours": _ours_default, "mllib": _mllib_default, "sklearn": _sklearn_default}
    say("k-means fit on cached data, each system's default initialisation and stopping rule")
    runs = run_rotated(
        {name: (partial(fn, case), args.secondary_repeats) for name, fn in systems.items()},
        "kmeans-default",
    )
    case.assembled.unpersist()
    section = {name: summarise(rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        section[name].update(medians_of(rs, ("cost", "iterations", "per_iter_s")))
    section["defaults"] = dict(DEFAULTS)
    results["kmeans_default_cached"] = section
