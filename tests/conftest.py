"""One real local SparkSession for the whole suite (start-up costs ~10 s)."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def peak_rss_mb() -> float:
    """This process's peak resident set size (``ru_maxrss``: KiB on Linux) in MiB.

    Memory checks read the peak, not a timed sample of the current size: no sampling thread to
    be starved on a loaded machine, and no short-lived spike slips between two samples.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start a new peak at the current size (Linux ≥ 4.0, ``/proc/self/clear_refs``), so that
    :func:`peak_rss_mb` then measures the code under test and not what earlier tests of this
    process needed; where the kernel refuses, the peak keeps its history (a weaker check)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


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
