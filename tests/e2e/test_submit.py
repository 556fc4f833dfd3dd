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

import pytest

from tests.conftest import DATA
from tests.e2e.helpers import (
    RUN,
    check_ok,
    finish,
    job_args,
    metrics_path,
    model_numbers,
    start_sh,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def in_process(spark, work):
    """Both jobs through ``cli.main`` in this process (the shared local[2] session)."""
    from sparkml_jobs.cli import main

    out = {"linreg": work / "inproc-linreg", "kmeans": work / "inproc-kmeans"}
    assert main(job_args("linreg", out["linreg"], metrics=True)) == 0
    assert main(job_args("kmeans", out["kmeans"], work / "init.csv", metrics=True)) == 0
    return out


@pytest.fixture(scope="module")
def submitted(work):
    """Both jobs through ``submit/run.sh`` on its default master ``local[*]``."""
    out = {"linreg": work / "submit-linreg", "kmeans": work / "submit-kmeans"}
    started = {  # two drivers at once: the JVM start-ups overlap
        "linreg": start_sh([], job_args("linreg", out["linreg"], metrics=True)),
        "kmeans": start_sh(
            ["--conf", "spark.ui.enabled=false"],
            job_args("kmeans", out["kmeans"], work / "init.csv", metrics=True),
        ),
    }
    return out, {job: finish(proc) for job, proc in started.items()}


def test_run_sh_fits_the_same_models_as_the_console_script(in_process, submitted):
    out, procs = submitted
    for job in ("linreg", "kmeans"):
        check_ok(procs[job])
        # the whole fitted state, bit for bit: same data, partitioning and code path
        assert model_numbers(out[job]) == model_numbers(in_process[job]), job
        metrics = json.loads(metrics_path(out[job]).read_text())
        reference = json.loads(metrics_path(in_process[job]).read_text())
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
    capsys.readouterr()
    assert main(job_args("kmeans", work / "inproc-kmeans-2", work / "init.csv", metrics=True)) == 0
    assert capsys.readouterr().out == procs["kmeans"].stdout


BAD_LABEL = [
    "linreg",
    "fit",
    "--input",
    str(DATA / "diamonds.csv"),
    "--label",
    "no_such_column",
]


@pytest.fixture(scope="module")
def refused(work):
    """Two runs that must exit 2, both at once (the JVM start-ups overlap): an unknown label
    column, and a CLI usage error (no --k)."""
    started = {
        "bad-label": start_sh(
            ["--conf", "spark.ui.enabled=false"], [*BAD_LABEL, "--output", str(work / "bad")]
        ),
        "no-k": start_sh(
            [],
            ["kmeans", "fit", "--input", str(DATA / "iris.csv"), "--output", str(work / "no-k")],
        ),
    }
    return {name: finish(proc, timeout=300) for name, proc in started.items()}


def test_run_sh_bad_input_exits_2_with_one_line(spark, work, capsys, refused):
    """An unknown label column: found after Spark read the header, so the full path is exercised."""
    from sparkml_jobs.cli import main

    args = [*BAD_LABEL, "--output", str(work / "bad")]
    proc = refused["bad-label"]
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


def test_run_sh_usage_errors(refused):
    """Exit 2 before any JVM starts: no arguments, or a CLI usage error (one line, no traceback)."""
    env = {**os.environ, "SPARKML_PYTHON": sys.executable}
    proc = subprocess.run([str(RUN)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = refused["no-k"]
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sparkml-jobs: error:")]
    assert len(errors) == 1 and "--k" in errors[0], proc.stderr
