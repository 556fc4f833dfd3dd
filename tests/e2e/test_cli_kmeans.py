"""The k-means CLI end to end: fit → predict, and its bad inputs (exit 2, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality
from sklearn.cluster import KMeans as SKMeans

from tests.conftest import DATA
from tests.e2e.helpers import run_cli

IRIS = str(DATA / "iris.csv")


def test_fit_with_init_file_then_predict(spark, tmp_path, capsys):
    frame = pd.read_csv(IRIS)
    x = frame.to_numpy(float)
    init = frame.iloc[[0, 50, 100]]
    init_file = tmp_path / "init.csv"
    init.to_csv(init_file, index=False)
    model_dir, preds = tmp_path / "model", tmp_path / "preds"
    code, out, err = run_cli(
        capsys,
        "kmeans",
        "fit",
        "--input",
        IRIS,
        "--k",
        "3",
        "--init",
        str(init_file),
        "--tol",
        "0",
        "--max-iter",
        "100",
        "--output",
        str(model_dir),
        "--metrics-json",
        str(tmp_path / "m.json"),
    )
    assert code == 0, err
    assert "iteration 1: cost" in err and "cluster" in out
    doc = json.loads((model_dir / "model.json").read_text())
    assert (
        doc["kind"] == "kmeans" and doc["format_version"] == 1 and doc["params"]["init"] == "given"
    )
    ref = SKMeans(
        3, init=init.to_numpy(float), n_init=1, tol=0, max_iter=100, algorithm="lloyd"
    ).fit(x)
    np.testing.assert_allclose(doc["centers"], ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(doc["summary"]["cost"], ref.inertia_, rtol=1e-9)
    assert doc["summary"]["cluster_sizes"] == np.bincount(ref.labels_).tolist()
    assert doc["summary"]["converged"] is True
    assert len(doc["summary"]["history"]) == doc["summary"]["n_iter"]
    assert json.loads((tmp_path / "m.json").read_text())["cost"] == doc["summary"]["cost"]

    code, _, err = run_cli(
        capsys,
        "kmeans",
        "predict",
        "--model",
        str(model_dir),
        "--input",
        IRIS,
        "--output",
        str(preds),
    )
    assert code == 0, err
    got = spark.read.parquet(str(preds))
    assert got.columns == [*frame.columns, "cluster", "distance"]
    centers = np.array(doc["centers"])
    d = np.sqrt(((x[:, None] - centers[None]) ** 2).sum(-1))
    expected = frame.astype(str).assign(cluster=d.argmin(1).astype("int32"), distance=d.min(1))
    assert_approx_df_equality(
        got, spark.createDataFrame(expected, schema=got.schema), precision=1e-9
    )


def test_init_file_columns_are_matched_by_name(spark, tmp_path, capsys):
    """A centres file with the features in another order gives the same fit (sklearn's)."""
    frame = pd.read_csv(IRIS)
    init = frame.iloc[[0, 50, 100]]
    init_file = tmp_path / "init.csv"
    init[list(reversed(frame.columns))].to_csv(init_file, index=False)
    out = tmp_path / "model"
    args = ["--input", IRIS, "--k", "3", "--init", init_file, "--tol", "0", "--max-iter", "100"]
    code, _, err = run_cli(capsys, "kmeans", "fit", *args, "--output", out)
    assert code == 0, err
    ref = SKMeans(
        3, init=init.to_numpy(float), n_init=1, tol=0, max_iter=100, algorithm="lloyd"
    ).fit(frame.to_numpy(float))
    centers = json.loads((out / "model.json").read_text())["centers"]
    np.testing.assert_allclose(centers, ref.cluster_centers_, rtol=1e-9)


def test_default_init_is_seeded(spark, tmp_path, capsys):
    args = ["kmeans", "fit", "--input", IRIS, "--k", "3", "--seed", "5"]
    assert run_cli(capsys, *args, "--output", str(tmp_path / "a"))[0] == 0
    assert run_cli(capsys, *args, "--output", str(tmp_path / "b"))[0] == 0
    a = json.loads((tmp_path / "a" / "model.json").read_text())
    b = json.loads((tmp_path / "b" / "model.json").read_text())
    assert a["centers"] == b["centers"] and a["summary"] == b["summary"]
    assert a["summary"]["cost"] < 80  # iris, k=3: the known optimum is 78.85


@pytest.mark.parametrize(
    ("extra", "files", "expected"),
    [
        (["--k", "0"], {}, "argument --k: must be an integer >= 1"),
        (["--k", "3", "--max-iter", "0"], {}, "argument --max-iter: must be an integer >= 1"),
        (["--k", "3", "--init", "nowhere"], {}, "--init must be one of"),
        (["--k", "3", "--init", "{init}"], {"init": "a,b\n1,2\n3,4\n5,6\n"}, "has 2 columns"),
        (
            ["--k", "3", "--init", "{init}"],
            {"init": "sepal_length,sepal_width,petal_length,petal_width\n1,2,3,4\n"},
            "has 1 rows",
        ),
        (["--k", "3", "--features", "sepal_length,colour"], {}, "'colour'"),
        (
            ["--k", "3", "--init", "{init}"],
            {"init": "sepal_length,sepal_width,colour,petal_width\n1,2,3,4\n5,6,7,8\n1,3,5,7\n"},
            "unknown column(s) 'colour'; missing 'petal_length'",
        ),
        (
            ["--k", "2", "--init", "{init}"],
            {"init": "5.1,3.5,1.4,0.2\n7.0,3.2,4.7,1.4\n6.3,3.3,6.0,2.5\n"},
            "the first line must be a header",
        ),
        (
            ["--k", "2", "--init", "{init}"],
            {"init": "sepal_length,sepal_width,petal_length,petal_width\n1,2,3,4\n5,6,7\n"},
            "a row does not have 4 fields",
        ),
        (["--k", "3", "--tol", "-1"], {}, "argument --tol"),
        (["--k", "3", "--partitions", "0"], {}, "argument --partitions"),
        (["--k", "3", "--format", "xml"], {}, "invalid choice: 'xml'"),
    ],
)
def test_bad_kmeans_input_exits_2(spark, tmp_path, capsys, extra, files, expected):
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text)
    extra = [e.format(init=tmp_path / "init.csv") for e in extra]
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "kmeans", "fit", "--input", IRIS, *extra, "--output", str(out))
    assert code == 2 and expected in err, err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,2\n1,2\n3,4\n", "k=3 is greater than the number of distinct points (2)"),
        ("a,b\n1,2\nNaN,2\n3,4\n5,5\n", "column 'a' has 1 NaN/infinite"),
        ("a,b\n1,2\nfoo,2\n3,4\n5,5\n", "column 'a' has 1 non-numeric"),
    ],
)
def test_bad_kmeans_data_exits_2(spark, tmp_path, capsys, text, expected):
    source = tmp_path / "d.csv"
    source.write_text(text)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", str(source), "--k", "3", "--output", str(out)
    )
    assert code == 2 and expected in err, err
    assert not out.exists()


def test_predict_with_mismatched_features_exits_2(spark, tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert (
        run_cli(capsys, "kmeans", "fit", "--input", IRIS, "--k", "2", "--output", str(model_dir))[0]
        == 0
    )
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run_cli(
        capsys,
        "kmeans",
        "predict",
        "--model",
        str(model_dir),
        "--input",
        str(other),
        "--output",
        str(tmp_path / "p"),
    )
    assert code == 2 and "sepal_length" in err
    assert not (tmp_path / "p").exists()


def test_standardize_from_the_command_line(spark, tmp_path, capsys):
    """--standardize equals scikit-learn's StandardScaler + Lloyd from the same centres."""
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(IRIS)
    frame["petal_length"] *= 1000.0  # one feature on a much larger scale
    data = tmp_path / "iris_scaled.csv"
    frame.to_csv(data, index=False)
    init = tmp_path / "init.csv"
    frame.iloc[[0, 50, 100]].to_csv(init, index=False)
    code, _, err = run_cli(
        capsys,
        "kmeans",
        "fit",
        "--input",
        data,
        "--k",
        "3",
        "--init",
        init,
        "--tol",
        "0",
        "--max-iter",
        "100",
        "--standardize",
        "--output",
        tmp_path / "m",
    )
    assert code == 0, err
    centres = np.array(json.loads((tmp_path / "m" / "model.json").read_text())["centers"])
    scaler = StandardScaler().fit(frame.to_numpy(float))
    oracle = SKMeans(
        n_clusters=3,
        init=scaler.transform(frame.iloc[[0, 50, 100]].to_numpy(float)),
        n_init=1,
        algorithm="lloyd",
        tol=0,
        max_iter=100,
    ).fit(scaler.transform(frame.to_numpy(float)))
    np.testing.assert_allclose(
        centres, scaler.inverse_transform(oracle.cluster_centers_), rtol=1e-9, atol=1e-9
    )
