"""Linear regression fit on already-cached data, in one shared SparkSession.

ours (default and ``residual_pass=False``) on its cached blocks, MLlib ``solver="normal"`` on the
cached assembled frame, numpy normal equations and scikit-learn on the same rows in memory.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from benchmarks import common
from benchmarks.harness import Measurement, run_rotated, say, summarise, timed


@dataclass(frozen=True, kw_only=True)
class LinregCase:
    """The data of one linear-regression benchmark, shared by its systems."""

    spark: object
    path: str
    x: np.ndarray
    y: np.ndarray
    features: list[str]
    footprint: dict
    assembled: object = None
    coefs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def raw_bytes(self) -> int:
        return len(self.x) * (len(self.features) + 1) * 8


def _loads(seconds: float, l0: float, l1: float) -> Measurement:
    return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}


def _cached_blocks(case: LinregCase):
    from sparkml_jobs.io import read as sdr

    data = sdr.load(case.spark, case.path, "parquet", label="label")
    data.cache()
    data.blocks.count()  # materialise the cache (untimed)
    return data


def _ours(case: LinregCase, *, residual_pass: bool = True) -> Measurement:
    from sparkml_jobs.regression.estimator import LinearRegression

    data = _cached_blocks(case)
    if residual_pass:
        case.footprint.setdefault(
            "ours_linreg_blocks",
            {
                **common.cached_bytes(case.spark.sparkContext, rdd_id=data.blocks.id()),
                "raw_bytes": case.raw_bytes,
            },
        )
    seconds, model, l0, l1 = timed(LinearRegression(residual_pass=residual_pass).fit, data)
    data.unpersist()
    if not residual_pass:
        return _loads(seconds, l0, l1)
    case.coefs["ours"] = np.r_[model.intercept, model.coefficients]
    return {**_loads(seconds, l0, l1), "solver": getattr(model.summary, "solver", None)}


def _mllib(case: LinregCase) -> Measurement:
    from pyspark.ml.regression import LinearRegression as MLlibLR

    seconds, model, l0, l1 = timed(MLlibLR(solver="normal", labelCol="label").fit, case.assembled)
    case.coefs["mllib"] = np.r_[model.intercept, model.coefficients.toArray()]
    return _loads(seconds, l0, l1)


def _numpy(case: LinregCase) -> Measurement:
    from benchmarks.local_job import normal_equations

    seconds, (beta, b0), l0, l1 = timed(normal_equations, case.x, case.y)
    case.coefs["numpy"] = np.r_[b0, beta]
    return _loads(seconds, l0, l1)


def _sklearn(case: LinregCase) -> Measurement:
    from sklearn.linear_model import LinearRegression as SkLR

    seconds, model, l0, l1 = timed(SkLR().fit, case.x, case.y)
    case.coefs["sklearn"] = np.r_[model.intercept_, model.coef_]
    return _loads(seconds, l0, l1)


def _prepare(spark, path: str, footprint: dict) -> LinregCase:
    """Rows in memory for numpy / scikit-learn and MLlib's cached assembled frame."""
    sc = spark.sparkContext
    z, names = common.parquet_to_numpy(path)
    features = [n for n in names if n != "label"]
    x, y = np.ascontiguousarray(z[:, :-1]), z[:, -1].copy()
    del z
    before = common.storage_info(sc)
    assembled = common.assembled_frame(spark, path, features, "label").cache()
    assembled.count()
    case = LinregCase(
        spark=spark,
        path=path,
        x=x,
        y=y,
        features=features,
        footprint=footprint,
        assembled=assembled,
    )
    footprint["mllib_linreg_dataframe"] = {
        **common.cached_bytes(sc, before),
        "raw_bytes": case.raw_bytes,
    }
    return case


def bench_linreg(spark, args: argparse.Namespace, paths: dict, results: dict) -> None:
    """Measure the cached linear-regression fits into ``results["linreg_cached"]``."""
    path = str(paths["linreg"])
    case = _prepare(spark, path, results.setdefault("footprint", {}))
    systems = {
        "ours": _ours,
        "ours_onepass": partial(_ours, residual_pass=False),
        "mllib": _mllib,
        "numpy": _numpy,
        "sklearn": _sklearn,
    }
    say(f"linreg fit on cached data ({len(case.x):,} x {len(case.features)})")
    runs = run_rotated(
        {name: (partial(fn, case), args.repeats) for name, fn in systems.items()}, "linreg"
    )
    case.assembled.unpersist()
    section = {name: summarise(rs) for name, rs in runs.items()}
    if "numpy" in case.coefs:
        section["max_abs_coef_diff_vs_numpy"] = {
            name: float(np.abs(c - case.coefs["numpy"]).max()) for name, c in case.coefs.items()
        }
    section["partitions"] = spark.read.parquet(path).rdd.getNumPartitions()
    section["ours_solver"] = next((r.get("solver") for r in runs["ours"] if r.get("solver")), None)
    results["linreg_cached"] = section
