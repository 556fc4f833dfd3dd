"""Outputs written atomically, and models saved as JSON + ``.npy`` (never pickle).

An output directory is complete when it holds ``_SUCCESS``. Everything is written to a hidden
temporary sibling, renamed into place, then marked; a failed run removes its temporary sibling, so
a scheduler never sees half an output and a rerun of the same run is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sparkml_jobs.errors import InputError, OutputExistsError

SUCCESS = "_SUCCESS"
MODEL_FILE = "model.json"
FORMAT_VERSION = 1


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite`` (checked before any work is done)."""
    target = Path(path)
    if target.exists() and not overwrite:
        state = "a complete output" if (target / SUCCESS).exists() else "an incomplete output"
        if target.is_file():
            state = "a file"
        raise OutputExistsError(
            f"output path {target} already holds {state}; pass --overwrite to replace it"
        )
    return target


@contextlib.contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success rename it to ``path`` and mark it.

    On any exception the temporary directory is removed and ``path`` is left as it was.
    """
    target = check_output(path, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        yield tmp
        (tmp / SUCCESS).unlink(missing_ok=True)  # Spark writers add their own marker
        if target.exists() or target.is_symlink():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, target)
        (target / SUCCESS).touch()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


def write_model_dir(
    path: str | Path, document: dict[str, Any], arrays: dict[str, np.ndarray], overwrite: bool
) -> Path:
    """Write ``model.json`` (+ ``name.npy`` per array) atomically into ``path``."""
    with atomic_output(path, overwrite) as tmp:
        tmp.mkdir(parents=True)
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / MODEL_FILE).write_text(dumps({**document, "format_version": FORMAT_VERSION}))
    return Path(path)


def read_model_dir(path: str | Path, kind: str) -> tuple[dict[str, Any], Path]:
    """Read and check ``model.json`` of a complete model directory of the given ``kind``."""
    directory = Path(path)
    if not directory.is_dir():
        raise InputError(f"model directory not found: {directory}")
    if not (directory / SUCCESS).exists():
        raise InputError(f"model directory {directory} is incomplete (no {SUCCESS} marker)")
    try:
        document = json.loads((directory / MODEL_FILE).read_text())
    except FileNotFoundError as exc:
        raise InputError(f"model directory {directory} has no {MODEL_FILE}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{directory / MODEL_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InputError(f"{directory / MODEL_FILE}: expected a JSON object")
    if document.get("kind") != kind:
        raise InputError(
            f"{directory / MODEL_FILE}: kind is {document.get('kind')!r}, expected {kind!r}"
        )
    if document.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{directory / MODEL_FILE}: unsupported format_version "
            f"{document.get('format_version')!r} (this version reads {FORMAT_VERSION})"
        )
    return document, directory


def load_array(directory: Path, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Load ``name.npy`` without pickle and check its shape and finiteness."""
    file = directory / f"{name}.npy"
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{file}: cannot load ({exc})") from exc
    if array.dtype != np.float64 or (shape is not None and array.shape != shape):
        raise InputError(
            f"{file}: expected float64 of shape {shape}, found {array.dtype} {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InputError(f"{file}: contains NaN or infinite values")
    return array


def require(condition: bool, where: Path, message: str) -> None:
    if not condition:
        raise InputError(f"{where / MODEL_FILE}: {message}")


def float_list(values: Any, length: int, where: Path, name: str, nullable: bool = False) -> list:
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


def string_list(values: Any, where: Path, name: str) -> list[str]:
    require(
        isinstance(values, list)
        and values
        and all(isinstance(v, str) and v for v in values)
        and len(set(values)) == len(values),
        where,
        f"'{name}' must be a non-empty list of distinct column names",
    )
    return values
