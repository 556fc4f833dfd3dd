"""The bad-row policy: ``--handle-invalid error|skip`` (MLlib's name) and ``--rejects PATH``.

``error`` (the default) keeps today's contract: the first pass counts every bad cell and the job
stops with one line naming the column. ``skip`` decides in the JVM, per row, whether any of the
columns a job uses is missing, non-numeric, NaN/±inf, or whether the row was ragged; such rows
are dropped before the blocks are built, counted per column in one aggregation, and with
``--rejects`` written as read (every input column as text) plus a ``_reason`` column, through the
same atomic output as every other result. Nothing is lost silently: rows read = rows used + rows
rejected, reported in the log and in ``--metrics-json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkml_jobs.io import persist
from sparkml_jobs.io.read import as_double
from sparkml_jobs.io.sources import col, corrupt_column, data_columns, fresh_name

log = logging.getLogger(__name__)

POLICIES = ("error", "skip")
REASON = "_reason"


@dataclass(frozen=True)
class RowAccount:
    """How many rows were read, used and rejected, and why (per column; a row may count twice)."""

    rows_read: int
    rows_rejected: int
    by_column: dict[str, int] = field(default_factory=dict)
    ragged: int = 0
    rejects: str | None = None

    @property
    def rows_used(self) -> int:
        return self.rows_read - self.rows_rejected

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "rejected_by_column": dict(self.by_column),
            "rejected_ragged": self.ragged,
            "rejects": self.rejects,
        }

    def line(self) -> str:
        causes = [f"{name}: {count}" for name, count in self.by_column.items() if count]
        causes += [f"ragged: {self.ragged}"] if self.ragged else []
        detail = f" ({', '.join(causes)})" if causes else ""
        return (
            f"read {self.rows_read} rows: used {self.rows_used}, "
            f"rejected {self.rows_rejected}{detail}"
        )


def _cell_problem(name: str, numeric: bool) -> tuple[Column, Column]:
    """(is the cell bad, why) for one column the job uses."""
    raw = col(name)
    if not numeric:  # a category: only a missing value is bad
        return raw.isNull(), F.lit(f"column '{name}': missing")
    typed = as_double(name)
    empty = raw.isNull() | (F.trim(raw.cast("string")) == "")
    nonfinite = F.isnan(typed) | (F.abs(typed) == float("inf"))
    bad = typed.isNull() | nonfinite
    why = (
        F.when(empty, F.lit(f"column '{name}': missing"))
        .when(typed.isNull(), F.concat(F.lit(f"column '{name}': non-numeric "), raw.cast("string")))
        .otherwise(F.lit(f"column '{name}': NaN or infinite"))
    )
    return bad, why


def skip_invalid(
    frame: DataFrame,
    source: str,
    columns: list[str],
    *,
    categorical: frozenset[str] = frozenset(),
    rejects: str | None = None,
    overwrite: bool = False,
) -> tuple[DataFrame, RowAccount]:
    """The rows of ``frame`` whose ``columns`` are all usable, and the account of the others.

    ``categorical`` columns are text: only a missing value rejects a row. The rejected rows go to
    ``rejects`` (Parquet, published atomically) when given.
    """
    problems = {name: _cell_problem(name, name not in categorical) for name in columns}
    corrupt = corrupt_column(frame)
    flags = [bad for bad, _ in problems.values()]
    reasons = [F.when(bad, why) for bad, why in problems.values()]
    if corrupt is not None:
        ragged = col(corrupt).isNotNull()
        flags.append(ragged)
        reasons.append(F.when(ragged, F.lit("ragged row (field count differs from the header)")))
    any_bad = reduce(lambda a, b: a | b, flags)
    sums = [F.sum(bad.cast("int")).alias(f"_b{j}") for j, bad in enumerate(flags)]
    row = frame.agg(F.count(F.lit(1)).alias("_n"), F.sum(any_bad.cast("int")).alias("_bad"), *sums)
    row = row.first()
    by_column = {name: int(row[f"_b{j}"] or 0) for j, name in enumerate(columns)}
    account = RowAccount(
        rows_read=int(row["_n"]),
        rows_rejected=int(row["_bad"] or 0),
        by_column=by_column,
        ragged=int(row[f"_b{len(columns)}"] or 0) if corrupt is not None else 0,
        rejects=rejects,
    )
    if rejects:
        shown = data_columns(frame)
        reason = fresh_name(REASON, shown)
        rejected = frame.where(any_bad).select(
            *[col(c).cast("string").alias(c) for c in shown],
            *([col(corrupt).alias(fresh_name("_record", shown))] if corrupt else []),
            F.concat_ws("; ", *reasons).alias(reason),
        )
        with persist.spark_output(rejects, overwrite) as tmp:
            rejected.write.parquet(tmp)
    log.info("%s: %s", source, account.line())
    return frame.where(~any_bad), account
