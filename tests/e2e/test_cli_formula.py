"""The linreg CLI with --formula, categorical --features and prediction intervals, end to end,
against statsmodels' formula API on the same CSV files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.e2e.helpers import run_cli

smf = pytest.importorskip("statsmodels.formula.api")

log = np.log  # the formula's log(y), for statsmodels (evaluated in this module's namespace)
FORMULA = "log(price) ~ carat + I(carat**2) + cut + color + carat:cut"


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cut = rng.choice(["Fair", "Good", "Ideal", "Premium"], size=n)
    color = rng.choice(["D", "E", "J"], size=n)
    carat = rng.uniform(0.2, 2.5, size=n)
    bonus = pd.Series(cut).map({"Fair": 0.0, "Good": 0.1, "Ideal": 0.3, "Premium": 0.25})
    price = np.exp(6 + 1.5 * carat - 0.2 * carat**2 + bonus * carat + rng.normal(scale=0.1, size=n))
    return pd.DataFrame({"carat": carat, "cut": cut, "color": color, "price": price})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("formula")
    train, new = _table(300, 1), _table(40, 2)
    train.to_csv(root / "train.csv", index=False)
    new.drop(columns="price").to_csv(root / "new.csv", index=False)
    unseen = new.copy()
    unseen.loc[:1, "cut"] = "Very Good"  # two rows of a level never seen in training
    unseen.to_csv(root / "unseen.csv", index=False)
    return root, train, new


def _fit(capsys, root, *args):
    return run_cli(capsys, "linreg", "fit", "--input", root / "train.csv", *args)


def test_formula_fit_predict_intervals_equal_statsmodels(spark, files, capsys):
    root, train, new = files
    model_dir = root / "model"
    code, out, err = _fit(capsys, root, "--formula", FORMULA, "--output", model_dir)
    assert code == 0, err
    reference = smf.ols(FORMULA, train).fit()
    saved = json.loads((model_dir / "model.json").read_text())
    assert saved["format_version"] == 2 and saved["label"] == "log(price)"
    assert ["Intercept", *saved["features"]] == list(reference.params.index)
    assert saved["encoding"]["categorical"]["cut"] == {
        "column": "cut",
        "kind": "text",
        "levels": ["Fair", "Good", "Ideal", "Premium"],
        "reference": "Fair",
    }
    np.testing.assert_allclose(
        [saved["intercept"], *saved["coefficients"]], reference.params, rtol=1e-8
    )
    np.testing.assert_allclose(saved["summary"]["std_errors"], reference.bse, rtol=1e-8)
    assert "carat:cut[T.Ideal]" in out and "I(carat ** 2)" in out  # the printed summary

    preds = root / "preds"
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", model_dir, "--input", root / "new.csv",
        "--output", preds, "--interval", "prediction", "--level", "0.9",
    )  # fmt: skip
    assert code == 0, err
    ours = pd.read_parquet(preds)
    assert list(ours.columns) == ["carat", "cut", "color", "prediction", "lower", "upper"]
    expected = reference.get_prediction(new).summary_frame(alpha=0.1)
    order = np.argsort(ours["carat"].to_numpy())  # rows matched by their (distinct) carat
    reference_order = np.argsort(new["carat"].to_numpy())
    for ours_col, col in (
        ("prediction", "mean"),
        ("lower", "obs_ci_lower"),
        ("upper", "obs_ci_upper"),
    ):  # noqa: E501
        np.testing.assert_allclose(
            ours[ours_col].to_numpy()[order], expected[col].to_numpy()[reference_order], rtol=1e-8
        )


def test_unseen_level_exits_2_or_counts_with_zero(spark, files, capsys, tmp_path):
    root, train, _ = files
    model_dir = tmp_path / "model"
    assert _fit(capsys, root, "--formula", FORMULA, "--output", model_dir)[0] == 0
    base = ["linreg", "predict", "--model", model_dir, "--input", root / "unseen.csv"]
    code, _, err = run_cli(capsys, *base, "--output", tmp_path / "p")
    assert code == 2 and "column 'cut'" in err and "'Very Good' (2 rows)" in err, err
    assert not (tmp_path / "p").exists()
    metrics = tmp_path / "m.json"
    code, _, err = run_cli(
        capsys, *base, "--output", tmp_path / "p", "--handle-unknown", "zero",
        "--metrics-json", metrics,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(metrics.read_text())["unknown_levels"]["cut"]["rows"] == 2
    # those rows' predictions use all-zero cut dummies: the Fair (reference) prediction
    scored = pd.read_parquet(tmp_path / "p")
    fair = pd.read_csv(root / "unseen.csv").assign(cut="Fair")
    expected = smf.ols(FORMULA, train).fit().predict(fair)
    unseen_rows = scored["cut"] == "Very Good"
    np.testing.assert_allclose(
        np.sort(scored.loc[unseen_rows, "prediction"]),
        np.sort(expected[fair.index[:2]]),
        rtol=1e-8,
    )
    code, out, err = run_cli(
        capsys, "linreg", "evaluate", "--model", model_dir, "--input", root / "unseen.csv",
        "--handle-unknown", "zero",
    )  # fmt: skip
    assert code == 0, err
    evaluated = json.loads(out)
    assert evaluated["n"] == 40 and evaluated["unknown_levels"]["cut"]["rows"] == 2


def test_text_features_are_categorical_and_v1_models_still_predict(spark, files, capsys):
    root, train, new = files
    code, out, err = _fit(
        capsys, root, "--label", "price", "--features", "carat,cut", "--output", root / "f"
    )
    assert code == 0, err
    saved = json.loads((root / "f" / "model.json").read_text())
    reference = smf.ols("price ~ carat + cut", train).fit()
    assert saved["format_version"] == 2
    assert ["Intercept", *saved["features"]] == list(reference.params.index)
    np.testing.assert_allclose(saved["coefficients"], reference.params[1:], rtol=1e-8)

    # numeric features only: the direct path, a version-1 model, and intervals on it
    code, _, err = _fit(
        capsys, root, "--label", "price", "--features", "carat", "--output", root / "v1"
    )
    assert code == 0, err
    assert json.loads((root / "v1" / "model.json").read_text())["format_version"] == 1
    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", root / "v1", "--input", root / "new.csv",
        "--output", root / "v1p", "--interval", "confidence",
    )  # fmt: skip
    assert code == 0, err
    ours = pd.read_parquet(root / "v1p").sort_values("carat")
    expected = smf.ols("price ~ carat", train).fit().get_prediction(new).summary_frame(alpha=0.05)
    expected = expected.assign(carat=new["carat"]).sort_values("carat")
    np.testing.assert_allclose(ours["lower"], expected["mean_ci_lower"], rtol=1e-8)
    np.testing.assert_allclose(ours["upper"], expected["mean_ci_upper"], rtol=1e-8)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--formula", "price ~ carat + cut", "--max-levels", "3"], "column 'cut' has 4 distinct"),
        (["--formula", "price ~ carat", "--label", "price"], "--formula and --label"),
        (["--formula", "price ~ carat + nope"], "unknown column(s) 'nope'"),
        (["--formula", "price ~ log(cut)"], "'log(cut)' has 300 non-numeric (e.g. '"),
        (["--formula", "price ~ carat +"], "expected a noun"),
    ],
)
def test_formula_usage_errors_exit_2(spark, files, capsys, tmp_path, args, expected):
    root, _, _ = files
    code, _, err = _fit(capsys, root, *args, "--output", tmp_path / "o")
    assert code == 2 and expected in err, err
    assert not (tmp_path / "o").exists()
