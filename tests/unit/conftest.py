"""The unit tests run without Spark (``make test-fast``): the shared session is refused here."""

from __future__ import annotations

import pytest


@pytest.fixture
def spark():
    """Shadows the suite's session fixture: a test that needs Spark belongs in ``tests/spark``."""
    pytest.fail("tests/unit must not start Spark: move this test to tests/spark", pytrace=False)
