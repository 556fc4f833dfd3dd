"""Pure pyarrow: Parquet files on a local file system read straight into blocks, no JVM decode.

Spark's Parquet reader decodes in the JVM and hands Arrow batches to Python over a socket; for
numeric columns that is most of a load (2M × 21 doubles, local[2]: ~9 s cold against ~3 s read
here; 10,000 × 2,048: ~9 s against ~1.3 s). When every input file is a local file (``file:``,
or a ``viewfs://`` mount of one, as the Hadoop ``FileSystem`` resolves it) the tasks read the
files themselves with pyarrow: :func:`plan` reads the footers on the driver and deals the row
groups out to tasks; :func:`read_task` runs in a task and yields blocks with the same validation
counts as the JVM path (missing cells → NaN, counted as nulls; NaN/±inf counted as non-finite).

:func:`plan` returns a reason instead of a plan whenever Spark's reader could differ: a column
that is text (Spark's ``try_cast`` decides what is a number), missing from a file (a partition
column or an evolved schema), nested or named with a dot, or a footer pyarrow cannot read.
No Spark here: the plan is plain data and :func:`read_task` runs on the executors.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sparkml_jobs.io.blocks import Block

READ_BYTES = 16 * 2**20  # decoded bytes per read of a row group (columns are read in slices)
RELEASE_BYTES = 256 * 2**20  # decoded bytes between two returns of freed memory to the system
SNAP_SLACK = 1.25  # a task may hold this multiple of the mean rows when cuts snap to row groups


@dataclass(frozen=True, slots=True)
class Unit:
    """Rows ``[start, stop)`` of row group ``group`` of ``path``."""

    path: str
    group: int
    start: int
    stop: int
    group_rows: int


@dataclass(frozen=True, slots=True)
class Task:
    """What one task reads: its units in order, and the file's own name of every column."""

    units: tuple[Unit, ...]
    names: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Footer:
    """What a plan needs of one file's footer: its schema, the rows of each row group and the
    compressed bytes of each column chunk (row groups × leaf columns), by leaf path."""

    schema: pa.Schema
    rows: np.ndarray
    sizes: np.ndarray
    leaves: dict[str, int]


@dataclass(frozen=True, slots=True)
class Plan:
    tasks: tuple[Task, ...]
    rows: int
    files: int


def _numeric(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    )


def _file_names(
    path: str, schema: pa.Schema, columns: list[str], case_sensitive: bool
) -> tuple[str, ...] | str:
    """The file's name of every column, or why this file must go through Spark's reader."""
    by_name = {f.name if case_sensitive else f.name.lower(): f for f in schema}
    if len(by_name) != len(schema):
        return f"{path}: column names differ only in case"
    names = []
    for column in columns:
        field = by_name.get(column if case_sensitive else column.lower())
        if field is None:
            return f"{path}: no column '{column}' in the file (a partition column?)"
        if not _numeric(field.type):
            return f"{path}: column '{column}' is {field.type}"
        if "." in field.name:
            return f"{path}: column '{column}' has a dot in its name"
        names.append(field.name)
    return tuple(names)


def column_types(path: str) -> dict[str, pa.DataType] | None:
    """The top-level columns of a Parquet file and their types, from its footer, in the file's
    order (``None``: a footer pyarrow cannot read; Spark's reader then says what is wrong)."""
    try:
        schema = pq.read_schema(path)
    except Exception:  # not Parquet to pyarrow, encrypted, unreadable
        return None
    return {field.name: field.type for field in schema}


def plan(
    files: list[str],
    columns: list[str],
    *,
    case_sensitive: bool,
    partitions: int,
    max_partition_bytes: int,
    open_cost: int,
    exact: bool = False,
) -> Plan | str:
    """Deal the row groups of ``files`` (local paths, in Spark's order) out to tasks.

    The number of tasks follows Spark's own split rule (``spark.sql.files.maxPartitionBytes``,
    ``openCostInBytes``, at least ``partitions``) on the compressed bytes of the selected
    columns, rounded up to a multiple of ``partitions`` (the task slots) unless ``exact``: the
    cached blocks are re-read by every pass of an iterative job, and a short last wave leaves
    slots idle in each (500k × 64 in 4 row groups: Spark's 3 splits held 131k / 250k / 119k
    rows, so one slot did twice the other's work every k-means iteration). Tasks get contiguous
    row ranges of about equal size; whole row groups when there are at least as many row groups
    as tasks and snapping keeps every range within :data:`SNAP_SLACK` of the mean, else row
    groups are cut (each task then decodes its group's columns and keeps its rows). Returns a
    one-line reason when the files need Spark.
    """
    footers = _footers(files)
    if isinstance(footers, str):
        return footers
    groups: list[tuple[str, int, int]] = []
    names: dict[str, tuple[str, ...]] = {}
    size = 0
    for path, footer in zip(files, footers, strict=True):
        found = _file_names(path, footer.schema, columns, case_sensitive)
        if isinstance(found, str):
            return found
        names[path] = found
        picked = [footer.leaves[name] for name in found]
        size += open_cost + int(footer.sizes[:, picked].sum())
        groups.extend((path, g, int(n)) for g, n in enumerate(footer.rows) if n)
    rows = sum(n for _, _, n in groups)
    split = min(max_partition_bytes, max(open_cost, size // max(1, partitions)))
    needed = -(-size // max(1, split))
    n_tasks = max(1, partitions if exact else partitions * -(-needed // max(1, partitions)))
    bounds = _bounds(groups, rows, n_tasks)
    tasks = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        units = tuple(_units(groups, lo, hi))
        tasks.append(Task(units, {u.path: names[u.path] for u in units}))
    return Plan(tuple(tasks), rows, len(files))


# the footers of the last plan's files: a regroup re-plans the same files at once, and a wide
# footer parses into far more than it holds (20 row groups × 8,193 columns: 19 MB on disk, 165 MB
# parsed); one plan's worth, so a session that reads many datasets keeps only its last
_KEPT: dict[tuple[str, int, int], Footer] = {}


def _footers(files: list[str]) -> list[Footer] | str:
    """The :class:`Footer` of every file (from :data:`_KEPT` when the file is unchanged), or why
    one cannot be read; the parsed footers are freed and their memory handed back."""
    footers, kept = [], {}
    for path in files:
        try:
            stat = os.stat(path)
            key = (path, stat.st_size, stat.st_mtime_ns)
            footer = _KEPT.get(key) or _read_footer(path)
        except Exception as exc:  # not Parquet to pyarrow, encrypted, unreadable
            return f"{path}: pyarrow cannot read the footer ({type(exc).__name__})"
        footers.append(footer)
        kept[key] = footer
    _KEPT.clear()
    _KEPT.update(kept)
    release_memory()
    return footers


def _read_footer(path: str) -> Footer:
    # not ``metadata.schema``: it and the metadata refer to each other, so the parsed footer
    # would live on until the garbage collector runs (at 8,193 columns, 140 MB in the driver)
    with pq.ParquetFile(path) as file:
        meta = file.metadata
        sizes = np.zeros((meta.num_row_groups, meta.num_columns), dtype=np.int64)
        rows = np.zeros(meta.num_row_groups, dtype=np.int64)
        leaves: dict[str, int] = {}
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            rows[g] = group.num_rows
            sizes[g] = [group.column(c).total_compressed_size for c in range(group.num_columns)]
            if not leaves:
                leaves = {group.column(c).path_in_schema: c for c in range(group.num_columns)}
        return Footer(file.schema_arrow, rows, sizes, leaves)


def _bounds(groups: list[tuple[str, int, int]], rows: int, n_tasks: int) -> list[int]:
    """Global row indices cutting the data into ``n_tasks`` contiguous, near-equal ranges;
    snapped to row-group boundaries when there are enough row groups and no range would be
    empty."""
    targets = [round(i * rows / n_tasks) for i in range(n_tasks + 1)]
    if len(groups) < n_tasks:
        return targets
    edges = np.cumsum([0] + [n for _, _, n in groups])
    snapped = [int(edges[np.abs(edges - t).argmin()]) for t in targets]
    # uneven groups can snap two cuts together, or leave one task far more rows than the rest:
    # then cut inside groups, so n_tasks stay n_tasks and the tasks stay even
    even = max(np.diff(snapped)) <= SNAP_SLACK * rows / n_tasks
    return snapped if len(set(snapped)) == len(snapped) and even else targets


def _units(groups: list[tuple[str, int, int]], lo: int, hi: int) -> Iterator[Unit]:
    offset = 0
    for path, g, n in groups:
        start, stop = max(lo - offset, 0), min(hi - offset, n)
        if start < stop:
            yield Unit(path, g, start, stop, n)
        offset += n


def read_task(task: Task, block_rows: int) -> Iterator[Block]:
    """The blocks of one task: at most ``block_rows`` rows each, never across row groups.

    Every :data:`RELEASE_BYTES` of decoded blocks, and at the end of a task that decoded more,
    the freed memory of the reads goes back to the system (:func:`release_memory`); smaller
    tasks (a narrow file re-read every k-means iteration) never pay for it."""
    opened: dict[str, pq.ParquetFile] = {}
    since, total = 0, 0
    for unit in task.units:
        if unit.path not in opened:
            opened.clear()  # one file open at a time
            opened[unit.path] = pq.ParquetFile(unit.path, pre_buffer=True)
        for block in _read_unit(opened[unit.path], unit, task.names[unit.path], block_rows):
            since += block.values.nbytes
            yield block
        if since >= RELEASE_BYTES:
            total, since = total + since, 0
            release_memory()
    opened.clear()  # the parsed footer goes too (a wide one is ~165 MB), before the release
    if total and since:
        release_memory()


def _read_unit(
    file: pq.ParquetFile, unit: Unit, names: tuple[str, ...], block_rows: int
) -> Iterator[Block]:
    rows, width = unit.stop - unit.start, len(names)
    cuts = list(range(0, rows, block_rows)) + [rows]
    spans = list(zip(cuts[:-1], cuts[1:], strict=True))
    values = [np.empty((b - a, width), dtype=np.float64) for a, b in spans]
    nulls = [np.zeros(width, dtype=np.int64) for _ in values]
    step = max(1, READ_BYTES // (8 * unit.group_rows))  # columns per read
    for j0 in range(0, width, step):
        chunk = names[j0 : j0 + step]
        table = file.read_row_group(unit.group, columns=list(chunk))
        columns = [_as_float64(table.column(name), unit.start, rows) for name in chunk]
        for i, (a, b) in enumerate(spans):
            np.stack([v[a:b] for v, _ in columns], axis=1, out=values[i][:, j0 : j0 + len(chunk)])
            for j, (_, missing) in enumerate(columns):
                if missing is not None:
                    nulls[i][j0 + j] = int(missing[a:b].sum())
        del table, columns
    for block, missing in zip(values, nulls, strict=True):
        nonfinite = (~np.isfinite(block)).sum(axis=0) - missing
        yield Block(values=block, nulls=missing, nonfinite=nonfinite)


def _libc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc; other platforms: nothing to trim
    except (OSError, AttributeError):
        return None


_TRIM = _libc_trim()


def release_memory() -> None:
    """Hand freed memory back to the system: Arrow's pool (mimalloc) and glibc's heap keep what a
    decoded slice used. Measured on one task of 20,000 × 8,193: 444 MB resident after its blocks
    were freed, 89 MB after this; a Python worker lives on across tasks and passes, so without
    it every worker carries ~350 MB of freed reads into the next pass. ~2 ms a call."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


def _as_float64(
    column: pa.ChunkedArray, start: int, rows: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows ``[start, start + rows)`` of a column as float64 (missing → NaN) and its missing-cell
    mask (``None``: none). A float64 column without nulls is a view on Arrow's buffer: converting
    8,193 columns one ``to_numpy`` at a time cost more than decoding them."""
    column = column.slice(start, rows)
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if array.type == pa.float64() and array.null_count == 0:
        data = array.buffers()[1]
        return np.frombuffer(data, np.float64, count=len(array), offset=8 * array.offset), None
    missing = np.asarray(array.is_null()) if array.null_count else None
    array = pc.cast(array, pa.float64(), safe=False)
    if missing is not None:
        array = array.fill_null(np.nan)
    return array.to_numpy(zero_copy_only=False), missing
