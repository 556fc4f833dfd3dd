"""Example Airflow DAG: every day, fit the linear-regression and k-means models with spark-submit,
then score the day's table into a partitioned table of clusters (a table in, a table out).

Put this file in the DAGs folder of an Airflow deployment that has the Spark provider
(``pip install apache-airflow-providers-apache-spark``) and adjust the settings below. The workers
that run the tasks need:

* a checkout of this project at ``PROJECT`` with its virtualenv (``make test`` builds ``.venv``);
* ``spark-submit`` on their ``PATH``: the provider only accepts a bare ``spark-submit`` binary name.
  The pip-installed pyspark puts one into ``.venv/bin`` (prepend it to ``PATH``), or use a Spark
  distribution's ``bin``;
* an Airflow connection ``SPARK_CONN_ID`` whose host is the master, e.g. ``spark://127.0.0.1`` with
  port 7077 (the URL ``submit/cluster.sh start`` printed), or ``local[*]``.

Every run writes to dated paths with ``--overwrite``, so a retry or a backfill of the same day
replaces that day's outputs atomically and nothing half-written is ever visible (a model directory
is complete when it holds ``_SUCCESS``). The metrics JSON of each fit is a separate output that
downstream tasks can read. Exit codes of the job: 0 ok, 2 bad input or usage (retrying will not
help: fix the input), 1 anything else; spark-submit passes them on and the operator fails the task
on anything but 0.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.4+
    from airflow import DAG
    from airflow.operators.bash import BashOperator
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

# --------------------------------------------------------------------------- settings
PROJECT = os.environ.get("SPARKML_PROJECT", "/opt/sparkml-jobs")  # checkout with its .venv
VENV_PYTHON = f"{PROJECT}/.venv/bin/python"
SPARK_CONN_ID = os.environ.get("SPARKML_SPARK_CONN", "spark_default")
DATA = os.environ.get("SPARKML_DATA", f"{PROJECT}/data")  # where the day's inputs land
# any Hadoop URI: hdfs://nn/models, s3a://bucket/models (with the connector, see the README)
OUTPUT = os.environ.get("SPARKML_OUTPUT", "/srv/sparkml/models")
# the metastore tables the scoring task reads and writes (the cluster's Hive metastore)
SOURCE_TABLE = os.environ.get("SPARKML_SOURCE_TABLE", "analytics.flowers")
SCORED_TABLE = os.environ.get("SPARKML_SCORED_TABLE", "analytics.flower_clusters")
# the package zip shipped with --py-files, rebuilt from the checkout by the first task
# (one run at a time, see max_active_runs, so one path will do)
PY_FILES = f"{OUTPUT}/_dist/sparkml_jobs.zip"
ENTRY = f"{PROJECT}/submit/entry.py"

SPARK_CONF = {
    "spark.ui.showConsoleProgress": "false",
    # executors run this Python (numpy, pyarrow). On a real cluster ship the environment instead:
    #   spark.archives=/path/env.tar.gz#environment
    #   spark.pyspark.python=./environment/bin/python (see submit/README.md)
    "spark.pyspark.python": VENV_PYTHON,
    "spark.pyspark.driver.python": VENV_PYTHON,
}
# With spark.authenticate on the cluster, add "spark.authenticate": "true" here and hand the secret
# in through a properties file or the connection, not a DAG file.

default_args = {
    "owner": "ml",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=2),
}


def fit_task(model: str, *fit_args: str) -> SparkSubmitOperator:
    """The task ``<model> fit <fit_args>`` through spark-submit, writing that day's model
    directory and metrics JSON (``--overwrite``: a retry or backfill replaces them). Call it inside
    the DAG."""
    output = f"{OUTPUT}/{model}/{{{{ ds }}}}"  # {{ ds }}: rendered by Airflow, the run's date
    return SparkSubmitOperator(
        task_id=f"{model}_fit",
        conn_id=SPARK_CONN_ID,
        name=f"sparkml-jobs {model} fit {{{{ ds }}}}",
        application=ENTRY,
        py_files=PY_FILES,
        conf=SPARK_CONF,
        application_args=[
            model, "fit", *fit_args,
            "--output", output,
            "--metrics-json", f"{output}.metrics.json",
            "--overwrite",
        ],
    )


with DAG(
    dag_id="sparkml_jobs_daily",
    description="Daily refit of the linear-regression and k-means models (sparkml-jobs)",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["spark", "ml"],
) as dag:
    package = BashOperator(
        task_id="package",
        bash_command=(
            f'mkdir -p "{OUTPUT}/_dist" && cd "{PROJECT}" && '
            f'"{VENV_PYTHON}" -m zipfile -c "{PY_FILES}.tmp" sparkml_jobs && '
            f'mv -f "{PY_FILES}.tmp" "{PY_FILES}"'
        ),
    )

    linreg_fit = fit_task("linreg", "--input", f"{DATA}/diamonds.csv", "--label", "price")
    kmeans_fit = fit_task("kmeans", "--input", f"{DATA}/iris.csv", "--k", "3", "--seed", "0")

    kmeans_score = SparkSubmitOperator(
        task_id="kmeans_score",
        conn_id=SPARK_CONN_ID,
        name="sparkml-jobs kmeans predict {{ ds }}",
        application=ENTRY,
        py_files=PY_FILES,
        conf=SPARK_CONF,
        application_args=[
            "kmeans", "predict",
            "--model", f"{OUTPUT}/kmeans/{{{{ ds }}}}",
            "--input-table", SOURCE_TABLE,
            "--output-table", SCORED_TABLE,
            "--partition-by", "cluster",
            "--catalog", "hive",
            "--overwrite",
        ],
    )

    package >> [linreg_fit, kmeans_fit]
    kmeans_fit >> kmeans_score
