"""Spark ML persistence: export our models as Spark ML models, and read Spark ML models back.

A Spark ML model directory (what ``LinearRegressionModel.save`` / ``KMeansModel.save`` write, in
Python, Scala or Java) holds ``metadata/`` (one JSON line: ``class``, ``uid``, ``sparkVersion``,
``paramMap``, ``defaultParamMap``) and ``data/`` (Parquet: ``intercept, coefficients, scale`` for a
linear model; ``clusterIdx, clusterCenter`` rows for k-means). We do not write those files
ourselves: the model is built in the JVM from its public constructors with our fitted numbers
(passed as raw little-endian float64 bytes, so every bit survives) and saved by Spark's own
writer into the temporary sibling of :func:`~.persist.spark_output`. The layout is then the one
the running Spark writes and reads, whatever its version, instead of our copy of it.

Spark's layout has no place for column names (a Spark ML model reads one vector column,
``features``), so the export adds ``sparkml_jobs.json`` (feature names, label, weight column),
which Spark's readers ignore and ours use to match columns by name.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkml_jobs.clustering.estimator import KMeansModel
from sparkml_jobs.clustering.standardize import Standardizer
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import filesystem, models, persist
from sparkml_jobs.regression.estimator import LinearRegression, LinearRegressionModel

log = logging.getLogger(__name__)

LINREG_CLASS = "org.apache.spark.ml.regression.LinearRegressionModel"
KMEANS_CLASS = "org.apache.spark.ml.clustering.KMeansModel"
PIPELINE_CLASS = "org.apache.spark.ml.PipelineModel"
SCALED_COLUMN = "features_standardized"  # a standardised k-means pipeline's inner vector
CLASSES = {models.LINREG_KIND: LINREG_CLASS, models.KMEANS_KIND: KMEANS_CLASS}
SIDECAR = "sparkml_jobs.json"
INIT_PREFIX = "spark-ml:"  # kmeans fit --init spark-ml:DIR
TARGETS = ("spark-ml",)


@dataclass(frozen=True, kw_only=True)
class SparkModelDir:
    """What a Spark ML model directory says about itself: its class, params and our sidecar."""

    path: str
    class_name: str
    params: dict[str, Any]
    sidecar: dict[str, Any] | None

    @property
    def short_class(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- detection


def read_metadata(path: str) -> SparkModelDir | None:
    """The Spark ML metadata of ``path``, or ``None`` when ``path`` is not a Spark ML directory.

    Spark writes the metadata as a one-line text "file" (a directory of ``part-*`` files); the
    first non-empty part holds it.
    """
    fs = filesystem.current()
    metadata = fs.child(path, "metadata")
    if fs.status(metadata).kind != "dir":
        return None
    parts = [n for n in fs.list_names(metadata) if n.startswith("part-")]
    text = next(
        (t for t in (fs.read_text(fs.child(metadata, n)).strip() for n in parts) if t), None
    )
    if text is None:
        raise InputError(f"{metadata}: no Spark ML metadata in it")
    try:
        document = json.loads(text.splitlines()[0])
    except json.JSONDecodeError as exc:
        raise InputError(f"{metadata}: not Spark ML metadata JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("class"), str):
        raise InputError(f"{metadata}: Spark ML metadata without a 'class'")
    params = {**(document.get("defaultParamMap") or {}), **(document.get("paramMap") or {})}
    sidecar_path = fs.child(path, SIDECAR)
    sidecar = None
    if fs.exists(sidecar_path):
        try:
            sidecar = json.loads(fs.read_text(sidecar_path))
        except json.JSONDecodeError as exc:
            raise InputError(f"{sidecar_path} is not valid JSON: {exc}") from exc
        if not isinstance(sidecar, dict):
            raise InputError(f"{sidecar_path}: expected a JSON object")
    return SparkModelDir(
        path=path, class_name=document["class"], params=params, sidecar=sidecar or None
    )


def _require_class(spark_dir: SparkModelDir, expected: str, what: str) -> None:
    if spark_dir.class_name != expected:
        raise InputError(
            f"{spark_dir.path} is a Spark ML {spark_dir.short_class}, not a "
            f"{expected.rsplit('.', 1)[-1]}: it cannot be used as {what}"
        )


def _feature_names(spark_dir: SparkModelDir, width: int, features: list[str] | None) -> list[str]:
    """The columns a Spark ML model's vector holds: ``features`` if given, else our sidecar's."""
    named = (spark_dir.sidecar or {}).get("features")
    if features is None:
        features = named
    if features is None:
        raise InputError(
            f"the Spark ML model {spark_dir.path} does not name its {width} features (it reads "
            f"a vector column); pass --features with {width} column names in the model's order"
        )
    if len(features) != width:
        raise InputError(
            f"the Spark ML model {spark_dir.path} has {width} features, "
            f"got {len(features)} column names ({', '.join(features)})"
        )
    return list(features)


# --------------------------------------------------------------------------- reading


def _load_spark_model(spark_dir: SparkModelDir):
    """The pyspark.ml model object of ``spark_dir`` (Spark's own reader)."""
    from pyspark.ml import PipelineModel
    from pyspark.ml.clustering import KMeansModel as SparkKMeansModel
    from pyspark.ml.regression import LinearRegressionModel as SparkLinearRegressionModel

    reader = {
        LINREG_CLASS: SparkLinearRegressionModel,
        KMEANS_CLASS: SparkKMeansModel,
        PIPELINE_CLASS: PipelineModel,
    }
    try:
        return reader[spark_dir.class_name].load(spark_dir.path)
    except Exception as exc:
        name, message = filesystem.java_error(exc)
        raise InputError(
            f"cannot load the Spark ML model {spark_dir.path}: {message or name}"
        ) from exc


def linreg_from_spark(
    spark_dir: SparkModelDir, features: list[str] | None = None
) -> LinearRegressionModel:
    """Our linear model with the coefficients of a Spark ML ``LinearRegressionModel``."""
    _require_class(spark_dir, LINREG_CLASS, "a linear regression model")
    spark_model = _load_spark_model(spark_dir)
    coefficients = np.asarray(spark_model.coefficients.toArray(), dtype=np.float64)
    sidecar = spark_dir.sidecar or {}
    weight = spark_dir.params.get("weightCol") or None
    return LinearRegressionModel(
        features=_feature_names(spark_dir, len(coefficients), features),
        label=sidecar.get("label", spark_dir.params.get("labelCol")),
        intercept=float(spark_model.intercept),
        coefficients=coefficients,
        params=LinearRegression(
            fit_intercept=bool(spark_dir.params.get("fitIntercept", True)),
            reg_param=float(spark_dir.params.get("regParam", 0.0)),
        ).params(),
        weight_col=sidecar.get("weight_col", weight),
    )


def _standardized_stages(spark_dir: SparkModelDir):
    """(mean, std, KMeansModel) of a PipelineModel of a StandardScalerModel (with mean and std)
    then a KMeansModel: what :func:`export` writes for a standardised k-means model."""
    from pyspark.ml.clustering import KMeansModel as SparkKMeansModel
    from pyspark.ml.feature import StandardScalerModel

    stages = _load_spark_model(spark_dir).stages
    if not (
        len(stages) == 2
        and isinstance(stages[0], StandardScalerModel)
        and isinstance(stages[1], SparkKMeansModel)
        and stages[0].getWithMean()
        and stages[0].getWithStd()
    ):
        kinds = ", ".join(type(stage).__name__ for stage in stages)
        raise InputError(
            f"{spark_dir.path} is a Spark ML PipelineModel of {kinds or 'no stages'}; only a "
            "StandardScalerModel (withMean, withStd) then a KMeansModel can be used as a "
            "k-means model"
        )
    mean = np.asarray(stages[0].mean.toArray(), dtype=np.float64)
    std = np.asarray(stages[0].std.toArray(), dtype=np.float64)
    if not (np.isfinite(std).all() and np.all(std > 0) and np.isfinite(mean).all()):
        raise InputError(f"{spark_dir.path}: the StandardScalerModel has a zero or non-finite std")
    return mean, std, stages[1]


def kmeans_from_spark(spark_dir: SparkModelDir, features: list[str] | None = None) -> KMeansModel:
    """Our k-means model with the centres of a Spark ML ``KMeansModel``, or of the standardised
    pipeline :func:`export` writes (centres back in the data's units, mean and scale kept)."""
    mean = scale = None
    if spark_dir.class_name == PIPELINE_CLASS:
        mean, scale, spark_model = _standardized_stages(spark_dir)
        scaled = np.array(spark_model.clusterCenters(), dtype=np.float64)
        if scaled.shape[1] != len(mean):
            raise InputError(f"{spark_dir.path}: the scaler and the k-means model differ in width")
        centers = Standardizer(mean=mean, scale=scale).points_out(scaled)
        distance = spark_model.getDistanceMeasure()
    else:
        _require_class(spark_dir, KMEANS_CLASS, "a k-means model")
        centers = np.array(_load_spark_model(spark_dir).clusterCenters(), dtype=np.float64)
        distance = spark_dir.params.get("distanceMeasure", "euclidean")
    params = {"k": len(centers), "distance": distance, "init": "given"}
    params["standardize"] = mean is not None
    return KMeansModel(
        features=_feature_names(spark_dir, centers.shape[1], features),
        centers=centers,
        params=params,
        mean=mean,
        scale=scale,
    )


def load_linreg(path: str, features: list[str] | None = None) -> LinearRegressionModel:
    """A saved linear model: ours (``model.json``) or a Spark ML ``LinearRegressionModel``.

    ``features`` names the columns of a Spark ML model's vector (ours name their own).
    """
    spark_dir = read_metadata(path)
    if spark_dir is None:
        return models.load_linreg(path)
    return linreg_from_spark(spark_dir, features)


def load_kmeans(path: str, features: list[str] | None = None) -> KMeansModel:
    """A saved k-means model: ours (``model.json``) or a Spark ML ``KMeansModel``."""
    spark_dir = read_metadata(path)
    if spark_dir is None:
        return models.load_kmeans(path)
    return kmeans_from_spark(spark_dir, features)


def initial_centers(path: str, features: list[str], k: int) -> np.ndarray:
    """``kmeans fit --init spark-ml:DIR``: the centres of a Spark ML ``KMeansModel`` as a (k, d)
    array in the order of ``features`` (matched by name when the model names its columns)."""
    spark_dir = read_metadata(path)
    if spark_dir is None:
        raise InputError(f"--init {INIT_PREFIX}{path}: not a Spark ML model directory")
    named = (spark_dir.sidecar or {}).get("features")
    model = kmeans_from_spark(spark_dir, named or features)
    if named is not None:
        if sorted(named) != sorted(features):
            raise InputError(
                f"--init {INIT_PREFIX}{path}: the model's features ({', '.join(named)}) are not "
                f"the data's ({', '.join(features)})"
            )
        model = KMeansModel(
            features=features,
            centers=model.centers[:, [named.index(f) for f in features]],
            params=model.params,
        )
    if len(model.centers) != k:
        raise InputError(f"--init {INIT_PREFIX}{path} has {len(model.centers)} centres, k={k}")
    return model.centers


# --------------------------------------------------------------------------- writing


def _jvm_doubles(sc, values: np.ndarray):
    """A Java ``double[]`` holding exactly ``values`` (raw bytes: no text round trip)."""
    jvm, data = sc._jvm, np.ascontiguousarray(values, dtype="<f8")
    out = sc._gateway.new_array(jvm.double, len(data))
    buffer = jvm.java.nio.ByteBuffer.wrap(bytearray(data.tobytes()))
    buffer.order(jvm.java.nio.ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(out)
    return out


def _uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"  # Spark's own uid shape


def spark_linreg(model: LinearRegressionModel):
    """The model as a pyspark.ml ``LinearRegressionModel`` (JVM-backed, params set).

    Aliased (NaN) coefficients become 0, as our own predictions treat them.
    """
    from pyspark import SparkContext
    from pyspark.ml.regression import LinearRegressionModel as SparkLinearRegressionModel

    sc = SparkContext._active_spark_context
    jvm = sc._jvm
    coefficients = jvm.org.apache.spark.ml.linalg.Vectors.dense(
        _jvm_doubles(sc, np.nan_to_num(model.coefficients, nan=0.0))
    )
    java_model = jvm.org.apache.spark.ml.regression.LinearRegressionModel(
        _uid("linReg"), coefficients, float(model.intercept)
    )
    spark_model = SparkLinearRegressionModel(java_model)
    # our objective is MLlib's "normal" solver without standardisation: same λ, same meaning
    spark_model.set(spark_model.fitIntercept, bool(model.params.get("fit_intercept", True)))
    spark_model.set(spark_model.regParam, float(model.params.get("reg_param", 0.0)))
    spark_model.set(spark_model.standardization, False)
    spark_model.set(spark_model.solver, "normal")
    if model.label:
        spark_model.set(spark_model.labelCol, model.label)
    if model.weight_col:
        spark_model.set(spark_model.weightCol, model.weight_col)
    return spark_model


def spark_kmeans(model: KMeansModel):
    """The model as a pyspark.ml ``KMeansModel`` (JVM-backed, params set); a model fitted with
    ``standardize`` as the ``PipelineModel`` of :func:`spark_standardized_kmeans`."""
    if model.standardizer is not None:
        return spark_standardized_kmeans(model)
    from pyspark import SparkContext
    from pyspark.ml.clustering import KMeansModel as SparkKMeansModel

    sc = SparkContext._active_spark_context
    jvm = sc._jvm
    centers = sc._gateway.new_array(jvm.org.apache.spark.mllib.linalg.Vector, len(model.centers))
    for j, center in enumerate(model.centers):
        centers[j] = jvm.org.apache.spark.mllib.linalg.Vectors.dense(_jvm_doubles(sc, center))
    summary = model.summary
    old = jvm.org.apache.spark.mllib.clustering.KMeansModel(
        centers,
        model.distance,
        float(summary.cost) if summary else 0.0,
        int(summary.n_iter) if summary else 0,
    )
    java_model = jvm.org.apache.spark.ml.clustering.KMeansModel(_uid("KMeans"), old)
    spark_model = SparkKMeansModel(java_model)
    params = model.params
    spark_model.set(spark_model.k, len(model.centers))
    spark_model.set(spark_model.distanceMeasure, model.distance)
    for ours, theirs in (("max_iter", "maxIter"), ("init_steps", "initSteps")):
        if isinstance(params.get(ours), int):
            spark_model.set(spark_model.getParam(theirs), params[ours])
    if isinstance(params.get("tol"), (int, float)):
        spark_model.set(spark_model.tol, float(params["tol"]))
    if isinstance(params.get("seed"), int):
        spark_model.set(spark_model.seed, params["seed"])
    if params.get("init") in ("k-means||", "random"):  # Spark has no k-means++ init mode
        spark_model.set(spark_model.initMode, params["init"])
    return spark_model


def spark_standardized_kmeans(model: KMeansModel):
    """A standardised k-means model as a pyspark.ml ``PipelineModel``: a ``StandardScalerModel``
    (withMean, withStd: our mean and population std, ``features`` → :data:`SCALED_COLUMN`) then a
    ``KMeansModel`` on the standardised centres, so Spark assigns rows as we do."""
    from pyspark import SparkContext
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import StandardScalerModel

    scaler = model.standardizer
    sc = SparkContext._active_spark_context
    vectors = sc._jvm.org.apache.spark.ml.linalg.Vectors
    java_scaler = sc._jvm.org.apache.spark.ml.feature.StandardScalerModel(
        _uid("stdScal"),
        vectors.dense(_jvm_doubles(sc, scaler.scale)),
        vectors.dense(_jvm_doubles(sc, scaler.mean)),
    )
    scaler_stage = StandardScalerModel(java_scaler)
    scaler_stage.set(scaler_stage.withMean, True)
    scaler_stage.set(scaler_stage.withStd, True)
    scaler_stage.set(scaler_stage.inputCol, "features")
    scaler_stage.set(scaler_stage.outputCol, SCALED_COLUMN)
    # the centres in standardised units: the pipeline's k-means stage sees standardised rows
    scaled = dataclasses.replace(
        model, centers=scaler.apply(model.centers), mean=None, scale=None, sample=None
    )
    kmeans_stage = spark_kmeans(scaled)
    kmeans_stage.set(kmeans_stage.featuresCol, SCALED_COLUMN)
    return PipelineModel([scaler_stage, kmeans_stage])


def _sidecar(kind: str, model, source: str | None) -> bytes:
    document = {
        "kind": kind,
        "features": model.features,
        "label": getattr(model, "label", None),
        "weight_col": getattr(model, "weight_col", None),
        "exported_from": source,
        "format_version": 1,
    }
    return persist.dumps(document).encode()


def write_spark_ml(model, output: str, overwrite: bool = False, source: str | None = None) -> str:
    """Save ``model`` (ours) as a Spark ML model directory at ``output``, atomically.

    Returns the Spark ML class name written.
    """
    if isinstance(model, LinearRegressionModel):
        kind, spark_model = models.LINREG_KIND, spark_linreg(model)
    elif isinstance(model, KMeansModel):
        kind, spark_model = models.KMEANS_KIND, spark_kmeans(model)
    else:
        raise InputError(f"cannot export a {type(model).__name__} as a Spark ML model")
    fs = filesystem.current()
    with persist.spark_output(output, overwrite) as tmp:
        spark_model.write().save(tmp)
        fs.write_bytes(fs.child(tmp, SIDECAR), _sidecar(kind, model, source), overwrite=False)
    standardized = isinstance(model, KMeansModel) and model.standardizer is not None
    return PIPELINE_CLASS if standardized else CLASSES[kind]
