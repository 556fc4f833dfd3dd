"""MLflow tracking of a CLI run (the optional ``mlflow`` extra).

``--mlflow [EXPERIMENT]``, or ``MLFLOW_TRACKING_URI`` in the environment, wraps the action in an
MLflow run: the options as params, the summary numbers as metrics (R², RMSE, cost, iterations,
...), the k-means cost and centre shift of every iteration as metric histories (step = the
iteration), the metrics JSON, and the model directory and ``--report`` as artifacts. The tracking
server is MLflow's own choice (``MLFLOW_TRACKING_URI``, else its default); a run whose action fails
is closed as FAILED.

This module imports neither pyspark nor mlflow at import time: the CLI imports it for every run.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

from sparkml_jobs.errors import InputError

log = logging.getLogger("sparkml_jobs")

INSTALL_HINT = "pip install 'sparkml-jobs[mlflow]'"
DEFAULT_EXPERIMENT = "sparkml-jobs"
MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
# never logged: where secrets may sit (--conf spark.hadoop.fs.s3a.secret.key=...), or noise
UNLOGGED = {"mlflow", "conf", "config", "verbose", "algo", "action"}
# actions whose --output is a model (or a sweep) directory worth keeping with the run
OUTPUT_ARTIFACTS = {
    "linreg fit": "model",
    "linreg update": "model",
    "kmeans fit": "model",
    "kmeans sweep": "sweep",
    "export": "spark-ml-model",
}
HISTORIES = {"cost": "iteration_cost", "shift": "iteration_shift"}


def requested(args: argparse.Namespace) -> bool:
    """Whether this run is tracked: ``--mlflow`` given, or ``MLFLOW_TRACKING_URI`` set."""
    return getattr(args, "mlflow", None) is not None or bool(os.environ.get("MLFLOW_TRACKING_URI"))


def import_mlflow(explicit: bool):
    """The ``mlflow`` module; without it, an :class:`InputError` (exit 2) if ``--mlflow`` was
    given, else ``None`` (the environment alone must not break a job)."""
    try:
        import mlflow
    except ImportError:
        if explicit:
            raise InputError(
                f"--mlflow needs the 'mlflow' extra, which is not installed: {INSTALL_HINT}"
            ) from None
        log.info("MLFLOW_TRACKING_URI is set but mlflow is not installed (%s)", INSTALL_HINT)
        return None
    return mlflow


def experiment_name(args: argparse.Namespace) -> str:
    return (
        getattr(args, "mlflow", None)
        or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        or DEFAULT_EXPERIMENT
    )


def run_action(
    key: str, args: argparse.Namespace, action: Callable[[argparse.Namespace], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``action(args)``, inside an MLflow run when tracking is requested."""
    if not requested(args):
        return action(args)
    mlflow = import_mlflow(explicit=getattr(args, "mlflow", None) is not None)
    if mlflow is None:
        return action(args)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # our progress lines are enough
    experiment = experiment_name(args)
    try:
        mlflow.set_experiment(experiment)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"MLflow: cannot use experiment {experiment!r} at {mlflow.get_tracking_uri()}: {first}"
        ) from exc
    with mlflow.start_run(run_name=key.replace(" ", "-")) as run:
        from sparkml_jobs import __version__

        mlflow.set_tags({"sparkml_jobs.action": key, "sparkml_jobs.version": __version__})
        mlflow.log_params(params(args))
        result = action(args)
        log_result(mlflow, run.info.run_id, key, args, result)
    log.info("MLflow run %s logged in experiment %s", run.info.run_id, experiment)
    return result


def params(args: argparse.Namespace) -> dict[str, str]:
    """The options of the run as MLflow params (lists joined by commas, None left out)."""
    out = {}
    for name, value in sorted(vars(args).items()):
        if name in UNLOGGED or value is None:
            continue
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        out[name] = text[:MAX_PARAM_CHARS]
    return out


def _number(value: Any) -> float | None:
    """``value`` as a finite float if it is a number (or a bool), else ``None``."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def summary_metrics(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalar numbers of ``result`` (nested dictionaries' with a ``name.`` prefix)."""
    out = {}
    for name, value in result.items():
        if isinstance(value, dict):
            out.update(summary_metrics(value, f"{prefix}{name}."))
        elif (number := _number(value)) is not None:
            out[f"{prefix}{name}"] = number
    return out


def histories(result: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(metric, value, step) of every per-step series: k-means iterations, k of a sweep."""
    series = []
    for entry in result.get("history") or []:
        for field, metric in HISTORIES.items():
            if (value := _number(entry.get(field))) is not None:
                series.append((metric, value, int(entry["iteration"])))
    ks = result.get("k")
    if isinstance(ks, list):  # a sweep: cost, silhouette, ... per k
        for name in ("cost", "silhouette", "n_iter"):
            values = result.get(name)
            if isinstance(values, list) and len(values) == len(ks):
                for k, value in zip(ks, values, strict=True):
                    if (number := _number(value)) is not None:
                        series.append((f"sweep_{name}", number, int(k)))
    return series


def log_result(mlflow, run_id: str, key: str, args: argparse.Namespace, result: dict) -> None:
    """Metrics, metric histories, the metrics JSON and the output directories as artifacts."""
    from mlflow.entities import Metric

    from sparkml_jobs.io import persist

    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in summary_metrics(result).items()]
    metrics += [Metric(k, v, now, step) for k, v, step in histories(result)]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 per batch
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    mlflow.log_text(persist.dumps(result), "metrics.json")
    directories = []
    if key in OUTPUT_ARTIFACTS and getattr(args, "output", None):
        directories.append((args.output, OUTPUT_ARTIFACTS[key]))
    if getattr(args, "report", None):
        directories.append((args.report, "report"))
    for path, artifact_path in directories:
        log_directory(mlflow, path, artifact_path)


def log_directory(mlflow, path: str, artifact_path: str) -> None:
    """Log the directory ``path`` (any Hadoop file system) as artifacts under ``artifact_path``."""
    from sparkml_jobs.io import filesystem

    with filesystem.current().local_copy(path) as local:
        mlflow.log_artifacts(str(local), artifact_path)
