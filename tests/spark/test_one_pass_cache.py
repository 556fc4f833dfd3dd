"""A one-pass fit reads its data once, so it caches nothing; a second pass still gets a cache."""

from __future__ import annotations

import numpy as np
import pytest

from sparkml_jobs.io import dataset as D
from sparkml_jobs.regression import estimator as L


@pytest.fixture
def cache_calls(monkeypatch):
    calls: list[int] = []
    original = D.BlockData.cache

    def spy(self):
        calls.append(self.blocks.id())
        return original(self)

    monkeypatch.setattr(D.BlockData, "cache", spy)
    return calls


def _problem(rng, n=1200, p=4, collinear=False):
    x = rng.normal(size=(n, p)) + 3.0
    if collinear:  # scaled Gram condition ~1e16: auto resolves to TSQR
        x[:, 3] = x[:, 0] + 1e-7 * rng.normal(size=n)
    y = 1.0 + x @ np.arange(1.0, p + 1) + rng.normal(size=n)
    return x, y


def test_one_pass_caches_nothing_and_the_default_fit_caches_once(spark, rng, cache_calls):
    x, y = _problem(rng)
    data = D.from_numpy(spark, x, y, num_partitions=3)
    one = L.LinearRegression(residual_pass=False).fit(data)
    assert cache_calls == [] and not data.blocks.is_cached
    two = L.LinearRegression().fit(data)
    assert len(cache_calls) >= 1 and not data.blocks.is_cached  # cached for the fit, then freed
    truth = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), y, rcond=None)[0]
    for model in (one, two):
        np.testing.assert_allclose(np.r_[model.intercept, model.coefficients], truth, rtol=1e-9)


def test_one_pass_auto_that_resolves_to_tsqr_rereads_the_source(spark, rng, cache_calls):
    x, y = _problem(rng, collinear=True)
    data = D.from_numpy(spark, x, y, num_partitions=2)
    model = L.LinearRegression(residual_pass=False).fit(data)
    assert model.summary.solver == "tsqr" and cache_calls == []
    truth = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), y, rcond=None)[0]
    fitted = np.r_[model.intercept, model.coefficients]
    np.testing.assert_allclose(
        fitted @ np.c_[np.ones(len(x)), x].T, truth @ np.c_[np.ones(len(x)), x].T, rtol=1e-9
    )
