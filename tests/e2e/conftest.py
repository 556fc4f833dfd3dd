"""Fixtures shared by the end-to-end tests (helper functions: ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import SPLIT, job_args, write_iris_init


@pytest.fixture(scope="module")
def work(request, tmp_path_factory) -> Path:
    """A directory for the test module's outputs, holding the iris starting centres ``init.csv``."""
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    write_iris_init(path / "init.csv")
    return path


@pytest.fixture(scope="module")
def local_models(spark, work) -> dict[str, Path]:
    """Both jobs in-process on the shared local[2] session, input split as ``SPLIT`` says, no
    faults: the reference models of the runs under other masters."""
    from sparkml_jobs.cli import main

    out = {}
    for job in ("linreg", "kmeans"):
        out[job] = work / f"local-{job}"
        spark.conf.set("spark.sql.files.maxPartitionBytes", SPLIT[job])
        try:
            assert main(job_args(job, out[job], work / "init.csv")) == 0
        finally:
            spark.conf.unset("spark.sql.files.maxPartitionBytes")
    return out
