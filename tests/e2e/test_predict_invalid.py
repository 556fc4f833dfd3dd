"""--handle-invalid skip / --rejects when scoring: predict and evaluate drop the bad rows of the
scoring input (counted, written with their reason), rows read = rows scored + rows rejected;
``error`` (the default) still stops with one line naming the column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.e2e.helpers import run_cli

GOOD = 30
# (id, line) of the bad rows: ``id,a,b,g,y`` with a, b numeric features, g a category
BAD = {
    101: "101,1.5,,x,2.0",  # b missing
    102: "102,abc,1.0,x,2.0",  # a non-numeric
    103: "103,inf,2.0,y,1.0",  # a infinite
    104: "104,NaN,2.0,y,1.0",  # a NaN
    105: "105,1.0,2.0,x",  # ragged: one field short
    106: "106,1.0,2.0,x,3.0,4.0",  # ragged: one field too many
}
REASONS = {
    101: "column 'b': missing",
    102: "column 'a': non-numeric abc",
    103: "column 'a': NaN or infinite",
    104: "column 'a': NaN or infinite",
}


def _good_rows(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=GOOD), rng.normal(size=GOOD)
    g = np.where(np.arange(GOOD) % 3 == 0, "y", "x")
    y = 1 + 2 * a - 3 * b + 0.5 * (g == "y") + 0.1 * rng.normal(size=GOOD)
    return pd.DataFrame({"id": np.arange(GOOD), "a": a, "b": b, "g": g, "y": y})


def _write(frame: pd.DataFrame, path, bad: dict[int, str] | None = None):
    lines = ["id,a,b,g,y"] + [
        f"{r.id},{r.a:.17g},{r.b:.17g},{r.g},{r.y:.17g}" for r in frame.itertuples()
    ]
    bad_lines = list((bad or {}).values())
    path.write_text("\n".join(lines[:8] + bad_lines[:3] + lines[8:] + bad_lines[3:]) + "\n")
    return path


@pytest.fixture(scope="module")
def files(spark, tmp_path_factory):
    """Training file (clean), scoring file (the same kind of rows plus BAD), both models."""
    from sparkml_jobs.cli import main

    root = tmp_path_factory.mktemp("predict_invalid")
    train = _write(_good_rows(1), root / "train.csv")
    score_rows = _good_rows(2)
    score = _write(score_rows, root / "score.csv", BAD)
    common = ["--input", str(train), "--overwrite"]
    assert main(["linreg", "fit", *common, "--label", "y", "--features", "a,b",
                 "--output", str(root / "lin")]) == 0  # fmt: skip
    assert main(["linreg", "fit", *common, "--formula", "y ~ a + b + g",
                 "--output", str(root / "formula")]) == 0  # fmt: skip
    assert main(["kmeans", "fit", *common, "--features", "a,b", "--k", "3", "--seed", "1",
                 "--output", str(root / "km")]) == 0  # fmt: skip
    return root, score, score_rows


def _model(path) -> dict:
    return json.loads((path / "model.json").read_text())


def _check_account(metrics_path, scored: int, rejected: int) -> dict:
    metrics = json.loads(metrics_path.read_text())
    account = metrics["input"]
    assert account["rows_read"] == GOOD + len(BAD)
    assert account["rows_rejected"] == rejected and account["rows_used"] == scored
    if "rows" in metrics:  # predict: the rows written
        assert metrics["rows"] == scored
    assert account["rows_read"] == scored + account["rows_rejected"]
    return metrics


def _check_rejects(path, expected_ids: set[int]) -> None:
    got = pd.read_parquet(path)
    ids = set(got["id"].astype(int))
    assert ids == expected_ids
    for row_id, reason in zip(got["id"].astype(int), got["_reason"], strict=True):
        if row_id in REASONS:
            assert reason == REASONS[row_id]
        else:
            assert reason.startswith("ragged row")


def test_linreg_predict_skip(files, capsys):
    root, score, rows = files
    out, rejects, metrics = root / "p_lin", root / "r_lin", root / "p_lin.json"
    code, stdout, err = run_cli(
        capsys, "linreg", "predict", "--model", root / "lin", "--input", score,
        "--handle-invalid", "skip", "--rejects", rejects, "--output", out,
        "--metrics-json", metrics,
    )  # fmt: skip
    assert code == 0, err
    _check_account(metrics, GOOD, len(BAD))
    assert f"input: read {GOOD + len(BAD)} rows: used {GOOD}, rejected {len(BAD)}" in stdout
    doc = _model(root / "lin")
    got = pd.read_parquet(out).astype({"id": int}).sort_values("id")
    assert got["id"].tolist() == list(range(GOOD))
    expected = doc["intercept"] + rows[["a", "b"]].to_numpy() @ np.array(doc["coefficients"])
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected, rtol=1e-12)
    _check_rejects(rejects, set(BAD))


def test_kmeans_predict_skip(files, capsys):
    root, score, rows = files
    out, rejects, metrics = root / "p_km", root / "r_km", root / "p_km.json"
    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", root / "km", "--input", score,
        "--handle-invalid", "skip", "--rejects", rejects, "--output", out,
        "--metrics-json", metrics,
    )  # fmt: skip
    assert code == 0, err
    _check_account(metrics, GOOD, len(BAD))
    centres = np.array(_model(root / "km")["centers"])
    got = pd.read_parquet(out).astype({"id": int}).sort_values("id")
    assert got["id"].tolist() == list(range(GOOD))
    d = np.linalg.norm(rows[["a", "b"]].to_numpy()[:, None, :] - centres[None], axis=2)
    np.testing.assert_array_equal(got["cluster"].to_numpy(), d.argmin(axis=1))
    np.testing.assert_allclose(got["distance"].to_numpy(), d.min(axis=1), rtol=1e-9)
    _check_rejects(rejects, set(BAD))


def test_formula_predict_skip_and_missing_category(files, capsys, tmp_path):
    root, _, rows = files
    # a missing category cell is bad too; y (not read when predicting) may be anything
    bad = {**BAD, 107: "107,1.0,2.0,,3.0", 108: "108,1.0,2.0,x,NaN"}
    score = _write(rows, tmp_path / "score.csv", bad)
    out, rejects, metrics = tmp_path / "p", tmp_path / "r", tmp_path / "p.json"
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", root / "formula", "--input", score,
        "--handle-invalid", "skip", "--rejects", rejects, "--output", out,
        "--metrics-json", metrics,
    )  # fmt: skip
    assert code == 0, err
    account = json.loads(metrics.read_text())["input"]
    assert account["rows_read"] == GOOD + 8
    assert account["rows_rejected"] == 7 and account["rows_used"] == GOOD + 1
    assert account["rejected_by_column"]["g"] == 1
    doc = _model(root / "formula")
    got = pd.read_parquet(out).astype({"id": int}).sort_values("id")
    assert got["id"].tolist() == [*range(GOOD), 108]
    named = dict(zip(doc["features"], doc["coefficients"], strict=True))
    kept = pd.concat([rows, pd.DataFrame([{"id": 108, "a": 1.0, "b": 2.0, "g": "x"}])])
    expected = (
        doc["intercept"]
        + named["a"] * kept["a"]
        + named["b"] * kept["b"]
        + named["g[T.y]"] * (kept["g"] == "y")
    )
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    rejected = pd.read_parquet(rejects)
    assert set(rejected["id"].astype(int)) == set(BAD) | {107}
    assert rejected.loc[rejected["id"] == "107", "_reason"].item() == "column 'g': missing"


def test_linreg_evaluate_skip(files, capsys):
    """Plain and formula models: the metrics are numpy's on the good rows only."""
    root, score, rows = files
    for name in ("lin", "formula"):
        metrics = root / f"e_{name}.json"
        code, _, err = run_cli(
            capsys, "linreg", "evaluate", "--model", root / name, "--input", score,
            "--handle-invalid", "skip", "--metrics-json", metrics,
        )  # fmt: skip
        assert code == 0, err
        result = _check_account(metrics, GOOD, len(BAD))
        doc = _model(root / name)
        named = dict(zip(doc["features"], doc["coefficients"], strict=True))
        fitted = doc["intercept"] + named["a"] * rows["a"] + named["b"] * rows["b"]
        fitted += named.get("g[T.y]", 0.0) * (rows["g"] == "y")
        residual = rows["y"] - fitted
        assert result["n"] == GOOD
        np.testing.assert_allclose(result["rmse"], np.sqrt(np.mean(residual**2)), rtol=1e-9)


def test_kmeans_evaluate_skip(files, capsys):
    root, score, rows = files
    metrics = root / "e_km.json"
    code, _, err = run_cli(
        capsys, "kmeans", "evaluate", "--model", root / "km", "--input", score,
        "--features", "a,b", "--handle-invalid", "skip", "--metrics-json", metrics,
    )  # fmt: skip
    assert code == 0, err
    result = _check_account(metrics, GOOD, len(BAD))
    centres = np.array(_model(root / "km")["centers"])
    d = np.linalg.norm(rows[["a", "b"]].to_numpy()[:, None, :] - centres[None], axis=2)
    np.testing.assert_allclose(result["cost"], np.sum(d.min(axis=1) ** 2), rtol=1e-9)


@pytest.mark.parametrize("algo,model", [("linreg", "lin"), ("kmeans", "km"), ("linreg", "formula")])
def test_predict_error_is_unchanged(files, capsys, tmp_path, algo, model):
    """No ragged line here: the first problem reported is then a column's."""
    root, _, rows = files
    score = _write(rows, tmp_path / "score.csv", {i: BAD[i] for i in (101, 102)})
    code, _, err = run_cli(
        capsys, algo, "predict", "--model", root / model, "--input", score,
        "--output", root / f"never_{model}",
    )  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ("column 'a'" in lines[0] or "column 'b'" in lines[0]), err
    assert not (root / f"never_{model}").exists()
