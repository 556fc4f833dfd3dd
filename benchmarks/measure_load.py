"""The shared load path (issue 14): Parquet → cached float64 blocks, against MLlib's
``VectorAssembler`` + ``cache()`` + ``count()`` on the same file, in one shared SparkSession.

Ours by default (``direct``): the file is local, so the tasks read it with pyarrow and the
blocks are counted — what a fit's first pass reads; such blocks are never cached (a pass reads
the file again, faster than a cache). Then Spark's reader path, which HDFS, object stores and
text columns take (``spark.sparkml.parquet.direct=false``), as four nested stages over the same
selection, each a full job from the file, so their differences split that load (every stage
re-reads the file; nothing is cached between them):

1. ``jvm_arrow``: the JVM reads Parquet, casts and writes Arrow batches (``toArrowBatchRdd``),
   counted in the JVM — no Python.
2. ``to_python``: the same batches shipped to the Python workers and dropped (transfer).
3. ``blocks``: the batches assembled into numpy blocks (our ``to_blocks``), counted.
4. ``cached``: the blocks persisted and counted — what a fit does before its first pass.

The differences are reported as JVM decode + Arrow, Arrow transfer, numpy assembly and caching.
"""

from __future__ import annotations

import argparse
from functools import partial

from benchmarks import common
from benchmarks.harness import Measurement, run_rotated, say, summarise, timed


def _selection(spark, path: str, direct: bool = False):
    """Our selection of the file (features + label, cast to double) and its blocks, lazily:
    read by the tasks (``direct``) or by Spark's reader."""
    from sparkml_jobs.io import read as sdr
    from sparkml_jobs.io.direct import DIRECT_KEY

    spark.conf.set(DIRECT_KEY, str(direct).lower())
    try:
        data = sdr.load(spark, path, "parquet", label="label")
    finally:
        spark.conf.unset(DIRECT_KEY)
    assert data.rereadable == direct
    return data


def _stage(spark, path: str, stage: str) -> Measurement:
    from pyspark.rdd import RDD
    from pyspark.serializers import NoOpSerializer

    data = _selection(spark, path, direct=stage == "direct")
    if stage == "cached":

        def run():
            data.cache()
            n = data.blocks.count()
            data.unpersist()
            return n
    elif stage in ("blocks", "direct"):
        run = data.blocks.count
    else:
        # the JVM half of our fast path: the selection ``to_blocks`` makes (try_cast to double)
        columns = [*data.features, "label"]
        selected = spark.read.parquet(path).selectExpr(
            *[f"try_cast(`{c}` AS DOUBLE) AS `_{j}`" for j, c in enumerate(columns)]
        )
        jrdd = selected._jdf.toArrowBatchRdd().toJavaRDD()
        if stage == "jvm_arrow":
            run = jrdd.count
        else:
            rdd = RDD(jrdd, spark.sparkContext, NoOpSerializer())
            run = rdd.map(len).count
    seconds, _, l0, l1 = timed(run)
    return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}


def _mllib(spark, path: str, features: list[str]) -> Measurement:
    def run():
        assembled = common.assembled_frame(spark, path, features, "label").cache()
        n = assembled.count()
        assembled.unpersist()
        return n

    seconds, _, l0, l1 = timed(run)
    return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}


def bench_load(spark, args: argparse.Namespace, paths: dict, results: dict) -> None:
    """Measure the load path into ``results["load_path"]``."""
    path = str(paths["linreg"])
    features = [c for c in spark.read.parquet(path).columns if c != "label"]
    say(f"load path: {path} -> blocks vs VectorAssembler + cache + count")
    stages = ("direct", "jvm_arrow", "to_python", "blocks", "cached")
    systems = {f"ours_{s}": (partial(_stage, spark, path, s), args.repeats) for s in stages}
    systems["mllib_cached"] = (partial(_mllib, spark, path, features), args.repeats)
    _stage(spark, path, "direct")  # warm-up, untimed: Python workers started, file in page cache
    runs = run_rotated(systems, "load")
    section = {name: summarise(rs) for name, rs in runs.items()}
    med = {name: section[name]["median_s"] for name in section}
    order = ["ours_jvm_arrow", "ours_to_python", "ours_blocks", "ours_cached"]
    labels = ["jvm_decode_arrow_s", "arrow_transfer_s", "numpy_assembly_s", "caching_s"]
    previous = 0.0
    breakdown = {}
    for name, label in zip(order, labels, strict=True):
        value = med.get(name)
        breakdown[label] = None if value is None else value - previous
        previous = value if value is not None else previous
    section["breakdown"] = breakdown
    section["rows"] = args.rows
    section["columns"] = len(features) + 1
    results["load_path"] = section
