"""Hostile-but-fair inputs (issue 12), end to end through the CLI, in-process.

The contract: a run either succeeds with numbers that match an independent oracle, or exits 2 with
one line on stderr naming the column/file and the cause, writes nothing at the output path, and
leaves its input files byte for byte as they were. Never exit 1, never a model with nulls.

``BAD`` is the table of refusals: (id, input files, command, exit code, substrings of the message).
The tests after it are the inputs that must work (odd column names, internal names used as data,
quoted line breaks, magnitudes beyond 1e±30), then a hypothesis property test over small CSVs.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.e2e.helpers import run_cli

# a numpy RuntimeWarning on the driver is an error (it would be a second stderr line)
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def csv_text(header: list[str], rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def blobs(n: int, centres: np.ndarray, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points around each centre (rows grouped by blob) and their blob index."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), n)
    return centres[labels] + spread * rng.standard_normal((len(labels), centres.shape[1])), labels


def _parquet(spark, schema: str, rows: list) -> Callable[[Path], dict[str, bytes]]:
    """A builder writing a one-file Parquet input (``in.parquet/``) with Spark."""

    def build(tmp: Path) -> dict[str, bytes]:
        target = tmp / "in.parquet"
        spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(target))
        return {}

    return build


def _files(**named: bytes) -> Callable[[Path], dict[str, bytes]]:
    return lambda tmp: named


def _random_points(scale: float, n: int = 30, seed: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    big = rng.standard_normal((n, 2)) * scale
    return csv_text(["big", "other"], [[repr(float(a)), repr(float(b) / 10)] for a, b in big])


ZERO_W = csv_text(["x1", "x2", "w"], [[i, (i * 7) % 5, 0] for i in range(12)])
ZERO_W_LIN = csv_text(["x", "y", "w"], [[i, 2 * i + 1, 0.0] for i in range(12)])
PLAIN = csv_text(["a", "b", "y"], [[i, (i * 3) % 7, 2 * i - 1 + (i % 3)] for i in range(20)])
WIDE_LIBSVM = b"1 1:1.0 1000000:2.0\n0 3:1.5\n"
RAGGED = b"a,b\n1,2\n3\n4,5\n"
BINARY = bytes(range(256)) * 8


@dataclass(frozen=True, kw_only=True)
class Bad:
    id: str
    files: Callable[[Path], dict[str, bytes]] | str  # a builder, or a name for `spark_builder`
    argv: list[str]
    message: tuple[str, ...]
    code: int = 2
    extra: dict = field(default_factory=dict)


def kfit(*extra: str, src: str = "{in}") -> list[str]:
    return ["kmeans", "fit", "--input", src, "--k", "2", "--output", "{out}", *extra]


PARQUET_KINDS = {
    "date": ("d date, x double", [(dt.date(2020, 1, 1), 1.0), (dt.date(2021, 1, 1), 2.0)]),
    "timestamp": (
        "t timestamp, x double",
        [(dt.datetime(2020, 1, 1, 12), 1.0), (dt.datetime(2021, 1, 1), 2.0)],
    ),
    "timestamp_ntz": (
        "t timestamp_ntz, x double",
        [(dt.datetime(2020, 1, 1, 12), 1.0), (dt.datetime(2021, 1, 1), 2.0)],
    ),
    "struct": ("s struct<u: double>, x double", [((1.0,), 1.0), ((2.0,), 2.0)]),
    "array": ("a array<double>, x double", [([1.0], 1.0), ([2.0], 2.0)]),
    "map": ("m map<string, double>, x double", [({"k": 1.0}, 1.0), ({"k": 2.0}, 2.0)]),
    "binary": ("b binary, x double", [(bytearray(b"1"), 1.0), (bytearray(b"2"), 2.0)]),
}

BAD = [
    Bad(
        id="kmeans-zero-weights",
        files=_files(**{"in.csv": ZERO_W}),
        argv=kfit("--weight-col", "w"),
        message=("weight column 'w'", "weights sum to zero"),
    ),
    Bad(
        id="linreg-zero-weights",
        files=_files(**{"in.csv": ZERO_W_LIN}),
        argv=[
            "linreg",
            "fit",
            "--input",
            "{in}",
            "--label",
            "y",
            "--weight-col",
            "w",
            "--output",
            "{out}",
        ],
        message=("weight column 'w'", "weights sum to zero"),
    ),
    Bad(
        id="kmeans-1e200-overflows-the-cost",
        files=_files(**{"in.csv": _random_points(1e200)}),
        argv=["kmeans", "fit", "--input", "{in}", "--k", "3", "--output", "{out}"],
        message=("column 'big'", "overflow"),
    ),
    Bad(
        id="kmeans-1e-200-underflows-the-cost",
        files=_files(**{"in.csv": _random_points(1e-200)}),
        argv=["kmeans", "fit", "--input", "{in}", "--k", "3", "--output", "{out}"],
        message=("column 'big'", "underflow"),
    ),
    *[
        Bad(
            id=f"parquet-{kind}-among-default-features",
            files=f"parquet:{kind}",
            argv=kfit("--format", "parquet", src="{dir}/in.parquet"),
            message=(f"has type {kind}", "--features can exclude it"),
        )
        for kind in PARQUET_KINDS
    ],
    Bad(
        id="kmeans-predict-input-has-cluster",
        files=_files(**{"in.csv": csv_text(["a", "b", "cluster"], [[1, 2, 0], [3, 4, 1]])}),
        argv=["kmeans", "predict", "--model", "{kmodel}", "--input", "{in}", "--output", "{out}"],
        message=("already has a column 'cluster'",),
    ),
    Bad(
        id="kmeans-predict-input-has-Distance",
        files=_files(**{"in.csv": csv_text(["a", "b", "Distance"], [[1, 2, 0], [3, 4, 1]])}),
        argv=["kmeans", "predict", "--model", "{kmodel}", "--input", "{in}", "--output", "{out}"],
        message=("already has a column 'Distance'", "'distance'"),
    ),
    Bad(
        id="linreg-predict-input-has-prediction",
        files=_files(**{"in.csv": csv_text(["a", "b", "prediction"], [[1, 2, 0], [3, 4, 1]])}),
        argv=["linreg", "predict", "--model", "{lmodel}", "--input", "{in}", "--output", "{out}"],
        message=("already has a column 'prediction'",),
    ),
    Bad(
        id="libsvm-index-1e6-refused-before-densifying",
        files=_files(**{"in.libsvm": WIDE_LIBSVM}),
        argv=kfit("--format", "libsvm", src="{dir}/in.libsvm"),
        message=("feature indices go up to 1000000", "MiB", "16384 features"),
    ),
    Bad(
        id="parquet-file-read-as-csv",
        files="parquet-as-csv",
        argv=kfit(src="{dir}/data.parquet"),
        message=("looks like Parquet", "use --format parquet"),
    ),
    Bad(
        id="parquet-directory-read-as-csv",
        files="parquet:date",
        argv=kfit(src="{dir}/in.parquet"),
        message=("looks like Parquet", "use --format parquet"),
    ),
    Bad(
        id="binary-read-as-csv",
        files=_files(**{"in.csv": BINARY}),
        argv=kfit(),
        message=("not a text file",),
    ),
    Bad(
        id="csv-read-as-parquet",
        files=_files(**{"in.csv": PLAIN}),
        argv=kfit("--format", "parquet"),
        message=("is not Parquet", "use --format csv"),
    ),
    Bad(
        id="duplicate-header",
        files=_files(**{"in.csv": csv_text(["a", "b", "a"], [[1, 2, 3], [4, 5, 6]])}),
        argv=kfit(),
        message=("duplicate column name 'a'",),
    ),
    Bad(
        id="duplicate-header-ignoring-case",
        files=_files(**{"in.csv": csv_text(["x", "A", "a"], [[1, 2, 3], [4, 5, 6]])}),
        argv=kfit(),
        message=("duplicate column name 'a'", "as 'A'"),
    ),
    Bad(
        id="weight-is-the-label",
        files=_files(**{"in.csv": PLAIN}),
        argv=[
            "linreg",
            "fit",
            "--input",
            "{in}",
            "--label",
            "y",
            "--weight-col",
            "y",
            "--output",
            "{out}",
        ],
        message=("'y' is also the label",),
    ),
    Bad(
        id="weight-is-a-feature",
        files=_files(**{"in.csv": PLAIN}),
        argv=kfit("--features", "a,b", "--weight-col", "b"),
        message=("'b' is also listed",),
    ),
    Bad(
        id="ragged-rows-still-detected-with-multiline",
        files=_files(**{"in.csv": RAGGED}),
        argv=kfit(),
        message=("1 of 3 rows have a different number of fields",),
    ),
]


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def fitted(spark, tmp_path_factory) -> dict[str, str]:
    """A k-means model and a linear model on columns a, b (what the predict cases score)."""
    from sparkml_jobs.cli import main

    root = tmp_path_factory.mktemp("hostile-models")
    (root / "plain.csv").write_bytes(PLAIN)
    src = str(root / "plain.csv")
    kmodel, lmodel = str(root / "kmodel"), str(root / "lmodel")
    common = ["--input", src, "--features", "a,b", "--output"]
    assert main(["kmeans", "fit", *common, kmodel, "--k", "2"]) == 0
    assert main(["linreg", "fit", *common, lmodel, "--label", "y"]) == 0
    return {"kmodel": kmodel, "lmodel": lmodel}


def spark_builder(spark, name: str) -> Callable[[Path], dict[str, bytes]]:
    if name.startswith("parquet:"):
        return _parquet(spark, *PARQUET_KINDS[name.split(":", 1)[1]])

    def parquet_file(tmp: Path) -> dict[str, bytes]:  # one Parquet file named like a CSV
        _parquet(spark, *PARQUET_KINDS["date"])(tmp / "spark")
        part = next((tmp / "spark" / "in.parquet").glob("part-*.parquet"))
        data = part.read_bytes()
        for p in sorted((tmp / "spark").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (tmp / "spark").rmdir()
        return {"data.parquet": data}

    return parquet_file


def assert_refused(code: int, err: str, expected_code: int, message: tuple[str, ...]) -> None:
    """Exit code, one printable error line holding every substring, no trace, no warning."""
    assert code == expected_code, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("sparkml-jobs: error: "), err
    assert err.splitlines()[-1] == errors[0], err  # the error is the last thing said
    assert all(c.isprintable() for c in errors[0]), repr(errors[0])
    assert "Traceback" not in err and "Warning" not in err, err
    for part in message:
        assert part in errors[0], (part, errors[0])


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_refused_with_one_line_nothing_written_inputs_untouched(
    spark, tmp_path, capsys, fitted, case
):
    data = tmp_path / "data"
    data.mkdir()
    build = case.files if callable(case.files) else spark_builder(spark, case.files)
    for name, content in build(data).items():
        (data / name).write_bytes(content)
    before = _digest(data)
    inputs = sorted(p.name for p in data.iterdir())
    out = tmp_path / "out"
    paths = {"in": str(data / inputs[0]), "dir": str(data), "out": str(out), **fitted}
    argv = [a.format(**paths) for a in case.argv]
    code, _, err = run_cli(capsys, *argv)
    assert_refused(code, err, case.code, case.message)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary leftovers
    assert _digest(data) == before


# --------------------------------------------------------------------------- inputs that work

ODD = ["sepal.length", "a`b", "x y", "é ü", "`"]


def _write(path: Path, header: list[str], values: np.ndarray) -> Path:
    path.write_bytes(csv_text(header, [[repr(float(v)) for v in row] for row in values]))
    return path


def test_odd_names_linreg_fit_and_predict(spark, tmp_path, capsys):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, len(ODD)))
    w = rng.uniform(0.5, 2.0, 60)
    y = 1.5 + x @ np.arange(1.0, len(ODD) + 1) + 0.1 * rng.standard_normal(60)
    src = _write(tmp_path / "in.csv", [*ODD, "y.v", "w.t"], np.column_stack([x, y, w]))
    model, preds = tmp_path / "model", tmp_path / "preds"
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", src, "--label", "y.v", "--weight-col", "w.t",
        "--output", model,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((model / "model.json").read_text())
    assert doc["features"] == ODD
    design = np.column_stack([np.ones(60), x]) * np.sqrt(w)[:, None]
    ref = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)[0]
    np.testing.assert_allclose([doc["intercept"], *doc["coefficients"]], ref, rtol=1e-9)

    code, _, err = run_cli(
        capsys, "linreg", "predict", "--model", model, "--input", src, "--output", preds
    )
    assert code == 0, err
    got = spark.read.parquet(str(preds)).toPandas()
    assert list(got.columns) == [*ODD, "y.v", "w.t", "prediction"]
    np.testing.assert_allclose(got["prediction"], ref[0] + x @ ref[1:], rtol=1e-9, atol=1e-12)
    assert got[ODD[0]].tolist() == [repr(float(v)) for v in x[:, 0]]  # inputs as they were


def test_odd_names_weighted_kmeans_fit_and_predict(spark, tmp_path, capsys):
    centres = np.array([[0.0, 0.0, 0.0, 0.0, 0.0], [10.0, 0, 5, 0, 1], [0, 10.0, 0, 5, -1]])
    x, labels = blobs(20, centres, 0.5, seed=11)
    w = np.random.default_rng(2).uniform(0.1, 3.0, len(x))
    src = _write(tmp_path / "in.csv", [*ODD, "w.t"], np.column_stack([x, w]))
    model, preds = tmp_path / "model", tmp_path / "preds"
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", src, "--k", "3", "--weight-col", "w.t",
        "--output", model,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((model / "model.json").read_text())
    assert doc["features"] == ODD
    expected = np.array(
        [np.average(x[labels == j], axis=0, weights=w[labels == j]) for j in range(3)]
    )
    got = np.array(doc["centers"])
    order = [int(np.argmin(((got - e) ** 2).sum(1))) for e in expected]
    np.testing.assert_allclose(got[order], expected, rtol=1e-12, atol=1e-12)

    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", model, "--input", src, "--output", preds
    )
    assert code == 0, err
    scored = spark.read.parquet(str(preds)).toPandas()
    assert list(scored.columns) == [*ODD, "w.t", "cluster", "distance"]
    np.testing.assert_array_equal(scored["cluster"], np.array(order)[labels])
    np.testing.assert_allclose(
        scored["distance"], np.linalg.norm(x - got[np.array(order)[labels]], axis=1), rtol=1e-12
    )


def test_internal_names_are_ordinary_columns(spark, tmp_path, capsys):
    names = ["__x0", "__raw_a", "a", "_corrupt_record", "__ragged", "_t0", "_r0", "_0"]
    centres = np.zeros((2, len(names)))
    centres[1] = np.arange(1, len(names) + 1)
    x, labels = blobs(15, centres, 0.1, seed=4)
    src = _write(tmp_path / "in.csv", names, x)
    model, preds = tmp_path / "model", tmp_path / "preds"
    code, _, err = run_cli(capsys, "kmeans", "fit", "--input", src, "--k", "2", "--output", model)
    assert code == 0, err
    doc = json.loads((model / "model.json").read_text())
    assert doc["features"] == names
    got = np.array(doc["centers"])
    expected = np.array([x[labels == j].mean(0) for j in range(2)])
    order = [int(np.argmin(((got - e) ** 2).sum(1))) for e in expected]
    np.testing.assert_allclose(got[order], expected, rtol=1e-12, atol=1e-12)
    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", model, "--input", src, "--output", preds
    )
    assert code == 0, err
    scored = spark.read.parquet(str(preds)).toPandas()
    assert list(scored.columns) == [*names, "cluster", "distance"]
    assert scored["_corrupt_record"].tolist() == [repr(float(v)) for v in x[:, 3]]
    np.testing.assert_array_equal(scored["cluster"], np.array(order)[labels])


def test_quoted_line_break_is_one_record(spark, tmp_path, capsys):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(50)
    y = 3.0 - 2.0 * x + 0.01 * rng.standard_normal(50)
    notes = ["ok"] * 50
    notes[7] = "first line\nsecond line"
    notes[30] = 'quote " and, comma'
    src = tmp_path / "in.csv"
    src.write_bytes(
        csv_text(
            ["x", "note", "y"],
            zip(map(repr, x.tolist()), notes, map(repr, y.tolist()), strict=True),
        )
    )
    assert src.read_text().count("\n") == 52  # 50 records + header on 52 lines
    model = tmp_path / "model"
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", src, "--features", "x", "--label", "y",
        "--output", model, "--metrics-json", tmp_path / "m.json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((model / "model.json").read_text())
    ref = np.polynomial.polynomial.polyfit(x, y, 1)
    np.testing.assert_allclose([doc["intercept"], *doc["coefficients"]], ref, rtol=1e-9)
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 50


def test_kmeans_far_beyond_1e30_is_computed_exactly(spark, tmp_path, capsys):
    """Points at 1e160 (‖x‖² would overflow) with blobs 1e150 apart: the fit runs on rescaled
    coordinates and gives the blob means and the cost of numpy on the pre-scaled data."""
    unit, base = 1e150, 1e160
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    z, labels = blobs(15, centres, 1.0, seed=8)
    x = base + unit * z
    src = _write(tmp_path / "in.csv", ["p", "q"], x)
    model, preds = tmp_path / "model", tmp_path / "preds"
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", src, "--k", "3", "--output", model,
        "--metrics-json", tmp_path / "m.json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((model / "model.json").read_text())
    got = np.array(doc["centers"])
    expected = np.array([x[labels == j].mean(0) for j in range(3)])
    order = [int(np.argmin(np.abs(got - e).sum(1))) for e in expected]
    np.testing.assert_allclose(got[order], expected, rtol=1e-12)
    zs = (x - base) / unit  # the cost in units of 1e150, where numpy can square
    cost = sum(((zs[labels == j] - zs[labels == j].mean(0)) ** 2).sum() for j in range(3))
    assert doc["summary"]["cost"] == pytest.approx(cost * unit**2, rel=1e-6)
    assert sorted(doc["summary"]["cluster_sizes"]) == [15, 15, 15]
    assert all(math.isfinite(e["cost"]) for e in doc["summary"]["history"])

    code, _, err = run_cli(
        capsys, "kmeans", "predict", "--model", model, "--input", src, "--output", preds
    )
    assert code == 0, err
    scored = spark.read.parquet(str(preds)).toPandas()
    np.testing.assert_array_equal(scored["cluster"], np.array(order)[labels])
    dist = np.linalg.norm(zs - (got[np.array(order)[labels]] - base) / unit, axis=1) * unit
    np.testing.assert_allclose(scored["distance"], dist, rtol=1e-6)


# --------------------------------------------------------------------------- property


def _names():
    alphabet = st.sampled_from(list("abxyz.` é_-") + ["ü", "λ", "1"])
    # not "--": Python 3.11's argparse turns `--label=--` into [] (it drops every "--")
    return st.text(alphabet, min_size=1, max_size=6).filter(lambda s: s.strip() == s != "--")


BAD_CELLS = ["", "abc", "nan", "inf", "-Infinity", "1e400", "1,5"]


@st.composite
def linear_csv(draw):
    """(header, rows of text, label, X, y, bad cell or None) with per-column magnitudes 2^±665."""
    p = draw(st.integers(1, 3))
    names = draw(st.lists(_names(), min_size=p + 1, max_size=p + 1, unique_by=str.lower))
    n = draw(st.integers(p + 3, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    exponents = draw(st.lists(st.integers(-665, 665), min_size=p + 1, max_size=p + 1))
    z = rng.standard_normal((n, p))
    u = 0.5 + z @ rng.standard_normal(p) + 0.1 * rng.standard_normal(n)
    x = np.ldexp(z, np.array(exponents[:p]))  # exact scalings: the oracle undoes them exactly
    y = np.ldexp(u, exponents[p])
    rows = [[repr(float(v)) for v in row] for row in np.column_stack([x, y])]
    bad = None
    if draw(st.booleans()) and draw(st.booleans()):
        bad = (
            draw(st.integers(0, n - 1)),
            draw(st.integers(0, p)),
            draw(st.sampled_from(BAD_CELLS)),
        )
        rows[bad[0]][bad[1]] = bad[2]
    return names, rows, names[p], z, u, exponents, bad


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=linear_csv())
def test_property_linreg_fits_numpy_or_refuses_cleanly(spark, tmp_path_factory, capsys, case):
    names, rows, label, z, u, exponents, bad = case
    work = tmp_path_factory.mktemp("prop")
    src, out = work / "in.csv", work / "model"
    src.write_bytes(csv_text(names, rows))
    before = src.read_bytes()
    code, _, err = run_cli(
        capsys, "linreg", "fit", "--input", src, f"--label={label}", "--output", out
    )
    assert code in (0, 2), err
    event(
        f"exit {code}, {'a bad cell' if bad else 'clean'}, largest |exponent| "
        f"{max(map(abs, exponents)) // 200 * 200}+"
    )
    assert src.read_bytes() == before
    if code == 2:
        assert_refused(code, err, 2, ())
        assert not out.exists() and sorted(p.name for p in work.iterdir()) == ["in.csv"]
        if bad is not None:
            assert f"'{names[bad[1]]}'" in err, err
        return
    assert bad is None, f"a bad cell {bad} was accepted"
    doc = json.loads((out / "model.json").read_text())
    numbers = [doc["intercept"], *doc["coefficients"]] + [
        v
        for key in ("std_errors", "t_values", "p_values", "r2", "rmse", "residual_std")
        for v in np.atleast_1d(doc["summary"][key]).tolist()
    ]
    assert all(isinstance(v, float) and math.isfinite(v) for v in numbers), doc
    # numpy's lstsq on the same rows with the exact power-of-two column scalings taken out
    ref = np.linalg.lstsq(np.column_stack([np.ones(len(u)), z]), u, rcond=None)[0]
    p = z.shape[1]
    coefficients = np.ldexp(ref[1:], exponents[p] - np.array(exponents[:p]))
    intercept = np.ldexp(ref[0], exponents[p])
    np.testing.assert_allclose(doc["coefficients"], coefficients, rtol=1e-6)
    assert doc["intercept"] == pytest.approx(
        intercept, rel=1e-6, abs=1e-6 * np.abs(ref).max() * 2.0 ** exponents[p]
    )


def test_csv_over_the_multiline_limit_says_why_a_record_split(tmp_path, capsys, monkeypatch):
    """Inputs above MULTILINE_MAX_BYTES are read line by line (parallel splits): the quoted line
    break then splits a record (Spark pads the halves, it does not flag them), and the message
    says so instead of a bare count."""
    from sparkml_jobs.io import sources

    monkeypatch.setattr(sources, "MULTILINE_MAX_BYTES", 0)
    src = tmp_path / "in.csv"
    src.write_bytes(csv_text(["note", "x", "y"], [["a\nb,c", 1, 2], ["c", 2, 3], ["d", 3, 5]]))
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", src, "--features", "x,y", "--k", "2",
        "--output", tmp_path / "model",
    )  # fmt: skip
    assert_refused(code, err, 2, ("in 4 rows", "read line by line", "line break"))
    assert not (tmp_path / "model").exists()
