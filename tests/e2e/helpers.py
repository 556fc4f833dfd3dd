"""Helpers shared by the end-to-end tests that run ``submit/run.sh`` (``spark-submit``).

Used by ``test_submit.py``, ``test_cluster.py`` and ``test_faults.py``; their shared fixtures
(``work``, ``local_models``) are in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA, ROOT

RUN = ROOT / "submit" / "run.sh"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# small files split into several partitions, identically under every master
SPLIT = {"linreg": "1m", "kmeans": "2k"}


def script_env(*drop: str, **extra: str) -> dict[str, str]:
    """The environment for the ``submit/*.sh`` scripts: this venv's Python for the driver and the
    workers, no inherited py4j gateway, the variables ``drop`` removed, then ``extra`` set."""
    env = {**os.environ, "SPARKML_PYTHON": sys.executable, "PYSPARK_PYTHON": sys.executable}
    for name in ("PYSPARK_GATEWAY_PORT", *drop):
        env.pop(name, None)
    env.update(extra)
    return env


def start_sh(
    submit_opts: list[str], args: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``submit/run.sh [submit_opts] -- args`` (environment ``env``, by default
    ``script_env()``), output piped."""
    return subprocess.Popen(
        [str(RUN), *submit_opts, "--", *args],
        env=script_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def check_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-6000:]}"


def finish(
    proc: subprocess.Popen, timeout: float = 600, *, check: bool = False
) -> subprocess.CompletedProcess:
    """Wait for a ``start_sh`` process (terminated, and the test failed, after ``timeout`` s);
    with ``check``, assert that it exited 0."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # run.sh forwards it to spark-submit
        out, err = proc.communicate(timeout=60)
        raise AssertionError(f"run.sh timed out after {timeout}s\n{err[-4000:]}") from None
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        check_ok(done)
    return done


def run_sh(
    submit_opts: list[str],
    args: list[str],
    *,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess:
    return finish(start_sh(submit_opts, args, env), timeout, check=check)


def split_conf(job: str) -> list[str]:
    """spark-submit options splitting ``job``'s input as ``SPLIT`` says."""
    return ["--conf", f"spark.sql.files.maxPartitionBytes={SPLIT[job]}"]


def write_iris_init(path: Path) -> Path:
    """Three explicit starting centres (rows 1, 51 and 101 of iris: one per species)."""
    rows = ["5.1,3.5,1.4,0.2", "7.0,3.2,4.7,1.4", "6.3,3.3,6.0,2.5"]
    path.write_text("\n".join([",".join(IRIS_FEATURES), *rows]) + "\n")
    return path


def metrics_path(out: Path) -> Path:
    return out.parent / f"{out.name}.metrics.json"


def job_args(job: str, out: Path, init: Path | None = None, *, metrics: bool = False) -> list[str]:
    """CLI arguments fitting ``job`` ("linreg": diamonds; "kmeans": iris from the centres in
    ``init``) into ``out``; with ``metrics``, the metrics JSON goes to ``metrics_path(out)``."""
    if job == "linreg":
        args = [
            "linreg",
            "fit",
            "--input",
            str(DATA / "diamonds.csv"),
            "--label",
            "price",
            "--output",
            str(out),
        ]
    else:
        args = [
            "kmeans",
            "fit",
            "--input",
            str(DATA / "iris.csv"),
            "--k",
            "3",
            "--init",
            str(init),
            "--max-iter",
            "50",
            "--tol",
            "0",
            "--output",
            str(out),
        ]
    return [*args, "--metrics-json", str(metrics_path(out))] if metrics else args


def model_numbers(path: Path) -> dict:
    """Every fitted number of a saved model: coefficients or centres and the training summary."""
    assert (Path(path) / "_SUCCESS").exists()
    doc = json.loads((Path(path) / "model.json").read_text())
    return {k: doc[k] for k in ("intercept", "coefficients", "centers", "summary") if k in doc}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI in-process (sharing the test session); (exit code, stdout, stderr)."""
    from sparkml_jobs.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
