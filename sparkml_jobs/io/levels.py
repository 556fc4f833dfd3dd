"""The levels scan of formulas: what each column is and which levels it takes, in one aggregation.

:func:`scan` explodes the scanned columns into (column, kind, value) rows and counts them in one
``groupBy`` in the JVM: distinct values with their counts, at most ``max_levels + 1`` per column
reaching the driver. :func:`levels_of` turns those values into sorted levels (patsy's order);
:func:`is_known` / :func:`matches` are the SQL tests of a cell against a level. The design built
from them is in :mod:`~.design`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkml_jobs.io import read, sources
from sparkml_jobs.regression import formula as fm

_TEXT, _NUMERIC, _NULL, _KNOWN = 0, 1, 2, 3  # what a cell is, in the scan
ALL, SNIFF = "all", "sniff"  # scan modes: every value a level / numbers counted, not listed


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


@dataclass(frozen=True, kw_only=True)
class ColumnScan:
    """One column as the scan saw it: row counts by kind and its text values (most frequent
    first, at most ``max_levels + 1`` of them; ``distinct`` counts them all)."""

    rows: int = 0
    nulls: int = 0
    numbers: int = 0
    known: int = 0
    text_rows: int = 0
    distinct: int = 0
    values: list[tuple[str, int]] = field(default_factory=list)


def scan(
    frame: DataFrame,
    modes: dict[str, str],
    max_levels: int,
    known: dict[str, tuple[str, list[fm.Level]]] | None = None,
) -> dict[str, ColumnScan]:
    """Every requested column's values and counts, in one Spark aggregation.

    ``modes[c]`` is :data:`ALL` (every value is a level) or :data:`SNIFF` (values that are
    numbers are only counted). Columns in ``known`` (kind, levels) count the known levels
    without listing them, so only unseen ones come back.
    """
    known = known or {}
    entries = []
    for j, name in enumerate(modes):
        raw = sources.col(name)
        kind = F.when(raw.isNull(), _NULL)
        if name in known:
            kind = kind.when(is_known(name, *known[name]), _KNOWN)
        elif modes[name] == SNIFF:
            kind = kind.when(read.as_double(name).isNotNull(), _NUMERIC)
        kind = kind.otherwise(_TEXT)
        value = F.when(kind == _TEXT, raw.cast("string"))
        entries.append(F.struct(F.lit(j).alias("j"), kind.alias("k"), value.alias("v")))
    cells = frame.select(F.explode(F.array(*entries)).alias("e")).select("e.j", "e.k", "e.v")
    counted = cells.groupBy("j", "k", "v").agg(F.count(F.lit(1)).alias("c"))
    group = Window.partitionBy("j", "k")
    ranked = counted.select(
        "j",
        "k",
        "v",
        "c",
        F.row_number().over(group.orderBy(F.desc("c"), "v")).alias("r"),
        F.count(F.lit(1)).over(group).alias("n"),
        F.sum("c").over(group).alias("total"),
    )
    rows = ranked.where(F.col("r") <= max_levels + 1).collect()  # bounded: the driver's share
    names = list(modes)
    found: dict[str, dict] = {n: {"values": []} for n in names}
    for row in sorted(rows, key=lambda r: (r["j"], r["k"], r["r"])):
        entry = found[names[row["j"]]]
        if row["k"] == _TEXT:
            entry["values"].append((row["v"], row["c"]))
            entry["distinct"], entry["text_rows"] = row["n"], row["total"]
        else:
            entry[{_NUMERIC: "numbers", _NULL: "nulls", _KNOWN: "known"}[row["k"]]] = row["total"]
    scans = {}
    for name, entry in found.items():
        counts = {k: int(entry.get(k, 0)) for k in ("nulls", "numbers", "known", "text_rows")}
        scans[name] = ColumnScan(
            rows=sum(counts.values()),
            distinct=int(entry.get("distinct", 0)),
            values=entry["values"],
            **counts,
        )
    return scans


def is_known(name: str, kind: str, levels: list[fm.Level]) -> Column:
    """Whether column ``name`` holds one of ``levels`` (compared as its ``kind``)."""
    return _key(name, kind).isin([_literal(kind, v) for v in levels])


def matches(name: str, kind: str, level: fm.Level) -> Column:
    """Whether column ``name`` holds ``level`` (a number compared as a number, a boolean by its
    text ``true``/``false`` in any case, text exactly)."""
    return _key(name, kind) == F.lit(_literal(kind, level))


def _key(name: str, kind: str) -> Column:
    if kind == "number":
        return read.as_double(name)
    if kind == "boolean":
        return F.lower(F.trim(sources.col(name).cast("string")))
    return sources.col(name).cast("string")


def _literal(kind: str, level: fm.Level):
    if kind == "number":
        return float(level)
    if kind == "boolean":
        return "true" if level else "false"
    return level


def levels_of(values: list[str], dtype: T.DataType, typed: bool) -> tuple[str, list[fm.Level]]:
    """(kind, sorted levels) of a categorical column from its distinct values as text.

    A typed text column (Parquet, a table) is text, as pandas reads it; a CSV column of numbers
    gives numeric levels (integers when every value is one) and of true/false booleans.
    """
    if isinstance(dtype, T.BooleanType):
        return "boolean", fm.sort_levels([v.lower() == "true" for v in values])
    if isinstance(dtype, T.NumericType):
        cast = int if isinstance(dtype, T.IntegralType) else float
        return "number", fm.sort_levels([cast(v) for v in values])
    if not typed and values and all(_NUMBER.fullmatch(v) for v in values):
        cast = int if all(_INTEGER.fullmatch(v) for v in values) else float
        return "number", fm.sort_levels([cast(v) for v in values])
    if not typed and values and all(v.strip().lower() in ("true", "false") for v in values):
        return "boolean", fm.sort_levels([v.strip().lower() == "true" for v in values])
    return "text", fm.sort_levels(values)


def has_categories(
    frame: DataFrame, columns: list[str], sample_rows: int = 1000, mixed_is_numeric: bool = False
) -> bool:
    """Whether any of ``columns`` is categorical: text or boolean by type, or — in a CSV, where
    every column is text — holding text that is not a number among its first ``sample_rows``
    rows (a cheap look; a column that shows text only later is reported as non-numeric).

    With ``mixed_is_numeric`` (``--handle-invalid skip``) a CSV column whose sample holds numbers
    is numeric whatever else it holds: its other cells are bad cells, their rows skipped."""
    types = {f.name: f.dataType for f in frame.schema.fields}
    columns = [c for c in columns if c in types]  # unknown names are reported by the reader
    if any(isinstance(types[c], T.BooleanType) for c in columns):
        return True
    text = [c for c in columns if isinstance(types[c], T.StringType)]
    if not text:
        return False
    if sources.corrupt_column(frame) is None:
        return True
    rows = frame.select(*[sources.col(c) for c in text]).limit(sample_rows).collect()
    for j in range(len(text)):
        values = [row[j] for row in rows if row[j] is not None and row[j].strip()]
        if mixed_is_numeric and any(_is_number(v) for v in values):
            continue
        if any(not _is_number(v) for v in values):
            return True
    return False


def _is_number(text: str) -> bool:
    """As Spark's cast to double reads text (numbers, NaN, inf, Infinity with a sign)."""
    word = text.strip().lower().lstrip("+-")
    return bool(_NUMBER.fullmatch(text)) or word in ("nan", "inf", "infinity")
