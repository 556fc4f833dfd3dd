"""DataFrame-first Python API: estimators that fit a Spark DataFrame, models that transform one.

>>> from sparkml_jobs import LinearRegression, KMeans
>>> model = LinearRegression(reg_param=0.1).fit(df, label="price", features=["carat", "depth"])
>>> model.transform(df)            # df plus a "prediction" column
>>> model.save("hdfs:///models/price")
>>> LinearRegressionModel.load("hdfs:///models/price")

Parameter names follow scikit-learn / Spark ML (``fit_intercept``, ``reg_param``, ``max_iter``,
``tol``, ``k``, ``seed``). These classes wrap the block estimators of
:mod:`sparkml_jobs.regression.estimator` and :mod:`sparkml_jobs.clustering.estimator`, which stay
available for advanced use: :func:`as_blocks` gives the cached-RDD-of-numpy-blocks view of a
DataFrame, every ``fit`` also takes such a :class:`~.io.dataset.BlockData`, and ``model.model`` is
the underlying fitted model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from sparkml_jobs.clustering import estimator as km
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import models, read, sparkml
from sparkml_jobs.io.dataset import BlockData
from sparkml_jobs.regression import estimator as lr

SOURCE = "DataFrame"  # how error messages name an in-memory source


def as_blocks(
    df: DataFrame,
    *,
    label: str | None = None,
    features: list[str] | None = None,
    weight: str | None = None,
) -> BlockData:
    """``df``'s columns as a :class:`BlockData` (a lazy RDD of numpy blocks), as the CLI reads
    them: ``features`` default to every column but ``label`` and ``weight``, which must be
    numeric."""
    features = read.resolve_columns(df, SOURCE, label=label, features=features, weight=weight)
    return read.to_blocks(df, SOURCE, features=features, label=label, weight=weight)


def _blocks(data, label, features, weight, needs_label: bool) -> BlockData:
    if isinstance(data, BlockData):
        return data
    if not isinstance(data, DataFrame):
        raise InputError(f"fit takes a Spark DataFrame (or BlockData), got {type(data).__name__}")
    if needs_label and label is None:
        raise InputError("linear regression needs label='column' (or formula='y ~ ...')")
    return as_blocks(data, label=label, features=features, weight=weight)


# --------------------------------------------------------------------------- linear regression


@dataclass(frozen=True)
class LinearRegressionModel:
    """A fitted linear model. ``transform(df)`` adds ``prediction_col``; ``model`` is the
    underlying :class:`sparkml_jobs.regression.estimator.LinearRegressionModel`."""

    model: lr.LinearRegressionModel
    prediction_col: str = "prediction"

    @property
    def coefficients(self) -> np.ndarray:
        """ndarray of shape (n_features,): NaN for a column dropped as aliased."""
        return self.model.coefficients

    @property
    def intercept(self) -> float:
        return self.model.intercept

    @property
    def features(self) -> list[str]:
        return self.model.features

    @property
    def summary(self) -> lr.LinearRegressionSummary | None:
        return self.model.summary

    def transform(self, df: DataFrame) -> DataFrame:
        """Every column of ``df`` plus ``prediction_col`` (double), row order kept; a formula
        model encodes ``df`` first (a level unseen in training is refused, naming it)."""
        if self.model.design is None:
            return self.model.predict(df, output_col=self.prediction_col)
        from sparkml_jobs.io import design as encoding

        encoding.check_levels(df, self.model.design, SOURCE)
        frame, hidden = encoding.for_scoring(df, self.model.design)
        scored = self.model.predict(frame, output_col=self.prediction_col, columns=hidden)
        return scored.drop(*hidden)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for a local (rows, n_features) array, columns in ``features`` order."""
        return self.model.predict_array(np.asarray(x, dtype=np.float64))

    def evaluate(self, df: DataFrame, label: str | None = None) -> dict[str, float]:
        """n, mse, rmse, mae, r2 on labelled rows (the training label by default)."""
        label = label or self.model.label
        if label is None:
            raise InputError("evaluate needs label='column' (the model has none recorded)")
        return self.model.evaluate(as_blocks(df, label=label, features=self.features))

    def save(self, path: str, overwrite: bool = False) -> None:
        """Our model directory (``model.json``), written atomically at any Hadoop path."""
        models.save_linreg(self.model, path, overwrite)

    def save_spark_ml(self, path: str, overwrite: bool = False) -> None:
        """A directory ``pyspark.ml.regression.LinearRegressionModel.load`` opens."""
        sparkml.write_spark_ml(self.model, path, overwrite)

    def to_spark_ml(self):
        """The model as a ``pyspark.ml.regression.LinearRegressionModel`` (reads a vector column
        ``features`` holding :attr:`features` in order, e.g. from a ``VectorAssembler``)."""
        return sparkml.spark_linreg(self.model)

    @classmethod
    def load(cls, path: str, features: list[str] | None = None) -> LinearRegressionModel:
        """Load our model directory, or a Spark ML ``LinearRegressionModel`` directory
        (``features`` names the columns of its vector, unless it was exported by us)."""
        return cls(sparkml.load_linreg(path, features))


@dataclass(frozen=True, kw_only=True)
class LinearRegression:
    """Least squares / ridge on a DataFrame (exact: distributed normal equations or TSQR).

    Parameters
    ----------
    fit_intercept : bool
        Fit an (unpenalised) intercept.
    reg_param : float
        Ridge penalty λ ≥ 0 in ``(1/Σw) Σ wᵢ rᵢ² + λ‖β‖²`` (Spark ML's ``regParam`` with
        ``standardization=False``).
    solver : {"auto", "cholesky", "tsqr"}
    on_singular : {"error", "drop"}
    formula : str, optional
        ``"y ~ a + b + C(g) + a:g"`` (patsy's grammar, statsmodels' coefficient names); then
        ``fit`` takes neither ``label`` nor ``features``.
    prediction_col : str
        Name of the column ``transform`` adds.
    """

    fit_intercept: bool = True
    reg_param: float = 0.0
    solver: str = "auto"
    on_singular: str = "error"
    alias_tol: float | None = None
    formula: str | None = None
    prediction_col: str = "prediction"

    def __post_init__(self) -> None:
        self.estimator()  # validates the parameters now, with the message naming the value

    def estimator(self) -> lr.LinearRegression:
        """The block estimator these parameters describe."""
        return lr.LinearRegression(
            fit_intercept=self.fit_intercept,
            reg_param=self.reg_param,
            solver=self.solver,
            on_singular=self.on_singular,
            alias_tol=self.alias_tol,
        )

    def fit(
        self,
        data: DataFrame | BlockData,
        label: str | None = None,
        features: list[str] | None = None,
        *,
        weight: str | None = None,
    ) -> LinearRegressionModel:
        """Fit on ``data``: ``label`` and ``features`` columns (default: every other column)."""
        if self.formula is not None:
            return LinearRegressionModel(self._fit_formula(data, weight), self.prediction_col)
        blocks = _blocks(data, label, features, weight, needs_label=True)
        return LinearRegressionModel(self.estimator().fit(blocks), self.prediction_col)

    def _fit_formula(self, data, weight: str | None) -> lr.LinearRegressionModel:
        """The formula's design (levels from one scan), fitted; the model keeps the encoding."""
        from sparkml_jobs.io import design as encoding
        from sparkml_jobs.regression import formula as fm

        if not isinstance(data, DataFrame):
            raise InputError("formula= needs a Spark DataFrame to encode")
        design = encoding.fit_design(data, fm.parse(self.formula), SOURCE)
        blocks = encoding.to_data(data, design, SOURCE, weight=weight)
        estimator = dataclasses.replace(self.estimator(), fit_intercept=design.fit_intercept)
        return dataclasses.replace(estimator.fit(blocks), design=design)


# --------------------------------------------------------------------------- k-means


@dataclass(frozen=True)
class KMeansModel:
    """Fitted centres. ``transform(df)`` adds ``cluster`` (int) and ``distance``; ``model`` is
    the underlying :class:`sparkml_jobs.clustering.estimator.KMeansModel`."""

    model: km.KMeansModel

    @property
    def centers(self) -> np.ndarray:
        """ndarray of shape (k, n_features)."""
        return self.model.centers

    @property
    def features(self) -> list[str]:
        return self.model.features

    @property
    def summary(self) -> km.KMeansSummary | None:
        return self.model.summary

    @property
    def cost(self) -> float:
        """Σ w·d² to the nearest centre on the training data (scikit-learn's ``inertia_``)."""
        return self.model.summary.cost if self.model.summary else float("nan")

    def transform(self, df: DataFrame) -> DataFrame:
        """Every column of ``df`` plus ``cluster`` and ``distance``, row order kept."""
        return self.model.predict(df)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Nearest centre of every row of a local (rows, n_features) array."""
        return self.model.predict_array(np.asarray(x, dtype=np.float64))[0]

    def save(self, path: str, overwrite: bool = False) -> None:
        models.save_kmeans(self.model, path, overwrite)

    def save_spark_ml(self, path: str, overwrite: bool = False) -> None:
        """A directory ``pyspark.ml.clustering.KMeansModel.load`` opens."""
        sparkml.write_spark_ml(self.model, path, overwrite)

    def to_spark_ml(self):
        """The model as a ``pyspark.ml.clustering.KMeansModel`` (vector column ``features``)."""
        return sparkml.spark_kmeans(self.model)

    @classmethod
    def load(cls, path: str, features: list[str] | None = None) -> KMeansModel:
        """Load our model directory, or a Spark ML ``KMeansModel`` directory."""
        return cls(sparkml.load_kmeans(path, features))


@dataclass(frozen=True, kw_only=True)
class KMeans:
    """Lloyd's k-means on a DataFrame (see :class:`sparkml_jobs.clustering.estimator.KMeans`).

    Parameters
    ----------
    k : int
    max_iter : int
    tol : float
        Stop when every centre moved less than ``tol``.
    seed : int
    init : {"k-means||", "k-means++", "random"}
    initial_centers : ndarray of shape (k, n_features), optional
    distance : {"euclidean", "cosine"}
    n_init : int
    standardize : bool
        Cluster standardised features (see :class:`sparkml_jobs.clustering.estimator.KMeans`).
    """

    k: int = 2
    max_iter: int = 20
    tol: float = 1e-4
    seed: int = 0
    init: str = "k-means||"
    initial_centers: Any = None
    distance: str = "euclidean"
    n_init: int = 1
    init_steps: int = 2
    mode: str = "auto"
    standardize: bool = False

    def __post_init__(self) -> None:
        self.estimator()

    def estimator(self) -> km.KMeans:
        """The block estimator these parameters describe."""
        centers = None if self.initial_centers is None else np.asarray(self.initial_centers)
        return km.KMeans(
            k=self.k,
            max_iter=self.max_iter,
            tol=self.tol,
            seed=self.seed,
            init=self.init,
            initial_centers=centers,
            distance=self.distance,
            n_init=self.n_init,
            init_steps=self.init_steps,
            mode=self.mode,
            standardize=self.standardize,
        )

    def fit(
        self,
        data: DataFrame | BlockData,
        features: list[str] | None = None,
        *,
        weight: str | None = None,
    ) -> KMeansModel:
        """Cluster the ``features`` columns of ``data`` (default: every column but ``weight``)."""
        blocks = _blocks(data, None, features, weight, needs_label=False)
        return KMeansModel(self.estimator().fit(blocks))
