"""Outputs published atomically on any Hadoop file system, and models as JSON + ``.npy``.

An output directory is complete when it holds ``_SUCCESS``. Everything is written to a hidden
temporary sibling (``.NAME.tmp-HOST-PID-ID``), renamed into place with ``FileSystem.rename``, then
marked with ``_SUCCESS``, which is written last. On HDFS and local disks the rename is atomic, so a
reader never sees half an output; on object stores, where a directory rename is a copy, the
``_SUCCESS`` marker is the commit: every reader here refuses a directory without it.

Two jobs writing the same output race for a lock file (``.NAME.lock``, created exclusively) at
commit time; the loser fails with one line and the winner's output stays whole. A failed or
interrupted run (exception, SIGTERM, SIGINT) deletes its temporary sibling; after a SIGKILL, the
next run on the same host deletes the siblings whose process is provably dead.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparkml_jobs.engine import faults
from sparkml_jobs.errors import InputError, OutputExistsError
from sparkml_jobs.io import filesystem

SUCCESS = "_SUCCESS"
MODEL_FILE = "model.json"
FORMAT_VERSION = 1
MAX_JSON_DEPTH = 64


# --------------------------------------------------------------------------- outputs


def _owner() -> str:
    """HOST-PID of this driver: part of every temporary name, so a later run can prove it dead."""
    return f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"


def _dead(owner: str) -> bool:
    """Whether a temporary sibling's owner is a process of this host that no longer runs."""
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname().replace("-", "_") or not pid.isdigit():
        return False  # another host's: it cannot be proven dead from here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _sibling(fs: filesystem.HadoopFileSystem, target: str, tag: str) -> str:
    """A hidden sibling of ``target`` named for this run: ``.NAME.TAG-HOST-PID-ID``."""
    name = f".{fs.name(target)}.{tag}-{_owner()}-{uuid.uuid4().hex[:8]}"
    return fs.child(fs.parent(target), name)


def clean_stale(fs: filesystem.HadoopFileSystem, target: str) -> None:
    """Delete temporary siblings and locks of ``target`` left by dead runs of this host."""
    parent, name = fs.parent(target), fs.name(target)
    for entry in fs.list_names(parent):
        for prefix in (f".{name}.tmp-", f".{name}.old-"):
            if entry.startswith(prefix) and _dead(entry[len(prefix) :].rsplit("-", 1)[0]):
                fs.delete(fs.child(parent, entry))
        if entry == f".{name}.lock":
            lock = fs.child(parent, entry)
            try:
                owner = fs.read_text(lock).strip()
            except InputError:
                continue  # removed meanwhile by its (live) owner
            if _dead(owner):
                fs.delete(lock, recursive=False)


def check_output(path: str, overwrite: bool, fs: filesystem.HadoopFileSystem | None = None) -> str:
    """Refuse an existing output unless ``overwrite`` (checked before any work is done).

    Returns the qualified URI of ``path``.
    """
    fs = fs or filesystem.current()
    target = fs.qualify(path)
    st = fs.status(target)
    if st.kind != "missing" and not overwrite:
        if st.kind == "file":
            state = "a file"
        elif fs.exists(fs.child(target, SUCCESS)):
            state = "a complete output"
        else:
            state = "an incomplete output"
        raise OutputExistsError(
            f"output path {path} already holds {state}; pass --overwrite to replace it"
        )
    if fs.exists(fs.parent(target)):
        clean_stale(fs, target)
    return target


def _commit(fs: filesystem.HadoopFileSystem, tmp: str, target: str, overwrite: bool, path: str):
    """Move the finished ``tmp`` to ``target`` under the output's lock, then mark it complete."""
    lock = fs.child(fs.parent(target), f".{fs.name(target)}.lock")
    # the lock names its owner, so that clean_stale can remove it after a SIGKILL
    if not fs.create_exclusive(lock, _owner().encode()):
        raise OutputExistsError(f"output path {path}: another job is writing it right now")
    try:
        fs.delete(fs.child(tmp, SUCCESS), recursive=False)  # Spark writers add their own
        st = fs.status(target)
        if st.kind != "missing" and not overwrite:
            raise OutputExistsError(
                f"output path {path} was written by another job meanwhile; "
                "pass --overwrite to replace it"
            )
        if st.kind != "missing":
            old = _sibling(fs, target, "old")
            fs.rename(target, old)
            fs.rename(tmp, target)
            fs.delete(old)
        else:
            fs.rename(tmp, target)
        fs.write_bytes(fs.child(target, SUCCESS), b"", overwrite=True)
    finally:
        fs.delete(lock, recursive=False)


@contextlib.contextmanager
def spark_output(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary sibling URI for a Spark writer; on success publish it at ``path``.

    On any exception (or SIGTERM/SIGINT, which the CLI turns into one) the temporary sibling is
    deleted and ``path`` is left as it was.
    """
    fs = filesystem.current()
    target = check_output(path, overwrite, fs)
    tmp = _sibling(fs, target, "tmp")
    try:
        yield tmp
        faults.pause_before_commit()
        _commit(fs, tmp, target, overwrite, path)
    finally:
        if fs.exists(tmp):
            fs.delete(tmp)


@contextlib.contextmanager
def atomic_output(path: str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a local scratch directory; on success publish its files at ``path`` (any scheme).

    The caller writes plain local files; the directory is then copied to a temporary sibling of
    ``path`` on the user's file system and published as in :func:`spark_output`.
    """
    scratch = Path(tempfile.mkdtemp(prefix="sparkml-out-"))
    try:
        with spark_output(path, overwrite) as tmp:
            yield scratch / "out"
            local = scratch / "out"
            local.mkdir(parents=True, exist_ok=True)
            filesystem.current().upload_dir(local, tmp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_json(path: str | None, document: dict[str, Any], overwrite: bool = True) -> None:
    """Write ``document`` as the single file ``path`` (temporary sibling, then rename)."""
    if not path:
        return
    fs = filesystem.current()
    target = fs.qualify(path)
    if fs.status(target).kind == "dir":
        raise InputError(f"--metrics-json {path} is a directory; give a file path")
    tmp = _sibling(fs, target, "tmp")
    try:
        fs.mkdirs(fs.parent(target))
        fs.write_bytes(tmp, dumps(document).encode(), overwrite=False)
        if fs.exists(target) and overwrite:
            fs.delete(target, recursive=False)
        fs.rename(tmp, target)
    finally:
        if fs.exists(tmp):
            fs.delete(tmp, recursive=False)


def write_table(frame, name: str, partition_by: list[str], overwrite: bool) -> None:
    """Save ``frame`` as the catalog table ``name`` (refused if it exists unless ``overwrite``).

    Spark's ``saveAsTable`` decides existence in the catalog; a table created by another job
    between our check and the write makes the write fail (``errorifexists``), never merge.
    """
    spark = frame.sparkSession
    if spark.catalog.tableExists(name) and not overwrite:
        raise OutputExistsError(
            f"output table {name} already exists; pass --overwrite to replace it"
        )
    writer = frame.write.mode("overwrite" if overwrite else "errorifexists")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    try:
        writer.saveAsTable(name)
    except Exception as exc:
        from sparkml_jobs.io.sources import spark_error_line

        raise InputError(f"cannot write table {name}: {spark_error_line(exc)}") from exc


# --------------------------------------------------------------------------- JSON


def _jsonable(value: Any) -> Any:
    """numpy → JSON types; non-finite floats → null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(_jsonable(document), indent=2, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- model directories


@dataclass
class ModelDir:
    """A model directory as read: where it is (for messages), its JSON document, its arrays."""

    path: str
    document: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, bytes] = field(default_factory=dict)

    def __truediv__(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"


def write_model_dir(
    path: str,
    document: dict[str, Any],
    arrays: dict[str, np.ndarray],
    overwrite: bool,
    format_version: int = FORMAT_VERSION,
) -> str:
    """Write ``model.json`` (+ ``name.npy`` per array) atomically into ``path``."""
    with atomic_output(path, overwrite) as tmp:
        tmp.mkdir(parents=True)
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / MODEL_FILE).write_text(dumps({**document, "format_version": format_version}))
    return path


def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def read_model_dir(
    path: str, kind: str, versions: tuple[int, ...] = (FORMAT_VERSION,)
) -> tuple[dict[str, Any], ModelDir]:
    """Read and check ``model.json`` (and the ``.npy`` files) of a complete model directory
    whose ``format_version`` is one of ``versions``."""
    fs = filesystem.current()
    st = fs.status(path)
    if st.kind != "dir":
        raise InputError(f"model directory not found: {path}")
    if not fs.exists(fs.child(path, SUCCESS)):
        raise InputError(f"model directory {path} is an incomplete output (no {SUCCESS} marker)")
    where = ModelDir(path)
    with fs.local_copy(path) as local:
        try:
            text = (local / MODEL_FILE).read_text()
        except FileNotFoundError as exc:
            raise InputError(f"model directory {path} has no {MODEL_FILE}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{where / MODEL_FILE} is not UTF-8 text") from exc
        for file in local.glob("*.npy"):
            where.arrays[file.stem] = file.read_bytes()
    if not _json_depth_ok(text):
        raise InputError(f"{where / MODEL_FILE}: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where / MODEL_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InputError(f"{where / MODEL_FILE}: expected a JSON object")
    if document.get("kind") != kind:
        raise InputError(
            f"{where / MODEL_FILE}: kind is {document.get('kind')!r}, expected {kind!r}"
        )
    version = document.get("format_version")
    if isinstance(version, bool) or version not in versions:
        raise InputError(
            f"{where / MODEL_FILE}: unsupported format_version {version!r} (this version reads "
            f"{', '.join(map(str, versions))})"
        )
    where.document = document
    return document, where


def load_array(where: ModelDir, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Load ``name.npy`` without pickle and check its shape and finiteness."""
    file = where / f"{name}.npy"
    if name not in where.arrays:
        raise InputError(f"{file}: missing")
    try:
        array = np.load(io.BytesIO(where.arrays[name]), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{file}: cannot load ({exc})") from exc
    if array.dtype != np.float64 or (shape is not None and array.shape != shape):
        raise InputError(
            f"{file}: expected float64 of shape {shape}, found {array.dtype} {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InputError(f"{file}: contains NaN or infinite values")
    return array


def require(condition: bool, where: ModelDir, message: str) -> None:
    if not condition:
        raise InputError(f"{where / MODEL_FILE}: {message}")


def float_list(
    values: Any, length: int, where: ModelDir, name: str, nullable: bool = False
) -> list:
    """Check a JSON list of numbers (nulls allowed when ``nullable``) of the given length."""
    require(
        isinstance(values, list) and len(values) == length,
        where,
        f"'{name}' must be a list of {length} numbers",
    )
    for v in values:
        ok = (v is None and nullable) or (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        )
        require(ok, where, f"'{name}' holds a non-numeric value {v!r}")
    return values


def string_list(values: Any, where: ModelDir, name: str) -> list[str]:
    require(
        isinstance(values, list)
        and values
        and all(isinstance(v, str) and v for v in values)
        and len(set(values)) == len(values),
        where,
        f"'{name}' must be a non-empty list of distinct column names",
    )
    return values
