"""--handle-invalid skip and --rejects: a file with known bad rows, every count exact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.e2e.helpers import run_cli

GOOD = 40


def write_file(tmp_path):
    """40 good rows of y = 1 + 2a - 3b (+ noise), then 6 bad ones of known kinds."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=GOOD), rng.normal(size=GOOD)
    y = 1 + 2 * a - 3 * b + 0.01 * rng.normal(size=GOOD)
    lines = ["a,b,y"] + [f"{x:.17g},{z:.17g},{t:.17g}" for x, z, t in zip(a, b, y, strict=True)]
    bad = [
        "1.5,,2.0",  # b missing
        "abc,1.0,2.0",  # a non-numeric
        "1.0,2.0,NaN",  # y NaN
        "inf,2.0,1.0",  # a infinite
        "1.0,2.0",  # ragged: one field short
        "1.0,2.0,3.0,4.0",  # ragged: one field too many
    ]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines[:11] + bad[:3] + lines[11:] + bad[3:]) + "\n")
    return path, np.column_stack([a, b]), y


def test_skip_counts_rejects_and_fits_the_rest(spark, tmp_path, capsys):
    path, x, y = write_file(tmp_path)
    model, rejects, metrics = tmp_path / "m", tmp_path / "rejects", tmp_path / "m.json"
    code, out, err = run_cli(
        capsys,
        "linreg",
        "fit",
        "--input",
        path,
        "--label",
        "y",
        "--handle-invalid",
        "skip",
        "--rejects",
        rejects,
        "--output",
        model,
        "--metrics-json",
        metrics,
    )
    assert code == 0, err
    account = json.loads(metrics.read_text())["input"]
    assert account["rows_read"] == GOOD + 6
    assert account["rows_used"] == GOOD and account["rows_rejected"] == 6
    assert account["rows_read"] == account["rows_used"] + account["rows_rejected"]
    # the ragged short row also lacks y; the long one has all its columns
    assert account["rejected_by_column"] == {"a": 2, "b": 1, "y": 2}
    assert account["rejected_ragged"] == 2
    assert "input: read 46 rows: used 40, rejected 6" in out

    doc = json.loads((model / "model.json").read_text())
    assert doc["summary"]["n"] == GOOD
    design = np.column_stack([np.ones(GOOD), x])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose([doc["intercept"], *doc["coefficients"]], expected, rtol=1e-9)

    got = pd.read_parquet(rejects).sort_values("a", na_position="first")
    assert len(got) == 6 and list(got.columns)[:3] == ["a", "b", "y"]
    reasons = dict(
        zip(
            got["a"].fillna("<null>") + "|" + got["b"].fillna("<null>"), got["_reason"], strict=True
        )
    )
    assert reasons["1.5|<null>"] == "column 'b': missing"
    assert reasons["abc|1.0"] == "column 'a': non-numeric abc"
    assert reasons["inf|2.0"] == "column 'a': NaN or infinite"
    assert "column 'y': NaN or infinite" in got["_reason"].tolist()
    assert sum("ragged row" in r for r in got["_reason"]) == 2


def test_error_policy_unchanged_and_rejects_needs_skip(spark, tmp_path, capsys):
    path, _, _ = write_file(tmp_path)
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", path, "--label", "y", "--output", tmp_path / "m"
    )
    assert code == 2 and "column 'a' has 1 non-numeric (e.g. 'abc')" in err
    assert not (tmp_path / "m").exists()
    code, _, err = run_cli(
        capsys,
        "linreg",
        "fit",
        "--input",
        path,
        "--label",
        "y",
        "--rejects",
        tmp_path / "r",
        "--output",
        tmp_path / "m",
    )
    assert code == 2 and "--rejects needs --handle-invalid skip" in err


def test_kmeans_skip(spark, tmp_path, capsys):
    path, x, _ = write_file(tmp_path)
    code, out, err = run_cli(
        capsys,
        "kmeans",
        "fit",
        "--input",
        path,
        "--features",
        "a,b",
        "--k",
        "2",
        "--handle-invalid",
        "skip",
        "--output",
        tmp_path / "km",
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "km" / "model.json").read_text())
    # rows whose a and b are fine count, whatever their y; ragged rows never do
    assert doc["summary"]["n"] == GOOD + 1  # the NaN-y row has usable a, b
    assert sum(doc["summary"]["cluster_sizes"]) == GOOD + 1
    assert "used 41, rejected 5" in out
