"""``--mlflow``: params, summary metrics, the k-means cost history and the artifacts of a run,
logged to a local MLflow file store in a temporary directory; without mlflow, exit 2."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import DATA
from tests.e2e.helpers import run_cli, write_iris_init

mlflow = pytest.importorskip(
    "mlflow", reason="the 'mlflow' extra is not installed: pip install 'sparkml-jobs[mlflow]'"
)

IRIS, DIAMONDS = str(DATA / "iris.csv"), str(DATA / "diamonds.csv")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A file store in a temporary directory, as MLFLOW_TRACKING_URI (MLflow 3 only allows the
    file store when MLFLOW_ALLOW_FILE_STORE is set; a database store needs SQLAlchemy)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return mlflow.MlflowClient(uri)


def only_run(client, experiment: str):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1
    return runs[0]


def artifact_files(client, run_id: str, path: str = "") -> set[str]:
    files = set()
    for item in client.list_artifacts(run_id, path):
        files |= artifact_files(client, run_id, item.path) if item.is_dir else {item.path}
    return files


def test_kmeans_fit_logs_params_metrics_history_and_artifacts(spark, tmp_path, capsys, store):
    init = write_iris_init(tmp_path / "init.csv")
    model, report = tmp_path / "model", tmp_path / "report"
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", IRIS, "--k", "3", "--init", init, "--tol", "0",
        "--max-iter", "50", "--output", model, "--report", report, "--mlflow", "iris-runs",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((model / "model.json").read_text())["summary"]
    run = only_run(store, "iris-runs")
    assert run.info.status == "FINISHED"
    assert run.data.tags["sparkml_jobs.action"] == "kmeans fit"
    params = run.data.params
    assert params["k"] == "3" and params["tol"] == "0.0" and params["init"] == str(init)
    assert "mlflow" not in params and "conf" not in params
    metrics = run.data.metrics
    assert metrics["cost"] == summary["cost"] and metrics["n_iter"] == summary["n_iter"]
    assert metrics["converged"] == 1.0 and metrics["n"] == 150
    history = store.get_metric_history(run.info.run_id, "iteration_cost")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (h["iteration"], h["cost"]) for h in summary["history"]
    ]
    assert len(history) == summary["n_iter"] > 1
    files = artifact_files(store, run.info.run_id)
    assert {"model/model.json", "model/centers.npy", "report/report.html", "metrics.json"} <= files
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="model/model.json", dst_path=str(tmp_path / "dl")
    )
    with open(logged) as handle:
        assert json.load(handle)["summary"] == summary


def test_environment_alone_turns_tracking_on(spark, tmp_path, capsys, store, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "prices")
    model = tmp_path / "model"
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", DIAMONDS, "--label", "price", "--output", model
    )
    assert code == 0, err
    summary = json.loads((model / "model.json").read_text())["summary"]
    run = only_run(store, "prices")
    for name in ("r2", "r2_adj", "rmse", "mae", "condition_number"):
        assert run.data.metrics[name] == summary[name], name
    assert run.data.params["label"] == "price"
    assert "model/model.json" in artifact_files(store, run.info.run_id)


def test_a_failed_run_is_recorded_as_failed(spark, tmp_path, capsys, store):
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", tmp_path / "missing.csv", "--k", "3",
        "--output", tmp_path / "model", "--mlflow", "failures",
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert only_run(store, "failures").info.status == "FAILED"


def test_without_the_extra_mlflow_exits_2(spark, tmp_path, capsys, store, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now raises ImportError
    model = tmp_path / "model"
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", DIAMONDS, "--label", "price", "--output", model,
        "--mlflow",
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        "sparkml-jobs: error: --mlflow needs the 'mlflow' extra, which is not installed: "
        "pip install 'sparkml-jobs[mlflow]'"
    )
    assert not model.exists()
    # the environment alone does not break a job where mlflow is missing
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", DIAMONDS, "--label", "price", "--output", model
    )
    assert code == 0, err
    assert "mlflow is not installed" in err
