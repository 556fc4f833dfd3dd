"""Scaling of our jobs (time vs rows, time vs k) and the wide linear regression (own process)."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from benchmarks import common
from benchmarks.harness import (
    RUN_DIR,
    K,
    Measurement,
    medians_of,
    run_rotated,
    say,
    timed,
)
from benchmarks.measure_kmeans import kmeans_setup, ours_kmeans


def _linreg_fit(spark, path: str) -> Measurement:
    from sparkml_jobs.io import read as sdr
    from sparkml_jobs.regression.estimator import LinearRegression

    data = sdr.load(spark, path, "parquet", label="label")
    data.cache()
    data.blocks.count()
    cache = common.cached_bytes(spark.sparkContext, rdd_id=data.blocks.id())
    seconds, _, l0, l1 = timed(LinearRegression().fit, data)
    data.unpersist()
    return {
        "seconds": seconds,
        "loadavg_before": l0,
        "loadavg_after": l1,
        "partitions": cache["partitions"],
        "cached_partitions": cache["cached_partitions"],
    }


def _kmeans_medians(entry: dict) -> None:
    m = medians_of(entry["kmeans"], ("seconds", "per_iter_s", "iterations"))
    entry["kmeans_median_s"] = m["seconds"]
    entry["kmeans_per_iter_s"] = m["per_iter_s"]
    entry["kmeans_iterations"] = m["iterations"]


def _scaling_rows(spark, args: argparse.Namespace, rows: int) -> dict:
    """Our linreg and k-means fits at ``rows`` rows."""
    lpath = str(common.regression_parquet(rows))
    kpath = common.blobs_parquet(rows)
    centres = common.initial_centres(kpath, K)
    x, _ = common.parquet_to_numpy(kpath)
    say(f"scaling: {rows:,} rows")
    n = args.scaling_repeats
    label = f"scaling {rows:,}"
    entry = run_rotated({"linreg": (partial(_linreg_fit, spark, lpath), n)}, label)
    data = kmeans_setup(spark, str(kpath))
    params = {"k": K, "max_iter": args.iterations, "tol": 0.0}
    entry |= run_rotated({"kmeans": (partial(ours_kmeans, data, centres, x, **params), n)}, label)
    data.unpersist()
    entry = {"rows": rows, **entry}
    entry["linreg_median_s"] = medians_of(entry["linreg"], ("seconds",))["seconds"]
    _kmeans_medians(entry)
    return entry


def bench_scaling(spark, args: argparse.Namespace, results: dict) -> None:
    """Time vs rows (linreg, k-means) and time vs k into ``results["scaling"]``."""
    section = results.setdefault("scaling", {"rows": [], "k": []})
    for rows in args.scaling_rows:
        section["rows"].append(_scaling_rows(spark, args, rows))
    kpath = common.blobs_parquet(args.rows)
    x, _ = common.parquet_to_numpy(kpath)
    data = kmeans_setup(spark, str(kpath))
    n = args.scaling_repeats
    for k in args.scaling_k:
        centres = common.initial_centres(kpath, k)
        say(f"scaling: k={k}")
        params = {"k": k, "max_iter": args.iterations, "tol": 0.0}
        measure = partial(ours_kmeans, data, centres, x, **params)
        entry = {
            "k": k,
            "rows": args.rows,
            **run_rotated({"kmeans": (measure, n)}, f"scaling k={k}"),
        }
        _kmeans_medians(entry)
        section["k"].append(entry)
    data.unpersist()


def _last_error(log_path: Path) -> str:
    """The most telling error line of a failed job's log (OutOfMemoryError, Exception…)."""
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines()]
    for needle in ("OutOfMemoryError", "Error:", "Exception:"):
        hits = [ln for ln in lines if needle in ln and not ln.startswith("at ")]
        if hits:
            return hits[0][:300]
    return lines[-1][:300] if lines else "no output"


def _wide_command(args: argparse.Namespace, metrics: Path, features: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.wide_job",
        "--rows",
        str(args.wide_rows),
        "--features",
        str(features),
        "--master",
        args.master,
        "--driver-memory",
        args.wide_driver_memory,
        "--metrics-json",
        str(metrics),
        *extra,
    ]


def _wide_run(args: argparse.Namespace, name: str, *extra: str, features: int = 0) -> dict:
    """One wide process (``name`` labels its log and metrics): its measurements and memory.

    ``features`` 0 means ``--wide-features``. ``peak_over_memory_target`` is the process tree's
    peak RSS (polled from outside) over the issue's target, raw data + 4 × packed Gram.
    """
    log_path, metrics = RUN_DIR / "logs" / f"{name}.log", RUN_DIR / "logs" / f"{name}.json"
    metrics.unlink(missing_ok=True)
    cmd = _wide_command(args, metrics, features or args.wide_features, *extra)
    run = common.run_process(cmd, log_path, timeout=args.wide_timeout)
    section = {"process": run, "command": " ".join(cmd)}
    if metrics.exists():
        section.update(json.loads(metrics.read_text()))
    if run["exit_code"] != 0 and not run["timed_out"]:
        section.setdefault(
            "error",
            f"process failed (exit code {run['exit_code']}): {_last_error(log_path)}",
        )
    if run["timed_out"]:
        section.setdefault(
            "error",
            f"did not finish within the {args.wide_timeout:.0f} s limit "
            f"(see {run['log']} for the last phase reached)",
        )
    peak = run.get("peak_rss_sum_bytes")
    if peak and section.get("memory_target_bytes") and "--numpy-baseline" not in extra:
        section["peak_over_memory_target"] = peak / section["memory_target_bytes"]
    return section


def _over_numpy(run: dict, numpy: dict) -> None:
    """Ratios to single-process numpy: fit only, and end to end (load + fit vs read + fit)."""
    numpy_fit, fit = numpy.get("numpy_fit_s"), run.get("seconds")
    if not (numpy_fit and fit):
        return
    run["fit_over_numpy"] = fit / numpy_fit
    if run.get("load_and_cache_s") is not None and numpy.get("numpy_read_s") is not None:
        ours = run["load_and_cache_s"] + fit
        run["end_to_end_over_numpy"] = ours / (numpy["numpy_read_s"] + numpy_fit)


def bench_wide(args: argparse.Namespace, results: dict) -> None:
    """Ours only, each in its own process with a time limit (see :mod:`benchmarks.wide_job`):
    ``solver=auto`` (the top level of ``results["wide"]``), ``cholesky`` and ``tsqr`` (its keys of
    those names), single-process numpy on the same Parquet (``numpy``, the 3× target) and
    ``solver=cholesky`` at ``--wide-large-features`` (``large``, unless 0)."""
    rows, p = args.wide_rows, args.wide_features
    say(
        f"wide linear regression: {rows:,} x {p:,} (ours only, own process, limit "
        f"{args.wide_timeout:.0f} s)"
    )
    common.regression_parquet(rows, p, row_group_rows=1024, chunk_rows=2048)  # not timed
    section = {"rows": rows, "features": p, **_wide_run(args, "wide")}
    section["cholesky"] = _wide_run(args, "wide-cholesky", "--solver", "cholesky")
    section["tsqr"] = _wide_run(args, "wide-tsqr", "--solver", "tsqr")
    section["numpy"] = _wide_run(args, "wide-numpy", "--numpy-baseline")
    numpy = section["numpy"]
    numpy_fit = numpy.get("numpy_fit_s")
    for run in (section, section["cholesky"], section["tsqr"]):
        _over_numpy(run, numpy)
    large = args.wide_large_features
    if large:
        say(f"wide linear regression: {rows:,} x {large:,}")
        common.regression_parquet(rows, large, row_group_rows=1024, chunk_rows=2048)
        # solver cholesky: auto picks TSQR there (scaled Gram condition 1.25e5 > 1e4), whose
        # 8,192-feature run alone takes ~9 minutes; the 16,384 one would not fit the limit
        section["large"] = _wide_run(args, "wide-large", "--solver", "cholesky", features=large)
    say(
        f"  wide: {section.get('seconds') or section.get('error')} s (numpy "
        f"{numpy_fit}, tsqr {section['tsqr'].get('seconds') or section['tsqr'].get('error')}); "
        f"MLlib normal at {section.get('mllib_normal_width')} features: "
        f"{section.get('mllib_normal')}"
    )
    results["wide"] = section
