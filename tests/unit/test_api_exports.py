"""Spark-free checks of the Python API's package exports and of the MLflow glue."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys

from sparkml_jobs import tracking
from sparkml_jobs.cli import parse_args
from tests.conftest import ROOT

LAZY_IMPORT = """
import importlib.abc, sys

class NoSpark(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "py4j", "mlflow"):
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, NoSpark())
import sparkml_jobs, sparkml_jobs.tracking
names = {"LinearRegression", "KMeans", "LinearRegressionModel", "KMeansModel"}
assert names <= set(dir(sparkml_jobs)) and names <= set(sparkml_jobs.__all__)
assert not [m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "mlflow")]
try:
    from sparkml_jobs import LinearRegression  # only now is pyspark needed
except ImportError as exc:
    print("lazy:", exc)
"""


def test_package_exports_are_lazy():
    done = subprocess.run(
        [sys.executable, "-c", LAZY_IMPORT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "lazy: pyspark is blocked"


def test_unknown_attribute_is_an_attribute_error():
    import sparkml_jobs

    try:
        sparkml_jobs.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_mlflow_flag_parsing():
    base = ["kmeans", "fit", "--input", "x.csv", "--k", "3", "--output", "out"]
    assert parse_args(base).mlflow is None
    assert parse_args([*base, "--mlflow"]).mlflow == ""
    assert parse_args([*base, "--mlflow", "exp"]).mlflow == "exp"
    assert parse_args(["export", "--model", "m", "--to", "spark-ml", "--output", "o"]).to == (
        "spark-ml"
    )


def test_params_leave_out_secrets_and_join_lists():
    args = argparse.Namespace(
        algo="linreg",
        action="fit",
        conf=[("spark.hadoop.fs.s3a.secret.key", "hunter2")],
        features=["a", "b"],
        reg_param=[0.0, 0.5],
        weight_col=None,
        mlflow="exp",
        fit_intercept=True,
    )
    assert tracking.params(args) == {
        "features": "a,b",
        "reg_param": "0.0,0.5",
        "fit_intercept": "True",
    }


def test_metrics_and_histories():
    result = {
        "kind": "kmeans",
        "cost": 12.5,
        "n_iter": 2,
        "converged": True,
        "r2": math.nan,  # not a number MLflow can hold: left out
        "centers": [[1.0]],
        "history": [
            {"iteration": 1, "cost": 20.0, "shift": 1.5},
            {"iteration": 2, "cost": 12.5, "shift": 0.0},
        ],
        "linreg": {"rmse": 0.25},
    }
    assert tracking.summary_metrics(result) == {
        "cost": 12.5,
        "n_iter": 2.0,
        "converged": 1.0,
        "linreg.rmse": 0.25,
    }
    assert tracking.histories(result) == [
        ("iteration_cost", 20.0, 1),
        ("iteration_shift", 1.5, 1),
        ("iteration_cost", 12.5, 2),
        ("iteration_shift", 0.0, 2),
    ]
    sweep = {"k": [2, 3], "cost": [9.0, 4.0], "silhouette": [0.5, None]}
    assert tracking.histories(sweep) == [
        ("sweep_cost", 9.0, 2),
        ("sweep_cost", 4.0, 3),
        ("sweep_silhouette", 0.5, 2),
    ]
