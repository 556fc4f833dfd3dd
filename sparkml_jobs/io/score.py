"""Scoring frames: every input column plus the model's output columns, in one ``mapInArrow``.

An input that already has a column named like an output (``prediction``, ``cluster``,
``distance``, any case) is refused: writing both would give a file with two columns of one name.
Inside, every column has a positional name (``_0``…, ``_x0``…, ``_o0``…) and the user's names come
back at the end, so any input column name works.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparkml_jobs.errors import InputError
from sparkml_jobs.io.read import as_double
from sparkml_jobs.io.sources import col


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
    lowered = {c.lower(): c for c in inputs}
    for name in outputs.fieldNames():
        if name.lower() in lowered:
            raise InputError(
                f"the input already has a column '{lowered[name.lower()]}', which the "
                f"predictions add as '{name}'; rename or drop that column first"
            )
    # positional names inside: pyspark's mapInArrow re-resolves every column by its name, which
    # fails for names holding a backtick; the user's names come back with toDF (no parsing)
    n_inputs, n_features = len(inputs), len(features)
    kept = [f"_{i}" for i in range(n_inputs)]
    typed = frame.select(
        *[col(c).alias(k) for c, k in zip(inputs, kept, strict=True)],
        *[as_double(c).alias(f"_x{j}") for j, c in enumerate(features)],
    )
    produced = [f"_o{i}" for i in range(len(outputs.fields))]

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            x = np.column_stack(
                [
                    batch.column(n_inputs + j).fill_null(np.nan).to_numpy(zero_copy_only=False)
                    for j in range(n_features)
                ]
            )
            scored = score(x)
            columns = [batch.column(i) for i in range(n_inputs)] + [
                pa.array(v) for v in scored.values()
            ]
            yield pa.RecordBatch.from_arrays(columns, kept + produced)

    fields = [
        T.StructField(k, f.dataType, f.nullable)
        for k, f in zip(kept, frame.schema.fields, strict=True)
    ] + [
        T.StructField(o, f.dataType, f.nullable)
        for o, f in zip(produced, outputs.fields, strict=True)
    ]
    return typed.mapInArrow(apply, T.StructType(fields)).toDF(*inputs, *outputs.fieldNames())
