"""One real local SparkSession for the whole suite (start-up costs ~10 s)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def spark():
    from sparkml_jobs.session import get_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = get_session(
        "local[2]",
        app_name="sparkml-jobs-tests",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.rdd.compress": "false",
            "spark.shuffle.compress": "false",
            "spark.driver.memory": "2g",
        },
    )
    yield session
    session.stop()


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
