"""Side-by-side benchmark: sparkml-jobs vs Spark MLlib vs single-process numpy / scikit-learn.

    make bench                                   # = python -m benchmarks.run
    make bench BENCH_ARGS="--quick"              # smoke test: small sizes, one repeat
    python -m benchmarks.run --rows 2000000 --repeats 3 --master 'local[2]'

One run, one master, systems alternated within every repeat (the order rotates each repeat) and
the median reported. Sections:

1. end-to-end: every system as a fresh process (read Parquet → fit → save model), wall time and
   the peak memory of its whole process tree (driver + JVM + Python workers), polled from /proc;
2. fit on already-cached data, in one shared SparkSession: linear regression; k-means with
   exactly 20 Lloyd iterations from the same initial centres; k-means with each system's default
   initialisation;
3. cached footprint: the bytes Spark reports for each cached data set vs the raw float64 size;
4. scaling of our jobs: time vs rows and vs k; one wide linear regression (8,192 features).

Writes ``benchmarks/results.json`` and ``benchmarks/RESULTS.md``; data goes to ``benchmarks/data/``
(gitignored, cached by size).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.common import BENCH, DATA, ROOT

log = logging.getLogger("benchmarks")
K = 10
ITERS = 20
# Logs, metrics and model outputs of this run's processes: one directory per run, so two runs at
# the same time (another session's `make bench`) never read each other's files.
RUN_DIR = DATA / "runs" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def rotate(items: list, rep: int) -> list:
    shift = rep % len(items)
    return items[shift:] + items[:shift]


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict], key: str = "seconds") -> dict:
    ok = [r for r in runs if r.get("error") is None and r.get(key) is not None]
    return {
        "runs": runs,
        "median_s": median([r[key] for r in ok]),
        "n": len(ok),
        "errors": [r["error"] for r in runs if r.get("error")],
    }


def timed(fn, *args, **kwargs) -> tuple[float, object, float, float]:
    before = common.loadavg()
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out, before, common.loadavg()


def attempt(runs: list[dict], label: str, fn) -> None:
    """Run one measurement; a failure is recorded (and printed), never fatal to the benchmark."""
    try:
        result = fn()
        runs.append(result)
        extra = ", ".join(
            f"{k}={v}"
            for k, v in result.items()
            if k in ("iterations", "exit_code") and v is not None
        )
        say(
            f"  {label}: {result.get('seconds', float('nan')):.2f} s"
            + (f" ({extra})" if extra else "")
        )
    except Exception as exc:  # noqa: BLE001 - recorded in results.json
        say(f"  {label}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        traceback.print_exc()
        runs.append({"seconds": None, "error": f"{type(exc).__name__}: {str(exc)[:500]}"})


class IterationLog(logging.Handler):
    """Time stamps of our k-means 'iteration …' log lines (for the steady-state iteration time)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stamps: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("iteration"):
            self.stamps.append(record.created)

    def steady(self) -> float | None:
        s = self.stamps
        return (s[-1] - s[0]) / (len(s) - 1) if len(s) >= 3 else None


# --------------------------------------------------------------------------- configuration


def parse_args(argv):
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the headline data sets")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the headline rows (median)")
    p.add_argument(
        "--secondary-repeats",
        type=int,
        help="repeats of the secondary rows: default-init k-means and the PySpark "
        "pyspark.mllib Python-RDD API (default: --repeats)",
    )
    p.add_argument("--scaling-repeats", type=int, default=1)
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
        "--wide-driver-memory",
        default="10g",
        help="spark.driver.memory of the wide job (at 4g the JVM runs out of heap loading "
        "20,000 x 8,192)",
    )
    p.add_argument(
        "--wide-timeout",
        type=float,
        default=900.0,
        help="time limit (s) of the wide-regression process",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 200k rows, 1 repeat, scaling 50k…400k, wide 4,000 x 1,600",
    )
    p.add_argument(
        "--sections",
        default="e2e,linreg,kmeans,kmeans-default,footprint,scaling,wide",
        help="comma-separated subset to run",
    )
    p.add_argument("--output", default=str(BENCH), help="where results.json / RESULTS.md go")
    p.add_argument(
        "--update",
        action="store_true",
        help="keep the other sections of an existing results.json (re-run only --sections)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.scaling_repeats = 200_000, 1, 1
        args.scaling_rows = "50000,100000,200000,400000"
        args.wide_rows, args.wide_features, args.wide_timeout = 4_000, 1_600, 300.0
    if args.secondary_repeats is None:
        args.secondary_repeats = args.repeats
    args.scaling_rows = [int(v) for v in args.scaling_rows.split(",")]
    args.scaling_k = [int(v) for v in args.scaling_k.split(",")]
    args.sections = set(args.sections.split(","))
    return args


# --------------------------------------------------------------------------- end-to-end


def e2e_commands(args, paths: dict) -> dict[str, dict[str, tuple[list[str], int]]]:
    """{benchmark: {system: (argv, repeats)}}: every system as one fresh process."""
    py = sys.executable
    cli = str(Path(sys.executable).parent / "sparkml-jobs")
    out = RUN_DIR / "out"
    lin, km, centres = str(paths["linreg"]), str(paths["kmeans"]), str(paths["centres"])
    master, dm = args.master, args.driver_memory
    r, r2 = args.repeats, args.secondary_repeats

    def mllib(job, *extra):
        return [
            py,
            "-m",
            "benchmarks.mllib_job",
            job,
            "--master",
            master,
            "--driver-memory",
            dm,
            "--output",
            str(out / f"mllib-{job}"),
            *extra,
        ]

    def local(job, name, *extra):
        return [py, "-m", "benchmarks.local_job", job, "--output", str(out / name), *extra]

    given = ["--k", str(K), "--init", centres, "--max-iter", str(ITERS)]
    return {
        "linreg": {
            "ours": (
                [
                    cli,
                    "linreg",
                    "fit",
                    "--input",
                    lin,
                    "--format",
                    "parquet",
                    "--label",
                    "label",
                    "--output",
                    str(out / "ours-linreg"),
                    "--master",
                    master,
                    "--overwrite",
                ],
                r,
            ),
            "mllib": (mllib("linreg", "--input", lin, "--label", "label"), r),
            "numpy": (local("numpy-linreg", "numpy-linreg", "--input", lin), r),
            "sklearn": (local("sklearn-linreg", "sklearn-linreg", "--input", lin), r),
        },
        "kmeans_given": {
            "ours": (
                [
                    cli,
                    "kmeans",
                    "fit",
                    "--input",
                    km,
                    "--format",
                    "parquet",
                    "--output",
                    str(out / "ours-kmeans"),
                    "--master",
                    master,
                    "--overwrite",
                    *given,
                    "--tol",
                    "0",
                ],
                r,
            ),
            "mllib": (mllib("kmeans-rdd", "--input", km, *given, "--epsilon", "0"), r),
            "mllib_pyrdd": (mllib("kmeans-pyrdd", "--input", km, *given, "--epsilon", "0"), r2),
            "sklearn": (
                local("sklearn-kmeans", "sklearn-kmeans", "--input", km, *given, "--tol", "0"),
                r,
            ),
        },
        "kmeans_default": {
            "ours": (
                [
                    cli,
                    "kmeans",
                    "fit",
                    "--input",
                    km,
                    "--format",
                    "parquet",
                    "--output",
                    str(out / "ours-kmeans-default"),
                    "--master",
                    master,
                    "--overwrite",
                    "--k",
                    str(K),
                ],
                r2,
            ),
            "mllib": (mllib("kmeans-df", "--input", km, "--k", str(K)), r2),
            "sklearn": (
                local("sklearn-kmeans", "sklearn-kmeans-default", "--input", km, "--k", str(K)),
                r2,
            ),
        },
    }


def with_optional_modes(commands: dict) -> dict:
    """Our optional modes as extra systems: linreg --one-pass, k-means --mode barrier."""
    lin_cmd, lin_n = commands["linreg"]["ours"]
    commands["linreg"]["ours_onepass"] = (
        [a.replace("ours-linreg", "ours-linreg-onepass") for a in lin_cmd] + ["--one-pass"],
        lin_n,
    )
    km_cmd, km_n = commands["kmeans_given"]["ours"]
    commands["kmeans_given"]["ours_barrier"] = (
        [a.replace("ours-kmeans", "ours-kmeans-barrier") for a in km_cmd] + ["--mode", "barrier"],
        km_n,
    )
    return commands


def bench_e2e(args, paths: dict, results: dict) -> None:
    env = {"PYSPARK_SUBMIT_ARGS": f"--driver-memory {args.driver_memory} pyspark-shell"}
    logs = RUN_DIR / "logs"
    section = results.setdefault("e2e", {})
    for bench, systems in with_optional_modes(e2e_commands(args, paths)).items():
        say(f"end-to-end: {bench}")
        runs: dict[str, list[dict]] = {name: [] for name in systems}
        for rep in range(max(n for _, n in systems.values())):
            for name in rotate(list(systems), rep):
                cmd, n = systems[name]
                if rep >= n:
                    continue
                metrics = logs / f"{bench}-{name}-{rep}.json"
                full = cmd + ["--metrics-json", str(metrics)]

                def one(full=full, name=name, rep=rep, metrics=metrics, bench=bench):
                    out = common.run_process(full, logs / f"{bench}-{name}-{rep}.log", env=env)
                    if out["exit_code"] != 0:
                        out["error"] = f"exit code {out['exit_code']} (see {out['log']})"
                    if metrics.exists():
                        import json

                        m = json.loads(metrics.read_text())
                        out["iterations"] = m.get("iterations", m.get("n_iter"))
                    return out

                attempt(runs[name], f"{bench} {name} #{rep + 1}", one)
        section[bench] = {name: summarise(rs) for name, rs in runs.items()}
        for name, rs in runs.items():
            ok = [r for r in rs if not r.get("error")]
            section[bench][name]["peak_rss_sum_bytes"] = max(
                (r["peak_rss_sum_bytes"] for r in ok), default=None
            )
            section[bench][name]["peak_pss_sum_bytes"] = max(
                (r["peak_pss_sum_bytes"] for r in ok), default=None
            )
        section[bench]["commands"] = {name: " ".join(cmd) for name, (cmd, _) in systems.items()}


# --------------------------------------------------------------------------- cached: linreg


def bench_linreg(spark, args, paths: dict, results: dict) -> None:
    from pyspark.ml.regression import LinearRegression as MLlibLR
    from sklearn.linear_model import LinearRegression as SkLR

    from benchmarks.local_job import normal_equations
    from sparkml_jobs.io import read as sdr
    from sparkml_jobs.regression.estimator import LinearRegression

    sc = spark.sparkContext
    path = str(paths["linreg"])
    z, names = common.parquet_to_numpy(path)
    features = [n for n in names if n != "label"]
    x, y = np.ascontiguousarray(z[:, :-1]), z[:, -1].copy()
    del z
    before = common.storage_info(sc)
    assembled = common.assembled_frame(spark, path, features, "label").cache()
    assembled.count()
    mllib_cache = common.cached_bytes(sc, before)
    footprint = results.setdefault("footprint", {})
    footprint["mllib_linreg_dataframe"] = {
        **mllib_cache,
        "raw_bytes": len(x) * (len(features) + 1) * 8,
    }
    coefs: dict[str, np.ndarray] = {}

    def ours():
        data = sdr.load(spark, path, "parquet", label="label")
        data.cache()
        data.blocks.count()  # materialise the cache (untimed)
        footprint.setdefault(
            "ours_linreg_blocks",
            {
                **common.cached_bytes(sc, rdd_id=data.blocks.id()),
                "raw_bytes": len(x) * (len(features) + 1) * 8,
            },
        )
        seconds, model, l0, l1 = timed(LinearRegression().fit, data)
        data.unpersist()
        coefs["ours"] = np.r_[model.intercept, model.coefficients]
        return {
            "seconds": seconds,
            "loadavg_before": l0,
            "loadavg_after": l1,
            "solver": getattr(model.summary, "solver", None),
        }

    def mllib():
        seconds, model, l0, l1 = timed(MLlibLR(solver="normal", labelCol="label").fit, assembled)
        coefs["mllib"] = np.r_[model.intercept, model.coefficients.toArray()]
        return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}

    def numpy_ne():
        seconds, (beta, b0), l0, l1 = timed(normal_equations, x, y)
        coefs["numpy"] = np.r_[b0, beta]
        return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}

    def sklearn():
        seconds, model, l0, l1 = timed(SkLR().fit, x, y)
        coefs["sklearn"] = np.r_[model.intercept_, model.coef_]
        return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}

    def ours_onepass():
        data = sdr.load(spark, path, "parquet", label="label")
        data.cache()
        data.blocks.count()
        seconds, model, l0, l1 = timed(LinearRegression(residual_pass=False).fit, data)
        data.unpersist()
        return {"seconds": seconds, "loadavg_before": l0, "loadavg_after": l1}

    systems = {
        "ours": ours,
        "ours_onepass": ours_onepass,
        "mllib": mllib,
        "numpy": numpy_ne,
        "sklearn": sklearn,
    }
    runs: dict[str, list] = {name: [] for name in systems}
    say(f"linreg fit on cached data ({len(x):,} x {len(features)})")
    for rep in range(args.repeats):
        for name in rotate(list(systems), rep):
            attempt(runs[name], f"linreg {name} #{rep + 1}", systems[name])
    assembled.unpersist()
    section = {name: summarise(rs) for name, rs in runs.items()}
    if "numpy" in coefs:
        section["max_abs_coef_diff_vs_numpy"] = {
            name: float(np.abs(c - coefs["numpy"]).max()) for name, c in coefs.items()
        }
    section["partitions"] = spark.read.parquet(path).rdd.getNumPartitions()
    section["ours_solver"] = next((r.get("solver") for r in runs["ours"] if r.get("solver")), None)
    results["linreg_cached"] = section


# --------------------------------------------------------------------------- cached: k-means


def kmeans_setup(spark, path: str):
    from sparkml_jobs.io import read as sdr

    data = sdr.load(spark, path, "parquet")
    data.cache()
    data.blocks.count()
    return data


def ours_kmeans(data, centres: np.ndarray | None, x: np.ndarray, **params) -> dict:
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
    return {
        "seconds": seconds,
        "iterations": n_iter,
        "per_iter_s": seconds / n_iter,
        "steady_per_iter_s": handler.steady(),
        "cost": common.kmeans_cost(x, model.centers),
        "reported_cost": model.summary.cost,
        "loadavg_before": l0,
        "loadavg_after": l1,
    }


def bench_kmeans(spark, args, paths: dict, results: dict) -> None:
    from pyspark import StorageLevel
    from pyspark.mllib.clustering import KMeans as PyMLlibKMeans
    from pyspark.mllib.clustering import KMeansModel as PyMLlibModel
    from sklearn.cluster import KMeans as SkKMeans

    sc = spark.sparkContext
    path = str(paths["kmeans"])
    centres = paths["centres_array"]
    x, names = common.parquet_to_numpy(path)
    raw = x.size * 8
    footprint = results.setdefault("footprint", {})
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

    def ours():
        return ours_kmeans(data, centres, x, k=K, max_iter=ITERS, tol=0.0)

    def ours_barrier():
        return ours_kmeans(data, centres, x, k=K, max_iter=ITERS, tol=0.0, mode="barrier")

    def mllib():
        algo = common.jvm_kmeans(spark, K, ITERS, 0.0, centres)
        seconds, jmodel, l0, l1 = timed(algo.run, vectors)
        n_iter = int(jmodel.numIter())
        return {
            "seconds": seconds,
            "iterations": n_iter,
            "per_iter_s": seconds / n_iter,
            "cost": common.kmeans_cost(x, common.jvm_centres(jmodel)),
            "loadavg_before": l0,
            "loadavg_after": l1,
        }

    def mllib_pyrdd():
        seconds, model, l0, l1 = timed(
            PyMLlibKMeans.train,
            rows,
            K,
            maxIterations=ITERS,
            epsilon=0.0,
            initialModel=PyMLlibModel(centres),
        )
        return {
            "seconds": seconds,
            "iterations": None,
            "per_iter_s": seconds / ITERS,
            "cost": common.kmeans_cost(x, np.array(model.clusterCenters)),
            "loadavg_before": l0,
            "loadavg_after": l1,
        }

    def sklearn():
        est = SkKMeans(
            n_clusters=K, init=centres, n_init=1, max_iter=ITERS, tol=0.0, algorithm="lloyd"
        )
        seconds, model, l0, l1 = timed(est.fit, x)
        return {
            "seconds": seconds,
            "iterations": int(model.n_iter_),
            "per_iter_s": seconds / model.n_iter_,
            "cost": common.kmeans_cost(x, model.cluster_centers_),
            "loadavg_before": l0,
            "loadavg_after": l1,
        }

    systems = {
        "ours": (ours, args.repeats),
        "ours_barrier": (ours_barrier, args.repeats),
        "mllib": (mllib, args.repeats),
        "mllib_pyrdd": (mllib_pyrdd, args.secondary_repeats),
        "sklearn": (sklearn, args.repeats),
    }
    runs: dict[str, list] = {name: [] for name in systems}
    say(
        f"k-means fit on cached data, {ITERS} iterations from the same centres "
        f"({len(x):,} x {x.shape[1]}, k={K})"
    )
    for rep in range(max(n for _, n in systems.values())):
        for name in rotate(list(systems), rep):
            fn, n = systems[name]
            if rep < n:
                attempt(runs[name], f"kmeans {name} #{rep + 1}", fn)
    rows.unpersist()
    vectors.unpersist(False)
    section = {name: summarise(rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        ok = [r for r in rs if not r.get("error")]
        for key in ("per_iter_s", "steady_per_iter_s", "cost", "iterations"):
            section[name][key] = median([r.get(key) for r in ok])
    section["partitions"] = data.blocks.getNumPartitions()
    results["kmeans_cached"] = section

    if "kmeans-default" in args.sections:
        bench_kmeans_default(spark, args, data, assembled, x, results)
    if "footprint" in args.sections:
        from sparkml_jobs.clustering.lloyd import prepare

        points = prepare(data, "euclidean")
        points.count()
        footprint["ours_kmeans_points"] = {
            **common.cached_bytes(sc, rdd_id=points.id()),
            "raw_bytes": raw,
        }
        points.unpersist()
    data.unpersist()


def bench_kmeans_default(spark, args, data, assembled, x: np.ndarray, results: dict) -> None:
    from pyspark.ml.clustering import KMeans as MLKMeans
    from sklearn.cluster import KMeans as SkKMeans

    sc = spark.sparkContext
    before = common.storage_info(sc)
    assembled = assembled.cache()
    assembled.count()
    results.setdefault("footprint", {})["mllib_kmeans_dataframe"] = {
        **common.cached_bytes(sc, before),
        "raw_bytes": x.size * 8,
    }

    def ours():
        return ours_kmeans(data, None, x, k=K, seed=0)

    def mllib():
        seconds, model, l0, l1 = timed(MLKMeans(k=K, seed=0).fit, assembled)
        n_iter = model.summary.numIter
        return {
            "seconds": seconds,
            "iterations": n_iter,
            "per_iter_s": seconds / n_iter,
            "cost": common.kmeans_cost(x, np.array(model.clusterCenters())),
            "reported_cost": model.summary.trainingCost,
            "loadavg_before": l0,
            "loadavg_after": l1,
        }

    def sklearn():
        seconds, model, l0, l1 = timed(SkKMeans(n_clusters=K, random_state=0).fit, x)
        return {
            "seconds": seconds,
            "iterations": int(model.n_iter_),
            "per_iter_s": seconds / model.n_iter_,
            "cost": common.kmeans_cost(x, model.cluster_centers_),
            "loadavg_before": l0,
            "loadavg_after": l1,
        }

    systems = {"ours": ours, "mllib": mllib, "sklearn": sklearn}
    runs: dict[str, list] = {name: [] for name in systems}
    say("k-means fit on cached data, each system's default initialisation and stopping rule")
    for rep in range(args.secondary_repeats):
        for name in rotate(list(systems), rep):
            attempt(runs[name], f"kmeans-default {name} #{rep + 1}", systems[name])
    assembled.unpersist()
    section = {name: summarise(rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        ok = [r for r in rs if not r.get("error")]
        for key in ("cost", "iterations", "per_iter_s"):
            section[name][key] = median([r.get(key) for r in ok])
    section["defaults"] = {
        "ours": "KMeans(k=10): init k-means|| (2 steps), tol 1e-4, max_iter 20",
        "mllib": "pyspark.ml.clustering.KMeans(k=10): initMode k-means|| (2 steps), tol 1e-4, "
        "maxIter 20",
        "sklearn": "KMeans(n_clusters=10): init k-means++, n_init=1 ('auto'), tol 1e-4, "
        "max_iter 300",
    }
    results["kmeans_default_cached"] = section


# --------------------------------------------------------------------------- scaling & wide


def bench_scaling(spark, args, results: dict) -> None:
    from sparkml_jobs.io import read as sdr
    from sparkml_jobs.regression.estimator import LinearRegression

    section = results.setdefault("scaling", {"rows": [], "k": []})
    for rows in args.scaling_rows:
        lpath = str(common.regression_parquet(rows))
        kpath = common.blobs_parquet(rows)
        centres = common.initial_centres(kpath, K)
        x, _ = common.parquet_to_numpy(kpath)
        entry = {"rows": rows, "linreg": [], "kmeans": []}
        say(f"scaling: {rows:,} rows")
        for rep in range(args.scaling_repeats):

            def lin(lpath=lpath):
                data = sdr.load(spark, lpath, "parquet", label="label")
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

            attempt(entry["linreg"], f"linreg {rows:,} #{rep + 1}", lin)
        data = kmeans_setup(spark, str(kpath))
        for rep in range(args.scaling_repeats):
            attempt(
                entry["kmeans"],
                f"kmeans {rows:,} #{rep + 1}",
                lambda data=data, centres=centres, x=x: ours_kmeans(
                    data, centres, x, k=K, max_iter=ITERS, tol=0.0
                ),
            )
        data.unpersist()
        del x
        entry["linreg_median_s"] = median([r["seconds"] for r in entry["linreg"]])
        entry["kmeans_median_s"] = median([r["seconds"] for r in entry["kmeans"]])
        entry["kmeans_per_iter_s"] = median([r.get("per_iter_s") for r in entry["kmeans"]])
        entry["kmeans_iterations"] = median([r.get("iterations") for r in entry["kmeans"]])
        section["rows"].append(entry)

    kpath = common.blobs_parquet(args.rows)
    x, _ = common.parquet_to_numpy(kpath)
    data = kmeans_setup(spark, str(kpath))
    for k in args.scaling_k:
        centres = common.initial_centres(kpath, k)
        entry = {"k": k, "rows": args.rows, "kmeans": []}
        say(f"scaling: k={k}")
        for rep in range(args.scaling_repeats):
            attempt(
                entry["kmeans"],
                f"kmeans k={k} #{rep + 1}",
                lambda centres=centres, k=k: ours_kmeans(
                    data, centres, x, k=k, max_iter=ITERS, tol=0.0
                ),
            )
        entry["kmeans_median_s"] = median([r["seconds"] for r in entry["kmeans"]])
        entry["kmeans_per_iter_s"] = median([r.get("per_iter_s") for r in entry["kmeans"]])
        entry["kmeans_iterations"] = median([r.get("iterations") for r in entry["kmeans"]])
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


def bench_wide(args, results: dict) -> None:
    """Ours only, in its own process with a time limit (see :mod:`benchmarks.wide_job`)."""
    import json

    rows, p = args.wide_rows, args.wide_features
    say(
        f"wide linear regression: {rows:,} x {p:,} (ours only, own process, limit "
        f"{args.wide_timeout:.0f} s)"
    )
    metrics = RUN_DIR / "logs" / "wide.json"
    metrics.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.wide_job",
        "--rows",
        str(rows),
        "--features",
        str(p),
        "--master",
        args.master,
        "--driver-memory",
        args.wide_driver_memory,
        "--metrics-json",
        str(metrics),
    ]
    common.regression_parquet(rows, p, row_group_rows=1024, chunk_rows=2048)  # not timed
    run = common.run_process(cmd, RUN_DIR / "logs" / "wide.log", timeout=args.wide_timeout)
    section = {
        "rows": rows,
        "features": p,
        "raw_bytes": rows * (p + 1) * 8,
        "process": run,
        "command": " ".join(cmd),
    }
    if metrics.exists():
        section.update(json.loads(metrics.read_text()))
    if run["exit_code"] != 0 and not run["timed_out"]:
        section.setdefault(
            "error",
            f"process failed (exit code {run['exit_code']}): "
            f"{_last_error(RUN_DIR / 'logs' / 'wide.log')}",
        )
    if run["timed_out"]:
        section.setdefault(
            "error",
            f"did not finish within the {args.wide_timeout:.0f} s limit "
            f"(see {run['log']} for the last phase reached)",
        )
    say(
        f"  wide: {section.get('seconds') or section.get('error')}; MLlib normal at "
        f"{section.get('mllib_normal_width')} features: {section.get('mllib_normal')}"
    )
    results["wide"] = section


# --------------------------------------------------------------------------- report


def _s(v) -> str:
    return "—" if v is None else (f"{v:.2f} s" if v >= 0.095 else f"{v * 1000:.0f} ms")


def _x(a, b) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def _it(v) -> str:
    return "—" if v is None else f"{v:g}"


def _gib(v) -> str:
    return "—" if not v else f"{v / 2**30:.2f} GiB"


def _mb(v) -> str:
    return "—" if v is None else f"{v / 1e6:.0f} MB"


def _get(results, *keys):
    node = results
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def evaluate_targets(results: dict) -> list[dict]:
    t = []

    def add(name, value, limit, how, detail):
        met = None if value is None else value <= limit
        t.append(
            {
                "target": name,
                "measured": value,
                "limit": limit,
                "met": met,
                "how": how,
                "detail": detail,
            }
        )

    def ratio(label, ours_path, other_path, limit, how, other_name, unit="", extra="", tail=""):
        ours, other = _get(results, *ours_path), _get(results, *other_path)
        add(
            label,
            None if not (ours and other) else ours / other,
            limit,
            how,
            f"ours {_s(ours)}{unit}{extra} vs {other_name} {_s(other)}{unit}{tail}",
        )

    e2e_lin, e2e_km = ("e2e", "linreg"), ("e2e", "kmeans_given")
    steady = _get(results, "kmeans_cached", "ours", "steady_per_iter_s")
    per_iter = "ours/sklearn ≤ 3 (fit time / iterations)"
    for args in (
        (
            "linreg fit on cached data ≥10× faster than MLlib",
            ("linreg_cached", "ours", "median_s"),
            ("linreg_cached", "mllib", "median_s"),
            0.1,
            "ours/MLlib ≤ 0.10",
            "MLlib",
        ),
        (
            "linreg end-to-end ≤0.5× MLlib",
            (*e2e_lin, "ours", "median_s"),
            (*e2e_lin, "mllib", "median_s"),
            0.5,
            "ours/MLlib ≤ 0.50",
            "MLlib",
        ),
        (
            "k-means 20 iterations end-to-end ≤0.5× MLlib (JVM RDD API, same centres)",
            (*e2e_km, "ours", "median_s"),
            (*e2e_km, "mllib", "median_s"),
            0.5,
            "ours/MLlib ≤ 0.50",
            "MLlib",
        ),
        (
            "k-means 20 iterations end-to-end ≤0.5× MLlib (PySpark pyspark.mllib KMeans.train)",
            (*e2e_km, "ours", "median_s"),
            (*e2e_km, "mllib_pyrdd", "median_s"),
            0.5,
            "ours/MLlib ≤ 0.50",
            "pyspark.mllib",
        ),
        (
            "k-means per-iteration time on cached data within 3× of scikit-learn",
            ("kmeans_cached", "ours", "per_iter_s"),
            ("kmeans_cached", "sklearn", "per_iter_s"),
            3.0,
            per_iter,
            "sklearn",
            "/iter",
            f" (steady state {_s(steady)})",
        ),
        (
            "linreg fit on cached data ≥10× faster than MLlib — one-pass fit",
            ("linreg_cached", "ours_onepass", "median_s"),
            ("linreg_cached", "mllib", "median_s"),
            0.1,
            "ours/MLlib ≤ 0.10",
            "MLlib",
        ),
        (
            "linreg end-to-end ≤0.5× MLlib — one-pass fit",
            (*e2e_lin, "ours_onepass", "median_s"),
            (*e2e_lin, "mllib", "median_s"),
            0.5,
            "ours/MLlib ≤ 0.50",
            "MLlib",
        ),
        (
            "k-means 20 iterations end-to-end ≤0.5× MLlib (JVM RDD API) — barrier mode",
            (*e2e_km, "ours_barrier", "median_s"),
            (*e2e_km, "mllib", "median_s"),
            0.5,
            "ours/MLlib ≤ 0.50",
            "MLlib",
        ),
        (
            "k-means per-iteration time on cached data within 3× of scikit-learn — barrier mode",
            ("kmeans_cached", "ours_barrier", "per_iter_s"),
            ("kmeans_cached", "sklearn", "per_iter_s"),
            3.0,
            per_iter,
            "sklearn",
            "/iter",
            "",
            " (includes the one load of the data)",
        ),
    ):
        ratio(*args)
    for key, label in (
        ("ours_linreg_blocks", "linreg blocks"),
        ("ours_kmeans_blocks", "k-means blocks"),
        ("ours_kmeans_points", "k-means points (the RDD the iterations read)"),
    ):
        fp = _get(results, "footprint", key)
        if key == "ours_kmeans_points" and fp and not fp.get("mem_bytes"):
            continue  # not cached separately: the iterations read the cached blocks
        value = None if not fp or not fp.get("raw_bytes") else fp["mem_bytes"] / fp["raw_bytes"]
        add(
            f"cached footprint ≤1.1× raw: {label}",
            value,
            1.1,
            "cached/raw ≤ 1.10",
            f"{_mb(fp and fp['mem_bytes'])} cached vs {_mb(fp and fp['raw_bytes'])} raw",
        )
    rows = _get(results, "scaling", "rows") or []
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        for algo in ("linreg", "kmeans"):
            ta, tb = a.get(f"{algo}_median_s"), b.get(f"{algo}_median_s")
            how = "t(2n)/t(n) ≤ 2.2"
            if algo == "kmeans" and a.get("kmeans_iterations") != b.get("kmeans_iterations"):
                # different iteration counts (one size converged early): compare per iteration
                ta, tb = a.get("kmeans_per_iter_s"), b.get("kmeans_per_iter_s")
                how += " (per iteration: the iteration counts differ)"
            add(
                f"{algo}: {b['rows'] / 1e6:g}M-row time ≤2.2× the {a['rows'] / 1e6:g}M-row time",
                None if not (ta and tb) else tb / ta,
                2.2 * b["rows"] / (2 * a["rows"]),
                how,
                f"{_s(tb)} vs {_s(ta)}",
            )
    return t


def render(results: dict) -> str:
    cfg = results["config"]
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"`{results['command']}` — {results['started']} — {cfg['rows']:,} rows, master "
        f"`{cfg['master']}`, driver memory {cfg['driver_memory']}, median of {cfg['repeats']} "
        f"(secondary rows: {cfg['secondary_repeats']}, scaling: {cfg['scaling_repeats']}).",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if k not in ("blas",) and v)
        + (f"; git {m['git']}" if m.get("git") else "")
        + ".",
        f"Load average during the run: {results.get('loadavg_range')} (1-min; other jobs shared "
        "the 2 cores, so timings are noisy).",
        *[
            f"Re-run later: sections {', '.join(u['sections'])} with `{u['command']}` "
            f"({u['started']}, git {u.get('git')})."
            for u in results.get("updates", [])
        ],
        "",
    ]
    lr_c, lr_e = _get(results, "linreg_cached") or {}, _get(results, "e2e", "linreg") or {}
    if lr_c or lr_e:
        lines += [
            f"## Linear regression ({cfg['rows']:,} × 20 + label)",
            "",
            '| | ours | MLlib `solver="normal"` | numpy normal eq. | scikit-learn | '
            "ours/MLlib | ours/numpy | ours/sklearn |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, sec in (("fit on cached data", lr_c), ("end-to-end process", lr_e)):
            if not sec:
                continue
            v = {s: _get(sec, s, "median_s") for s in ("ours", "mllib", "numpy", "sklearn")}
            lines.append(
                f"| {label} | {_s(v['ours'])} | {_s(v['mllib'])} | {_s(v['numpy'])} | "
                f"{_s(v['sklearn'])} | {_x(v['ours'], v['mllib'])} | "
                f"{_x(v['ours'], v['numpy'])} | {_x(v['ours'], v['sklearn'])} |"
            )
        if lr_e:
            v = {
                s: _get(lr_e, s, "peak_pss_sum_bytes")
                for s in ("ours", "mllib", "numpy", "sklearn")
            }
            r = {
                s: _get(lr_e, s, "peak_rss_sum_bytes")
                for s in ("ours", "mllib", "numpy", "sklearn")
            }
            lines.append(
                f"| peak memory, process tree (PSS / RSS) | {_gib(v['ours'])} / "
                f"{_gib(r['ours'])} | {_gib(v['mllib'])} / {_gib(r['mllib'])} | "
                f"{_gib(v['numpy'])} / {_gib(r['numpy'])} | "
                f"{_gib(v['sklearn'])} / {_gib(r['sklearn'])} | {_x(v['ours'], v['mllib'])} | "
                f"{_x(v['ours'], v['numpy'])} | {_x(v['ours'], v['sklearn'])} |"
            )
        diff = _get(lr_c, "max_abs_coef_diff_vs_numpy")
        if diff:
            lines += [
                "",
                "Max |coefficient − numpy's|: "
                + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
                + f". Parquet partitions: {lr_c.get('partitions')}; our solver: "
                f'{lr_c.get("ours_solver")} (`solver="auto"`).',
            ]
        lines.append("")

    km_c, km_e = _get(results, "kmeans_cached") or {}, _get(results, "e2e", "kmeans_given") or {}
    if km_c or km_e:
        lines += [
            f"## k-means, {ITERS} Lloyd iterations from the same initial centres "
            f"({cfg['rows']:,} × 10, k={K}, tol 0)",
            "",
            "MLlib = `org.apache.spark.mllib.clustering.KMeans` with `setInitialModel` run on "
            "the JVM `RDD[Vector]` of the assembled frame (the Scala path; `pyspark.ml` "
            "KMeans takes no initial centres in Spark 4.x); pyspark.mllib = "
            "`pyspark.mllib.clustering.KMeans.train(rdd, initialModel=…)` on a cached RDD "
            "of numpy rows (it re-pickles every row into the JVM each fit).",
            "",
            "| | ours | MLlib (JVM RDD) | pyspark.mllib | scikit-learn | ours/MLlib | "
            "ours/pyspark.mllib | ours/sklearn |",
            "|---|---|---|---|---|---|---|---|",
        ]
        systems = ("ours", "mllib", "mllib_pyrdd", "sklearn")
        for label, sec in (("fit on cached data", km_c), ("end-to-end process", km_e)):
            if not sec:
                continue
            v = {s: _get(sec, s, "median_s") for s in systems}
            lines.append(
                f"| {label} | {_s(v['ours'])} | {_s(v['mllib'])} | {_s(v['mllib_pyrdd'])} | "
                f"{_s(v['sklearn'])} | {_x(v['ours'], v['mllib'])} | "
                f"{_x(v['ours'], v['mllib_pyrdd'])} | {_x(v['ours'], v['sklearn'])} |"
            )
        if km_c:
            v = {s: _get(km_c, s, "per_iter_s") for s in systems}
            lines.append(
                f"| per iteration, cached (fit / iterations) | {_s(v['ours'])} | "
                f"{_s(v['mllib'])} | {_s(v['mllib_pyrdd'])} | {_s(v['sklearn'])} | "
                f"{_x(v['ours'], v['mllib'])} | {_x(v['ours'], v['mllib_pyrdd'])} | "
                f"{_x(v['ours'], v['sklearn'])} |"
            )
            steady = _get(km_c, "ours", "steady_per_iter_s")
            lines.append(
                f"| per iteration, ours steady state (between iteration logs) | {_s(steady)} "
                f"| | | | {_x(steady, v['mllib'])} | {_x(steady, v['mllib_pyrdd'])} | "
                f"{_x(steady, v['sklearn'])} |"
            )
            it = {s: _get(km_c, s, "iterations") for s in systems}
            lines.append(
                "| iterations run | "
                + " | ".join("—" if it[s] is None else f"{it[s]:g}" for s in systems)
                + " | | | |"
            )
            c = {s: _get(km_c, s, "cost") for s in systems}
            lines.append(
                "| final cost (recomputed with numpy) | "
                + " | ".join("—" if c[s] is None else f"{c[s]:.6g}" for s in systems)
                + " | | | |"
            )
        if km_e:
            v = {s: _get(km_e, s, "peak_pss_sum_bytes") for s in systems}
            r = {s: _get(km_e, s, "peak_rss_sum_bytes") for s in systems}
            lines.append(
                "| peak memory, process tree (PSS / RSS) | "
                + " | ".join(f"{_gib(v[s])} / {_gib(r[s])}" for s in systems)
                + f" | {_x(v['ours'], v['mllib'])} | {_x(v['ours'], v['mllib_pyrdd'])} | "
                f"{_x(v['ours'], v['sklearn'])} |"
            )
        lines.append("")

    kd_c, kd_e = (
        _get(results, "kmeans_default_cached") or {},
        _get(results, "e2e", "kmeans_default") or {},
    )
    if kd_c or kd_e:
        lines += [
            "## k-means, each system's default initialisation and stopping rule (k=10)",
            "",
            "ours: k-means‖ (2 steps), tol 1e-4, ≤20 iterations; MLlib `pyspark.ml` KMeans: "
            "k-means‖ (2 steps), tol 1e-4, ≤20; scikit-learn: k-means++, n_init=1, tol 1e-4, "
            "≤300. Cost = Σ min‖x−c‖² recomputed with numpy for every system.",
            "",
            "| | ours | MLlib (DataFrame) | scikit-learn | ours/MLlib | ours/sklearn |",
            "|---|---|---|---|---|---|",
        ]
        systems = ("ours", "mllib", "sklearn")
        for label, sec in (("fit on cached data", kd_c), ("end-to-end process", kd_e)):
            if not sec:
                continue
            v = {s: _get(sec, s, "median_s") for s in systems}
            lines.append(
                f"| {label} | "
                + " | ".join(_s(v[s]) for s in systems)
                + f" | {_x(v['ours'], v['mllib'])} | {_x(v['ours'], v['sklearn'])} |"
            )
        if kd_c:
            it = {s: _get(kd_c, s, "iterations") for s in systems}
            lines.append(
                "| iterations | "
                + " | ".join("—" if it[s] is None else f"{it[s]:g}" for s in systems)
                + " | | |"
            )
            c = {s: _get(kd_c, s, "cost") for s in systems}
            lines.append(
                "| final cost | "
                + " | ".join("—" if c[s] is None else f"{c[s]:.6g}" for s in systems)
                + f" | {_x(c['ours'], c['mllib'])} | {_x(c['ours'], c['sklearn'])} |"
            )
        lines.append("")

    fp = _get(results, "footprint") or {}
    if fp:
        lines += [
            "## Cached footprint (bytes Spark's block manager reports vs raw float64)",
            "",
            "| cached data set | storage | cached | raw rows×cols×8 | cached/raw |",
            "|---|---|---|---|---|",
        ]
        names = {
            "ours_linreg_blocks": (
                "ours, linreg blocks (pickled numpy)",
                "MEMORY_ONLY, serialized",
            ),
            "ours_kmeans_blocks": (
                "ours, k-means blocks (pickled numpy)",
                "MEMORY_ONLY, serialized",
            ),
            "ours_kmeans_points": (
                "ours, k-means points (own cache only for cosine / uncached input; else 0)",
                "MEMORY_ONLY, serialized",
            ),
            "mllib_linreg_dataframe": (
                "MLlib, assembled DataFrame `.cache()` (linreg)",
                "MEMORY_AND_DISK, columnar",
            ),
            "mllib_kmeans_dataframe": (
                "MLlib, assembled DataFrame `.cache()` (k-means)",
                "MEMORY_AND_DISK, columnar",
            ),
            "mllib_kmeans_jvm_vectors": (
                "MLlib, JVM RDD[Vector] (k-means)",
                "MEMORY_ONLY, deserialized",
            ),
            "pyspark_mllib_python_rows": (
                "pyspark.mllib, Python RDD of numpy rows",
                "MEMORY_ONLY, serialized",
            ),
        }
        for key, (label, level) in names.items():
            if key in fp:
                e = fp[key]
                lines.append(
                    f"| {label} | {level} | {_mb(e['mem_bytes'] + e.get('disk_bytes', 0))} | "
                    f"{_mb(e['raw_bytes'])} | "
                    f"{_x(e['mem_bytes'] + e.get('disk_bytes', 0), e['raw_bytes'])} |"
                )
        lines.append("")

    sc_rows = _get(results, "scaling", "rows") or []
    if sc_rows:
        lines += [
            "## Scaling of our jobs (fit on cached data)",
            "",
            "| rows | linreg fit | ×prev | k-means fit | iterations | ×prev | "
            "k-means per iteration | ×prev |",
            "|---|---|---|---|---|---|---|---|",
        ]
        prev = None
        for e in sc_rows:
            lines.append(
                f"| {e['rows']:,} | {_s(e['linreg_median_s'])} | "
                f"{_x(e['linreg_median_s'], prev and prev['linreg_median_s'])} | "
                f"{_s(e['kmeans_median_s'])} | {_it(e.get('kmeans_iterations'))} | "
                f"{_x(e['kmeans_median_s'], prev and prev['kmeans_median_s'])} | "
                f"{_s(e['kmeans_per_iter_s'])} | "
                f"{_x(e['kmeans_per_iter_s'], prev and prev['kmeans_per_iter_s'])} |"
            )
            prev = e
        lines.append("")
    sc_k = _get(results, "scaling", "k") or []
    if sc_k:
        lines += [
            f"| k ({cfg['rows']:,} rows) | k-means fit | iterations | per iteration |",
            "|---|---|---|---|",
        ]
        for e in sc_k:
            it = e.get("kmeans_iterations")
            lines.append(
                f"| {e['k']} | {_s(e['kmeans_median_s'])} | {'—' if it is None else f'{it:g}'} | "
                f"{_s(e['kmeans_per_iter_s'])} |"
            )
        lines.append("")
    wide = _get(results, "wide")
    if wide:
        proc = wide.get("process") or {}
        if wide.get("seconds") is not None:
            outcome = (
                f"fit on cached data {_s(wide['seconds'])} (solver {wide.get('solver')}, "
                f"max |β̂ − β| {wide.get('max_abs_coef_error_vs_truth', float('nan')):.2g})"
            )
        else:
            outcome = f"**failed**: {wide.get('error')}"
            if wide.get("seconds_until_error") is not None:
                outcome += f" after {_s(wide['seconds_until_error'])} of fitting"
        lines += [
            f"## Wide linear regression ({wide['rows']:,} × {wide['features']:,}, ours only)",
            "",
            f"ours: {outcome}. Load + cache {_s(wide.get('load_and_cache_s'))}, "
            f"{wide.get('partitions')} partitions, raw {_mb(wide['raw_bytes'])}; whole "
            f"process {_s(proc.get('seconds'))}, peak memory (PSS / RSS) "
            f"{_gib(proc.get('peak_pss_sum_bytes'))} / {_gib(proc.get('peak_rss_sum_bytes'))}.",
            f'MLlib `LinearRegression(solver="normal")` with '
            f"{wide.get('mllib_normal_width')} features: "
            f"{str(wide.get('mllib_normal')).rstrip('.')}.",
            "",
        ]
        for old in results.get("wide_previous_attempts", []):
            cmd = str(old.get("command") or "")
            memory = (
                cmd.split("--driver-memory ")[1].split()[0] if "--driver-memory" in cmd else "?"
            )
            lines += [
                f"Earlier attempt (driver memory {memory}): "
                + (
                    f"fit {_s(old['seconds'])}"
                    if old.get("seconds")
                    else f"failed: {old.get('error')}"
                )
                + ".",
                "",
            ]

    modes = [
        (
            "linreg fit on cached data, `--one-pass` (no residual pass)",
            ("linreg_cached",),
            "ours_onepass",
            "ours",
        ),
        ("linreg end-to-end process, `--one-pass`", ("e2e", "linreg"), "ours_onepass", "ours"),
        (
            "k-means 20 iterations on cached data, `--mode barrier`",
            ("kmeans_cached",),
            "ours_barrier",
            "ours",
        ),
        (
            "k-means 20 iterations end-to-end process, `--mode barrier`",
            ("e2e", "kmeans_given"),
            "ours_barrier",
            "ours",
        ),
    ]
    mode_rows = []
    for label, keys, mode, default in modes:
        t_mode = _get(results, *keys, mode, "median_s")
        if t_mode is None:
            continue
        t_default = _get(results, *keys, default, "median_s")
        ml = _get(results, *keys, "mllib", "median_s")
        sk = _get(results, *keys, "sklearn", "median_s")
        mode_rows.append(
            f"| {label} | {_s(t_mode)} | {_s(t_default)} | {_s(ml)} | {_s(sk)} | "
            f"{_x(t_mode, ml)} | {_x(t_mode, sk)} |"
        )
    if mode_rows:
        lines += [
            "## Our optional modes (same run)",
            "",
            "| | this mode | ours, default mode | MLlib | scikit-learn | mode/MLlib "
            "| mode/sklearn |",
            "|---|---|---|---|---|---|---|",
            *mode_rows,
            "",
        ]

    targets = results.get("targets") or []
    if targets:
        lines += [
            "## Targets",
            "",
            "| target | measured | rule | met? | detail |",
            "|---|---|---|---|---|",
        ]
        for t in targets:
            met = "n/a" if t["met"] is None else ("**met**" if t["met"] else "**missed**")
            value = "—" if t["measured"] is None else f"{t['measured']:.2f}x"
            lines.append(f"| {t['target']} | {value} | {t['how']} | {met} | {t['detail']} |")
        lines.append("")
    lines += [
        "Peak memory: the largest sum, over the process tree of the job (driver Python + JVM + "
        "Python workers), of RSS and of PSS (PSS splits shared pages between the forked "
        "workers, so it does not double count), polled from /proc every 0.1 s.",
        "",
    ]
    notes = list(results.get("notes", []))
    if (results.get("wide") or {}).get("note"):
        notes.append("Wide row: " + results["wide"]["note"] + ".")
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    out_dir = Path(args.output)
    results: dict = {
        "command": "python -m benchmarks.run " + " ".join(argv),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "machine": common.machine_info(),
        "notes": [
            "Other agents were running Spark test suites on the same 2 cores during this run: "
            "timings are noisy; loadavg_before/after is recorded with every measurement.",
            "ours k-means fit() iterates directly over the caller's cached blocks (Euclidean, "
            "unweighted: no second copy); its time includes the validation pass.",
            "MLlib's e2e process and ours both pay the JVM / SparkContext start (~11 s here).",
        ],
    }
    previous = out_dir / "results.json"
    if args.update and previous.exists():
        import json

        kept = json.loads(previous.read_text())
        reran = {
            "e2e": ["e2e"],
            "linreg": ["linreg_cached"],
            "kmeans": ["kmeans_cached"],
            "kmeans-default": ["kmeans_default_cached"],
            "scaling": ["scaling"],
            "wide": ["wide"],
        }
        drop = {key for s in args.sections for key in reran.get(s, [])}
        if "wide" in drop and "wide" in kept:  # keep what earlier attempts ran into
            kept["wide_previous_attempts"] = [
                *kept.get("wide_previous_attempts", []),
                {
                    k: kept["wide"].get(k)
                    for k in ("rows", "features", "error", "seconds", "command", "process")
                },
            ]
        results = {
            **{k: v for k, v in kept.items() if k not in drop and k not in ("targets",)},
            "updates": [
                *kept.get("updates", []),
                {
                    "command": results["command"],
                    "started": results["started"],
                    "sections": sorted(args.sections),
                    "git": results["machine"].get("git"),
                },
            ],
        }
    loads = [*results.get("loadavg_range", []), common.loadavg()]
    say(
        f"machine: {results['machine'].get('cpu')}, {results['machine'].get('cores')} cores; "
        f"load {loads[0]}"
    )

    def save() -> None:
        loads.append(common.loadavg())
        results["loadavg_range"] = [min(loads), max(loads)]
        results["targets"] = evaluate_targets(results)
        common.dump_json(out_dir / "results.json", results)
        (out_dir / "RESULTS.md").write_text(render(results))

    started = time.perf_counter()
    say("generating data (cached in benchmarks/data/)")
    paths = {
        "linreg": common.regression_parquet(args.rows),
        "kmeans": common.blobs_parquet(args.rows),
    }
    paths["centres_array"] = common.initial_centres(paths["kmeans"], K)
    paths["centres"] = common.write_centres_csv(
        paths["centres_array"], DATA / f"centres_r{args.rows}_k{K}.csv"
    )
    results["data"] = {
        k: str(Path(v).relative_to(ROOT)) for k, v in paths.items() if k != "centres_array"
    }

    if "e2e" in args.sections:
        bench_e2e(args, paths, results)
        save()
    in_process = {"linreg", "kmeans", "kmeans-default", "footprint", "scaling"}
    if args.sections & in_process:
        spark = common.spark_session(
            args.master, args.driver_memory, extra={"spark.driver.maxResultSize": "8g"}
        )
        results["spark"] = {
            "master": spark.sparkContext.master,
            "default_parallelism": spark.sparkContext.defaultParallelism,
            "driver_max_heap_bytes": (
                spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()
            ),
        }
        try:
            if "linreg" in args.sections:
                bench_linreg(spark, args, paths, results)
                save()
            if args.sections & {"kmeans", "kmeans-default", "footprint"}:
                bench_kmeans(spark, args, paths, results)
                save()
            if "scaling" in args.sections:
                bench_scaling(spark, args, results)
                save()
        finally:
            spark.stop()
    if "wide" in args.sections:
        bench_wide(args, results)
        save()
    results["total_seconds"] = time.perf_counter() - started
    save()
    print()
    print(render(results))
    say(
        f"done in {results['total_seconds'] / 60:.1f} min; wrote {out_dir / 'results.json'} and "
        f"{out_dir / 'RESULTS.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
