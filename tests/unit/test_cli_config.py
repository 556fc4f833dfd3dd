"""Command-line parsing without Spark: ``--config job.toml`` and usage errors caught up front.

The oracle for a config file is the command line itself: a TOML table must parse to exactly the
namespace its equivalent flags give. Usage errors are checked with the jobs module (and pyspark)
made unimportable, so an error that arrives at all arrived before any Spark code could run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sparkml_jobs
from sparkml_jobs.cli import main, parse_args
from sparkml_jobs.config import config_tokens
from sparkml_jobs.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
FIT = ["linreg", "fit", "--input", "d.csv", "--label", "y", "--output", "out"]
KFIT = ["kmeans", "fit", "--input", "d.csv", "--k", "3", "--output", "out"]


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return str(path)


def _namespace(argv: list[str]) -> dict:
    values = vars(parse_args(argv))
    values.pop("config")
    return values


def _error(capsys, argv: list[str]) -> str:
    """The one error line of a run that must exit 2."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparkml-jobs: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- --config


def test_typed_config_parses_like_the_command_line(tmp_path):
    config = _toml(
        tmp_path,
        'input = "d.csv"\nlabel = "y"\noutput = "out"\nno-intercept = true\n'
        'reg-param = [0.1, 1]\ncv = 3\nfeatures = ["a", "b"]\noverwrite = true\n'
        'weight-col = "w"\nsolver = "tsqr"\nmaster = "local[2]"\npartitions = 4\n',
    )
    got = _namespace(["linreg", "fit", "--config", config])
    flags = [
        *FIT,
        "--no-intercept",
        "--reg-param",
        "0.1,1",
        "--cv",
        "3",
        "--features",
        "a,b",
        "--overwrite",
        "--weight-col",
        "w",
        "--solver",
        "tsqr",
        "--master",
        "local[2]",
        "--partitions",
        "4",
    ]
    assert got == _namespace(flags)
    assert got["reg_param"] == [0.1, 1.0] and got["fit_intercept"] is False
    assert got["features"] == ["a", "b"] and got["overwrite"] is True and got["partitions"] == 4


@pytest.mark.parametrize(
    ("line", "dest", "expected"),
    [
        ("reg-param = 0.1", "reg_param", [0.1]),
        ("reg-param = 2", "reg_param", [2.0]),
        ('reg-param = "0.1,1"', "reg_param", [0.1, 1.0]),
        ('features = "a, b"', "features", ["a", "b"]),
        ("no-intercept = false", "fit_intercept", True),
        ("overwrite = false", "overwrite", False),
        ("one-pass = true", "residual_pass", False),
        ("verbose = true", "verbose", True),
    ],
)
def test_one_typed_value(tmp_path, line, dest, expected):
    config = _toml(tmp_path, f"{line}\ncv = 2\n")
    assert getattr(parse_args([*FIT, "--config", config]), dest) == expected


def test_kmeans_config_values(tmp_path):
    config = _toml(tmp_path, 'k = 4\nmax-iter = 7\ntol = 0\ndistance = "cosine"\nseed = -3\n')
    args = parse_args(["kmeans", "fit", "--input", "d.csv", "--output", "o", "--config", config])
    assert (args.k, args.max_iter, args.tol, args.distance, args.seed) == (4, 7, 0.0, "cosine", -3)
    sweep = _toml(tmp_path, "k = [2, 4, 8]\n")
    args = parse_args(["kmeans", "sweep", "--input", "d.csv", "--output", "o", "--config", sweep])
    assert args.k == [2, 4, 8]


def test_command_line_flags_win_over_the_config(tmp_path):
    config = _toml(
        tmp_path,
        'input = "from-config.csv"\nlabel = "y"\noutput = "out"\nreg-param = 0.5\n'
        'features = ["a", "b"]\nsolver = "tsqr"\n',
    )
    args = parse_args(
        ["linreg", "fit", "--config", config, "--reg-param", "2", "--features", "c"]
        + ["--solver=cholesky", "--input", "cli.csv"]
    )
    assert (args.reg_param, args.features, args.solver) == ([2.0], ["c"], "cholesky")
    assert (args.input, args.label, args.output) == ("cli.csv", "y", "out")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('overwrite = "false"', "'overwrite' is an on/off flag: write true or false"),
        ('no-intercept = "true"', "'no-intercept' is an on/off flag"),
        ("overwrite = 0", "'overwrite' is an on/off flag"),
        ("colour = 'blue'", "unknown option(s) 'colour'"),
        ("reg_param = 0.1", "unknown option(s) 'reg_param' (did you mean 'reg-param'?)"),
        ("config = 'other.toml'", "unknown option(s) 'config'"),
        ("help = true", "unknown option(s) 'help'"),
        ("cv = true", "'cv' takes a value, not true/false"),
        ('label = ["a", "b"]', "'label' takes one value, not a list"),
        ("features = []", "'features' is an empty list"),
        ('features = ["a,b", "c"]', "'features': item 'a,b' contains a comma"),
        ("reg-param = [0.1, true]", "'reg-param': list items must be strings or numbers"),
        ("features = { a = 1 }", "'features' must be a string, a number or a list"),
        ("reg-param = -1", "--reg-param"),
        ('format = "xml"', "invalid choice: 'xml'"),
        ("partitions = 0", "--partitions"),
        ("partitions = 2.5", "--partitions"),
        ("reg-param = [0.1, nan]", "--reg-param"),
    ],
)
def test_bad_config_value_exits_2_naming_the_key(tmp_path, capsys, text, expected):
    config = _toml(tmp_path, text + "\n")
    line = _error(capsys, [*FIT, "--config", config])
    assert expected in line and config in line, line


def test_repeatable_option_takes_one_flag_per_list_item(tmp_path):
    from sparkml_jobs.cli import UsageParser

    parser = UsageParser(prog="job")
    parser.add_argument("--setting", action="append", default=[])
    parser.add_argument("--n", type=int)
    path = _toml(tmp_path, 'setting = ["a=1", "b=2"]\nn = 3\n')
    tokens = config_tokens(path, parser)
    assert tokens == ["--setting=a=1", "--setting=b=2", "--n=3"]
    assert parser.parse_args(tokens).setting == ["a=1", "b=2"]
    with pytest.raises(InputError, match="'n' takes one value, not a list"):
        config_tokens(_toml(tmp_path, "n = [1, 2]\n"), parser)


def test_config_file_problems_exit_2(tmp_path, capsys):
    missing = str(tmp_path / "none.toml")
    assert f"config file not found: {missing}" in _error(capsys, [*FIT, "--config", missing])
    broken = _toml(tmp_path, "reg-param = = 1\n")
    assert "is not valid TOML" in _error(capsys, [*FIT, "--config", broken])


def test_required_options_may_come_from_the_config(tmp_path, capsys):
    config = _toml(tmp_path, 'label = "y"\n')
    line = _error(capsys, ["linreg", "fit", "--config", config])
    assert "required: --output" in line
    config = _toml(tmp_path, 'label = "y"\noutput = "o"\n')
    line = _error(capsys, ["linreg", "fit", "--config", config])
    assert "--input --input-table is required" in line
    config = _toml(tmp_path, 'input = "d.csv"\nlabel = "y"\noutput = "o"\n')
    assert parse_args(["linreg", "fit", "--config", config]).output == "o"


# --------------------------------------------------------------------------- before Spark


@pytest.fixture
def no_spark(monkeypatch):
    """Make the jobs (and pyspark) unimportable: reaching them turns the run into exit 1."""
    monkeypatch.delattr(sparkml_jobs, "jobs", raising=False)
    monkeypatch.setitem(sys.modules, "sparkml_jobs.jobs", None)
    monkeypatch.setitem(sys.modules, "pyspark", None)


def test_the_no_spark_fixture_is_effective(no_spark, capsys):
    """A valid command line gets past parsing and fails on the blocked import (exit 1)."""
    assert main(FIT) == 1
    assert "sparkml_jobs.jobs" in capsys.readouterr().err


USAGE_ERRORS = [
    (FIT + ["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (FIT + ["--partitions", "0"], "argument --partitions: must be an integer >= 1, got '0'"),
    (FIT + ["--partitions", "-2"], "argument --partitions: must be an integer >= 1, got '-2'"),
    (FIT + ["--cv", "1"], "argument --cv: must be 0 (no cross-validation) or at least 2, got '1'"),
    (FIT + ["--cv", "-1"], "argument --cv: must be 0"),
    (FIT + ["--reg-param", "-1"], "argument --reg-param: values must be finite numbers >= 0"),
    (FIT + ["--reg-param", "inf"], "argument --reg-param: values must be finite numbers >= 0"),
    (FIT + ["--reg-param", "0.1,1"], "a list of --reg-param values needs --cv K"),
    (FIT + ["--weight-col", "y"], "--weight-col 'y' is also the label"),
    (FIT + ["--weight-col", "a", "--features", "a,b"], "--weight-col 'a' is also listed"),
    (FIT + ["--features", "a,y"], "the label 'y' is also listed in --features"),
    (FIT + ["--features", "a,b,a"], "--features lists 'a' twice"),
    (FIT + ["--delimiter", ""], "argument --delimiter: must not be empty"),
    (
        ["linreg", "evaluate", "--model", "m", "--input", "d.csv", "--label", "w"]
        + ["--weight-col", "w"],
        "--weight-col 'w' is also the label",
    ),
    (["linreg", "update", "--model", "m", "--output", "o", "--partitions", "0"], "--partitions"),
    (["linreg", "update", "--model", "m", "--output", "o", "--format", "xml"], "invalid choice"),
    (KFIT[:-4] + ["--k", "0", "--output", "out"], "argument --k: must be an integer >= 1, got '0'"),
    (KFIT + ["--max-iter", "0"], "argument --max-iter: must be an integer >= 1, got '0'"),
    (KFIT + ["--tol", "-1"], "argument --tol: must be a finite number >= 0, got '-1'"),
    (KFIT + ["--tol", "nan"], "argument --tol: must be a finite number >= 0, got 'nan'"),
    (KFIT + ["--n-init", "0"], "argument --n-init: must be an integer >= 1"),
    (KFIT + ["--init-steps", "0"], "argument --init-steps: must be an integer >= 1"),
    (KFIT + ["--format", "xml"], "invalid choice: 'xml'"),
    (KFIT + ["--weight-col", "a", "--features", "a,b"], "--weight-col 'a' is also listed"),
    (
        ["kmeans", "sweep", "--input", "d.csv", "--output", "o", "--k", "2..4", "--max-iter", "0"],
        "argument --max-iter: must be an integer >= 1",
    ),
    (
        ["kmeans", "sweep", "--input", "d.csv", "--output", "o", "--k", "2..4"]
        + ["--weight-col", "b", "--features", "a,b"],
        "--weight-col 'b' is also listed",
    ),
    (
        ["kmeans", "evaluate", "--model", "m", "--input", "d.csv", "--weight-col", "b"]
        + ["--features", "a,b"],
        "--weight-col 'b' is also listed",
    ),
    (
        ["kmeans", "predict", "--model", "m", "--input", "d", "--output", "o"]
        + ["--partitions", "0"],
        "--partitions",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), USAGE_ERRORS)
def test_usage_error_arrives_before_spark(no_spark, capsys, argv, expected):
    line = _error(capsys, argv)
    assert expected in line, line


def test_usage_error_in_a_fresh_process_never_imports_pyspark():
    """``python -m sparkml_jobs`` with pyspark unimportable: the usage error still exits 2."""
    code = (
        "import runpy, sys; sys.modules['pyspark'] = None; "
        "runpy.run_module('sparkml_jobs', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *FIT, "--format", "xml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("sparkml-jobs: error: ") and "invalid choice: 'xml'" in line
