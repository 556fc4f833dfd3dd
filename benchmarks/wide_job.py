"""The wide linear regression (few rows, thousands of features), ours only, as its own process.

    python -m benchmarks.wide_job --rows 20000 --features 8192 --metrics-json OUT.json

Run in a subprocess so the benchmark can give it a time limit. Loads the Parquet into cached
blocks with the library's defaults (Spark's 128 MiB splits, the loader's own block size), then
times ``LinearRegression().fit`` on the cached data; progress lines carry time stamps so a
run cut off by the time limit still shows which phase it was in. Also shows what MLlib's
``solver="normal"`` says at this width (on a tiny frame).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common


def mllib_normal_at_width(spark, p: int) -> str:
    """What MLlib's normal-equation solver does with ``p`` features (8 random rows)."""
    from pyspark.ml.linalg import Vectors
    from pyspark.ml.regression import LinearRegression as MLlibLR

    rng = np.random.default_rng(0)
    tiny = spark.createDataFrame(
        [(float(rng.normal()), Vectors.dense(rng.normal(size=p))) for _ in range(8)],
        ["label", "features"],
    )
    try:
        MLlibLR(solver="normal").fit(tiny)
        return "accepted"
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        found = re.search(r"requirement failed:[^\n]*", text)
        line = found.group(0) if found else text.strip().splitlines()[0]
        return f"refused: {line.strip()[:300]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.wide_job")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=8192)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument(
        "--partition-mb",
        type=int,
        help="spark.sql.files.maxPartitionBytes in MiB (default: Spark's 128)",
    )
    parser.add_argument("--metrics-json", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    say = logging.getLogger("benchmarks.wide").info
    out: dict = {"rows": args.rows, "features": args.features}
    metrics = Path(args.metrics_json)

    def dump():
        metrics.write_text(json.dumps(out, default=float))

    rows, p = args.rows, args.features
    path = str(common.regression_parquet(rows, p, row_group_rows=1024, chunk_rows=2048))
    spark = common.spark_session(
        args.master,
        args.driver_memory,
        app="wide linreg",
        extra={"spark.driver.maxResultSize": "8g"},
    )
    check_width = max(p, 4097)  # show MLlib's cap even when the fit itself is narrower (--quick)
    out["mllib_normal_width"] = check_width
    out["mllib_normal"] = mllib_normal_at_width(spark, check_width)
    say("MLlib solver=normal with %d features: %s", check_width, out["mllib_normal"])
    dump()

    from sparkml_jobs.io import read as sdr
    from sparkml_jobs.regression.estimator import LinearRegression

    if args.partition_mb:
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(args.partition_mb * 2**20))
    started = time.perf_counter()
    data = sdr.load(spark, path, "parquet", label="label")  # the library's own block sizing
    data.cache()
    data.blocks.count()
    out["load_and_cache_s"] = time.perf_counter() - started
    out["partitions"] = data.blocks.getNumPartitions()
    say(
        "cached %d x %d in %d partitions (%.1f s)",
        rows,
        p,
        out["partitions"],
        out["load_and_cache_s"],
    )
    dump()
    logging.getLogger("sparkml_jobs").setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        model = LinearRegression().fit(data)
        out["seconds"] = time.perf_counter() - started
        truth, _, _ = common.regression_truth(p)
        out["solver"] = model.summary.solver if model.summary else None
        out["max_abs_coef_error_vs_truth"] = float(np.abs(model.coefficients - truth).max())
        say("fit %.1f s", out["seconds"])
    except Exception as exc:  # noqa: BLE001 - reported
        out["seconds_until_error"] = time.perf_counter() - started
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        logging.getLogger("benchmarks.wide").exception("fit failed")
    dump()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
