"""Parquet on a local file system is read by pyarrow in the tasks: the same blocks, counts and
models as Spark's own reader, which still decodes whatever the tasks must not read themselves."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import direct, read
from sparkml_jobs.io.blocks import Counts

DIRECT = "ParallelCollectionRDD"  # the direct path's lineage: task descriptions, not a scan


def collect(data):
    blocks = data.blocks.collect()
    counts = Counts.zero(len(data.columns))
    for block in blocks:
        counts = counts.merge(Counts.of_block(block))
    return np.vstack([b.values for b in blocks]), counts


def jvm_load(spark, *args, **kwargs):
    spark.conf.set(direct.DIRECT_KEY, "false")
    try:
        return read.load(spark, *args, **kwargs)
    finally:
        spark.conf.unset(direct.DIRECT_KEY)


@pytest.fixture
def parquet_dir(tmp_path, rng):
    """Two files, three row groups each; a null, a NaN and an inf; int, bool, float columns."""
    directory = tmp_path / "table"
    directory.mkdir()
    x = rng.normal(size=(1200, 3))
    x[10, 0], x[20, 1] = np.nan, np.inf
    y = rng.normal(size=1200)
    for part in range(2):
        rows = slice(600 * part, 600 * (part + 1))
        label = pa.array(y[rows]).to_pylist()
        if part == 1:
            label[3] = None
        table = pa.table(
            {
                "f1": x[rows, 0],
                "f2": x[rows, 1],
                "count": pa.array(np.arange(600, dtype=np.int64) + 600 * part),
                "flag": pa.array(np.arange(600) % 2 == 0),
                "y": pa.array(label, pa.float64()),
            }
        )
        pq.write_table(table, directory / f"part-{part}.parquet", row_group_size=200)
    (directory / "_SUCCESS").write_text("")
    return directory


def test_direct_blocks_and_counts_equal_sparks_reader(spark, parquet_dir):
    direct = read.load(spark, str(parquet_dir), "parquet", label="y")
    assert DIRECT in direct.blocks.toDebugString().decode()
    jvm = jvm_load(spark, str(parquet_dir), "parquet", label="y")
    assert DIRECT not in jvm.blocks.toDebugString().decode()
    assert direct.columns == jvm.columns == ["f1", "f2", "count", "flag", "y"]
    got, got_counts = collect(direct)
    want, want_counts = collect(jvm)
    order = np.argsort(want[:, 2])  # Spark's file order may differ: sort by the row number
    np.testing.assert_array_equal(got[np.argsort(got[:, 2])], want[order])
    assert got_counts.rows == want_counts.rows == 1200
    assert got_counts.nulls.tolist() == want_counts.nulls.tolist() == [0, 0, 0, 0, 1]
    assert got_counts.nonfinite.tolist() == want_counts.nonfinite.tolist() == [1, 1, 0, 0, 0]


def test_explicit_partitions_are_honoured(spark, parquet_dir):
    data = read.load(spark, str(parquet_dir), "parquet", label="y", num_partitions=5)
    assert data.blocks.getNumPartitions() == 5
    assert sum(len(b.values) for b in data.blocks.collect()) == 1200


def test_a_viewfs_mount_of_a_local_directory_is_read_directly(spark, parquet_dir, tmp_path):
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop.set("fs.viewfs.impl.disable.cache", "true")
    hadoop.set("fs.viewfs.mounttable.direct.link./data", parquet_dir.as_uri())
    data = read.load(spark, "viewfs://direct/data", "parquet", label="y", features=["f1"])
    assert DIRECT in data.blocks.toDebugString().decode()
    values, counts = collect(data)
    assert counts.rows == 1200 and sorted(values[:, 0][np.isfinite(values[:, 0])]) == sorted(
        v
        for v in pq.read_table(parquet_dir, columns=["f1"]).column(0).to_pylist()
        if np.isfinite(v)
    )


def test_partition_columns_and_text_columns_go_through_sparks_reader(spark, tmp_path):
    root = tmp_path / "by_year"
    for year in (2020, 2021):
        (root / f"year={year}").mkdir(parents=True)
        pq.write_table(
            pa.table({"x": [1.0, 2.0, 3.0], "t": ["1", "2.5", "x"]}),
            root / f"year={year}" / "part-0.parquet",
        )
    with_year = read.load(spark, str(root), "parquet", features=["x", "year"])
    assert DIRECT not in with_year.blocks.toDebugString().decode()
    values, _ = collect(with_year)
    assert sorted(values[:, 1].tolist()) == [2020.0] * 3 + [2021.0] * 3
    text = read.load(spark, str(root), "parquet", features=["x", "t"])
    assert DIRECT not in text.blocks.toDebugString().decode()
    values, counts = collect(text)
    assert counts.nulls.tolist() == [0, 2]  # try_cast: "x" is not a number, in both files
    only_x = read.load(spark, str(root), "parquet", features=["x"])
    assert DIRECT in only_x.blocks.toDebugString().decode()
    assert sorted(collect(only_x)[0][:, 0].tolist()) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_a_fit_rereads_local_parquet_instead_of_caching_it(spark, tmp_path, rng):
    """Several passes (statistics, residuals) over uncached direct blocks: the model equals
    ``np.linalg.lstsq`` and the fit over Spark's reader with its cache."""
    from sparkml_jobs.regression.estimator import LinearRegression

    x = rng.normal(size=(3000, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 4.0 + rng.normal(size=3000)
    table = pa.table({**{f"x{j}": x[:, j] for j in range(4)}, "y": y})
    pq.write_table(table, tmp_path / "fit.parquet", row_group_size=500)
    direct = read.load(spark, str(tmp_path / "fit.parquet"), "parquet", label="y")
    assert direct.rereadable
    model = LinearRegression().fit(direct)
    assert not direct.blocks.is_cached
    assert model.summary.n == 3000
    design = np.column_stack([np.ones(3000), x])
    want = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(model.intercept, want[0], rtol=1e-10)
    np.testing.assert_allclose(model.coefficients, want[1:], rtol=1e-10)
    jvm = LinearRegression().fit(
        jvm_load(spark, str(tmp_path / "fit.parquet"), "parquet", label="y")
    )
    np.testing.assert_allclose(model.coefficients, jvm.coefficients, rtol=1e-12)
    np.testing.assert_allclose(model.summary.std_errors, jvm.summary.std_errors, rtol=1e-12)


def test_at_most_replans_a_direct_read_and_coalesces_the_rest(spark, parquet_dir):
    direct = read.load(spark, str(parquet_dir), "parquet", label="y", num_partitions=5)
    fewer = direct.at_most(2)
    assert fewer.getNumPartitions() == 2
    lineage = fewer.toDebugString().decode()
    assert DIRECT in lineage and "Coalesced" not in lineage  # each task reads its own rows
    assert direct.at_most(8) is direct.blocks
    got = np.vstack([b.values for b in fewer.collect()])
    want = np.vstack([b.values for b in direct.blocks.collect()])
    np.testing.assert_array_equal(got, want)  # same rows, same order
    jvm = jvm_load(spark, str(parquet_dir), "parquet", label="y", num_partitions=5)
    assert "Coalesced" in jvm.at_most(2).toDebugString().decode()


def _spark_files(spark, path) -> list[str]:
    """Oracle: the data files Spark's own file index lists for ``path``, as local paths."""
    from urllib.parse import unquote, urlparse

    return sorted(unquote(urlparse(u).path) for u in spark.read.parquet(str(path)).inputFiles())


def test_the_listing_skips_what_sparks_file_index_skips(spark, parquet_dir):
    (parquet_dir / ".part-0.parquet.crc").write_bytes(b"crc")
    (parquet_dir / "part-9.parquet._COPYING_").write_bytes(b"half a file")
    (parquet_dir / "_temporary").mkdir()
    (parquet_dir / "_temporary" / "part-7.parquet").write_bytes(b"an attempt")
    listed = direct.listed_files(spark, str(parquet_dir))
    assert listed == _spark_files(spark, parquet_dir)
    assert listed == [str(parquet_dir / f"part-{i}.parquet") for i in (0, 1)]
    one = parquet_dir / "part-1.parquet"
    assert direct.listed_files(spark, str(one)) == _spark_files(spark, one) == [str(one)]
    assert direct.listed_files(spark, one.as_uri()) == [str(one)]


@pytest.mark.parametrize(
    "layout",
    ["partitioned", "nested", "glob", "missing", "empty-file", "summary-file", "only-hidden"],
)
def test_the_listing_leaves_every_other_layout_to_sparks_reader(spark, parquet_dir, layout):
    path = parquet_dir
    if layout == "partitioned":
        (parquet_dir / "year=2020").mkdir()
    elif layout == "nested":
        (parquet_dir / "more").mkdir()
    elif layout == "glob":
        path = parquet_dir / "part-*.parquet"
    elif layout == "missing":
        path = parquet_dir / "nothing-here"
    elif layout == "empty-file":
        (parquet_dir / "part-2.parquet").write_bytes(b"")
    elif layout == "summary-file":
        (parquet_dir / "_common_metadata").write_bytes(b"PAR1")
    else:
        for part in parquet_dir.glob("part-*"):
            part.unlink()
    assert direct.listed_files(spark, str(path)) is None


def test_a_plain_local_path_is_loaded_without_sparks_reader(spark, parquet_dir, monkeypatch):
    """The reader is built only when an error needs it: a clean load plans from the footers,
    and the null in ``y`` is then described from Spark's reader (empty, not text)."""
    built = []
    real = read.read_source

    def counted(*args, **kwargs):
        built.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(read, "read_source", counted)
    clean = read.load(spark, str(parquet_dir), "parquet", features=["count"])
    assert DIRECT in clean.blocks.toDebugString().decode() and built == []
    values, counts = collect(clean)
    assert sorted(values[:, 0].tolist()) == list(range(1200)) and counts.rows == 1200
    with_null = read.load(spark, str(parquet_dir), "parquet", label="y", features=["count"])
    _, counts = collect(with_null)
    with pytest.raises(InputError, match=r"column 'y' has 1 missing \(empty\) value\(s\) in 1200"):
        with_null.check(counts)
    assert built == [str(parquet_dir)]
    with pytest.raises(InputError, match=r"unknown label column 'z' \(columns: f1, f2, count"):
        read.load(spark, str(parquet_dir), "parquet", label="z")  # said by the Spark path
