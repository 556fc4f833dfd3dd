"""The unit tests run without Spark (``make test-fast``): a test here that needs the session or
starts a SparkContext fails, and belongs in ``tests/spark``."""

from __future__ import annotations

import sys

import pytest


def _active_spark_context():
    pyspark = sys.modules.get("pyspark")  # never imported: certainly no Spark
    return None if pyspark is None else pyspark.SparkContext._active_spark_context


@pytest.fixture
def spark():
    """Shadows the suite's session fixture."""
    pytest.fail("tests/unit must not start Spark: move this test to tests/spark", pytrace=False)


@pytest.fixture(autouse=True)
def _no_spark_started():
    """Catches a SparkContext started directly (the suite's own session may already be up when
    ``make test`` reaches this folder, so only a new one counts)."""
    before = _active_spark_context()
    yield
    if before is None and _active_spark_context() is not None:
        pytest.fail("this unit test started Spark: move it to tests/spark", pytrace=False)
