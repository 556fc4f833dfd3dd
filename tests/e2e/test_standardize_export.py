"""``export --to spark-ml`` of a k-means model fitted with ``--standardize``: a Spark ML
PipelineModel (StandardScalerModel with mean and std, then KMeansModel on the standardised
centres) that pyspark.ml loads and whose clusters equal ours and scikit-learn's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import KMeansModel as SparkKMeansModel
from pyspark.ml.feature import StandardScalerModel, VectorAssembler
from sklearn.preprocessing import StandardScaler

from tests.conftest import DATA
from tests.e2e.helpers import IRIS_FEATURES, run_cli


@pytest.fixture(scope="module")
def standardized(spark, tmp_path_factory):
    """Iris with petal_length in much larger units, a model fitted with --standardize on it."""
    root = tmp_path_factory.mktemp("standardize_export")
    frame = pd.read_csv(DATA / "iris.csv")[IRIS_FEATURES]
    frame["petal_length"] *= 1000.0
    frame.insert(0, "id", np.arange(len(frame)))
    data = root / "iris.csv"
    frame.to_csv(data, index=False)
    init = root / "init.csv"
    frame[IRIS_FEATURES].iloc[[0, 50, 100]].to_csv(init, index=False)
    from sparkml_jobs.cli import main

    args = ["kmeans", "fit", "--input", str(data), "--features", ",".join(IRIS_FEATURES)]
    args += ["--k", "3", "--init", str(init), "--standardize", "--output", str(root / "m")]
    assert main(args) == 0
    return root, data, frame


def test_export_is_a_pipeline_spark_loads_and_predicts_as_ours(spark, standardized, capsys):
    root, data, frame = standardized
    code, _, err = run_cli(
        capsys, "export", "--model", root / "m", "--to", "spark-ml", "--output", root / "sm"
    )
    assert code == 0, err
    doc = json.loads((root / "m" / "model.json").read_text())
    mean, scale = (np.array(doc["standardize"][k]) for k in ("mean", "scale"))
    centres = np.array(doc["centers"])

    pipeline = PipelineModel.load(str(root / "sm"))
    scaler, kmeans = pipeline.stages
    assert isinstance(scaler, StandardScalerModel) and isinstance(kmeans, SparkKMeansModel)
    assert scaler.getWithMean() and scaler.getWithStd()
    np.testing.assert_array_equal(scaler.mean.toArray(), mean)
    np.testing.assert_array_equal(scaler.std.toArray(), scale)

    # the oracle: scikit-learn's StandardScaler (population std, as ours) + nearest centre
    x = frame[IRIS_FEATURES].to_numpy(float)
    sk = StandardScaler().fit(x)
    np.testing.assert_allclose(mean, sk.mean_, rtol=1e-12)
    np.testing.assert_allclose(scale, sk.scale_, rtol=1e-12)
    z, zc = sk.transform(x), sk.transform(centres)
    expected = np.linalg.norm(z[:, None, :] - zc[None], axis=2).argmin(axis=1)
    raw = np.linalg.norm(x[:, None, :] - centres[None], axis=2).argmin(axis=1)
    assert (raw != expected).any()  # unscaled centres alone would give other clusters

    vectors = VectorAssembler(inputCols=IRIS_FEATURES, outputCol="features").transform(
        spark.read.csv(str(data), header=True, inferSchema=True)
    )
    spark_out = pipeline.transform(vectors).select("id", "prediction").toPandas()
    spark_out = spark_out.sort_values("id")
    np.testing.assert_array_equal(spark_out["prediction"].to_numpy(), expected)

    # the Python API's in-memory model is the same pipeline
    from sparkml_jobs.api import KMeansModel

    in_memory = KMeansModel.load(str(root / "m")).to_spark_ml()
    assert isinstance(in_memory, PipelineModel)
    api_out = in_memory.transform(vectors).select("id", "prediction").toPandas().sort_values("id")
    np.testing.assert_array_equal(api_out["prediction"].to_numpy(), expected)

    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", root / "m", "--input", data, "--output",
        root / "ours",
    )  # fmt: skip
    assert code == 0, err
    ours = pd.read_parquet(root / "ours").astype({"id": int}).sort_values("id")
    np.testing.assert_array_equal(ours["cluster"].to_numpy(), expected)

    # and the exported pipeline comes back as our model (scores as the original)
    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", root / "sm", "--input", data, "--output",
        root / "back",
    )  # fmt: skip
    assert code == 0, err
    back = pd.read_parquet(root / "back").astype({"id": int}).sort_values("id")
    np.testing.assert_array_equal(back["cluster"].to_numpy(), expected)
    np.testing.assert_allclose(back["distance"], ours["distance"], rtol=1e-12)
