"""``sparkml-jobs export``: one of our model directories → a Spark ML model directory.

The conversion itself (building Spark ML models in the JVM from our numbers and writing them)
is :mod:`~.sparkml`; this is the command's checks around it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import filesystem, models, persist
from sparkml_jobs.io.sparkml import CLASSES, TARGETS, read_metadata, write_spark_ml

log = logging.getLogger(__name__)


def _model_kind(path: str) -> tuple[str, dict[str, Any]]:
    """The ``kind`` of our model directory at ``path`` and its ``model.json`` document."""
    fs = filesystem.current()
    if read_metadata(path) is not None:
        raise InputError(f"{path} is already a Spark ML model directory")
    document_path = fs.child(path, persist.MODEL_FILE)
    if not fs.exists(document_path):
        raise InputError(f"model directory not found or without {persist.MODEL_FILE}: {path}")
    try:
        document = json.loads(fs.read_text(document_path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{document_path} is not valid JSON: {exc}") from exc
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind not in CLASSES:
        raise InputError(f"{document_path}: kind {kind!r} has no Spark ML equivalent")
    return kind, document


def _encoding(document: dict[str, Any]) -> str | None:
    """What encodes the model's input columns (a formula, categorical levels), if anything."""
    for part in (document, *(v for v in document.values() if isinstance(v, dict))):
        if part.get("formula"):
            return f"the formula {part['formula']!r}"
        if part.get("categorical"):
            return f"categorical column(s) {', '.join(map(repr, part['categorical']))}"
    return None


def export(path: str, output: str, overwrite: bool = False, to: str = "spark-ml") -> dict:
    """``sparkml-jobs export``: our model directory at ``path`` → a Spark ML one at ``output``."""
    if to not in TARGETS:
        raise InputError(f"--to must be one of {', '.join(TARGETS)}, got {to!r}")
    kind, document = _model_kind(path)
    encoding = _encoding(document)
    if encoding is not None:
        # Such a model needs its encoding as Spark ML stages (a PipelineModel); until that is
        # written, refusing beats exporting a model that reads the wrong columns.
        raise InputError(
            f"{path} was fitted with {encoding}, which the Spark ML export cannot express yet; "
            "refit with numeric --features to export"
        )
    model = models.load_linreg(path) if kind == models.LINREG_KIND else models.load_kmeans(path)
    class_name = write_spark_ml(model, output, overwrite, source=path)
    log.info("exported %s as a Spark ML %s", path, class_name.rsplit(".", 1)[-1])
    return {"kind": kind, "class": class_name, "output": output, "features": model.features}
