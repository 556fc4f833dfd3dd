"""Formula parsing, design structure and names (against patsy on real data), model JSON round
trip, and the interval algebra (against statsmodels) — no Spark."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import formula as fm
from sparkml_jobs.regression import intervals, tsqr
from sparkml_jobs.regression import stats as st

patsy = pytest.importorskip("patsy")
sm = pytest.importorskip("statsmodels.api")


def _data(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.uniform(1, 2, size=n),
            "g": rng.choice(["p", "q", "r"], size=n),
            "h": rng.choice(["u", "v"], size=n),
            "flag": rng.choice([True, False], size=n),
            "k": rng.integers(0, 3, size=n),
            "y": rng.uniform(1, 5, size=n),
        }
    )


FORMULAS = [
    "y ~ a + g",
    "y ~ a*g + h",
    "y ~ g:h + a",
    "y ~ g*h - 1",
    "y ~ 0 + a + g + h + a:h",
    "y ~ C(k) + I(b ** 2) + flag + a:b",
    "y ~ (a + g + h)**2",
    "y ~ g/a",
    "y ~ C(k):g + h - 1",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_design_names_equal_patsys_on_the_data(text):
    """Our structure, from levels alone, names the columns exactly as patsy does on the data."""
    data = _data()
    parsed = fm.parse(text)
    categorical = {
        name: fm.sort_levels(data[f.column].tolist())
        for name, f in parsed.factors.items()
        if f.categorical or (f.categorical is None and data[f.column].dtype in (object, bool))
    }
    design = fm.design(parsed, categorical)
    expected = patsy.dmatrix(text.split("~")[1], data).design_info.column_names
    assert ([fm.INTERCEPT] if design.fit_intercept else []) + design.names == expected


def test_design_columns_rebuild_patsys_matrix():
    """Each design column is the product its recipe says: the values equal patsy's matrix."""
    data = _data()
    text = "y ~ a*g + I(b ** 2):h + flag"
    parsed = fm.parse(text)
    levels = {n: fm.sort_levels(data[n].tolist()) for n in ("g", "h", "flag")}
    design = fm.design(parsed, levels)
    numbers = {"a": data["a"].to_numpy(), "I(b ** 2)": data["b"].to_numpy() ** 2}
    ours = np.column_stack(
        [
            np.prod([numbers[n] for n in c.numeric], axis=0)
            * np.prod([data[f] == levels[f][i] for f, i in c.levels], axis=0)
            for c in design.columns
        ]
    )
    expected = np.asarray(patsy.dmatrix(text.split("~")[1], data))[:, 1:]
    np.testing.assert_array_equal(ours, expected)


def test_factors_parse_to_the_whitelisted_tree():
    f = fm.parse('log(y) ~ I(-b**2 / 3) + np.sqrt(Q("odd.name")) + C(g)')
    assert f.label.expr == fm.Expr(op="log", args=(fm.Expr(op="col", value="y"),))
    assert f.factors["C(g)"].categorical and f.factors["C(g)"].column == "g"
    assert f.factors['np.sqrt(Q("odd.name"))'].expr.columns() == ["odd.name"]
    square = f.factors["I(-b ** 2 / 3)"].expr
    assert square.op == "/" and square.args[0].op == "neg" and square.args[0].args[0].op == "**"
    assert f.columns() == ["y", "b", "odd.name", "g"] and f.intercept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("y ~ __import__('os').system('x')", "cannot evaluate"),
        ("y ~ a.b", "cannot evaluate"),
        ("y ~ np.cos(a)", "cannot evaluate"),
        ("y ~ C(g, Sum)", "C() takes one column"),
        ("y ~ a +", "expected a noun"),
        ("~ a", "left of '~'"),
        ("C(g) ~ a", "cannot be categorical"),
        ("y ~ 1", "no terms"),
        ("y ~ log(C(g))", "must be a whole factor"),
    ],
)
def test_bad_formulas_are_one_line_errors(text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fm.parse(text)


def test_from_columns_names_factors_by_column():
    design = fm.design(fm.from_columns("price", ["carat", "cut.x"], True), {"cut.x": ["A", "B"]})
    assert design.names == ["cut.x[T.B]", "carat"]  # patsy's order: categorical terms first
    design = fm.design(fm.from_columns("price", ["carat", "cut"], False), {"cut": ["A", "B"]})
    assert design.names == ["cut[A]", "cut[B]", "carat"] and not design.fit_intercept


def test_json_round_trip_and_tampering():
    design = fm.design(fm.parse("log(y) ~ a*g + C(k)"), {"g": ["p", "q"], "C(k)": [0, 2]})
    document = fm.to_dict(design)
    assert document["categorical"]["g"] == {
        "column": "g",
        "kind": "text",
        "levels": ["p", "q"],
        "reference": "p",
    }
    again = fm.from_dict(document, "m/model.json")
    assert again.names == design.names and again.kinds == {"g": "text", "C(k)": "number"}
    document["categorical"]["g"]["levels"] = ["q", "p"]
    with pytest.raises(InputError, match="sorted list"):
        fm.from_dict(document, "m/model.json")


def _model(x, y, w, fit_intercept, *, factor: bool, drop=()):
    z = np.column_stack([x, y])
    s = st.SufficientStats.of_block(z, w)
    sol = st.solve(s, fit_intercept=fit_intercept, on_singular="drop")
    kept = sol.kept.copy()
    kept[list(drop)] = False
    ssr = st.residual_sum_of_squares(s, sol, fit_intercept)
    df = len(y) - int(sol.kept.sum()) - int(fit_intercept)
    r = None
    if factor:
        design = np.column_stack([np.ones(len(y))] * fit_intercept + [x, y]) * np.sqrt(w)[:, None]
        r = tsqr.RFactor(np.linalg.qr(design, mode="r"), len(y))
    return SimpleNamespace(
        params={"fit_intercept": fit_intercept, "reg_param": 0.0},
        stats=s,
        coefficients=sol.coefficients,
        intercept=sol.intercept,
        summary=SimpleNamespace(residual_std=np.sqrt(ssr / df), df_resid=df),
        factor=r,
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("factor", [False, True])
@pytest.mark.parametrize(("kind", "prefix"), [("confidence", "mean"), ("prediction", "obs")])
def test_interval_state_equals_statsmodels(fit_intercept, factor, kind, prefix):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 3)) * [1, 100, 0.01] + [0, 1000, 0]
    w = rng.uniform(0.2, 3, size=80)
    y = x @ [1.0, 0.02, 30.0] + rng.normal(size=80)
    model = _model(x, y, w, fit_intercept, factor=factor)
    exog = sm.add_constant(x) if fit_intercept else x
    reference = sm.WLS(y, exog, weights=w).fit()
    new = rng.normal(size=(10, 3)) * [1, 100, 0.01] + [0, 1000, 0]
    frame = reference.get_prediction(sm.add_constant(new) if fit_intercept else new)
    expected = frame.summary_frame(alpha=0.01)
    state = intervals.interval_state(model, kind, 0.99)
    prediction = new @ model.coefficients + model.intercept
    lower, upper = state.bounds(new, prediction)
    np.testing.assert_allclose(prediction, expected["mean"], rtol=1e-9)
    np.testing.assert_allclose(lower, expected[f"{prefix}_ci_lower"], rtol=1e-8)
    np.testing.assert_allclose(upper, expected[f"{prefix}_ci_upper"], rtol=1e-8)


def test_interval_refusals():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    model = _model(x, y, np.ones(20), True, factor=False)
    with pytest.raises(InputError, match="--level"):
        intervals.interval_state(model, "confidence", 1.0)
    model.params["reg_param"] = 0.1
    with pytest.raises(InputError, match="--reg-param"):
        intervals.interval_state(model, "confidence", 0.9)


def test_formula_module_is_pure():
    """formula.py and intervals.py import with pyspark blocked (they run on the driver only)."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import sparkml_jobs.regression.formula as f, sparkml_jobs.regression.intervals\n"
        "print(f.design(f.parse('y ~ a*g'), {'g': ['x', 'y']}).names)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['g[T.y]', 'a', 'a:g[T.y]']"
