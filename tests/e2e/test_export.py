"""Spark ML interop end to end: ``export --to spark-ml`` opens in pyspark.ml and predicts what we
predict; Spark ML models come back as ``predict --model`` and ``kmeans fit --init spark-ml:DIR``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.ml.clustering import KMeans as SparkKMeans
from pyspark.ml.clustering import KMeansModel as SparkKMeansModel
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import LinearRegression as SparkLinearRegression
from pyspark.ml.regression import LinearRegressionModel as SparkLinearRegressionModel
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.cluster import KMeans as SKMeans

from tests.conftest import DATA
from tests.e2e.helpers import IRIS_FEATURES, run_cli

IRIS = str(DATA / "iris.csv")
FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory):
    """300 rows, y = 1.5 + 2a - 0.5b + 0.25c + noise, with an id column and row weights."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 3))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.insert(0, "id", np.arange(300))
    frame["y"] = 1.5 + x @ [2.0, -0.5, 0.25] + rng.normal(scale=0.1, size=300)
    frame["w"] = rng.uniform(0.5, 2.0, size=300)
    path = tmp_path_factory.mktemp("export") / "reg.csv"
    frame.to_csv(path, index=False)
    return path, frame


def nullable(frame):
    """``frame`` with every column nullable (Spark ML's outputs are not; our Parquet's are)."""
    fields = [T.StructField(f.name, f.dataType, True) for f in frame.schema.fields]
    return frame.sparkSession.createDataFrame(frame.rdd, T.StructType(fields))


def ours_read(spark, path):
    """Our predictions (the CSV's columns as read: text) with ``id`` as the integer it is."""
    return spark.read.parquet(str(path)).withColumn("id", F.col("id").cast("int"))


def assembled(spark, path, features):
    frame = spark.read.csv(str(path), header=True, inferSchema=True)
    return VectorAssembler(inputCols=features, outputCol="features").transform(frame)


def fit_linreg(capsys, csv, out, *extra):
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", csv, "--label", "y", "--features", "a,b,c",
        "--output", out, *extra,
    )  # fmt: skip
    assert code == 0, err


def test_linreg_export_opens_in_spark_ml_and_predicts_as_ours(
    spark, tmp_path, capsys, regression_csv
):
    csv, frame = regression_csv
    ours, exported, preds = tmp_path / "model", tmp_path / "spark-model", tmp_path / "preds"
    fit_linreg(capsys, csv, ours, "--weight-col", "w")
    code, out, err = run_cli(
        capsys, "export", "--model", ours, "--to", "spark-ml", "--output", exported
    )
    assert code == 0, err
    assert "LinearRegressionModel written" in out and (exported / "_SUCCESS").exists()
    doc = json.loads((ours / "model.json").read_text())

    loaded = SparkLinearRegressionModel.load(str(exported))
    assert loaded.coefficients.toArray().tolist() == doc["coefficients"]  # bit for bit
    assert loaded.intercept == doc["intercept"]
    assert loaded.getWeightCol() == "w" and loaded.getLabelCol() == "y"
    assert loaded.getFitIntercept() is True and loaded.getStandardization() is False
    sidecar = json.loads((exported / "sparkml_jobs.json").read_text())
    assert sidecar["features"] == FEATURES and sidecar["kind"] == "linear_regression"

    # Spark's transform vs our CLI predict, and both vs numpy's X·β + b
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", ours, "--input", csv, "--output", preds
    )
    assert code == 0, err
    theirs = nullable(loaded.transform(assembled(spark, csv, FEATURES)).select("id", "prediction"))
    mine = ours_read(spark, preds).select("id", "prediction")
    assert_approx_df_equality(theirs, mine, 1e-12, ignore_row_order=True)
    expected = frame[FEATURES].to_numpy() @ doc["coefficients"] + doc["intercept"]
    got = theirs.toPandas().sort_values("id")["prediction"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)

    # round trip: the exported directory is a model our predict takes
    back = tmp_path / "preds-back"
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", exported, "--input", csv, "--output", back
    )
    assert code == 0, err
    assert_df_equality(
        ours_read(spark, back).select("id", "prediction"), mine, ignore_row_order=True
    )


def test_kmeans_export_round_trip(spark, tmp_path, capsys):
    ours, exported = tmp_path / "model", tmp_path / "spark-model"
    init = pd.read_csv(IRIS).iloc[[0, 50, 100]]
    init.to_csv(tmp_path / "init.csv", index=False)
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", IRIS, "--k", "3", "--init", tmp_path / "init.csv",
        "--tol", "0", "--max-iter", "100", "--seed", "5", "--output", ours,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "export", "--model", ours, "--to", "spark-ml", "--output", exported
    )
    assert code == 0, err
    doc = json.loads((ours / "model.json").read_text())
    loaded = SparkKMeansModel.load(str(exported))
    assert [c.tolist() for c in loaded.clusterCenters()] == doc["centers"]
    assert loaded.getK() == 3 and loaded.getSeed() == 5 and loaded.getMaxIter() == 100

    # Spark's assignment vs ours, and vs scikit-learn's predict with the same centres
    preds, back = tmp_path / "preds", tmp_path / "preds-back"
    for model, out in ((ours, preds), (exported, back)):
        code, _, err = run_cli(
            capsys, "kmeans", "predict", "--model", model, "--input", IRIS, "--output", out
        )
        assert code == 0, err
    mine = spark.read.parquet(str(preds))
    theirs = loaded.transform(assembled(spark, IRIS, IRIS_FEATURES))
    assert [r.prediction for r in theirs.collect()] == [r.cluster for r in mine.collect()]
    reference = SKMeans(3, init=np.array(doc["centers"]), n_init=1, max_iter=1)
    reference.cluster_centers_ = np.array(doc["centers"])
    reference._n_threads = 1
    x = pd.read_csv(IRIS)[IRIS_FEATURES].to_numpy()
    assert [r.cluster for r in mine.collect()] == reference.predict(x).tolist()
    assert_df_equality(spark.read.parquet(str(back)), mine)  # round trip: same rows, bit for bit


def test_fit_from_spark_ml_centres_equals_scikit_learn(spark, tmp_path, capsys):
    """A KMeansModel trained by Spark ML (2 iterations: not converged) seeds our fit."""
    frame = assembled(spark, IRIS, IRIS_FEATURES)
    spark_model = SparkKMeans(k=3, maxIter=2, seed=11).fit(frame)
    spark_dir, ours = tmp_path / "spark-trained", tmp_path / "model"
    spark_model.write().save(str(spark_dir))
    start = np.array(spark_model.clusterCenters())
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", IRIS, "--k", "3", "--init", f"spark-ml:{spark_dir}",
        "--tol", "0", "--max-iter", "100", "--output", ours,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((ours / "model.json").read_text())
    x = pd.read_csv(IRIS)[IRIS_FEATURES].to_numpy()
    ref = SKMeans(3, init=start, n_init=1, tol=0, max_iter=100, algorithm="lloyd").fit(x)
    np.testing.assert_allclose(doc["centers"], ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(doc["summary"]["cost"], ref.inertia_, rtol=1e-9)

    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", IRIS, "--k", "4", "--init", f"spark-ml:{spark_dir}",
        "--output", tmp_path / "k4",
    )  # fmt: skip
    assert code == 2 and "has 3 centres, k=4" in err
    assert not (tmp_path / "k4").exists()


def test_predict_with_a_spark_trained_linear_model(spark, tmp_path, capsys, regression_csv):
    csv, frame = regression_csv
    data = assembled(spark, csv, FEATURES).withColumnRenamed("y", "label")
    spark_model = SparkLinearRegression(solver="normal").fit(data)
    spark_dir, preds = tmp_path / "spark-trained", tmp_path / "preds"
    spark_model.write().save(str(spark_dir))
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", spark_dir, "--input", csv, "--output", preds
    )
    assert code == 2 and "pass --features with 3 column names" in err
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", spark_dir, "--input", csv, "--features",
        "a,b,c", "--output", preds,
    )  # fmt: skip
    assert code == 0, err
    mine = ours_read(spark, preds).select("id", "prediction")
    theirs = nullable(spark_model.transform(data).select("id", "prediction"))
    assert_approx_df_equality(mine, theirs, 1e-12, ignore_row_order=True)


def test_refusals(spark, tmp_path, capsys, regression_csv):
    csv, _ = regression_csv
    ours = tmp_path / "model"
    fit_linreg(capsys, csv, ours)
    exported = tmp_path / "spark"
    code, _, err = run_cli(
        capsys, "export", "--model", ours, "--to", "spark-ml", "--output", exported
    )
    assert code == 0, err

    # a Spark ML linear model is no k-means model
    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", exported, "--input", csv, "--output", tmp_path / "p"
    )
    assert code == 2 and "is a Spark ML LinearRegressionModel, not a KMeansModel" in err
    # the output exists already
    code, _, err = run_cli(
        capsys, "export", "--model", ours, "--to", "spark-ml", "--output", exported
    )
    assert code == 2 and "--overwrite" in err
    # exporting an export
    code, _, err = run_cli(
        capsys, "export", "--model", exported, "--to", "spark-ml", "--output", tmp_path / "again"
    )
    assert code == 2 and "already a Spark ML model directory" in err
    # a formula model: its encoding is not (yet) expressible as Spark ML stages
    formula = tmp_path / "formula-model"
    formula.mkdir()
    doc = json.loads((ours / "model.json").read_text())
    (formula / "model.json").write_text(json.dumps({**doc, "formula": "y ~ a + C(b)"}))
    (formula / "_SUCCESS").write_text("")
    code, _, err = run_cli(
        capsys, "export", "--model", formula, "--to", "spark-ml", "--output", tmp_path / "f"
    )
    assert code == 2 and "the formula 'y ~ a + C(b)'" in err
    assert len(err.strip().splitlines()) == 1
    for refused in ("again", "f", "p"):
        assert not (tmp_path / refused).exists()
