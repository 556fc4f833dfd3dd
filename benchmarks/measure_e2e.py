"""End-to-end: every system as one fresh process (read Parquet → fit → save the model).

Wall time of the whole process and the peak memory of its process tree (driver + JVM + Python
workers), polled from /proc by :func:`benchmarks.common.run_process`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from functools import partial
from itertools import count
from pathlib import Path

from benchmarks import common
from benchmarks.harness import RUN_DIR, K, Measurement, run_rotated, say, summarise

Commands = dict[str, dict[str, tuple[list[str], int]]]


def _ours(job: str, data: str, output: str, master: str, *extra: str) -> list[str]:
    cli = str(Path(sys.executable).parent / "sparkml-jobs")
    return [
        cli,
        job,
        "fit",
        "--input",
        data,
        "--format",
        "parquet",
        "--output",
        str(RUN_DIR / "out" / output),
        "--master",
        master,
        "--overwrite",
        *extra,
    ]


def _mllib(job: str, args: argparse.Namespace, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.mllib_job",
        job,
        "--master",
        args.master,
        "--driver-memory",
        args.driver_memory,
        "--output",
        str(RUN_DIR / "out" / f"mllib-{job}"),
        *extra,
    ]


def _local(job: str, output: str, *extra: str) -> list[str]:
    out = str(RUN_DIR / "out" / output)
    return [sys.executable, "-m", "benchmarks.local_job", job, "--output", out, *extra]


def e2e_commands(args: argparse.Namespace, paths: dict) -> Commands:
    """``{benchmark: {system: (argv, repeats)}}``: every system as one fresh process."""
    lin, km, centres = str(paths["linreg"]), str(paths["kmeans"]), str(paths["centres"])
    r, r2, master = args.repeats, args.secondary_repeats, args.master
    given = ["--k", str(K), "--init", centres, "--max-iter", str(args.iterations)]
    return {
        "linreg": {
            "ours": (_ours("linreg", lin, "ours-linreg", master, "--label", "label"), r),
            "mllib": (_mllib("linreg", args, "--input", lin, "--label", "label"), r),
            "numpy": (_local("numpy-linreg", "numpy-linreg", "--input", lin), r),
            "sklearn": (_local("sklearn-linreg", "sklearn-linreg", "--input", lin), r),
        },
        "kmeans_given": {
            "ours": (_ours("kmeans", km, "ours-kmeans", master, *given, "--tol", "0"), r),
            "mllib": (_mllib("kmeans-rdd", args, "--input", km, *given, "--epsilon", "0"), r),
            "mllib_pyrdd": (
                _mllib("kmeans-pyrdd", args, "--input", km, *given, "--epsilon", "0"),
                r2,
            ),
            "sklearn": (
                _local("sklearn-kmeans", "sklearn-kmeans", "--input", km, *given, "--tol", "0"),
                r,
            ),
        },
        "kmeans_default": {
            "ours": (_ours("kmeans", km, "ours-kmeans-default", master, "--k", str(K)), r2),
            "mllib": (_mllib("kmeans-df", args, "--input", km, "--k", str(K)), r2),
            "sklearn": (
                _local("sklearn-kmeans", "sklearn-kmeans-default", "--input", km, "--k", str(K)),
                r2,
            ),
        },
    }


def with_optional_modes(commands: Commands) -> Commands:
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


def _one_process(cmd: list[str], stem: str, env: dict[str, str]) -> Measurement:
    """One run of ``cmd`` with its log and metrics JSON under this run's directory."""
    logs = RUN_DIR / "logs"
    metrics = logs / f"{stem}.json"
    out = common.run_process(cmd + ["--metrics-json", str(metrics)], logs / f"{stem}.log", env=env)
    if out["exit_code"] != 0:
        out["error"] = f"exit code {out['exit_code']} (see {out['log']})"
    if metrics.exists():
        reported = json.loads(metrics.read_text())
        out["iterations"] = reported.get("iterations", reported.get("n_iter"))
    return out


def _next_process(
    cmd: list[str], stem: str, env: dict[str, str], repeat: Iterator[int]
) -> Measurement:
    """The next repeat of one system: ``stem-<repeat>`` names its log and metrics."""
    return _one_process(cmd, f"{stem}-{next(repeat)}", env)


def bench_e2e(args: argparse.Namespace, paths: dict, results: dict) -> None:
    """Measure every system of every end-to-end benchmark into ``results["e2e"]``."""
    env = {"PYSPARK_SUBMIT_ARGS": f"--driver-memory {args.driver_memory} pyspark-shell"}
    section = results.setdefault("e2e", {})
    for bench, systems in with_optional_modes(e2e_commands(args, paths)).items():
        say(f"end-to-end: {bench}")
        runs = run_rotated(
            {
                name: (partial(_next_process, cmd, f"{bench}-{name}", env, count()), n)
                for name, (cmd, n) in systems.items()
            },
            bench,
        )
        section[bench] = {name: summarise(rs) for name, rs in runs.items()}
        for name, rs in runs.items():
            ok = [r for r in rs if not r.get("error")]
            for key in ("peak_rss_sum_bytes", "peak_pss_sum_bytes"):
                section[bench][name][key] = max((r[key] for r in ok), default=None)
        section[bench]["commands"] = {name: " ".join(cmd) for name, (cmd, _) in systems.items()}
