"""The wide design on Spark: packed partials, one per task slot, vs numpy and the narrow path."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import read
from sparkml_jobs.io.models import load_linreg, save_linreg
from sparkml_jobs.regression.estimator import LinearRegression, update
from sparkml_jobs.regression.packed import PackedStats
from sparkml_jobs.regression.passes import WIDE_PARTIAL_BYTES, aggregate_stats

N, P = 2000, 1500  # a 1,501-column triangle is 9.0 MB: past WIDE_PARTIAL_BYTES (8 MiB)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, P)) + rng.uniform(-5, 5, size=P)  # well conditioned, non-zero means
    y = 2.0 + x @ rng.normal(size=P) + rng.normal(size=N)
    names = [f"f{j}" for j in range(P)]
    path = tmp_path_factory.mktemp("wide") / "wide.parquet"
    table = pa.table({**{n: x[:, j] for j, n in enumerate(names)}, "y": y})
    pq.write_table(table, path, row_group_size=500)
    return str(path), x, y


def load(spark, path, partitions):
    # 256-row blocks: every partition adds several blocks to its triangle
    return read.load(spark, path, "parquet", label="y", block_rows=256, num_partitions=partitions)


def test_wide_statistics_one_partial_per_slot_match_numpy_and_the_narrow_path(spark, wide):
    assert 8 * (P + 1) * (P + 2) // 2 > WIDE_PARTIAL_BYTES
    path, x, y = wide
    data = load(spark, path, 5)
    timings: dict[str, float] = {}
    stats, counts, _ = aggregate_stats(data, timings=timings)
    # 5 cached partitions, 2 task slots: 2 partials, each computed once and shipped once
    assert timings["partials"] == spark.sparkContext.defaultParallelism == 2
    assert {"fold_s", "transfer_s", "jvm_gc_s", "merge_s"} <= set(timings)
    z = np.column_stack([x, y])
    mean = z.mean(axis=0)
    oracle = (z - mean).T @ (z - mean)
    scale = np.sqrt(np.outer(np.diag(oracle), np.diag(oracle)))
    assert counts.rows == stats.n == N
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-13)
    assert isinstance(stats, PackedStats)  # kept as the triangle, read-only
    assert not stats.packed.flags.writeable
    got = stats.full().comoment
    assert np.max(np.abs(got - oracle) / scale) < 1e-12
    narrow, _, _ = aggregate_stats(data, packed=False)
    assert np.max(np.abs(got - narrow.comoment) / scale) < 1e-12
    np.testing.assert_allclose(stats.mean, narrow.mean, rtol=1e-14)


def test_fewer_partitions_than_slots_are_not_split(spark, wide):
    path, _, _ = wide
    data = load(spark, path, None)
    data = dataclasses.replace(data, blocks=data.blocks.coalesce(1))
    timings: dict[str, float] = {}
    stats, _, _ = aggregate_stats(data, timings=timings)
    assert timings["partials"] == 1 and stats.n == N


@pytest.mark.parametrize("solver", ["auto", "tsqr"])
def test_wide_fit_matches_lstsq(spark, wide, solver):
    path, x, y = wide
    model = LinearRegression(solver=solver).fit(load(spark, path, 3))
    truth = np.linalg.lstsq(np.column_stack([np.ones(N), x]), y, rcond=None)[0]
    got = np.concatenate([[model.intercept], model.coefficients])
    assert np.max(np.abs(got - truth)) / np.max(np.abs(truth)) < 1e-9


def test_wide_invalid_cell_is_named_not_fitted(spark, wide, tmp_path):
    _, x, y = wide
    x = x[:300].copy()
    x[17, 1234] = np.nan  # one cell of 450,000
    table = pa.table({**{f"f{j}": x[:, j] for j in range(P)}, "y": y[:300]})
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match="f1234"):
        LinearRegression().fit(load(spark, str(path), 2))


def test_a_wide_model_saves_and_loads_its_triangle_and_updates_from_it(spark, wide, tmp_path):
    """The model keeps the packed triangle it was fitted from and saves it as such (half the
    bytes); the loaded one is the same, read-only, and an update merges a full copy: adding the
    same rows again leaves the least-squares coefficients as they were (numpy's oracle)."""
    path, x, y = wide
    model = LinearRegression().fit(load(spark, path, 2))
    out = tmp_path / "lm"
    save_linreg(model, str(out))
    assert sorted(f.name for f in out.iterdir() if f.suffix == ".npy") == [
        "stats_comoment_packed.npy",
        "stats_mean.npy",
    ]
    back = load_linreg(str(out))
    assert isinstance(back.stats, PackedStats) and not back.stats.packed.flags.writeable
    np.testing.assert_array_equal(back.stats.packed, model.stats.packed)
    assert back.summary.std_errors == model.summary.std_errors
    twice = update(back, added=load(spark, path, 2))
    truth = np.linalg.lstsq(np.column_stack([np.ones(N), x]), y, rcond=None)[0]
    got = np.concatenate([[twice.intercept], twice.coefficients])
    assert twice.stats.n == 2 * N and isinstance(twice.stats, PackedStats)  # still packed
    assert np.max(np.abs(got - truth)) / np.max(np.abs(truth)) < 1e-9
    np.testing.assert_array_equal(back.stats.packed, model.stats.packed)  # not changed in place
    doc = json.loads((out / "model.json").read_text())
    doc["stats"]["comoment"] = "triangle"
    (out / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="'stats.comoment' must be 'packed'"):
        load_linreg(str(out))
