"""The linreg CLI end to end: fit → predict → evaluate, and the bad-input matrix (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality

from sparkml_jobs.io import models
from tests.conftest import DATA, ROOT
from tests.e2e.helpers import run_cli

DIAMONDS = str(DATA / "diamonds.csv")


def test_fit_predict_evaluate(spark, tmp_path, capsys):
    model_dir, preds, metrics = tmp_path / "model", tmp_path / "preds", tmp_path / "m.json"
    code, out, _ = run_cli(
        capsys,
        "linreg",
        "fit",
        "--input",
        DIAMONDS,
        "--label",
        "price",
        "--output",
        str(model_dir),
        "--metrics-json",
        str(metrics),
    )
    assert code == 0
    assert "carat" in out and "R²" in out
    document = json.loads((model_dir / "model.json").read_text())
    assert document["kind"] == "linear_regression" and document["format_version"] == 1
    assert document["features"] == ["carat", "depth", "table", "x", "y", "z"]
    assert len(document["summary"]["std_errors"]) == 7  # intercept first
    assert json.loads(metrics.read_text())["r2"] == pytest.approx(document["summary"]["r2"])

    frame = pd.read_csv(DIAMONDS)
    ref = np.linalg.lstsq(
        np.column_stack([np.ones(len(frame)), frame.iloc[:, :6]]), frame["price"], rcond=None
    )[0]
    np.testing.assert_allclose([document["intercept"], *document["coefficients"]], ref, rtol=1e-7)

    code, _, _ = run_cli(
        capsys,
        "linreg",
        "predict",
        "--model",
        str(model_dir),
        "--input",
        DIAMONDS,
        "--output",
        str(preds),
    )
    assert code == 0 and (preds / "_SUCCESS").exists()
    got = spark.read.parquet(str(preds))
    assert got.columns == ["carat", "depth", "table", "x", "y", "z", "price", "prediction"]
    assert got.count() == len(frame)
    model = models.load_linreg(str(model_dir))
    head = frame.head(200).copy()
    head["prediction"] = model.predict_array(head.iloc[:, :6].to_numpy())
    expected = spark.createDataFrame(
        head.astype(str).drop(columns="prediction").assign(prediction=head["prediction"])
    )
    # input columns keep their CSV (string) type; order is the file's order
    assert_approx_df_equality(got.limit(200), expected, precision=1e-6)

    code, out, _ = run_cli(
        capsys,
        "linreg",
        "evaluate",
        "--model",
        str(model_dir),
        "--input",
        DIAMONDS,
        "--label",
        "price",
    )
    assert code == 0
    metrics = json.loads(out)
    assert metrics["n"] == len(frame)
    assert metrics["r2"] == pytest.approx(document["summary"]["r2"], rel=1e-9)


def test_existing_output_refused_then_overwritten(spark, tmp_path, capsys):
    out = tmp_path / "model"
    args = [
        "linreg",
        "fit",
        "--input",
        str(DATA / "diamonds.csv"),
        "--label",
        "price",
        "--features",
        "carat,depth",
        "--output",
        str(out),
    ]
    assert run_cli(capsys, *args)[0] == 0
    before = (out / "model.json").read_text()
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "already holds a complete output" in err and "--overwrite" in err
    assert (out / "model.json").read_text() == before
    code, _, _ = run_cli(
        capsys, *args[:-4], "--features", "carat", "--output", str(out), "--overwrite"
    )
    assert code == 0 and json.loads((out / "model.json").read_text())["features"] == ["carat"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary siblings left


BAD_CSV = {
    "empty.csv": ("", "empty input"),
    "header_only.csv": ("a,b,y\n", "no data rows"),
    "ragged.csv": ("a,b,y\n1,2,3\n4,5\n6,7,8\n", "1 of 3 rows have a different number of fields"),
    "text.csv": ("a,b,y\n1,2,3\n4,abc,6\n7,8,9\n", "column 'b' has 1 non-numeric (e.g. 'abc')"),
    "blank.csv": ("a,b,y\n1,2,3\n4,,6\n", "column 'b' has 1 missing (empty)"),
    "nan.csv": ("a,b,y\n1,2,3\n4,NaN,6\n7,8,9\n", "column 'b' has 1 NaN/infinite"),
    "inf.csv": ("a,b,y\n1,2,3\n4,5,inf\n7,8,9\n", "column 'y' has 1 NaN/infinite"),
}


@pytest.mark.parametrize("name", sorted(BAD_CSV))
def test_bad_csv_exits_2_with_one_line_and_no_output(spark, tmp_path, capsys, name):
    text, expected = BAD_CSV[name]
    source = tmp_path / name
    source.write_text(text)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", str(source), "--label", "y", "--output", str(out)
    )
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("sparkml-jobs: error")]
    assert len(lines) == 1 and expected in lines[0], err
    assert name in lines[0] and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input", "/nonexistent/x.csv", "--label", "price"], "input path not found"),
        (["--input", DIAMONDS, "--label", "nope"], "unknown label column 'nope'"),
        (["--input", DIAMONDS, "--label", "price", "--features", "carat,zz"], "'zz'"),
        (["--input", DIAMONDS, "--label", "price", "--format", "xls"], "invalid choice: 'xls'"),
        (["--input", DIAMONDS, "--label", "price", "--features", "x,y,x"], "lists 'x' twice"),
        (["--input", DIAMONDS, "--label", "price", "--reg-param", "-1"], "--reg-param"),
        (["--input", DIAMONDS, "--label", "price", "--weight-col", "price"], "also the label"),
        (["--input", DIAMONDS, "--label", "price", "--cv", "1"], "argument --cv"),
        (["--input", DIAMONDS, "--label", "price", "--partitions", "0"], "--partitions"),
        (["--input", DIAMONDS], "needs --label"),
        (["--input", DIAMONDS, "--label", "price", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_usage_exits_2(spark, tmp_path, capsys, args, expected):
    code, _, err = run_cli(capsys, "linreg", "fit", *args, "--output", str(tmp_path / "o"))
    assert code == 2 and expected in err, err
    assert not (tmp_path / "o").exists()


def test_singular_design_names_columns(spark, tmp_path, capsys):
    source = tmp_path / "dup.csv"
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    pd.DataFrame({"a": a, "b": rng.normal(size=40), "a2": 2 * a, "y": a + 1}).to_csv(
        source, index=False
    )
    base = ["linreg", "fit", "--input", str(source), "--label", "y"]
    code, _, err = run_cli(capsys, *base, "--output", str(tmp_path / "o"))
    assert code == 2 and "'a2' is a linear combination of 'a'" in err
    code, out, _ = run_cli(capsys, *base, "--output", str(tmp_path / "o"), "--on-singular", "drop")
    assert code == 0 and "dropped (aliased) columns: a2" in out
    assert json.loads((tmp_path / "o" / "model.json").read_text())["coefficients"][2] is None
    code, _, _ = run_cli(capsys, *base, "--output", str(tmp_path / "r"), "--reg-param", "0.01")
    assert code == 0


def test_model_problems_exit_2(spark, tmp_path, capsys):
    base = ["linreg", "predict", "--input", DIAMONDS, "--output", str(tmp_path / "p")]
    code, _, err = run_cli(capsys, *base, "--model", str(tmp_path / "missing"))
    assert code == 2 and "model directory not found" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "_SUCCESS").touch()
    (broken / "model.json").write_text("{not json")
    code, _, err = run_cli(capsys, *base, "--model", str(broken))
    assert code == 2 and "not valid JSON" in err
    (broken / "model.json").write_text(
        json.dumps(
            {
                "kind": "linear_regression",
                "format_version": 1,
                "features": ["carat", "nope"],
                "label": "price",
                "intercept": 0.0,
                "coefficients": [1.0, 2.0],
                "params": {},
            }
        )
    )
    code, _, err = run_cli(capsys, *base, "--model", str(broken))
    assert code == 2 and "'nope'" in err
    (broken / "model.json").write_text(
        json.dumps(
            {
                "kind": "linear_regression",
                "format_version": 1,
                "features": ["carat"],
                "label": "price",
                "intercept": 0.0,
                "coefficients": ["__import__('os')"],
                "params": {},
            }
        )
    )
    code, _, err = run_cli(capsys, *base, "--model", str(broken))
    assert code == 2 and "non-numeric value" in err
    assert not (tmp_path / "p").exists()


def test_formats_match_the_readers():
    from sparkml_jobs import cli
    from sparkml_jobs.io import sources

    assert cli.FORMATS == sources.FORMATS


def test_typed_config_file_with_flags_overriding(spark, tmp_path, capsys):
    """Typed TOML values (booleans, lists, numbers) fit the model the same flags would."""
    out = tmp_path / "from_config"
    config = tmp_path / "job.toml"
    config.write_text(
        f'input = "{DIAMONDS}"\nlabel = "price"\nfeatures = ["carat", "depth", "table"]\n'
        f'output = "{out}"\nno-intercept = true\nreg-param = 0.0\nsolver = "tsqr"\n'
        f'metrics-json = "{tmp_path / "m.json"}"\n'
    )
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--config", str(config), "--features", "carat,depth"
    )
    assert code == 0, err
    doc = json.loads((out / "model.json").read_text())
    assert doc["features"] == ["carat", "depth"] and doc["intercept"] == 0.0
    frame = pd.read_csv(DIAMONDS)
    ref = np.linalg.lstsq(frame[["carat", "depth"]], frame["price"], rcond=None)[0]
    np.testing.assert_allclose(doc["coefficients"], ref, rtol=1e-9)
    before = (out / "model.json").read_text()

    # a quoted boolean is refused, naming the key, and the existing model stays as it was
    config.write_text(config.read_text() + 'overwrite = "false"\n')
    code, _, err = run_cli(capsys, "linreg", "fit", "--config", str(config))
    assert code == 2 and "'overwrite' is an on/off flag" in err, err
    assert (out / "model.json").read_text() == before
    config.write_text('colour = "blue"\n')
    code, _, err = run_cli(capsys, "linreg", "fit", "--config", str(config))
    assert code == 2 and "unknown option(s) 'colour'" in err


def test_evaluate_prints_the_metrics_file(spark, tmp_path, capsys):
    """A constant label has no R²: stdout and --metrics-json both say null, never NaN."""
    source = tmp_path / "flat.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [5.0, 5.0, 5.0, 5.0]}).to_csv(source, index=False)
    model_dir = tmp_path / "model"
    args = ["--input", str(source), "--label", "y"]
    assert run_cli(capsys, "linreg", "fit", *args, "--output", str(model_dir))[0] == 0
    metrics = tmp_path / "m.json"
    code, out, err = run_cli(
        capsys, "linreg", "evaluate", "--model", str(model_dir), *args, "--metrics-json", metrics
    )
    assert code == 0, err
    assert out == metrics.read_text()

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the printed metrics")

    printed = json.loads(out, parse_constant=refuse)
    assert printed["r2"] is None and printed["n"] == 4
    assert printed["mse"] == pytest.approx(0.0, abs=1e-20)


def test_console_script_subprocess(tmp_path):
    """The installed console script in fresh processes (both at once: the JVM start-ups overlap):
    exit codes and one-line errors."""
    exe = Path(sys.executable).parent / "sparkml-jobs"
    out = tmp_path / "model"
    started = [
        subprocess.Popen(
            [str(exe), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for argv in (
            ["linreg", "fit", "--input", DIAMONDS, "--label", "price", "--output", str(out),
             "--master", "local[2]"],
            ["linreg", "fit", "--input", str(tmp_path / "none.csv"), "--label", "y",
             "--output", str(tmp_path / "o")],
        )
    ]  # fmt: skip
    (done_out, done_err), (_, bad_err) = (proc.communicate(timeout=300) for proc in started)
    assert started[0].returncode == 0, done_err
    assert "statistics: 53940 rows" in done_err and "carat" in done_out
    assert json.loads((out / "model.json").read_text())["summary"]["n"] == 53940
    assert started[1].returncode == 2
    assert bad_err.strip().splitlines()[-1].startswith("sparkml-jobs: error: input path not found")
    assert "Traceback" not in bad_err


def test_parquet_and_libsvm_inputs_give_the_csv_model(spark, tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    y = x @ [1.0, -2.0, 0.5] + 1 + rng.normal(size=300) * 0.1
    frame = pd.DataFrame({"f1": x[:, 0], "f2": x[:, 1], "f3": x[:, 2], "label": y})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    with open(tmp_path / "d.libsvm", "w") as handle:
        for row, target in zip(x, y, strict=True):
            cells = " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row))
            handle.write(f"{float(target)!r} {cells}\n")
    docs = {}
    for fmt, name in (("csv", "d.csv"), ("parquet", "d.parquet"), ("libsvm", "d.libsvm")):
        out = tmp_path / f"m-{fmt}"
        code, _, err = run_cli(
            capsys,
            "linreg",
            "fit",
            "--input",
            str(tmp_path / name),
            "--format",
            fmt,
            "--label",
            "label",
            "--output",
            str(out),
        )
        assert code == 0, err
        docs[fmt] = json.loads((out / "model.json").read_text())
    assert docs["libsvm"]["features"] == ["f1", "f2", "f3"]
    for fmt in ("parquet", "libsvm"):
        np.testing.assert_allclose(
            docs[fmt]["coefficients"], docs["csv"]["coefficients"], rtol=1e-12
        )
        np.testing.assert_allclose(
            docs[fmt]["summary"]["std_errors"], docs["csv"]["summary"]["std_errors"], rtol=1e-10
        )


def test_local_parquet_fits_numbers_directly_and_codes_a_boolean_as_a_category(
    spark, tmp_path, capsys
):
    """A Parquet of numbers is planned from its footers; a boolean feature still takes the
    formula path (a treatment dummy), as with Spark's reader. Both equal ``np.linalg.lstsq``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(11)
    x, flag = rng.normal(size=500), rng.random(500) < 0.3
    y = 1.5 + 2.0 * x - 0.7 * flag + 0.1 * rng.normal(size=500)
    path = tmp_path / "table"
    path.mkdir()
    table = pa.table({"x": x, "n": np.arange(500) % 7, "flag": flag, "y": y})
    pq.write_table(table.slice(0, 200), path / "part-0.parquet")
    pq.write_table(table.slice(200), path / "part-1.parquet")
    (path / "_SUCCESS").write_text("")
    fits = {}
    for name, features in (("numbers", "x,n"), ("boolean", "x,flag")):
        out = tmp_path / name
        code, _, err = run_cli(
            capsys,
            "linreg", "fit", "--input", str(path), "--format", "parquet", "--label", "y",
            "--features", features, "--output", str(out),
        )  # fmt: skip
        assert code == 0, err
        fits[name] = json.loads((out / "model.json").read_text())
    numbers = np.column_stack([np.ones(500), x, np.arange(500) % 7])
    want = np.linalg.lstsq(numbers, y, rcond=None)[0]
    got = fits["numbers"]
    assert got["features"] == ["x", "n"] and got["summary"]["n"] == 500
    np.testing.assert_allclose([got["intercept"], *got["coefficients"]], want, rtol=1e-10)
    coded = fits["boolean"]
    assert coded["features"] == ["flag[T.True]", "x"]
    want = np.linalg.lstsq(np.column_stack([np.ones(500), flag, x]), y, rcond=None)[0]
    np.testing.assert_allclose([coded["intercept"], *coded["coefficients"]], want, rtol=1e-10)
