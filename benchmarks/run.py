"""Side-by-side benchmark: sparkml-jobs vs Spark MLlib vs single-process numpy / scikit-learn.

    make bench                                   # = python -m benchmarks.run
    make bench BENCH_ARGS="--smoke"              # harness check: 20k rows, 3 iterations
    make bench BENCH_ARGS="--quick"              # small sizes, one repeat
    python -m benchmarks.run --rows 2000000 --repeats 3 --master 'local[2]'
    python -m benchmarks.render benchmarks/results.json   # re-render stored results

One run, one master, systems alternated within every repeat (the order rotates each repeat) and
the median reported. Sections (measured by the ``benchmarks.measure_*`` modules):

1. end-to-end: every system as a fresh process (read Parquet → fit → save model), wall time and
   the peak memory of its whole process tree (driver + JVM + Python workers), polled from /proc;
2. fit on already-cached data, in one shared SparkSession: linear regression; k-means with
   exactly ``--iterations`` Lloyd iterations from the same initial centres; k-means with each
   system's default initialisation;
3. cached footprint: the bytes Spark reports for each cached data set vs the raw float64 size;
4. scaling of our jobs: time vs rows and vs k; the wide linear regression (8,192 features with
   solver auto, cholesky and tsqr, single-process numpy, and 16,384 features);
5. formula (issue 13): ``--formula`` on three text categories (~30 dummies) vs the same design
   pre-encoded as numeric columns vs MLlib ``RFormula`` + ``LinearRegression``, fresh processes.

The load average (:func:`os.getloadavg`) is recorded at the start and end of the run and before /
after every measurement; a 1-min load above 1.5 at start prints a warning and marks the results
"measured under load". Writes ``results.json`` and ``RESULTS.md`` to ``--output`` (default
``benchmarks/``; ``benchmarks/data/smoke`` or ``benchmarks/data/quick`` for ``--smoke`` /
``--quick``, so a small run never overwrites the published results); data goes to
``benchmarks/data/`` (gitignored, cached by size).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import common
from benchmarks.common import BENCH, DATA, ROOT
from benchmarks.harness import (
    LOAD_LIMIT,
    K,
    load_snapshot,
    measured_loads,
    say,
    warn_if_loaded,
)
from benchmarks.measure_e2e import bench_e2e
from benchmarks.measure_formula import bench_formula
from benchmarks.measure_kmeans import bench_kmeans
from benchmarks.measure_kmeans_scale import bench_kmeans_scale
from benchmarks.measure_linreg import bench_linreg
from benchmarks.measure_load import bench_load
from benchmarks.measure_scaling import bench_scaling, bench_wide
from benchmarks.render import render
from benchmarks.targets import evaluate_targets

# the results.json keys each --sections name (re)measures
SECTION_KEYS = {
    "e2e": ["e2e"],
    "formula": ["formula"],
    "linreg": ["linreg_cached"],
    "load-path": ["load_path"],
    "kmeans": ["kmeans_cached"],
    "kmeans-default": ["kmeans_default_cached"],
    "kmeans-periter": ["kmeans_per_iteration"],
    "footprint": ["footprint"],
    "scaling": ["scaling"],
    "wide": ["wide"],
}
# sizes of the small runs: (rows [also of the formula section], iterations, scaling rows,
# scaling k, wide rows, wide features, wide large features)
SMALL = {
    "smoke": (20_000, 3, "10000,20000", "5,20", 2_000, 64, 128),
    "quick": (200_000, 20, "50000,100000,200000,400000", "5,20,80", 4_000, 1_600, 3_200),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument(
        "--rows",
        type=int,
        default=2_000_000,
        help="rows of the headline data sets (and of the formula section's)",
    )
    p.add_argument("--repeats", type=int, default=3, help="repeats of the headline rows (median)")
    p.add_argument(
        "--secondary-repeats",
        type=int,
        help="repeats of the secondary rows: default-init k-means and the PySpark "
        "pyspark.mllib Python-RDD API (default: --repeats)",
    )
    p.add_argument("--scaling-repeats", type=int, default=1)
    p.add_argument("--iterations", type=int, default=20, help="Lloyd iterations (same centres)")
    p.add_argument("--master", default="local[2]")
    p.add_argument(
        "--driver-memory",
        default="4g",
        help="spark.driver.memory for every Spark system (local mode: the only JVM)",
    )
    p.add_argument("--scaling-rows", default="500000,1000000,2000000,4000000")
    p.add_argument("--scaling-k", default="5,20,80")
    p.add_argument("--wide-rows", type=int, default=20_000)
    p.add_argument("--wide-features", type=int, default=8192)
    p.add_argument(
        "--wide-large-features",
        type=int,
        default=16_384,
        help="features of the second, wider row (same rows; 0: skip it)",
    )
    p.add_argument(
        "--wide-driver-memory",
        default="1g",
        help="spark.driver.memory of the wide job: 1g, what the README gives for local Parquet "
        "(the tasks read it; runs before 2026-12-07 08:00 used 10g, where the JVM grows its heap "
        "further because it may)",
    )
    p.add_argument(
        "--wide-timeout", type=float, default=900.0, help="time limit (s) of the wide process"
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--smoke",
        action="store_true",
        help="check the harness: 20k rows (formula too), 1 repeat, 3 iterations, scaling "
        "10k/20k rows and k 5/20, wide 2,000 x 64 and x 128; output to benchmarks/data/smoke",
    )
    size.add_argument(
        "--quick",
        action="store_true",
        help="small run: 200k rows (formula too), 1 repeat, scaling 50k…400k, wide 4,000 x "
        "1,600 and x 3,200; output to benchmarks/data/quick",
    )
    p.add_argument(
        "--sections",
        default="e2e,formula,load-path,linreg,kmeans,kmeans-default,kmeans-periter,footprint,scaling,wide",
        help="comma-separated subset to run",
    )
    p.add_argument(
        "--kmeans-rows",
        default="all",
        help="kmeans-periter: which rows to (re-)measure, e.g. 0 or 0,2 (0: k=10, 1: k=1,000, "
        "2: k=4,096); with --update the other rows of results.json are kept",
    )
    p.add_argument("--output", help="where results.json / RESULTS.md go (default: see above)")
    p.add_argument(
        "--update",
        action="store_true",
        help="keep the other sections of an existing results.json (re-run only --sections)",
    )
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options, with the small-run sizes applied and lists parsed."""
    parser = _parser()
    args = parser.parse_args(argv)
    small = "smoke" if args.smoke else "quick" if args.quick else None
    if small:
        rows, iters, args.scaling_rows, args.scaling_k, wide_rows, wide_p, large = SMALL[small]
        args.rows, args.iterations, args.repeats, args.scaling_repeats = rows, iters, 1, 1
        args.wide_rows, args.wide_features, args.wide_timeout = wide_rows, wide_p, 300.0
        args.wide_large_features = large
    if args.smoke:
        args.secondary_repeats, args.wide_driver_memory = 1, args.driver_memory
    if args.secondary_repeats is None:
        args.secondary_repeats = args.repeats
    if args.output is None:
        args.output = str(DATA / small if small else BENCH)
    args.scaling_rows = [int(v) for v in args.scaling_rows.split(",")]
    args.scaling_k = [int(v) for v in args.scaling_k.split(",")]
    args.sections = set(args.sections.split(","))
    unknown = args.sections - set(SECTION_KEYS)
    if unknown:
        parser.error(
            f"unknown section(s) {', '.join(sorted(unknown))}: use {', '.join(SECTION_KEYS)}"
        )
    return args


def _merge_previous(
    results: dict, previous: dict, sections: set[str], keep: frozenset = frozenset()
) -> dict:
    """``previous`` with the re-measured sections dropped (but ``keep``, which the section
    updates itself), this run appended to its updates."""
    drop = {key for s in sections if s != "footprint" for key in SECTION_KEYS[s]} - keep
    if "wide" in drop and "wide" in previous:  # keep what earlier attempts ran into
        previous["wide_previous_attempts"] = [
            *previous.get("wide_previous_attempts", []),
            {
                k: previous["wide"].get(k)
                for k in ("rows", "features", "error", "seconds", "command", "process")
            },
        ]
    return {
        **{k: v for k, v in previous.items() if k not in drop and k != "targets"},
        "updates": [
            *previous.get("updates", []),
            {
                "command": results["command"],
                "started": results["started"],
                "sections": sorted(sections),
                "git": results["machine"].get("git"),
            },
        ],
    }


def _data_paths(args: argparse.Namespace) -> dict:
    say("generating data (cached in benchmarks/data/)")
    paths = {
        "linreg": common.regression_parquet(args.rows),
        "kmeans": common.blobs_parquet(args.rows),
    }
    paths["centres_array"] = common.initial_centres(paths["kmeans"], K)
    paths["centres"] = common.write_centres_csv(
        paths["centres_array"], DATA / f"centres_r{args.rows}_k{K}.csv"
    )
    return paths


def _in_process(args: argparse.Namespace, paths: dict, results: dict, save) -> None:
    """The sections measured inside one shared SparkSession."""
    spark = common.spark_session(
        args.master, args.driver_memory, extra={"spark.driver.maxResultSize": "8g"}
    )
    sc = spark.sparkContext
    results["spark"] = {
        "master": sc.master,
        "default_parallelism": sc.defaultParallelism,
        "driver_max_heap_bytes": sc._jvm.java.lang.Runtime.getRuntime().maxMemory(),
    }
    try:
        if "load-path" in args.sections:
            bench_load(spark, args, paths, results)
            save()
        if "linreg" in args.sections:
            bench_linreg(spark, args, paths, results)
            save()
        if args.sections & {"kmeans", "kmeans-default", "footprint"}:
            bench_kmeans(spark, args, paths, results)
            save()
        if "kmeans-periter" in args.sections:
            bench_kmeans_scale(spark, args, results)
            save()
        if "scaling" in args.sections:
            bench_scaling(spark, args, results)
            save()
    finally:
        spark.stop()


def _start(argv: list[str], args: argparse.Namespace, out_dir: Path) -> tuple[dict, dict]:
    """The results document of this run (merged into the previous one with ``--update``)."""
    start = load_snapshot()
    results: dict = {
        "command": "python -m benchmarks.run " + " ".join(argv),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "machine": common.machine_info(),
    }
    previous = out_dir / "results.json"
    if args.update and previous.exists():
        keep = frozenset() if args.kmeans_rows == "all" else frozenset({"kmeans_per_iteration"})
        results = _merge_previous(results, json.loads(previous.read_text()), args.sections, keep)
    run = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "sections": sorted(args.sections),
        "start": start,
        "under_load": warn_if_loaded(start),
    }
    results.setdefault("load", {"limit": LOAD_LIMIT, "runs": []})["runs"].append(run)
    machine = results.get("machine", {})
    say(f"machine: {machine.get('cpu')}, {machine.get('cores')} cores; load {_fmt(start)}")
    return results, run


def _fmt(load: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in load) + " (1 / 5 / 15 min)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    out_dir = Path(args.output)
    results, run = _start(argv, args, out_dir)
    measured = [key for s in sorted(args.sections) for key in SECTION_KEYS[s]]
    if args.sections & {"kmeans-default", "footprint"}:
        measured.append("kmeans_cached")  # bench_kmeans measures it for these sections too

    def save() -> None:
        run["end"] = load_snapshot()
        run["measurements"] = measured_loads({k: results.get(k) for k in measured})
        results["targets"] = evaluate_targets(results)
        common.dump_json(out_dir / "results.json", results)
        (out_dir / "RESULTS.md").write_text(render(results))

    started = time.perf_counter()
    paths = _data_paths(args)
    results["data"] = {
        k: str(Path(v).relative_to(ROOT)) for k, v in paths.items() if k != "centres_array"
    }
    if "e2e" in args.sections:
        bench_e2e(args, paths, results)
        save()
    if "formula" in args.sections:
        bench_formula(args, results)
        save()
    in_process = {
        "load-path",
        "linreg",
        "kmeans",
        "kmeans-default",
        "kmeans-periter",
        "footprint",
        "scaling",
    }
    if args.sections & in_process:
        _in_process(args, paths, results, save)
    if "wide" in args.sections:
        bench_wide(args, results)
        save()
    results["total_seconds"] = time.perf_counter() - started
    save()
    print()
    print(render(results))
    say(f"load at start {_fmt(run['start'])}, at end {_fmt(run['end'])}")
    if run["under_load"]:
        say(f"WARNING: measured under load (1-min load at start above {LOAD_LIMIT})")
    say(
        f"done in {results['total_seconds'] / 60:.1f} min; wrote {out_dir / 'results.json'} and "
        f"{out_dir / 'RESULTS.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
