"""One Spark MLlib job as a whole process: read Parquet → assemble → fit → save the model.

    python -m benchmarks.mllib_job linreg       --input P --label label --output OUT
    python -m benchmarks.mllib_job linreg-formula --input P --formula "y ~ x1 + a" --output OUT
    python -m benchmarks.mllib_job kmeans-rdd   --input P --k 10 --init centres.csv \
        --max-iter 20 --epsilon 0 --output OUT
    python -m benchmarks.mllib_job kmeans-pyrdd --input P --k 10 --init centres.csv \
        --max-iter 20 --epsilon 0 --output OUT
    python -m benchmarks.mllib_job kmeans-df    --input P --k 10 --output OUT   (MLlib defaults)

``kmeans-rdd`` is ``org.apache.spark.mllib.clustering.KMeans`` with ``setInitialModel`` on the
JVM ``RDD[Vector]`` of the assembled frame (what a Scala job does; no Python on the data path).
``kmeans-pyrdd`` is the PySpark RDD API ``pyspark.mllib.clustering.KMeans.train(rdd, …,
initialModel=…)`` on an RDD of numpy rows. ``linreg-formula`` is ``RFormula`` (text columns
one-hot encoded by MLlib, its own reference level) + ``LinearRegression(solver="normal")``
fitted as one ``Pipeline`` on the raw frame and saved; its metrics include the training R².
``kmeans-df`` is ``pyspark.ml.clustering.KMeans``, which in Spark 4.x takes no initial centres
(only ``initMode`` random / k-means||).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks import common


def _rformula_fit(frame, formula: str, out: Path) -> dict:
    """RFormula + normal-equation LinearRegression as one pipeline; saved; R² and coefficients."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import RFormula
    from pyspark.ml.regression import LinearRegression

    stages = [RFormula(formula=formula), LinearRegression(solver="normal")]
    model = Pipeline(stages=stages).fit(frame)
    model.write().overwrite().save(str(out))
    lr = model.stages[-1]
    return {
        "r2": lr.summary.r2,
        "intercept": lr.intercept,
        "coefficients": [float(v) for v in lr.coefficients],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.mllib_job")
    parser.add_argument(
        "job", choices=["linreg", "linreg-formula", "kmeans-rdd", "kmeans-pyrdd", "kmeans-df"]
    )
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--label", default="label")
    parser.add_argument("--formula", help="R model formula (linreg-formula)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--init", help="CSV of initial centres (kmeans-rdd / kmeans-pyrdd)")
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--epsilon", type=float, default=1e-4)
    parser.add_argument("--metrics-json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    spark = common.spark_session(args.master, args.driver_memory, app=f"mllib {args.job}")
    frame = spark.read.parquet(args.input)
    features = (
        [c for c in frame.columns if c != args.label] if args.job == "linreg" else frame.columns
    )
    out = Path(args.output)
    if out.exists():
        shutil.rmtree(out)
    metrics: dict = {"job": args.job}
    if args.job == "linreg":
        from pyspark.ml.regression import LinearRegression

        assembled = common.assembled_frame(spark, args.input, features, args.label)
        model = LinearRegression(solver="normal", labelCol=args.label).fit(assembled)
        model.write().overwrite().save(str(out))
        metrics["intercept"] = model.intercept
    elif args.job == "linreg-formula":
        metrics.update(_rformula_fit(frame, args.formula, out))
    elif args.job == "kmeans-rdd":
        centres = common.read_centres_csv(args.init) if args.init else None
        assembled = common.assembled_frame(spark, args.input, features)
        vectors = common.jvm_vector_rdd(spark, assembled)
        algo = common.jvm_kmeans(spark, args.k, args.max_iter, args.epsilon, centres)
        jmodel = algo.run(vectors)
        jmodel.save(spark.sparkContext._jsc.sc(), str(out))
        metrics.update(iterations=int(jmodel.numIter()), cost=float(jmodel.trainingCost()))
    elif args.job == "kmeans-pyrdd":
        import numpy as np
        from pyspark.mllib.clustering import KMeans, KMeansModel

        centres = common.read_centres_csv(args.init) if args.init else None
        assembled = common.assembled_frame(spark, args.input, features)
        rows = assembled.rdd.map(lambda row: np.asarray(row[0].toArray()))
        model = KMeans.train(
            rows,
            args.k,
            maxIterations=args.max_iter,
            epsilon=args.epsilon,
            initialModel=KMeansModel(centres) if centres is not None else None,
        )
        model.save(spark.sparkContext, str(out))
    else:
        from pyspark.ml.clustering import KMeans

        assembled = common.assembled_frame(spark, args.input, features)
        model = KMeans(k=args.k, seed=0).fit(assembled)
        model.write().overwrite().save(str(out))
        metrics.update(iterations=model.summary.numIter, cost=model.summary.trainingCost)
    metrics["seconds_in_process"] = time.perf_counter() - started
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps(metrics))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
