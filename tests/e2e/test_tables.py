"""Metastore tables in and out: a real Derby-backed Hive metastore in a temporary directory.

Every step is its own process, as in a pipeline: one creates the source table, the CLI fits from
it and predicts into a partitioned table, and a fresh session reads the table back. (Derby lets
one process at a time open the metastore; the refusals run ``cli.main`` inside the first and the
last process, on their Hive session, so the pipeline starts four JVMs, not six.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality

from tests.conftest import DATA

pytestmark = pytest.mark.slow


def hive_conf(root: Path) -> list[str]:
    """--conf arguments for a metastore and warehouse under ``root`` (no server, no network)."""
    return [
        "--conf",
        f"spark.sql.warehouse.dir={(root / 'warehouse').as_uri()}",
        "--conf",
        "spark.hadoop.javax.jdo.option.ConnectionURL="
        f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
    ]


SESSION = """
import sys
from pyspark.sql import SparkSession
conf = dict(a.split("=", 1) for a in sys.argv[2::2])
builder = SparkSession.builder.master("local[1]").enableHiveSupport()
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
"""


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return proc


def python(code: str, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", SESSION + code, *extra, *hive_conf(root)], root)


def cli(root: Path, *argv: str) -> subprocess.CompletedProcess:
    return run(
        [
            sys.executable,
            "-m",
            "sparkml_jobs",
            *argv,
            "--master",
            "local[1]",
            "--catalog",
            "hive",
            *hive_conf(root),
        ],
        root,
    )


# cli.main inside a Hive session (no --catalog: the session already has it, and a static setting
# cannot be set again); each call's stderr ends with a marker line naming the call and its code
REFUSE = """
import contextlib, io
from sparkml_jobs.cli import main
def refuse(name, *argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(argv))
    last = (err.getvalue().strip().splitlines() or [""])[-1]
    print(f"=={name} {code} {last}", file=sys.stderr, flush=True)
"""


def refusals(proc: subprocess.CompletedProcess) -> dict[str, tuple[int, str]]:
    """name -> (exit code, last stderr line) of the ``refuse`` calls of a ``python`` process."""
    found = {}
    for line in proc.stderr.splitlines():
        if line.startswith("=="):
            name, code, last = (line[2:].split(" ", 2) + [""])[:3]
            found[name] = (int(code), last)
    return found


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[Path, dict[str, subprocess.CompletedProcess]]:
    root = tmp_path_factory.mktemp("tables")
    steps = {}
    steps["made"] = python(
        REFUSE + f"refuse('missing', 'kmeans', 'fit', '--input-table', 'default.nope', '--k', '2', "
        f"'--output', {str(root / 'm')!r})\n"
        f"spark.read.option('header', True).option('inferSchema', True)"
        f".csv({str(DATA / 'iris.csv')!r}).write.saveAsTable('default.iris')",
        root,
    )
    init = root / "init.csv"
    pd.read_csv(DATA / "iris.csv").iloc[[0, 50, 100]].to_csv(init, index=False)
    steps["fit"] = cli(
        root,
        "kmeans",
        "fit",
        "--input-table",
        "default.iris",
        "--k",
        "3",
        "--init",
        str(init),
        "--tol",
        "0",
        "--max-iter",
        "100",
        "--output",
        str(root / "model"),
    )
    steps["predict"] = cli(
        root,
        "kmeans",
        "predict",
        "--model",
        str(root / "model"),
        "--input-table",
        "default.iris",
        "--output-table",
        "default.iris_clusters",
        "--partition-by",
        "cluster",
    )
    steps["back"] = python(
        REFUSE + f"refuse('again', 'kmeans', 'predict', '--model', {str(root / 'model')!r}, "
        "'--input-table', 'default.iris', '--output-table', 'default.iris_clusters')\n"
        "t = spark.table('default.iris_clusters'); "
        "print(t.inputFiles()[0]); "
        f"t.toPandas().to_json({str(root / 'back.json')!r}, orient='records')",
        root,
    )
    return root, steps


def test_fit_from_table_predict_into_partitioned_table(spark, pipeline):
    root, steps = pipeline
    for name in ("made", "fit", "predict", "back"):
        assert steps[name].returncode == 0, (name, steps[name].stderr[-4000:])
    # the table existed: writing it again is refused in one line
    code, last = refusals(steps["back"])["again"]
    assert code == 2 and "already exists" in last, steps["back"].stderr[-4000:]
    assert "cluster=" in steps["back"].stdout  # Hive-style partition directories

    frame = pd.read_csv(DATA / "iris.csv")
    centres = np.array(json.loads((root / "model" / "model.json").read_text())["centers"])
    x = frame.to_numpy(float)
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    expected = frame.assign(cluster=d2.argmin(1).astype("int32"), distance=np.sqrt(d2.min(1)))
    got = pd.read_json(root / "back.json", orient="records")
    got = got[list(expected.columns)].astype(expected.dtypes.to_dict())
    key = ["sepal_length", "sepal_width", "petal_length", "petal_width", "cluster"]
    assert_approx_df_equality(
        spark.createDataFrame(got.sort_values(key).reset_index(drop=True)),
        spark.createDataFrame(expected.sort_values(key).reset_index(drop=True)),
        precision=1e-9,
    )


def test_missing_table_exits_2(pipeline):
    root, steps = pipeline
    assert steps["made"].returncode == 0, steps["made"].stderr[-4000:]
    code, last = refusals(steps["made"])["missing"]
    assert code == 2, steps["made"].stderr[-4000:]
    assert "input table not found: default.nope" in last
    assert not (root / "m").exists()
