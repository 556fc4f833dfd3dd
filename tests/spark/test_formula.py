"""Formulas on Spark against statsmodels' formula API (``smf.ols`` / ``smf.wls``, patsy).

Data with text categories, a boolean, an interaction and a transformed label; the estimates,
standard errors, t, p, R², the coefficient names and the confidence / prediction intervals must
equal statsmodels' (1e-8 relative).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import design as encoding
from sparkml_jobs.io import levels
from sparkml_jobs.regression import formula as fm
from sparkml_jobs.regression.estimator import LinearRegression

smf = pytest.importorskip("statsmodels.formula.api")

# statsmodels evaluates the formulas' transforms in this module's namespace
log, sqrt, exp = np.log, np.sqrt, np.exp
RTOL = 1e-8
FORMULA = "log(y) ~ a + b + I(b**2) + group + region + a:group + flag"


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "a": rng.normal(size=n),
            "b": rng.uniform(1, 3, size=n),
            "group": rng.choice(["x", "y", "z"], size=n),
            "region": rng.choice(["north", "south", "east"], size=n),
            "flag": rng.choice([True, False], size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
        }
    )
    effect = frame["group"].map({"x": 0.0, "y": 0.4, "z": -0.3}) * (1 + frame["a"])
    frame["y"] = np.exp(
        1 + 0.5 * frame["a"] - 0.2 * frame["b"] ** 2 + effect + 0.3 * frame["flag"]
    ) * np.exp(0.2 * rng.normal(size=n))
    return frame


def fit_ours(spark, data: pd.DataFrame, text: str, weight: str | None = None, **params):
    frame = spark.createDataFrame(data)
    design = encoding.fit_design(frame, fm.parse(text), "memory")
    blocks = encoding.to_data(frame, design, "memory", weight=weight)
    model = LinearRegression(fit_intercept=design.fit_intercept, **params).fit(blocks)
    return dataclasses.replace(model, design=design)


def assert_matches(model, reference) -> None:
    assert ["Intercept", *model.features] == list(reference.params.index)
    s = model.summary
    np.testing.assert_allclose(
        [model.intercept, *model.coefficients], reference.params, rtol=RTOL, atol=0
    )
    np.testing.assert_allclose(s.std_errors, reference.bse, rtol=RTOL)
    np.testing.assert_allclose(s.t_values, reference.tvalues, rtol=RTOL)
    np.testing.assert_allclose(s.p_values, reference.pvalues, rtol=1e-7, atol=1e-300)
    np.testing.assert_allclose([s.r2, s.r2_adj], [reference.rsquared, reference.rsquared_adj])
    assert s.df_resid == reference.df_resid


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return make_frame(400, seed=3)


def test_ols_formula_equals_statsmodels(spark, train):
    model = fit_ours(spark, train, FORMULA)
    assert model.features[:5] == [
        "group[T.y]",
        "group[T.z]",
        "region[T.north]",
        "region[T.south]",
        "flag[T.True]",
    ]
    assert "a:group[T.y]" in model.features and "I(b ** 2)" in model.features
    assert_matches(model, smf.ols(FORMULA, train).fit())


@pytest.mark.parametrize("solver", ["cholesky", "tsqr"])
def test_wls_formula_equals_statsmodels(spark, train, solver):
    model = fit_ours(spark, train, FORMULA, weight="w", solver=solver)
    assert_matches(model, smf.wls(FORMULA, train, weights=train["w"]).fit())


def test_star_c_and_no_intercept_equal_statsmodels(spark, train):
    data = train.assign(level=np.random.default_rng(1).integers(1, 4, size=len(train)))
    text = "log(y) ~ C(level) + a*region + sqrt(b) + exp(-a) - 1"
    model = fit_ours(spark, data, text)
    reference = smf.ols(text, data).fit()
    names = list(reference.params.index)
    assert model.features == names and names[:3] == ["C(level)[1]", "C(level)[2]", "C(level)[3]"]
    np.testing.assert_allclose(model.coefficients, reference.params, rtol=RTOL)
    np.testing.assert_allclose(model.summary.std_errors, reference.bse, rtol=RTOL)
    # no intercept column, but the C(level) columns span the constant: R² centred (k_constant 1)
    assert reference.k_constant == 1
    np.testing.assert_allclose(
        [model.summary.r2, model.summary.r2_adj], [reference.rsquared, reference.rsquared_adj]
    )


@pytest.mark.parametrize(("kind", "prefix"), [("confidence", "mean"), ("prediction", "obs")])
@pytest.mark.parametrize("solver", ["cholesky", "tsqr"])
def test_intervals_equal_statsmodels(spark, train, kind, prefix, solver):
    model = fit_ours(spark, train, FORMULA, weight="w", solver=solver)
    reference = smf.wls(FORMULA, train, weights=train["w"]).fit()
    new = make_frame(50, seed=8)
    frame, hidden = encoding.for_scoring(spark.createDataFrame(new), model.design)
    scored = model.predict(frame, columns=hidden, interval=kind, level=0.9).drop(*hidden)
    assert scored.columns == [*new.columns, "prediction", "lower", "upper"]
    ours = scored.toPandas().sort_values("id")
    expected = reference.get_prediction(new).summary_frame(alpha=0.1)
    np.testing.assert_allclose(ours["prediction"], expected["mean"], rtol=RTOL)
    np.testing.assert_allclose(ours["lower"], expected[f"{prefix}_ci_lower"], rtol=RTOL)
    np.testing.assert_allclose(ours["upper"], expected[f"{prefix}_ci_upper"], rtol=RTOL)


def test_levels_found_in_one_scan_with_counts(spark, train):
    frame = spark.createDataFrame(train)
    scans = levels.scan(frame, {"group": levels.ALL, "region": levels.ALL}, 10)
    expected = train["group"].value_counts()
    assert dict(scans["group"].values) == expected.to_dict()
    assert scans["group"].rows == len(train) and scans["region"].distinct == 3


def test_max_levels_names_the_column_and_its_count(spark, train):
    frame = spark.createDataFrame(train.assign(code=[f"c{i}" for i in range(len(train))]))
    with pytest.raises(InputError, match=r"column 'code' has 400 distinct values.*--max-levels 50"):
        encoding.fit_design(frame, fm.parse("y ~ a + code"), "memory", max_levels=50)


def test_unseen_level_refused_or_zero(spark, train):
    model = fit_ours(spark, train, FORMULA)
    new = make_frame(30, seed=9)
    new.loc[:2, "group"] = "w"  # three rows of a level never seen
    frame = spark.createDataFrame(new)
    with pytest.raises(InputError, match=r"column 'group'.*'w' \(3 rows\)"):
        encoding.check_levels(frame, model.design, "new.csv")
    unseen = encoding.check_levels(frame, model.design, "new.csv", handle_unknown="zero")
    assert unseen == {"group": {"rows": 3, "levels": 1, "most_frequent": [("w", 3)]}}
    encoded, hidden = encoding.for_scoring(frame, model.design)
    rows = encoded.select(*hidden).toPandas().to_numpy()
    group_columns = [j for j, n in enumerate(model.features) if "group[" in n]
    assert np.all(rows[:3][:, group_columns] == 0) and rows[3:, group_columns].sum() > 0


def test_csv_text_and_numbers_decided_by_content(spark, train, tmp_path):
    path = tmp_path / "train.csv"
    train.to_csv(path, index=False)
    from sparkml_jobs.io import sources

    frame = sources.read_source(spark, str(path), "csv")
    design = encoding.fit_design(frame, fm.parse(FORMULA), str(path))
    assert design.kinds == {"group": "text", "region": "text", "flag": "boolean"}
    model = LinearRegression().fit(encoding.to_data(frame, design, str(path)))
    np.testing.assert_allclose(
        model.coefficients, smf.ols(FORMULA, train).fit().params[1:], rtol=1e-7
    )


def test_text_used_as_a_number_is_refused(spark, train):
    frame = spark.createDataFrame(train)
    with pytest.raises(InputError, match="column 'group' holds text"):
        encoding.fit_design(frame, fm.parse("y ~ log(group)"), "memory")
