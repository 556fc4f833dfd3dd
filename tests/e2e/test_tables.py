"""Metastore tables in and out: a real Derby-backed Hive metastore in a temporary directory.

Every step is its own process, as in a pipeline: one creates the source table, the CLI fits from
it and predicts into a partitioned table, and a fresh session reads the table back.
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


def test_fit_from_table_predict_into_partitioned_table(spark, tmp_path):
    made = python(
        f"spark.read.option('header', True).option('inferSchema', True)"
        f".csv({str(DATA / 'iris.csv')!r}).write.saveAsTable('default.iris')",
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    init = tmp_path / "init.csv"
    frame = pd.read_csv(DATA / "iris.csv")
    frame.iloc[[0, 50, 100]].to_csv(init, index=False)

    fit = cli(
        tmp_path,
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
        str(tmp_path / "model"),
    )
    assert fit.returncode == 0, fit.stderr
    predict = cli(
        tmp_path,
        "kmeans",
        "predict",
        "--model",
        str(tmp_path / "model"),
        "--input-table",
        "default.iris",
        "--output-table",
        "default.iris_clusters",
        "--partition-by",
        "cluster",
    )
    assert predict.returncode == 0, predict.stderr
    again = cli(
        tmp_path,
        "kmeans",
        "predict",
        "--model",
        str(tmp_path / "model"),
        "--input-table",
        "default.iris",
        "--output-table",
        "default.iris_clusters",
    )
    assert again.returncode == 2 and "already exists" in again.stderr.strip().splitlines()[-1]

    back = python(
        "t = spark.table('default.iris_clusters'); "
        "print(t.inputFiles()[0]); "
        f"t.toPandas().to_json({str(tmp_path / 'back.json')!r}, orient='records')",
        tmp_path,
    )
    assert back.returncode == 0, back.stderr
    assert "cluster=" in back.stdout  # Hive-style partition directories

    centres = np.array(json.loads((tmp_path / "model" / "model.json").read_text())["centers"])
    x = frame.to_numpy(float)
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    expected = frame.assign(cluster=d2.argmin(1).astype("int32"), distance=np.sqrt(d2.min(1)))
    got = pd.read_json(tmp_path / "back.json", orient="records")
    got = got[list(expected.columns)].astype(expected.dtypes.to_dict())
    key = ["sepal_length", "sepal_width", "petal_length", "petal_width", "cluster"]
    assert_approx_df_equality(
        spark.createDataFrame(got.sort_values(key).reset_index(drop=True)),
        spark.createDataFrame(expected.sort_values(key).reset_index(drop=True)),
        precision=1e-9,
    )


def test_missing_table_exits_2(tmp_path):
    proc = cli(
        tmp_path,
        "kmeans",
        "fit",
        "--input-table",
        "default.nope",
        "--k",
        "2",
        "--output",
        str(tmp_path / "m"),
    )
    assert proc.returncode == 2
    assert "input table not found: default.nope" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "m").exists()
