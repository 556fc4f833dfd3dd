"""Reading sources into an RDD of numpy float64 blocks, with validation counted on the way.

Data flow: Spark's own reader (CSV / Parquet / LIBSVM) → DataFrame → selected columns cast to
double in the JVM (``try_cast``: a non-numeric cell becomes null, never an exception) →
``mapInArrow`` packs Arrow batches into one binary value per block → ``np.frombuffer`` on the RDD
side. Every block carries its own validation counts (nulls, NaN/inf, ragged rows per column), so the
first pass over the data that computes anything also validates it, at no extra read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark import RDD
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkml_jobs.errors import InputError
from sparkml_jobs.io.blocks import (
    BLOCK_BYTES,
    DEFAULT_BLOCK_ROWS,
    RAGGED,
    Block,
    Counts,
    batches_to_block,
    decode_block,
    encode_block,
    group_batches,
)
from sparkml_jobs.io.dataset import BlockData, check_counts

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "libsvm")
TABLE = "table"  # the pseudo-format of --input-table: the source is a catalog table name
CORRUPT = "_corrupt_record"


def _arrow_batches_to_blocks(columns: list[str], has_ragged: bool, block_rows: int):
    """The ``mapInArrow`` function of the portable path: batches → one packed binary per block."""

    def convert(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for group in group_batches(batches, block_rows):
            block = batches_to_block(group, columns, has_ragged)
            payload = encode_block(block.values, block.nulls, block.nonfinite, block.ragged)
            yield pa.RecordBatch.from_arrays([pa.array([payload], type=pa.binary())], ["block"])

    return convert


def _arrow_rdd_blocks(selected: DataFrame, columns: list[str], has_ragged: bool, block_rows: int):
    """The fast path: the JVM serialises Arrow record batches straight into a Python RDD.

    ``Dataset.toArrowBatchRdd`` (what ``toPandas`` uses internally) hands each partition's Arrow
    batches to Python as raw bytes — no ``mapInArrow`` worker hop, no pickled ``Row`` per block.
    Measured on 2M×21 Parquet, local[2]: ~3–7 s to numpy blocks, against ~21 s through
    ``mapInArrow`` + ``DataFrame.rdd``. It is an internal Spark API, so :func:`to_blocks` falls
    back to the portable path when it is missing. Returns ``None`` then.
    """
    from pyspark.serializers import NoOpSerializer

    conf = selected.sparkSession.conf
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = conf.get(key)
    # the batch size is read when the RDD is built: keep wide batches within the block budget
    conf.set(key, str(max(1, min(int(previous), block_rows))))
    try:
        jrdd = selected._jdf.toArrowBatchRdd().toJavaRDD()
    except Exception:  # py4j: no such method in this Spark version
        return None
    finally:
        conf.set(key, previous)
    fields = [(c, pa.float64()) for c in columns] + ([(RAGGED, pa.int32())] if has_ragged else [])
    schema = pa.schema(fields)

    def to_blocks(payloads: Iterator[bytes]) -> Iterator[Block]:
        batches = (pa.ipc.read_record_batch(pa.py_buffer(p), schema) for p in payloads)
        for group in group_batches(batches, block_rows):
            yield batches_to_block(group, columns, has_ragged)

    return RDD(jrdd, selected.sparkSession.sparkContext, NoOpSerializer()).mapPartitions(to_blocks)


# --------------------------------------------------------------------------- reading sources


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` (local or any Hadoop file system URI, globs allowed) exists."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = fs.globStatus(hadoop_path)
    return statuses is not None and len(statuses) > 0


def read_source(
    spark: SparkSession, path: str, fmt: str, *, delimiter: str = ",", n_features: int | None = None
) -> DataFrame:
    """Read ``path`` with Spark's reader for ``fmt``; CSV columns arrive as strings.

    A CSV gets an extra ``_corrupt_record`` column so ragged rows are counted, not silently padded.
    """
    if fmt == TABLE:
        return read_table(spark, path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    if not path_exists(spark, path):
        raise InputError(f"input path not found: {path}")
    try:
        if fmt == "csv":
            header = spark.read.option("header", True).option("sep", delimiter).csv(path)
            if not header.columns:
                raise InputError(f"{path}: empty input (no header, no rows)")
            schema = T.StructType(
                [T.StructField(c, T.StringType()) for c in header.columns]
                + [T.StructField(CORRUPT, T.StringType())]
            )
            return (
                spark.read.option("header", True)
                .option("sep", delimiter)
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT)
                .schema(schema)
                .csv(path)
            )
        if fmt == "parquet":
            return spark.read.parquet(path)
        reader = spark.read.format("libsvm")
        if n_features is not None:
            reader = reader.option("numFeatures", n_features)
        frame = reader.load(path)
        from pyspark.ml.functions import vector_to_array

        width = n_features or frame.select(F.max(F.size(vector_to_array("features")))).first()[0]
        if width is None:
            raise InputError(f"{path}: empty input (no rows)")
        array = vector_to_array("features")
        return frame.select(F.col("label"), *[array[i].alias(f"f{i + 1}") for i in range(width)])
    except InputError:
        raise
    except Exception as exc:  # Spark's reader errors: corrupt files, unreadable schema, …
        raise InputError(f"{path}: cannot read as {fmt}: {spark_error_line(exc)}") from exc


def read_table(spark: SparkSession, name: str) -> DataFrame:
    """A catalog table (``db.table``; Hive metastore with ``--catalog hive``), as a DataFrame."""
    try:
        if not spark.catalog.tableExists(name):
            raise InputError(f"input table not found: {name}")
        return spark.table(name)
    except InputError:
        raise
    except Exception as exc:  # a malformed name, an unreachable metastore
        raise InputError(f"table {name}: cannot read: {spark_error_line(exc)}") from exc


def spark_error_line(exc: BaseException) -> str:
    """The informative line of a Spark/Py4J error: the root Java cause, not 'error calling o310'."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        cause = java
        while cause.getCause() is not None:
            cause = cause.getCause()
        text = str(cause.toString())
    else:
        text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def data_columns(frame: DataFrame) -> list[str]:
    return [c for c in frame.columns if c != CORRUPT]


def resolve_columns(
    frame: DataFrame,
    source: str,
    *,
    label: str | None,
    features: list[str] | None,
    weight: str | None = None,
) -> list[str]:
    """Check the requested columns exist; default features are every column but label/weight."""
    available = data_columns(frame)
    for role, name in (("label", label), ("weight", weight)):
        if name is not None and name not in available:
            raise InputError(
                f"{source}: unknown {role} column '{name}' (columns: {', '.join(available)})"
            )
    if features is None:
        features = [c for c in available if c not in (label, weight)]
    unknown = [c for c in features if c not in available]
    if unknown:
        raise InputError(
            f"{source}: unknown feature column(s) {', '.join(repr(c) for c in unknown)} "
            f"(columns: {', '.join(available)})"
        )
    if len(set(features)) != len(features):
        raise InputError(f"{source}: a feature column is listed twice: {', '.join(features)}")
    if label is not None and label in features:
        raise InputError(f"{source}: the label '{label}' is also listed as a feature")
    if not features:
        raise InputError(f"{source}: no feature columns to use")
    return features


def as_double(name: str) -> F.Column:
    """Cast a column to double in the JVM; text that is not a number becomes null (counted)."""
    return F.col(f"`{name}`").try_cast("double")


def to_blocks(
    frame: DataFrame,
    source: str,
    *,
    features: list[str],
    label: str | None = None,
    weight: str | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    num_partitions: int | None = None,
) -> BlockData:
    """Turn the selected columns of ``frame`` into a :class:`BlockData` (lazy; nothing runs yet)."""
    columns = features + [c for c in (label, weight) if c is not None]
    # wide data: fewer rows per block, so a block (and its Gram) stays within memory
    block_rows = max(256, min(block_rows, BLOCK_BYTES // (8 * len(columns))))
    has_ragged = CORRUPT in frame.columns
    if num_partitions is not None and num_partitions != frame.rdd.getNumPartitions():
        frame = frame.repartition(num_partitions)
    typed = frame.select(
        *[as_double(c).alias(c) for c in columns],
        *[F.col(f"`{c}`").alias(f"__raw_{c}") for c in columns],
        *([F.col(CORRUPT).isNotNull().cast("int").alias(RAGGED)] if has_ragged else []),
    )
    selected = typed.select(*columns, *([RAGGED] if has_ragged else []))
    blocks = _arrow_rdd_blocks(selected, columns, has_ragged, block_rows)
    if blocks is None:
        packed = selected.mapInArrow(
            _arrow_batches_to_blocks(columns, has_ragged, block_rows),
            T.StructType([T.StructField("block", T.BinaryType())]),
        )
        blocks = packed.rdd.map(lambda row: decode_block(row[0]))
    return BlockData(
        blocks=blocks, features=features, label=label, weight=weight, source=source, frame=typed
    )


def load(
    spark: SparkSession,
    path: str,
    fmt: str,
    *,
    label: str | None = None,
    features: list[str] | None = None,
    weight: str | None = None,
    delimiter: str = ",",
    block_rows: int = DEFAULT_BLOCK_ROWS,
    num_partitions: int | None = None,
) -> BlockData:
    """Read a source and select its columns into blocks (see the module docstring)."""
    frame = read_source(spark, path, fmt, delimiter=delimiter)
    features = resolve_columns(frame, path, label=label, features=features, weight=weight)
    return to_blocks(
        frame,
        path,
        features=features,
        label=label,
        weight=weight,
        block_rows=block_rows,
        num_partitions=num_partitions,
    )


def read_for_scoring(
    spark: SparkSession, path: str, fmt: str, features: list[str], *, delimiter: str = ","
) -> DataFrame:
    """Read the input for scoring and check its feature columns (JVM-side counts only)."""
    frame = read_source(spark, path, fmt, delimiter=delimiter)
    resolve_columns(frame, path, label=None, features=features)
    checks = [F.count(F.lit(1)).alias("rows")]
    if CORRUPT in frame.columns:
        checks.append(F.sum(F.col(CORRUPT).isNotNull().cast("int")).alias("ragged"))
    for j, name in enumerate(features):
        typed = as_double(name)
        checks.append(F.sum(typed.isNull().cast("int")).alias(f"n{j}"))
        checks.append(
            F.sum((F.isnan(typed) | F.abs(typed).eqNullSafe(float("inf"))).cast("int")).alias(
                f"f{j}"
            )
        )
    row = frame.agg(*checks).first()
    counts = Counts(
        rows=row["rows"],
        nulls=np.array([row[f"n{j}"] or 0 for j in range(len(features))]),
        nonfinite=np.array([row[f"f{j}"] or 0 for j in range(len(features))]),
        ragged=(row["ragged"] or 0) if CORRUPT in frame.columns else 0,
    )
    typed_frame = frame.select(
        *[as_double(c).alias(c) for c in features],
        *[F.col(f"`{c}`").alias(f"__raw_{c}") for c in features],
    )
    check_counts(counts, features, path, typed_frame)
    if CORRUPT in frame.columns:
        frame = frame.drop(CORRUPT)
    return frame
