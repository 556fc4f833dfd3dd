"""The wide linear regression (few rows, thousands of features), ours only, as its own process.

    python -m benchmarks.wide_job --rows 20000 --features 8192 --driver-memory 10g
    python -m benchmarks.wide_job --rows 20000 --features 8192 --solver tsqr --driver-memory 10g
    python -m benchmarks.wide_job --rows 20000 --features 8192 --numpy-baseline

Run in a subprocess so the benchmark can give it a time limit. Loads the Parquet with the
library's defaults (Spark's 128 MiB splits, the loader's own block size; local Parquet is read by
the tasks and not cached, other sources are cached first), then
times ``LinearRegression(solver=...).fit`` and says where the time went:
load + cache, the statistics pass split into Gram (the parallel packed-triangle job), transfer
(streaming the partials to the driver; then a JVM collection), merge, and the rest of the fit
(solve, residual pass). It polls its own process tree (driver, JVM, Python workers) for the peak RSS
and prints it against the target ``raw data + 4 × packed Gram``. Progress lines carry time
stamps so a run cut off by the time limit still shows which phase it was in. Also shows what
MLlib's ``solver="normal"`` says at this width (on a tiny frame, after the fit: not in the
peak). ``--numpy-baseline`` instead times single-process numpy on the same Parquet: read,
``X.T @ X``, Cholesky + solve.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


class _PhaseCapture(logging.Handler):
    """Keeps the ``timings`` of the wide statistics pass, which :mod:`~.passes` logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.timings: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.timings.update(getattr(record, "timings", {}) or {})


def tree_rss() -> int:
    """Current RSS summed over this process and its descendants (JVM, Python workers)."""
    return sum(common._rss_pss(pid)[0] for pid in common._tree(os.getpid()))


def memory_target(rows: int, p: int) -> dict:
    """The issue's memory target: raw data + 4 × the packed Gram of ``[x, y]``."""
    raw = rows * (p + 1) * 8
    packed = 8 * (p + 1) * (p + 2) // 2
    return {"raw_bytes": raw, "packed_gram_bytes": packed, "memory_target_bytes": raw + 4 * packed}


def numpy_baseline(path: str, p: int, out: dict, say) -> None:
    """Single-process numpy normal equations on the same Parquet: read, X.T @ X, Cholesky."""
    from scipy import linalg

    started = time.perf_counter()
    z, names = common.parquet_to_numpy(path)
    x, y = z[:, :p], z[:, names.index("label")]
    out["numpy_read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    gram, rhs = x.T @ x, x.T @ y
    out["numpy_gram_s"] = time.perf_counter() - started
    started = time.perf_counter()
    beta = linalg.cho_solve(linalg.cho_factor(gram, lower=True, check_finite=False), rhs)
    out["numpy_solve_s"] = time.perf_counter() - started
    out["numpy_fit_s"] = out["numpy_gram_s"] + out["numpy_solve_s"]
    out["numpy_coef_finite"] = bool(np.isfinite(beta).all())
    say(
        "numpy: read %.1f s, X.T @ X %.1f s, Cholesky + solve %.1f s",
        out["numpy_read_s"],
        out["numpy_gram_s"],
        out["numpy_solve_s"],
    )


def spark_fit(
    args: argparse.Namespace, path: str, out: dict, dump, say, memory: common.TreeMemory
) -> None:
    """Load + cache, then the fit, with the statistics pass split into its phases; ``memory``
    is stopped after the fit, before MLlib's check."""
    spark = common.spark_session(
        args.master,
        args.driver_memory,
        app="wide linreg",
        extra={"spark.driver.maxResultSize": "8g"},
    )
    # what an idle session (driver, JVM) already holds: the part of the peak no algorithm owns
    out["rss_idle_session_bytes"] = tree_rss()

    from sparkml_jobs.io import read as sdr
    from sparkml_jobs.regression.estimator import LinearRegression

    if args.partition_mb:
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(args.partition_mb * 2**20))
    started = time.perf_counter()
    data = sdr.load(spark, path, "parquet", label="label")  # the library's own block sizing
    # local Parquet read by the tasks is never cached (re-reading it is cheaper): the "load" is
    # then the plan, and the fit's passes read the file, as the CLI's do
    out["read_in_fit"] = data.rereadable
    if not data.rereadable:
        data.cache()
        data.blocks.count()
    out["load_and_cache_s"] = time.perf_counter() - started
    out["partitions"] = data.blocks.getNumPartitions()
    say(
        "%s %d x %d in %d partitions (%.1f s)",
        "planned (read by the fit)" if data.rereadable else "cached",
        args.rows,
        args.features,
        out["partitions"],
        out["load_and_cache_s"],
    )
    dump()
    capture = _PhaseCapture()
    logging.getLogger("sparkml_jobs").setLevel(logging.INFO)
    logging.getLogger("sparkml_jobs.regression.passes").addHandler(capture)
    started = time.perf_counter()
    try:
        model = LinearRegression(solver=args.solver).fit(data)
        out["seconds"] = time.perf_counter() - started
        truth, _, _ = common.regression_truth(args.features)
        out["solver"] = model.summary.solver if model.summary else None
        out["max_abs_coef_error_vs_truth"] = float(np.abs(model.coefficients - truth).max())
        phases = {f"stats_{k}": v for k, v in capture.timings.items()}
        stats_s = sum(v for k, v in capture.timings.items() if k.endswith("_s"))
        out |= phases | {"rest_of_fit_s": out["seconds"] - stats_s}
        say("fit %.1f s", out["seconds"])
    except Exception as exc:  # noqa: BLE001 - reported
        out["seconds_until_error"] = time.perf_counter() - started
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        logging.getLogger("benchmarks.wide").exception("fit failed")
    # the peak is the fit's: MLlib's check below runs a job of its own in the same JVM
    out |= memory.stop()
    dump()
    check_width = max(args.features, 4097)  # MLlib's cap shows even when narrower (--quick)
    out["mllib_normal_width"] = check_width
    out["mllib_normal"] = mllib_normal_at_width(spark, check_width)
    say("MLlib solver=normal with %d features: %s", check_width, out["mllib_normal"])
    dump()
    spark.stop()


def report(out: dict) -> str:
    """Where the time went and the peak memory against its target, as printable lines."""
    gib = 2**30
    rows = [
        (
            "load (plan; the fit reads)" if out.get("read_in_fit") else "load + cache",
            out.get("load_and_cache_s"),
        ),
        (
            "statistics: read + Gram (parallel job)"
            if out.get("read_in_fit")
            else "statistics: Gram (parallel job)",
            out.get("stats_fold_s"),
        ),
        ("statistics: transfer of partials", out.get("stats_transfer_s")),
        ("statistics: driver JVM collection", out.get("stats_jvm_gc_s")),
        ("statistics: merge", out.get("stats_merge_s")),
        ("statistics: unpack", out.get("stats_unpack_s")),
        ("rest of fit (solve, residual pass)", out.get("rest_of_fit_s")),
        ("fit total", out.get("seconds")),
        ("numpy X.T @ X + Cholesky", out.get("numpy_fit_s")),
    ]
    lines = [f"  {name:36s} {v:8.1f} s" for name, v in rows if v is not None]
    if out.get("peak_rss_sum_bytes"):
        lines.append(
            f"  peak RSS of the process tree {out['peak_rss_sum_bytes'] / gib:.2f} GiB; target "
            f"(raw {out['raw_bytes'] / gib:.2f} + 4 x packed Gram "
            f"{out['packed_gram_bytes'] / gib:.2f}) = {out['memory_target_bytes'] / gib:.2f} GiB"
        )
    if out.get("peak_rss_sum_bytes") and out.get("rss_idle_session_bytes"):
        above = out["peak_rss_sum_bytes"] - out["rss_idle_session_bytes"]
        lines.append(
            f"  of which an idle session held {out['rss_idle_session_bytes'] / gib:.2f} GiB: "
            f"{above / gib:.2f} GiB above it"
        )
    split, own = out.get("peak_rss_by_role_bytes") or {}, out.get("role_peak_rss_bytes") or {}
    if split:  # "root" is this process: the job's driver
        parts = ", ".join(
            f"{'driver' if role == 'root' else role} {value / gib:.2f}"
            + (f" (own peak {own[role] / gib:.2f})" if role in own else "")
            for role, value in sorted(split.items())
            if role != "at"
        )
        lines.append(f"  at the peak ({split.get('at', '?')}), GiB: {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.wide_job")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=8192)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="10g")
    parser.add_argument("--solver", default="auto", choices=("auto", "cholesky", "tsqr"))
    parser.add_argument(
        "--numpy-baseline",
        action="store_true",
        help="time single-process numpy on the same Parquet instead (no Spark)",
    )
    parser.add_argument(
        "--partition-mb",
        type=int,
        help="spark.sql.files.maxPartitionBytes in MiB (default: Spark's 128)",
    )
    parser.add_argument("--metrics-json", help="write the measurements here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    say = logging.getLogger("benchmarks.wide").info
    rows, p = args.rows, args.features
    out: dict = {"rows": rows, "features": p, "solver_requested": args.solver}
    out |= memory_target(rows, p)

    def dump():
        if args.metrics_json:
            Path(args.metrics_json).write_text(json.dumps(out, default=float))

    path = str(common.regression_parquet(rows, p, row_group_rows=1024, chunk_rows=2048))
    memory = common.TreeMemory(os.getpid()).start()  # driver, its JVM and the Python workers
    if args.numpy_baseline:
        numpy_baseline(path, p, out, say)
        out |= memory.stop()
    else:
        spark_fit(args, path, out, dump, say, memory)
    dump()
    print(report(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
