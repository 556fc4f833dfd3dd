"""Spark's own readers for every input: CSV, Parquet, LIBSVM and catalog tables.

What is refused here, in one line naming the file: a path that does not exist; a file that is not
text for a text format (a Parquet file read as CSV says so); duplicate CSV header names (Spark
would rename them ``a0``, ``a1``); a LIBSVM input whose dense width (its largest feature index)
would need more than :data:`MAX_DENSE_FEATURES` columns or :data:`MAX_DENSE_BYTES` of memory.

CSV columns arrive as text (the cast to double happens in :mod:`~.read`, counted). CSV inputs up
to :data:`MULTILINE_MAX_BYTES` are parsed with Spark's ``multiLine`` option, so a quoted field may
hold a line break; larger inputs are read line by line in parallel splits (``multiLine`` makes a
file one task), and a record that spans lines is then reported with that hint. A quote inside a
quoted field is doubled (RFC 4180, as Excel, pandas and Python's ``csv`` write it). Every
reference to a user's column goes through :func:`col` (backtick quoting, backticks doubled).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkml_jobs.errors import InputError
from sparkml_jobs.io.sniff import hadoop_fs, sniff

FORMATS = ("csv", "parquet", "libsvm")


TABLE = "table"  # the pseudo-format of --input-table: the source is a catalog table name


CORRUPT = "_corrupt_record"  # the preferred name; a fresh one if the data has a column so named


ROLE_KEY = "sparkml_jobs"  # schema metadata marking the corrupt-record column


MULTILINE_MAX_BYTES = 128 * 2**20


MAX_DENSE_FEATURES = 16_384  # the widest design measured (8,192 features) times two


MAX_DENSE_BYTES = 8 * 2**30


def quote(name: str) -> str:
    """``name`` as a Spark SQL identifier: in backticks, a backtick inside doubled."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> F.Column:
    """The user's column ``name``, whatever it holds (dots, spaces, backticks, unicode)."""
    return F.col(quote(name))


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` (local or any Hadoop file system URI, globs allowed) exists."""
    fs, hadoop_path = hadoop_fs(spark, path)
    statuses = fs.globStatus(hadoop_path)
    return statuses is not None and len(statuses) > 0


def read_source(
    spark: SparkSession, path: str, fmt: str, *, delimiter: str = ",", n_features: int | None = None
) -> DataFrame:
    """Read ``path`` with Spark's reader for ``fmt``; CSV columns arrive as strings.

    A CSV gets an extra corrupt-record column (see :func:`corrupt_column`) so ragged rows are
    counted, not silently padded.
    """
    if fmt == TABLE:
        return read_table(spark, path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    if not path_exists(spark, path):
        raise InputError(f"input path not found: {path}")
    try:
        size = sniff(spark, path, fmt)
        if fmt == "csv":
            return _read_csv(spark, path, delimiter, multiline=size <= MULTILINE_MAX_BYTES)
        if fmt == "parquet":
            return spark.read.parquet(path)
        return _read_libsvm(spark, path, n_features)
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


def _read_csv(spark: SparkSession, path: str, delimiter: str, *, multiline: bool) -> DataFrame:
    def reader(header: bool):
        # escape '"': a quote inside a quoted field is doubled (RFC 4180: Excel, pandas, csv)
        options = {"header": header, "sep": delimiter, "multiLine": multiline, "escape": '"'}
        return spark.read.options(**options)

    names = reader(True).csv(path).columns
    if not names:
        raise InputError(f"{path}: empty input (no header, no rows)")
    if _maybe_renamed(names):  # Spark renames duplicates a0, a1: look at the real header
        raw = reader(False).csv(path).first()
        _check_duplicates(path, [v for v in (raw or []) if v is not None])
    corrupt = fresh_name(CORRUPT, names)
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in names]
        + [
            T.StructField(
                corrupt,
                T.StringType(),
                metadata={ROLE_KEY: "corrupt_record", "multiline": multiline},
            )
        ]
    )
    frame = (
        reader(True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", corrupt)
        .schema(schema)
        .csv(path)
    )
    return frame


def _maybe_renamed(names: list[str]) -> bool:
    """Whether two names look like Spark's renaming of a duplicate (``name`` + its position)."""
    bases = [n[: -len(str(i))].lower() for i, n in enumerate(names) if n.endswith(str(i))]
    return len(bases) != len(set(bases))


def _check_duplicates(path: str, header: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in header:
        key = name.lower()  # Spark resolves column names ignoring case
        if key in seen:
            same = "" if seen[key] == name else f" (as '{seen[key]}': names ignore case)"
            raise InputError(f"{path}: duplicate column name '{name}' in the header{same}")
        seen[key] = name


def _read_libsvm(spark: SparkSession, path: str, n_features: int | None) -> DataFrame:
    """LIBSVM → label + dense ``f1…fN``, refused up front when N or the dense size is too big.

    Spark's reader finds the largest feature index itself (one JVM pass over the text) and
    records it in the schema; the dense projection is only built once that width is known safe.
    """
    from pyspark.ml.functions import vector_to_array

    reader = spark.read.format("libsvm")
    if n_features is not None:
        reader = reader.option("numFeatures", n_features)
    frame = reader.load(path)
    metadata = frame.schema["features"].metadata
    width = (
        n_features or metadata.get("numFeatures") or metadata.get("ml_attr", {}).get("num_attrs")
    )
    if width is None:
        width = frame.select(F.max(F.size(vector_to_array("features")))).first()[0]
    if not width:
        raise InputError(f"{path}: empty input (no rows)")
    rows = frame.count() if width > 64 else 0
    needed = rows * width * 8
    if width > MAX_DENSE_FEATURES or needed > MAX_DENSE_BYTES:
        raise InputError(
            f"{path}: LIBSVM feature indices go up to {width}: the dense data would be {rows} rows"
            f" x {width} features = {_size(needed)} (8 bytes a value); the limits are "
            f"{MAX_DENSE_FEATURES} features and {_size(MAX_DENSE_BYTES)} (sparse input is not "
            "supported: select or hash the features first)"
        )
    array = vector_to_array("features")
    return frame.select(F.col("label"), *[array[i].alias(f"f{i + 1}") for i in range(width)])


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


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
    return "".join(c if c.isprintable() else "?" for c in text.splitlines()[0][:300])


def corrupt_column(frame: DataFrame) -> str | None:
    """The name of the corrupt-record column :func:`read_source` added to a CSV, if any."""
    for field in frame.schema.fields:
        if field.metadata.get(ROLE_KEY) == "corrupt_record":
            return field.name
    return None


def data_columns(frame: DataFrame) -> list[str]:
    corrupt = corrupt_column(frame)
    return [c for c in frame.columns if c != corrupt]


def fresh_name(base: str, taken: list[str]) -> str:
    """``base``, or ``base_1``, ``base_2``…: the first no name in ``taken`` equals (any case)."""
    lowered = {t.lower() for t in taken}
    name, i = base, 0
    while name.lower() in lowered:
        i += 1
        name = f"{base}_{i}"
    return name
