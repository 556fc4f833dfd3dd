"""``submit/run.sh``: the CLI through a real ``spark-submit`` (``--py-files`` zip + entry script).

Each ``spark-submit`` starts its own JVM (~10 s), so the runs are few and module-scoped. The
reference is the same CLI run in-process on the shared ``local[2]`` session: the bundled files are
small enough to be one partition under any master, so the models must agree to the last bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "submit" / "run.sh"
DATA = ROOT / "data"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

pytestmark = pytest.mark.slow


def start_sh(submit_opts: list[str], job_args: list[str],
             env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``submit/run.sh [submit_opts] -- job_args`` with the venv's Python, output piped."""
    full_env = {**os.environ, "SPARKML_PYTHON": sys.executable, "PYSPARK_PYTHON": sys.executable,
                **(env or {})}
    full_env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.Popen(
        [str(RUN), *submit_opts, "--", *job_args], env=full_env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def finish(proc: subprocess.Popen, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # run.sh forwards it to spark-submit
        out, err = proc.communicate(timeout=60)
        raise AssertionError(f"run.sh timed out after {timeout}s\n{err[-4000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_sh(submit_opts: list[str], job_args: list[str], *, timeout: float = 600,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return finish(start_sh(submit_opts, job_args, env), timeout)


def model_numbers(path: Path) -> dict:
    """The fitted numbers of a saved model (coefficients or centres, and the training summary)."""
    doc = json.loads((Path(path) / "model.json").read_text())
    assert (Path(path) / "_SUCCESS").exists()
    keys = ("intercept", "coefficients", "centers", "summary")
    return {k: doc[k] for k in keys if k in doc}


def fitted(path: Path) -> np.ndarray:
    doc = json.loads((Path(path) / "model.json").read_text())
    if doc["kind"] == "kmeans":
        return np.array(doc["centers"], dtype=float)
    return np.array([doc["intercept"], *doc["coefficients"]], dtype=float)


def write_iris_init(path: Path) -> Path:
    """Three explicit starting centres (rows 1, 51 and 101 of iris: one per species)."""
    rows = ["5.1,3.5,1.4,0.2", "7.0,3.2,4.7,1.4", "6.3,3.3,6.0,2.5"]
    path.write_text("\n".join([",".join(IRIS_FEATURES), *rows]) + "\n")
    return path


def linreg_args(out: Path) -> list[str]:
    return ["linreg", "fit", "--input", str(DATA / "diamonds.csv"), "--label", "price",
            "--output", str(out), "--metrics-json", str(out.parent / f"{out.name}.metrics.json")]


def kmeans_args(out: Path, init: Path) -> list[str]:
    return ["kmeans", "fit", "--input", str(DATA / "iris.csv"), "--k", "3", "--init", str(init),
            "--max-iter", "50", "--tol", "0", "--output", str(out),
            "--metrics-json", str(out.parent / f"{out.name}.metrics.json")]


def check_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("submit")


@pytest.fixture(scope="module")
def in_process(spark, work):
    """Both jobs through ``cli.main`` in this process (the shared local[2] session)."""
    from sparkml_jobs.cli import main

    init = write_iris_init(work / "init.csv")
    out = {"linreg": work / "inproc-linreg", "kmeans": work / "inproc-kmeans"}
    assert main(linreg_args(out["linreg"])) == 0
    assert main(kmeans_args(out["kmeans"], init)) == 0
    return out


@pytest.fixture(scope="module")
def submitted(work):
    """Both jobs through ``submit/run.sh`` on its default master ``local[*]``."""
    init = write_iris_init(work / "init.csv")
    out = {"linreg": work / "submit-linreg", "kmeans": work / "submit-kmeans"}
    started = {  # two drivers at once: the JVM start-ups overlap
        "linreg": start_sh([], linreg_args(out["linreg"])),
        "kmeans": start_sh(["--conf", "spark.ui.enabled=false"], kmeans_args(out["kmeans"], init)),
    }
    return out, {job: finish(proc) for job, proc in started.items()}


def test_run_sh_fits_the_same_models_as_the_console_script(in_process, submitted):
    out, procs = submitted
    for job in ("linreg", "kmeans"):
        check_ok(procs[job])
        # the whole fitted state, bit for bit: same data, partitioning and code path
        assert model_numbers(out[job]) == model_numbers(in_process[job]), job
        metrics = json.loads((out[job].parent / f"{out[job].name}.metrics.json").read_text())
        reference = json.loads(
            (in_process[job].parent / f"{in_process[job].name}.metrics.json").read_text()
        )
        assert metrics == reference, job
    assert "master=local[*]" in procs["linreg"].stderr  # run.sh's default master
    assert model_numbers(out["kmeans"])["summary"]["init"] == "given"


def test_run_sh_keeps_stdout_for_results_and_stderr_for_progress(submitted, capsys):
    out, procs = submitted
    for job, proc in procs.items():
        check_ok(proc)
        # spark-submit merges a Python driver's stderr into stdout; entry.py undoes that
        assert "sparkml-jobs:" not in proc.stdout, job
        assert f"sparkml-jobs: model saved to {out[job]}" in proc.stderr, job
        assert "Traceback" not in proc.stderr
    assert procs["linreg"].stdout.startswith("linear regression: price ~ carat")
    assert procs["kmeans"].stdout.startswith("k-means: k=3")


def test_run_sh_stdout_equals_the_in_process_stdout(spark, submitted, work, capsys):
    from sparkml_jobs.cli import main

    out, procs = submitted
    init = write_iris_init(work / "init.csv")
    capsys.readouterr()
    assert main(kmeans_args(work / "inproc-kmeans-2", init)) == 0
    assert capsys.readouterr().out == procs["kmeans"].stdout


def test_run_sh_bad_input_exits_2_with_one_line(spark, work, capsys):
    """An unknown label column: found after Spark read the header, so the full path is exercised."""
    from sparkml_jobs.cli import main

    args = ["linreg", "fit", "--input", str(DATA / "diamonds.csv"), "--label", "no_such_column",
            "--output", str(work / "bad")]
    proc = run_sh(["--conf", "spark.ui.enabled=false"], args)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sparkml-jobs: error:")]
    assert len(errors) == 1, proc.stderr
    assert "no_such_column" in errors[0]
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr
    assert proc.stdout == ""
    assert not (work / "bad").exists()
    # the very same line as the console script's
    capsys.readouterr()
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == errors[0]


def test_run_sh_usage_errors(work):
    """Exit 2 before any JVM starts: no arguments, or a CLI usage error (one line, no traceback)."""
    env = {**os.environ, "SPARKML_PYTHON": sys.executable}
    proc = subprocess.run([str(RUN)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = run_sh([], ["kmeans", "fit", "--input", str(DATA / "iris.csv"),
                       "--output", str(work / "no-k")], timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sparkml-jobs: error:")]
    assert len(errors) == 1 and "--k" in errors[0], proc.stderr
