"""Cheap checks on an input's bytes before Spark parses it: is it what ``--format`` says?

A Parquet file read as CSV would otherwise produce "columns" of binary garbage and an error line
full of it; a CSV read as Parquet a Java trace about magic numbers. Only the first 4 KiB of the
first data file are read (through Hadoop's ``FileSystem``, so any scheme works); compressed text
(``.gz`` …, which Spark decompresses by extension) is not sniffed.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from sparkml_jobs.errors import InputError

# file names Spark's readers skip, and compressed text Spark decompresses by extension
_HIDDEN = ("_", ".")
_COMPRESSED = (".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zst", ".zstd", ".xz", ".br")
_MAGIC = {b"PAR1": "parquet", b"ORC": "orc", b"Obj\x01": "avro"}


def hadoop_fs(spark: SparkSession, path: str):
    """(Hadoop ``FileSystem``, Hadoop ``Path``) of ``path`` with the session's configuration."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def _first_data_file(spark: SparkSession, path: str, limit: int = 200):
    """(size of the whole input in bytes, first non-empty data file or ``None``) of ``path``.

    Data files as Spark's readers see them: names starting with ``_`` or ``.`` are skipped.
    """
    fs, hadoop_path = hadoop_fs(spark, path)
    total, first = 0, None
    for status in fs.globStatus(hadoop_path) or []:
        total += fs.getContentSummary(status.getPath()).getLength()
        if first is not None:
            continue
        if status.isFile():
            candidates = [status]
        else:
            files, candidates = fs.listFiles(status.getPath(), True), []
            while files.hasNext() and len(candidates) < limit:
                candidates.append(files.next())
        for candidate in candidates:
            name = candidate.getPath().getName()
            if candidate.getLen() > 0 and not name.startswith(_HIDDEN):
                first = candidate.getPath()
                break
    return total, first


def _head_bytes(spark: SparkSession, file, n: int = 4096) -> bytes:
    stream = file.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(file)
    try:
        return bytes(stream.readNBytes(n))
    finally:
        stream.close()


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are not text: a NUL, or many control characters."""
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(head) // 20


def sniff(spark: SparkSession, path: str, fmt: str) -> int:
    """Refuse a file whose bytes contradict ``fmt`` (one line, no binary); returns the input size.

    Reads the first 4 KiB of the first data file only; compressed text is not sniffed.
    """
    total, first = _first_data_file(spark, path)
    if first is None or first.getName().lower().endswith(_COMPRESSED):
        return total
    head = _head_bytes(spark, first)
    magic = next((kind for m, kind in _MAGIC.items() if head.startswith(m)), None)
    shown = path if path.endswith(first.getName()) else f"{path} (file {first.getName()})"
    if fmt in ("csv", "libsvm"):
        if magic == "parquet":
            raise InputError(f"{shown} looks like Parquet, not {fmt}; use --format parquet")
        if magic is not None:
            raise InputError(
                f"{shown} looks like {magic.upper()}, not {fmt} (not a format read here)"
            )
        if looks_binary(head):
            raise InputError(
                f"{shown} is not a text file (binary bytes), so not {fmt}; "
                "check --input and --format"
            )
    elif fmt == "parquet" and magic != "parquet" and head and not looks_binary(head):
        hint = "libsvm" if _looks_libsvm(head) else "csv"
        raise InputError(f"{shown} is not Parquet: it looks like text; use --format {hint}")
    return total


def _looks_libsvm(head: bytes) -> bool:
    line = head.split(b"\n", 1)[0].split()
    return len(line) > 1 and all(b":" in token for token in line[1:])
