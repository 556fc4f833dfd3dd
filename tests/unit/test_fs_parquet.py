"""Parquet read by pyarrow in the tasks, without Spark: the plan and the blocks against
``pyarrow.parquet.read_table`` + numpy as the oracle."""

from __future__ import annotations

import decimal
import gc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkml_jobs.io import fs_parquet as P

SIZES = {"max_partition_bytes": 128 * 2**20, "open_cost": 4 * 2**20}


def write(path, columns: dict, row_group_size: int):
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return str(path)


def oracle(paths, columns):
    """All rows of every file, selected columns as float64 (missing → NaN), in order."""
    parts = []
    for path in paths:
        table = pq.read_table(path, columns=columns)
        parts.append(
            np.column_stack(
                [table.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False) for c in columns]
            )
        )
    return np.vstack(parts)


def read_all(plan, block_rows):
    return [list(P.read_task(task, block_rows)) for task in plan.tasks]


def numeric_file(path, rng, rows=1000, row_group_size=128):
    x = rng.normal(size=(rows, 3))
    x[5, 1] = np.nan
    x[7, 2] = np.inf
    nullable = pa.array([None if i % 97 == 0 else float(i) for i in range(rows)])
    return write(
        path,
        {
            "a": x[:, 0],
            "B": x[:, 1],
            "c": x[:, 2],
            "n": nullable,
            "i": pa.array(np.arange(rows, dtype=np.int32)),
            "flag": pa.array([i % 3 == 0 for i in range(rows)]),
            "price": pa.array([decimal.Decimal(i) / 4 for i in range(rows)], pa.decimal128(12, 2)),
        },
        row_group_size,
    )


COLUMNS = ["a", "B", "c", "n", "i", "flag", "price"]


@pytest.mark.parametrize(("tasks", "block_rows"), [(1, 100_000), (2, 64), (4, 300), (13, 50)])
def test_blocks_equal_the_whole_table_with_counts(tmp_path, rng, tasks, block_rows):
    paths = [numeric_file(tmp_path / f"part-{i}.parquet", rng) for i in range(2)]
    plan = P.plan(paths, COLUMNS, case_sensitive=True, partitions=tasks, exact=True, **SIZES)
    assert isinstance(plan, P.Plan) and len(plan.tasks) == tasks and plan.rows == 2000
    blocks = [b for task in read_all(plan, block_rows) for b in task]
    assert all(len(b.values) <= block_rows for b in blocks)
    values = np.vstack([b.values for b in blocks])
    np.testing.assert_array_equal(values, oracle(paths, COLUMNS))  # NaN == NaN here
    nulls = sum(b.nulls for b in blocks)
    nonfinite = sum(b.nonfinite for b in blocks)
    assert nulls.tolist() == [0, 0, 0, 2 * 11, 0, 0, 0]  # rows 0, 97, …, 970 of each file
    assert nonfinite.tolist() == [0, 2, 2, 0, 0, 0, 0]


def test_tasks_are_contiguous_and_balanced(tmp_path, rng):
    # 8 groups of 128 rows (the last 104) over 3 tasks: whole groups, as even as they come
    path = numeric_file(tmp_path / "one.parquet", rng, rows=1000, row_group_size=128)
    plan = P.plan([path], ["a"], case_sensitive=True, partitions=3, exact=True, **SIZES)
    spans = [[(u.group, u.start, u.stop) for u in task.units] for task in plan.tasks]
    assert all(start == 0 for task in spans for _, start, _ in task)  # no group is cut
    order = [g for task in spans for g, _, _ in task]
    assert order == list(range(8))
    sizes = [sum(stop - start for _, start, stop in task) for task in spans]
    assert sum(sizes) == 1000 and max(sizes) - min(sizes) <= 128


def test_one_row_group_is_cut_across_tasks_and_read_in_column_slices(tmp_path, rng, monkeypatch):
    """Fewer row groups than tasks: rows are cut; a wide group is decoded a few columns at a
    time (``READ_BYTES``), and still gives the same values."""
    x = rng.normal(size=(501, 40))
    path = write(tmp_path / "wide.parquet", {f"x{j}": x[:, j] for j in range(40)}, 10_000)
    monkeypatch.setattr(P, "READ_BYTES", 8 * 501 * 7)  # 7 columns per read
    names = [f"x{j}" for j in range(40)]
    plan = P.plan([path], names, case_sensitive=True, partitions=3, exact=True, **SIZES)
    assert [len(t.units) for t in plan.tasks] == [1, 1, 1]
    assert [(u.start, u.stop) for t in plan.tasks for u in t.units] == [
        (0, 167),
        (167, 334),
        (334, 501),
    ]
    blocks = [b for task in read_all(plan, 60) for b in task]
    np.testing.assert_array_equal(np.vstack([b.values for b in blocks]), x)


def test_task_count_follows_sparks_split_rule(tmp_path, rng):
    path = numeric_file(tmp_path / "one.parquet", rng, rows=4000, row_group_size=100)
    size = sum(
        pq.read_metadata(path).row_group(g).column(0).total_compressed_size for g in range(40)
    )
    plan = P.plan(
        [path],
        ["a"],
        case_sensitive=True,
        partitions=2,
        max_partition_bytes=(size + 4) // 4,
        open_cost=1,
    )
    assert len(plan.tasks) == 4  # ceil(bytes / split), more than the 2 slots
    few = P.plan([path], ["a"], case_sensitive=True, partitions=2, **SIZES)
    assert len(few.tasks) == 2  # small data: one task per slot


def test_task_count_is_a_multiple_of_the_slots(tmp_path, rng):
    """Spark's rule asks for 3 splits; on 2 slots that is a short second wave in every pass of
    an iterative job, so the plan deals the rows into 4 even tasks instead."""
    path = numeric_file(tmp_path / "one.parquet", rng, rows=4000, row_group_size=100)
    meta = pq.read_metadata(path)
    total = 1 + sum(meta.row_group(g).column(0).total_compressed_size for g in range(40))
    split = (total + 2) // 3
    assert -(-total // split) == 3  # what Spark's split rule alone gives
    plan = P.plan(
        [path], ["a"], case_sensitive=True, partitions=2, max_partition_bytes=split, open_cost=1
    )
    sizes = [sum(u.stop - u.start for u in t.units) for t in plan.tasks]
    assert sizes == [1000, 1000, 1000, 1000]
    exact = P.plan([path], ["a"], case_sensitive=True, partitions=3, exact=True, **SIZES)
    assert len(exact.tasks) == 3  # asked for by the caller: kept


def test_case_insensitive_names_resolve_to_the_files_own(tmp_path, rng):
    path = numeric_file(tmp_path / "one.parquet", rng)
    plan = P.plan([path], ["A", "b"], case_sensitive=False, partitions=1, **SIZES)
    assert plan.tasks[0].names[path] == ("a", "B")
    refused = P.plan([path], ["A"], case_sensitive=True, partitions=1, **SIZES)
    assert refused == f"{path}: no column 'A' in the file (a partition column?)"


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"a": [1.0], "s": ["1.5"]}, "column 's' is string"),
        ({"a": [1.0], "s.t": [2.0]}, "column 's.t' has a dot in its name"),
        ({"a": [1.0], "s": pa.array([[1.0]])}, "column 's' is list<element: double>"),
    ],
)
def test_what_spark_must_read_is_refused_with_a_reason(tmp_path, columns, expected):
    path = write(tmp_path / "x.parquet", columns, 10)
    second = [c for c in columns if c != "a"][0]
    reason = P.plan([path], ["a", second], case_sensitive=True, partitions=1, **SIZES)
    assert reason == f"{path}: {expected}"


def test_a_file_missing_a_column_or_not_parquet_is_refused(tmp_path, rng):
    good = numeric_file(tmp_path / "good.parquet", rng)
    other = write(tmp_path / "other.parquet", {"a": [1.0]}, 10)
    assert "no column 'c'" in P.plan(
        [good, other], ["a", "c"], case_sensitive=True, partitions=1, **SIZES
    )
    text = tmp_path / "text.parquet"
    text.write_text("not parquet\n")
    reason = P.plan([str(text)], ["a"], case_sensitive=True, partitions=1, **SIZES)
    assert reason.startswith(f"{text}: pyarrow cannot read the footer")


def test_empty_files_plan_no_rows(tmp_path):
    path = write(tmp_path / "empty.parquet", {"a": pa.array([], pa.float64())}, 10)
    plan = P.plan([path], ["a"], case_sensitive=True, partitions=2, **SIZES)
    assert plan.rows == 0 and read_all(plan, 10) == [[], []]


def test_uneven_row_groups_still_give_the_tasks_asked_for(tmp_path, rng):
    """One big group and two small ones over 3 tasks: snapping would merge two cuts, so the
    big group is cut instead and every task gets rows."""
    path = tmp_path / "uneven.parquet"
    with pq.ParquetWriter(path, pa.schema([("a", pa.float64())])) as writer:
        for n in (900, 50, 50):
            writer.write_table(pa.table({"a": rng.normal(size=n)}))
    plan = P.plan([str(path)], ["a"], case_sensitive=True, partitions=3, exact=True, **SIZES)
    sizes = [sum(u.stop - u.start for u in t.units) for t in plan.tasks]
    assert len(plan.tasks) == 3 and min(sizes) > 0 and sum(sizes) == 1000
    blocks = [b for task in read_all(plan, 1000) for b in task]
    np.testing.assert_array_equal(
        np.vstack([b.values for b in blocks])[:, 0], oracle([str(path)], ["a"])[:, 0]
    )


def test_snapping_that_would_unbalance_the_tasks_cuts_groups_instead(tmp_path, rng):
    """4 groups (131/119/131/119 rows) over 3 tasks: snapped cuts give 131/250/119 rows (one
    task twice another's work in every pass), so the groups are cut into even ranges."""
    path = tmp_path / "four.parquet"
    x = rng.normal(size=500)
    with pq.ParquetWriter(path, pa.schema([("a", pa.float64())])) as writer:
        start = 0
        for n in (131, 119, 131, 119):
            writer.write_table(pa.table({"a": x[start : start + n]}))
            start += n
    plan = P.plan([str(path)], ["a"], case_sensitive=True, partitions=3, exact=True, **SIZES)
    sizes = [sum(u.stop - u.start for u in t.units) for t in plan.tasks]
    assert sizes == [167, 166, 167]
    blocks = [b for task in read_all(plan, 1000) for b in task]
    np.testing.assert_array_equal(np.vstack([b.values for b in blocks])[:, 0], x)


def test_a_large_task_returns_freed_memory_every_release_bytes(tmp_path, rng, monkeypatch):
    """A task that decodes more than RELEASE_BYTES hands its freed reads back to the system
    after every RELEASE_BYTES and once at its end; a smaller task never pays for it. The blocks
    are the same either way."""
    path = numeric_file(tmp_path / "t.parquet", rng, rows=1000, row_group_size=100)  # 10 groups
    plan = P.plan([path], COLUMNS, case_sensitive=True, partitions=1, **SIZES)
    unit_bytes = 100 * len(COLUMNS) * 8
    calls = []
    monkeypatch.setattr(P, "release_memory", lambda: calls.append(1))
    monkeypatch.setattr(P, "RELEASE_BYTES", 3 * unit_bytes)
    got = np.vstack([b.values for b in P.read_task(plan.tasks[0], 64)])
    assert len(calls) == 3 + 1  # after groups 3, 6 and 9, and after the tenth at the end
    np.testing.assert_array_equal(got, oracle([path], COLUMNS))
    calls.clear()
    monkeypatch.setattr(P, "RELEASE_BYTES", 11 * unit_bytes)
    list(P.read_task(plan.tasks[0], 64))
    assert calls == []
    monkeypatch.undo()
    P.release_memory()  # the real one runs here (glibc and Arrow's pool), whatever the platform


def _live_parquet_objects() -> int:
    gc.collect()
    kinds = (pq.FileMetaData, pq.ParquetFile, pq.ParquetSchema)
    return sum(isinstance(o, kinds) for o in gc.get_objects())


def test_a_re_plan_of_the_same_files_reads_no_footer_again(tmp_path, rng, monkeypatch):
    """A regroup plans the same files again: their footers are kept from the last plan (and
    re-read when a file changed), and the plan equals one made from fresh footers."""
    one = numeric_file(tmp_path / "one.parquet", rng, rows=400, row_group_size=100)
    two = numeric_file(tmp_path / "two.parquet", rng, rows=300, row_group_size=100)
    reads = []
    real = P._read_footer
    monkeypatch.setattr(P, "_read_footer", lambda path: reads.append(path) or real(path))
    first = P.plan([one, two], COLUMNS, case_sensitive=True, partitions=4, **SIZES)
    again = P.plan([one, two], COLUMNS, case_sensitive=True, partitions=2, **SIZES)
    assert reads == [one, two]
    numeric_file(tmp_path / "two.parquet", np.random.default_rng(9), rows=500, row_group_size=250)
    changed = P.plan([one, two], COLUMNS, case_sensitive=True, partitions=2, **SIZES)
    assert reads == [one, two, two]
    assert changed.rows == 900 and first.rows == again.rows == 700
    monkeypatch.undo()
    P._KEPT.clear()
    fresh = P.plan([one, two], COLUMNS, case_sensitive=True, partitions=2, **SIZES)
    assert fresh == changed
    assert set(P._KEPT) == {k for k in P._KEPT if k[0] in (one, two)}  # the last plan's only


def test_the_plan_and_a_task_leave_no_parsed_footer_behind(tmp_path, rng):
    """The parsed footer is freed when the plan or the task is done, without waiting for the
    garbage collector (a wide one is ~165 MB): no reference cycle holds it."""
    path = numeric_file(tmp_path / "t.parquet", rng, rows=1000, row_group_size=100)
    before = _live_parquet_objects()
    gc.disable()
    try:
        P._KEPT.clear()
        plan = P.plan([path], COLUMNS, case_sensitive=True, partitions=1, **SIZES)
        blocks = list(P.read_task(plan.tasks[0], 64))
        kinds = (pq.FileMetaData, pq.ParquetFile, pq.ParquetSchema)
        alive = sum(isinstance(o, kinds) for o in gc.get_objects())
    finally:
        gc.enable()
    assert alive == before
    np.testing.assert_array_equal(np.vstack([b.values for b in blocks]), oracle([path], COLUMNS))
