"""The JSON schema of saved models: what ``model.json`` holds for each kind, and its checks.

A model directory is ``model.json`` (kind, format version, feature names, parameters, fitted
values, training summary) plus ``.npy`` arrays, written through :mod:`~.persist`; loading checks
every field, so a tampered or truncated file is refused with one line instead of a traceback.
"""

from __future__ import annotations

import numpy as np

from sparkml_jobs.clustering.estimator import DISTANCES, KMeansModel, KMeansSummary
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import persist
from sparkml_jobs.regression import formula as fm
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression import tsqr
from sparkml_jobs.regression.estimator import (
    LinearRegression,
    LinearRegressionModel,
    LinearRegressionSummary,
)
from sparkml_jobs.regression.packed import PackedStats

LINREG_KIND = "linear_regression"
KMEANS_KIND = "kmeans"
# format_version 2: a linear model with an "encoding" (formula, categorical levels). Only such
# models are written as version 2, so every model an older version could use stays version 1,
# and an older version refuses a formula model instead of asking for columns named "cut[T.Good]".
LINREG_ENCODED_VERSION = 2
# "stats": {"comoment": "packed"}: a wide model's co-moment saved as its upper triangle in LAPACK
# packed order (stats_comoment_packed.npy, (p+1)(p+2)/2 numbers), as the fit kept it; without
# the key, the full (p+1) x (p+1) matrix (stats_comoment.npy)
PACKED = "packed"


def save_linreg(model: LinearRegressionModel, path: str, overwrite: bool = False) -> None:
    """Directory with ``model.json`` (+ the sufficient statistics as ``.npy``) and ``_SUCCESS``."""

    document = {
        "kind": LINREG_KIND,
        "features": model.features,
        "label": model.label,
        "weight_col": model.weight_col,
        "intercept": model.intercept,
        "coefficients": model.coefficients,
        "params": model.params,
        "summary": model.summary.to_dict() if model.summary else None,
    }
    arrays = {}
    if model.stats is not None:
        document["stats"] = {"n": model.stats.n, "w_sum": model.stats.w_sum}
        arrays = {"stats_mean": model.stats.mean}
        if isinstance(model.stats, PackedStats):  # a wide model: the upper triangle only, as fitted
            document["stats"]["comoment"] = PACKED
            arrays["stats_comoment_packed"] = model.stats.packed
        else:
            arrays["stats_comoment"] = model.stats.comoment
    if model.factor is not None:  # TSQR: R of √w·[1?, X, y], square (zero rows if few data rows)
        width = model.factor.r.shape[1]
        r = np.zeros((width, width))
        r[: model.factor.r.shape[0]] = model.factor.r
        arrays["r_factor"] = r
    version = persist.FORMAT_VERSION
    if model.design is not None:
        document["encoding"] = fm.to_dict(model.design)
        version = LINREG_ENCODED_VERSION
    persist.write_model_dir(path, document, arrays, overwrite, format_version=version)


def load_linreg(path: str) -> LinearRegressionModel:
    """Load a saved model without Spark, checking every field (a tampered file is rejected)."""

    doc, where = persist.read_model_dir(
        path, LINREG_KIND, (persist.FORMAT_VERSION, LINREG_ENCODED_VERSION)
    )
    features = persist.string_list(doc.get("features"), where, "features")
    design = None
    if doc["format_version"] == LINREG_ENCODED_VERSION:
        design = fm.from_dict(doc.get("encoding"), where / persist.MODEL_FILE)
        persist.require(
            design.names == features
            and design.formula.label.name == doc.get("label")
            and design.fit_intercept == (doc.get("params") or {}).get("fit_intercept", True),
            where,
            "'features', 'label' or 'params.fit_intercept' differ from what 'encoding' makes",
        )
    p = len(features)
    coefficients = persist.float_list(doc.get("coefficients"), p, where, "coefficients", True)
    intercept = doc.get("intercept")
    persist.float_list([intercept], 1, where, "intercept")
    label = doc.get("label")
    persist.require(label is None or isinstance(label, str), where, "'label' must be a string")
    weight_col = doc.get("weight_col")
    persist.require(
        weight_col is None or isinstance(weight_col, str), where, "'weight_col' must be a string"
    )
    params = doc.get("params")
    persist.require(isinstance(params, dict), where, "'params' must be an object")
    try:
        LinearRegression(**params)
    except (TypeError, InputError) as exc:
        raise InputError(f"{where / persist.MODEL_FILE}: invalid 'params': {exc}") from exc
    summary = None
    if isinstance(doc.get("summary"), dict):
        try:
            floats = {
                "r2",
                "r2_adj",
                "rmse",
                "mae",
                "residual_std",
                "condition_number",
                "weight_sum",
            }
            summary = LinearRegressionSummary(
                **{
                    k: (float("nan") if v is None and k in floats else v)
                    for k, v in doc["summary"].items()
                }
            )
        except (TypeError, KeyError) as exc:
            raise InputError(f"{where / persist.MODEL_FILE}: invalid 'summary': {exc}") from exc
    model_stats = None
    if isinstance(doc.get("stats"), dict):
        s = doc["stats"]
        persist.require(
            isinstance(s.get("n"), int) and s["n"] >= 0, where, "'stats.n' must be a count"
        )
        persist.float_list([s.get("w_sum")], 1, where, "stats.w_sum")
        persist.require(
            s.get("comoment") in (None, PACKED), where, f"'stats.comoment' must be '{PACKED}'"
        )
        moments = {"n": s["n"], "w_sum": float(s["w_sum"])}
        moments["mean"] = persist.load_array(where, "stats_mean", (p + 1,))
        if s.get("comoment") == PACKED:
            length = (p + 1) * (p + 2) // 2
            packed = persist.load_array(where, "stats_comoment_packed", (length,))
            model_stats = PackedStats(**moments, packed=packed).frozen()
        else:
            comoment = persist.load_array(where, "stats_comoment", (p + 1, p + 1))
            model_stats = st.SufficientStats(**moments, comoment=comoment)
    return LinearRegressionModel(
        features=features,
        label=label,
        intercept=float(intercept),
        coefficients=np.array([np.nan if c is None else c for c in coefficients], dtype=np.float64),
        params=params,
        summary=summary,
        stats=model_stats,
        weight_col=weight_col,
        factor=_load_factor(where, p, params, model_stats),
        design=design,
    )


def _load_factor(
    where: persist.ModelDir, p: int, params: dict, model_stats: st.SufficientStats | None
) -> tsqr.RFactor | None:
    """The saved TSQR factor (``r_factor.npy``, absent from older or Cholesky models)."""
    if "r_factor" not in where.arrays:
        return None
    persist.require(model_stats is not None, where, "'r_factor.npy' needs the saved 'stats'")
    width = p + 1 + int(params.get("fit_intercept", True))
    r = persist.load_array(where, "r_factor", (width, width))
    persist.require(np.array_equal(r, np.triu(r)), where, "'r_factor.npy' is not upper triangular")
    return tsqr.RFactor(r, model_stats.n)


def save_kmeans(model: KMeansModel, path: str, overwrite: bool = False) -> None:
    """Directory with ``model.json`` (centres inline, and as ``centers.npy``) and ``_SUCCESS``.

    A standardised model also saves its ``mean`` and ``scale`` (inline and as ``.npy``); a model
    without them is written exactly as before, so older versions still read it.
    """

    document = {
        "kind": KMEANS_KIND,
        "features": model.features,
        "centers": model.centers,
        "params": model.params,
        "summary": model.summary.to_dict() if model.summary else None,
    }
    arrays = {"centers": model.centers}
    if model.mean is not None and model.scale is not None:
        document["standardize"] = {"mean": model.mean, "scale": model.scale}
        arrays.update(standardize_mean=model.mean, standardize_scale=model.scale)
    persist.write_model_dir(path, document, arrays, overwrite)


def load_kmeans(path: str) -> KMeansModel:
    """Load a saved model without Spark; a tampered or inconsistent file is rejected."""

    doc, where = persist.read_model_dir(path, KMEANS_KIND)
    features = persist.string_list(doc.get("features"), where, "features")
    rows = doc.get("centers")
    persist.require(
        isinstance(rows, list) and len(rows) >= 1, where, "'centers' must be a list of rows"
    )
    for row in rows:
        persist.float_list(row, len(features), where, "centers")
    centers = np.array(rows, dtype=np.float64)
    if "centers" in where.arrays:
        stored = persist.load_array(where, "centers", centers.shape)
        persist.require(np.array_equal(stored, centers), where, "'centers' differ from centers.npy")
    params = doc.get("params")
    persist.require(isinstance(params, dict), where, "'params' must be an object")
    persist.require(params.get("k") == len(centers), where, "'params.k' does not match the centres")
    persist.require(
        params.get("distance", "euclidean") in DISTANCES, where, "unknown 'params.distance'"
    )
    summary = None
    if isinstance(doc.get("summary"), dict):
        try:
            summary = KMeansSummary(**doc["summary"])
        except TypeError as exc:
            raise InputError(f"{where / persist.MODEL_FILE}: invalid 'summary': {exc}") from exc
    mean, scale = _load_standardize(doc, where, len(features))
    return KMeansModel(
        features=features,
        centers=centers,
        params=params,
        summary=summary,
        mean=mean,
        scale=scale,
    )


def _load_standardize(doc: dict, where: persist.ModelDir, p: int):
    """(mean, scale) of a standardised k-means model, or (None, None) (older models have none)."""
    block = doc.get("standardize")
    if block is None:
        return None, None
    persist.require(isinstance(block, dict), where, "'standardize' must be an object")
    mean = np.array(persist.float_list(block.get("mean"), p, where, "standardize.mean"), float)
    scale = np.array(persist.float_list(block.get("scale"), p, where, "standardize.scale"), float)
    persist.require(bool(np.all(scale > 0)), where, "'standardize.scale' must be positive numbers")
    for name, values in (("standardize_mean", mean), ("standardize_scale", scale)):
        if name in where.arrays:
            stored = persist.load_array(where, name, (p,))
            persist.require(np.array_equal(stored, values), where, f"'{name}.npy' differs")
    return mean, scale
