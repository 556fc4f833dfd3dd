"""Every user path goes through Hadoop's FileSystem: viewfs://, file:// and relative paths.

A ``viewfs://`` mount table maps ``viewfs://sparkml/data`` and ``viewfs://sparkml/out`` to
temporary local directories. No local ``open()``/``os`` call can reach a ``viewfs://`` path, so
any code that bypasses the filesystem layer fails here (or writes a local folder literally named
``viewfs:``, which the tests look for). Concurrency and signal tests run real CLI processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality

from tests.conftest import DATA
from tests.e2e.helpers import run_cli

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def viewfs(spark, tmp_path, monkeypatch):
    """(data dir, out dir): local directories behind viewfs://sparkml/data and /out."""
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    shutil.copy(DATA / "iris.csv", data / "iris.csv")
    shutil.copy(DATA / "diamonds.csv", data / "diamonds.csv")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop.set("fs.viewfs.impl.disable.cache", "true")  # a new mount table per test
    hadoop.set("fs.viewfs.mounttable.sparkml.link./data", data.as_uri())
    hadoop.set("fs.viewfs.mounttable.sparkml.link./out", out.as_uri())
    monkeypatch.chdir(tmp_path)  # a stray local write of a "viewfs:" path would land here
    yield data, out
    assert not (tmp_path / "viewfs:").exists(), "a user path was written with local I/O"


def visible(directory: Path) -> list[str]:
    """The names a reader sees (hidden temporaries and Hadoop's .crc files left out)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_every_action_on_viewfs(viewfs, capsys):
    data, out = viewfs
    lin_in, km_in = "viewfs://sparkml/data/diamonds.csv", "viewfs://sparkml/data/iris.csv"
    steps = [
        [
            "linreg",
            "fit",
            "--input",
            lin_in,
            "--label",
            "price",
            "--output",
            "viewfs://sparkml/out/lm",
            "--report",
            "viewfs://sparkml/out/lm-report",
            "--metrics-json",
            "viewfs://sparkml/out/lm.json",
        ],
        [
            "linreg",
            "predict",
            "--model",
            "viewfs://sparkml/out/lm",
            "--input",
            lin_in,
            "--output",
            "viewfs://sparkml/out/lm-pred",
        ],
        [
            "linreg",
            "evaluate",
            "--model",
            "viewfs://sparkml/out/lm",
            "--input",
            lin_in,
            "--label",
            "price",
            "--metrics-json",
            "viewfs://sparkml/out/lm-eval.json",
        ],
        [
            "linreg",
            "update",
            "--model",
            "viewfs://sparkml/out/lm",
            "--input",
            lin_in,
            "--output",
            "viewfs://sparkml/out/lm2",
        ],
        [
            "kmeans",
            "fit",
            "--input",
            km_in,
            "--k",
            "3",
            "--output",
            "viewfs://sparkml/out/km",
            "--report",
            "viewfs://sparkml/out/km-report",
        ],
        [
            "kmeans",
            "predict",
            "--model",
            "viewfs://sparkml/out/km",
            "--input",
            km_in,
            "--output",
            "viewfs://sparkml/out/km-pred",
        ],
        [
            "kmeans",
            "sweep",
            "--input",
            km_in,
            "--k",
            "2..3",
            "--output",
            "viewfs://sparkml/out/sweep",
        ],
        [
            "kmeans",
            "evaluate",
            "--model",
            "viewfs://sparkml/out/km",
            "--input",
            km_in,
            "--metrics-json",
            "viewfs://sparkml/out/km-eval.json",
        ],
    ]
    for argv in steps:
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, (argv[:2], err)
    for name in ("lm", "lm2", "km", "lm-pred", "km-pred", "sweep", "lm-report", "km-report"):
        assert (out / name / "_SUCCESS").exists(), name
    assert "report.html" in visible(out / "lm-report")
    assert visible(out / "lm") == ["_SUCCESS", "model.json", "stats_comoment.npy", "stats_mean.npy"]
    # the doubled data (update adds the same rows again) gives the same coefficients
    first = json.loads((out / "lm" / "model.json").read_text())
    second = json.loads((out / "lm2" / "model.json").read_text())
    np.testing.assert_allclose(second["coefficients"], first["coefficients"], rtol=1e-9)
    assert second["summary"]["n"] == 2 * first["summary"]["n"]
    assert json.loads((out / "lm.json").read_text())["n"] == first["summary"]["n"]
    assert json.loads((out / "km-eval.json").read_text())["n"] == 150
    assert [p for p in out.iterdir() if ".tmp-" in p.name or p.name.endswith(".lock")] == []


def test_file_uris_and_relative_paths(spark, iris_model, tmp_path):
    """Relative paths resolve as Spark resolves them (the driver's working directory on a local
    file system): a real CLI process started in tmp_path; file:// URIs everywhere in a second
    one, predicting with the module's model at the same time (the JVM start-ups overlap)."""
    shutil.copy(DATA / "iris.csv", tmp_path / "iris.csv")
    fit = _cli_process(
        [
            "kmeans",
            "fit",
            "--input",
            "iris.csv",
            "--k",
            "3",
            "--seed",
            "3",
            "--output",
            "models/km",
            "--metrics-json",
            "m.json",
            "--master",
            "local[1]",
        ],
        {},
        cwd=tmp_path,
    )
    predict = _cli_process(
        [
            "kmeans",
            "predict",
            "--model",
            iris_model.as_uri(),
            "--input",
            (tmp_path / "iris.csv").as_uri(),
            "--output",
            (tmp_path / "preds").as_uri(),
            "--master",
            "local[1]",
        ],
        {},
        cwd=tmp_path,
    )
    _, err = fit.communicate(timeout=300)
    assert fit.returncode == 0, err
    assert (tmp_path / "models" / "km" / "_SUCCESS").exists()
    fitted = json.loads((tmp_path / "models" / "km" / "model.json").read_text())
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 150
    _, err = predict.communicate(timeout=300)
    assert predict.returncode == 0, err
    assert not (tmp_path / "file:").exists()
    got = spark.read.parquet(str(tmp_path / "preds"))
    centres = np.array(json.loads((iris_model / "model.json").read_text())["centers"])
    x = pd.read_csv(tmp_path / "iris.csv").to_numpy(float)
    expected = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    assert got.select("cluster").toPandas()["cluster"].tolist() == expected.tolist()
    # the model the relative run wrote is whole: its cost is that of its own centres
    d2 = ((x[:, None, :] - np.array(fitted["centers"])[None]) ** 2).sum(-1)
    assert fitted["summary"]["cost"] == pytest.approx(d2.min(1).sum(), rel=1e-9)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "kmeans",
                "fit",
                "--input",
                "viewfs://sparkml/data/nope.csv",
                "--k",
                "2",
                "--output",
                "viewfs://sparkml/out/x",
            ],
            "input path not found",
        ),
        (
            [
                "kmeans",
                "predict",
                "--model",
                "viewfs://sparkml/out/none",
                "--input",
                "viewfs://sparkml/data/iris.csv",
                "--output",
                "viewfs://sparkml/out/x",
            ],
            "model directory not found",
        ),
        (
            [
                "kmeans",
                "predict",
                "--model",
                "viewfs://sparkml/out/half",
                "--input",
                "viewfs://sparkml/data/iris.csv",
                "--output",
                "viewfs://sparkml/out/x",
            ],
            "incomplete output",
        ),
        (
            [
                "kmeans",
                "fit",
                "--input",
                "viewfs://sparkml/data/iris.csv",
                "--k",
                "2",
                "--output",
                "viewfs://sparkml/out/taken",
            ],
            "already holds a complete output",
        ),
        (
            [
                "kmeans",
                "fit",
                "--input",
                "viewfs://sparkml/data/iris.csv",
                "--k",
                "2",
                "--output",
                "viewfs://sparkml/data",
                "--overwrite",
            ],
            "would overwrite --input",
        ),
        (
            [
                "kmeans",
                "predict",
                "--model",
                "viewfs://sparkml/out/taken",
                "--input",
                "viewfs://sparkml/data/iris.csv",
                "--output",
                "viewfs://sparkml/out/taken/p",
                "--overwrite",
            ],
            "would overwrite --model",
        ),
        (
            [
                "kmeans",
                "fit",
                "--input",
                "viewfs://sparkml/data/iris.csv",
                "--k",
                "2",
                "--output",
                "viewfs://sparkml/out/x",
                "--metrics-json",
                "viewfs://sparkml/out/x/m.json",
            ],
            "--metrics-json",
        ),
    ],
)
def test_bad_remote_paths_exit_2_and_write_nothing(viewfs, capsys, argv, message):
    data, out = viewfs
    (out / "half").mkdir()
    (out / "half" / "model.json").write_text("{}")
    (out / "taken").mkdir()
    (out / "taken" / "_SUCCESS").touch()
    before = {p: p.read_bytes() for p in data.iterdir()}
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and message in lines[0], err
    assert sorted(p.name for p in out.iterdir()) == ["half", "taken"]
    assert visible(out / "taken") == ["_SUCCESS"]
    assert {p: p.read_bytes() for p in data.iterdir()} == before


def test_concurrent_commits_exactly_one_wins(spark, tmp_path):
    """Two writers of one new output, committing at the same moment (threads in one driver):
    one publishes, the other fails with one line; the output is the winner's, whole. 10 times."""
    import threading

    from sparkml_jobs.errors import InputError
    from sparkml_jobs.io import persist

    frame = spark.range(50).selectExpr("id", "id * 2 as twice")
    for attempt in range(10):
        target = str(tmp_path / f"out{attempt}")
        gate = threading.Barrier(2)
        results: dict[int, object] = {}

        def write(tag: int, target=target, gate=gate, results=results) -> None:
            try:
                with persist.spark_output(target) as tmp:
                    frame.selectExpr("id", f"{tag} as writer").write.parquet(tmp)
                    gate.wait(timeout=60)
                results[tag] = "published"
            except InputError as exc:
                results[tag] = str(exc)

        threads = [threading.Thread(target=write, args=(tag,)) for tag in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        winners = [tag for tag, result in results.items() if result == "published"]
        assert len(winners) == 1, results
        loser = results[3 - winners[0]]
        assert "another job" in loser and "\n" not in loser
        written = spark.read.parquet(target).toPandas()
        assert sorted(written["id"]) == list(range(50))
        assert set(written["writer"]) == {winners[0]}
        assert visible(Path(target)).count("_SUCCESS") == 1
        leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or ".lock" in p.name]
        assert leftovers == []


def _cli_process(
    args: list[str], env_extra: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, **env_extra}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "sparkml_jobs", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def _wait_for(predicate, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.05)


def _predict_args(model: Path, output: Path) -> list[str]:
    return [
        "kmeans",
        "predict",
        "--model",
        str(model),
        "--input",
        str(DATA / "iris.csv"),
        "--output",
        str(output),
        "--master",
        "local[1]",
    ]


@pytest.fixture(scope="module")
def iris_model(spark, tmp_path_factory) -> Path:
    """A k-means model for the predict processes below, fitted in-process (the processes under
    test are the predicts)."""
    from sparkml_jobs.cli import main

    model = tmp_path_factory.mktemp("model") / "km"
    assert (
        main(
            ["kmeans", "fit", "--input", str(DATA / "iris.csv"), "--k", "3", "--output", str(model)]
        )
        == 0
    )
    return model


@pytest.mark.slow
def test_signal_while_writing_cleans_up(iris_model, tmp_path):
    """SIGTERM (exit 143) and SIGINT (exit 130) while the output is being committed, one process
    each, both at once (the JVM start-ups overlap): no output, no temporary sibling."""
    started = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        (tmp_path / sig.name).mkdir()
        started[sig] = _cli_process(
            _predict_args(iris_model, tmp_path / sig.name / "preds"),
            # long enough for the other process's signal to be handled first: the signal ends it
            {"SPARKML_JOBS_PAUSE_BEFORE_COMMIT": "300"},
        )
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc, directory = started[sig], tmp_path / sig.name
        temporaries = lambda d=directory: [p for p in d.iterdir() if ".tmp-" in p.name]  # noqa: E731
        _wait_for(lambda t=temporaries: any((p / "_SUCCESS").exists() for p in t()), proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, (sig, err)
        assert err.strip().splitlines()[-1].startswith("sparkml-jobs: "), sig
        assert list(directory.iterdir()) == [], sig  # no output, no temporary sibling


@pytest.mark.slow
def test_sigkill_leaves_old_output_and_the_next_run_cleans_up(iris_model, tmp_path, capsys):
    output = tmp_path / "preds"
    # the old output, written in-process (the processes under test are the killed one and the next)
    code, _, err = run_cli(capsys, *_predict_args(iris_model, output)[:-2])
    assert code == 0, err
    before = sorted(p.name for p in output.iterdir())
    proc = _cli_process(
        [*_predict_args(iris_model, output), "--overwrite"],
        {"SPARKML_JOBS_PAUSE_BEFORE_COMMIT": "60"},
    )
    temporaries = lambda: [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # noqa: E731
    _wait_for(lambda: any((p / "_SUCCESS").exists() for p in temporaries()), proc)
    proc.kill()
    proc.wait(timeout=60)
    assert sorted(p.name for p in output.iterdir()) == before  # the old output, intact
    assert len(temporaries()) == 1  # the dead run's sibling, hidden
    # the next run, in-process: the clean-up under test is of the killed process's leftovers
    code, _, err = run_cli(capsys, *_predict_args(iris_model, output)[:-2], "--overwrite")
    assert code == 0, err
    assert temporaries() == []  # proven dead (same host, no such pid): removed
    assert (output / "_SUCCESS").exists()


@pytest.mark.slow
def test_two_processes_writing_one_output(iris_model, tmp_path):
    output = tmp_path / "preds"
    procs = [
        _cli_process(_predict_args(iris_model, output), {"SPARKML_JOBS_PAUSE_BEFORE_COMMIT": "2"})
        for _ in range(2)
    ]
    results = [(proc.wait(timeout=300), proc.communicate()[1]) for proc in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "error:" in loser.strip().splitlines()[-1]
    frame = pd.read_parquet(output)
    assert len(frame) == 150
    assert [p.name for p in tmp_path.iterdir()] == ["preds"]


def test_chispa_predictions_equal_on_viewfs_and_local(spark, viewfs, tmp_path, capsys):
    _, out = viewfs
    code, _, err = run_cli(
        capsys,
        "kmeans",
        "fit",
        "--input",
        "viewfs://sparkml/data/iris.csv",
        "--k",
        "3",
        "--seed",
        "5",
        "--output",
        "viewfs://sparkml/out/km",
    )
    assert code == 0, err
    for output in ("viewfs://sparkml/out/p", str(tmp_path / "local-p")):
        code, _, err = run_cli(
            capsys,
            "kmeans",
            "predict",
            "--model",
            "viewfs://sparkml/out/km",
            "--input",
            "viewfs://sparkml/data/iris.csv",
            "--output",
            output,
        )
        assert code == 0, err
    assert_approx_df_equality(
        spark.read.parquet(str(out / "p")),
        spark.read.parquet(str(tmp_path / "local-p")),
        precision=0.0,
        ignore_row_order=True,
    )
