"""The command line's option values and the checks across options (no Spark, no I/O).

Each option's own check is its argparse ``type`` here, so a bad value is one line and exit 2
before anything starts; :func:`check_args` holds the checks that involve several options.
"""

from __future__ import annotations

import argparse
import math
import re

from sparkml_jobs.errors import InputError

MAX_K = 1000
# the readers of io.read (not imported here: it imports pyspark, and parsing must not)
FORMATS = ("csv", "parquet", "libsvm")


def csv_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def penalty_list(text: str) -> list[float]:
    """Ridge penalties: finite numbers >= 0, separated by commas."""
    try:
        values = [float(item) for item in csv_list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from exc
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"values must be finite numbers >= 0, got {text!r}")
    return values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def cv_folds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < 2:  # one fold would train and test on nothing
        raise argparse.ArgumentTypeError(
            f"must be 0 (no cross-validation) or at least 2, got {text!r}"
        )
    return value


def tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return value


def delimiter(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def parse_k_range(text: str) -> list[int]:
    """``"2..20"`` (inclusive), ``"2,4,8"`` or ``"5"`` → sorted distinct k values, each ≥ 2."""
    text = text.strip()
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split("..", 1))
            ks = list(range(low, high + 1))
        else:
            ks = sorted({int(part) for part in re.split(r"\s*,\s*", text) if part})
    except ValueError:
        ks = []
    if not ks:
        raise argparse.ArgumentTypeError(
            f"--k must be a range like 2..20 or a list like 2,4,8, got {text!r}"
        )
    if ks[0] < 2 or ks[-1] > MAX_K:
        raise argparse.ArgumentTypeError(
            f"--k values must lie in 2..{MAX_K} (the silhouette needs two clusters), got {text!r}"
        )
    return ks


def spark_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


LIST_TYPES = (csv_list, penalty_list, parse_k_range)  # the options a TOML list may give


def check_args(args: argparse.Namespace) -> None:
    """The checks that involve several options (each option's own checks are its ``type``)."""
    features = getattr(args, "features", None) or []
    label, weight = getattr(args, "label", None), getattr(args, "weight_col", None)
    twice = sorted({name for name in features if features.count(name) > 1})
    if twice:
        raise InputError(f"--features lists {', '.join(repr(n) for n in twice)} twice")
    if label is not None and label in features:
        raise InputError(f"the label {label!r} is also listed in --features")
    if weight is not None and weight == label:
        raise InputError(f"--weight-col {weight!r} is also the label")
    if weight is not None and weight in features:
        raise InputError(f"--weight-col {weight!r} is also listed in --features")
    if getattr(args, "formula", None):
        for flag, given in (
            ("--label", label is not None),
            ("--features", bool(features)),
            ("--no-intercept", not args.fit_intercept),
        ):
            if given:
                raise InputError(
                    f"--formula and {flag}: the formula names the label and terms "
                    "('y ~ a + b', '- 1' for no intercept)"
                )
    if getattr(args, "interval", None) is None and getattr(args, "level", 0.95) != 0.95:
        raise InputError("--level needs --interval confidence|prediction")
    if getattr(args, "rejects", None) and getattr(args, "handle_invalid", "error") != "skip":
        raise InputError("--rejects needs --handle-invalid skip")
    if len(getattr(args, "reg_param", [])) > 1 and args.cv < 2:
        raise InputError("a list of --reg-param values needs --cv K (K >= 2) to choose among them")
