"""Scoring frames: every input column plus the model's output columns, in one ``mapInArrow``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparkml_jobs.errors import InputError
from sparkml_jobs.io.read import as_double


def score_frame(frame: DataFrame, features: list[str], score, outputs: T.StructType) -> DataFrame:
    """All columns of ``frame`` plus ``outputs``, in one ``mapInArrow`` (row order kept).

    The feature columns are cast to double in the JVM; ``score(x)`` gets each Arrow batch's
    (rows, n_features) array and returns a dict of output column name → values.
    """
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InputError(
            "input lacks the model's feature column(s) "
            f"{', '.join(repr(c) for c in missing)} (columns: {', '.join(frame.columns)})"
        )
    inputs = frame.columns
    hidden = [f"__x{j}" for j in range(len(features))]
    typed = frame.select(*inputs, *[as_double(c).alias(f"__x{j}") for j, c in enumerate(features)])

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            x = np.column_stack(
                [batch.column(h).fill_null(np.nan).to_numpy(zero_copy_only=False) for h in hidden]
            )
            scored = score(x)
            columns = [batch.column(c) for c in inputs] + [pa.array(v) for v in scored.values()]
            yield pa.RecordBatch.from_arrays(columns, inputs + list(scored))

    return typed.mapInArrow(apply, T.StructType(frame.schema.fields + outputs.fields))
