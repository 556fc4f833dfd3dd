"""The sparkml-jobs command: linreg fit|predict|evaluate, kmeans fit|predict|sweep|evaluate, demo.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 any other failure.
Progress goes to stderr one line per stage; results (tables) go to stdout.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sparkml_jobs import config, progress
from sparkml_jobs.errors import InputError

log = logging.getLogger("sparkml_jobs")

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal number, as shells report them
MAX_K = 1000
# the readers of io.read (not imported here: it imports pyspark, and parsing must not)
FORMATS = ("csv", "parquet", "libsvm")


class UsageParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 through our own handler."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


# --------------------------------------------------------------------------- arguments


def _csv_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _penalty_list(text: str) -> list[float]:
    """Ridge penalties: finite numbers >= 0, separated by commas."""
    try:
        values = [float(item) for item in _csv_list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from exc
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"values must be finite numbers >= 0, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _cv_folds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < 2:  # one fold would train and test on nothing
        raise argparse.ArgumentTypeError(
            f"must be 0 (no cross-validation) or at least 2, got {text!r}"
        )
    return value


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return value


def _delimiter(text: str) -> str:
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


def _spark_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file of option values (command-line flags win)")
    parser.add_argument("--master", help="Spark master URL (default local[*], or spark-submit's)")
    parser.add_argument("--metrics-json", help="also write the results/metrics as JSON here")
    parser.add_argument(
        "--conf",
        action="append",
        type=_spark_setting,
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting, as spark-submit's --conf (repeatable; spark.hadoop.* for Hadoop)",
    )
    parser.add_argument(
        "--catalog",
        choices=["in-memory", "hive"],
        help="table catalog for --input-table/--output-table (hive: the Hive metastore, "
        "configured by hive-site.xml or --conf)",
    )
    parser.add_argument(
        "--driver-memory", help="driver JVM heap, e.g. 8g (in-process runs; spark-submit's own)"
    )
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="EXPERIMENT",
        help="log params, metrics and artifacts to MLflow (experiment default: "
        "$MLFLOW_EXPERIMENT_NAME or sparkml-jobs; needs the 'mlflow' extra)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks")


def _add_reader(parser: argparse.ArgumentParser) -> None:
    """How to read an input: --format, --delimiter, --partitions."""
    parser.add_argument("--format", default="csv", choices=FORMATS, help="default csv")
    parser.add_argument(
        "--delimiter", default=",", type=_delimiter, help="CSV field delimiter (default ,)"
    )
    parser.add_argument(
        "--partitions", type=_positive_int, help="repartition the input to N partitions"
    )


def _add_input(parser: argparse.ArgumentParser, label: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="input path (file, directory or glob; any Hadoop URI)")
    source.add_argument("--input-table", metavar="DB.TABLE", help="read a catalog table instead")
    _add_reader(parser)
    if label:
        parser.add_argument("--label", help="label column (libsvm: 'label')")
        parser.add_argument("--weight-col", help="column of non-negative row weights")
    parser.add_argument(
        "--features",
        type=_csv_list,
        help="comma-separated feature columns (default: all but label/weight)",
    )
    parser.add_argument(
        "--handle-invalid",
        choices=["error", "skip"],
        default="error",
        help="rows with a missing, non-numeric or NaN/inf cell in a used column, or ragged: "
        "stop with an error (default) or skip them, counted per column",
    )
    parser.add_argument(
        "--rejects", metavar="PATH", help="with skip: write the skipped rows as read + _reason"
    )


def _add_output(parser: argparse.ArgumentParser, table: bool = False) -> None:
    if table:  # predictions: a directory of Parquet files, or a catalog table
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--output", help="output directory (written atomically)")
        target.add_argument(
            "--output-table", metavar="DB.TABLE", help="write the predictions as a catalog table"
        )
        parser.add_argument(
            "--partition-by", type=_csv_list, metavar="COL,...", help="partition the output"
        )
    else:
        parser.add_argument("--output", required=True, help="output directory (written atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="also write DIR/report.html with plots (needs the 'report' extra)",
    )


def _add_handle_unknown(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--handle-unknown",
        choices=["error", "zero"],
        default="error",
        help="a categorical level not seen in training: error (default, exit 2) or zero "
        "(all-zero dummies; the rows are counted in the metrics)",
    )


def build_parser() -> tuple[UsageParser, dict[str, argparse.ArgumentParser]]:
    parser = UsageParser(prog="sparkml-jobs", description=__doc__.splitlines()[0])
    algos = parser.add_subparsers(dest="algo", required=True, parser_class=UsageParser)
    actions: dict[str, argparse.ArgumentParser] = {}

    linreg = algos.add_parser("linreg", help="linear regression (distributed normal equations)")
    linreg_actions = linreg.add_subparsers(dest="action", required=True, parser_class=UsageParser)
    fit = linreg_actions.add_parser("fit", help="fit a model and save it")
    _add_input(fit, label=True)
    _add_output(fit)
    fit.add_argument("--no-intercept", dest="fit_intercept", action="store_false")
    fit.add_argument(
        "--formula",
        help="model formula, as statsmodels/patsy: 'log(y) ~ a + b + I(b**2) + group + a:group' "
        "(text and boolean columns are categorical, treatment coded; instead of --label and "
        "--features)",
    )
    fit.add_argument(
        "--max-levels",
        type=_positive_int,
        default=1000,
        help="refuse a categorical column with more distinct values (default 1000)",
    )
    fit.add_argument(
        "--reg-param",
        type=_penalty_list,
        default=[0.0],
        help="ridge penalty λ (default 0); a list a,b,c with --cv K picks the best",
    )
    fit.add_argument(
        "--cv", type=_cv_folds, default=0, help="K-fold cross-validation of --reg-param"
    )
    fit.add_argument("--on-singular", choices=["error", "drop"], default="error")
    fit.add_argument("--solver", choices=["auto", "cholesky", "tsqr"], default="auto")
    fit.add_argument(
        "--alias-tol",
        type=float,
        default=None,
        metavar="TOL",
        help="rank tolerance in (0, 1): a column whose norm left after projection on the columns "
        "before it is at most TOL of its norm is aliased (default: max(rows, cols)*eps, at most "
        "1e-7, for TSQR; 1e-7 is R's lm)",
    )
    fit.add_argument(
        "--no-refine", dest="refine", action="store_false", help="skip the TSQR refinement pass"
    )
    fit.add_argument(
        "--one-pass",
        dest="residual_pass",
        action="store_false",
        help="read the data once: SSR from the statistics, no MAE / residual plots",
    )
    update = linreg_actions.add_parser(
        "update", help="add (--input) and/or remove (--subtract) data from a saved model"
    )
    update.add_argument("--model", required=True)
    update.add_argument("--input", help="new rows to add")
    update.add_argument("--subtract", help="rows to remove (e.g. a day that left the window)")
    _add_reader(update)
    _add_output(update)
    actions["linreg update"] = update
    _add_report(fit)
    predict = linreg_actions.add_parser("predict", help="score data with a saved model (Parquet)")
    predict.add_argument("--model", required=True)
    _add_input(predict, label=False)
    _add_output(predict, table=True)
    _add_handle_unknown(predict)
    predict.add_argument(
        "--interval",
        choices=["confidence", "prediction"],
        help="add 'lower' and 'upper': the interval of the mean (confidence) or of a new "
        "observation (prediction), as statsmodels' summary_frame",
    )
    predict.add_argument("--level", type=_level, default=0.95, help="interval level (default 0.95)")
    evaluate = linreg_actions.add_parser(
        "evaluate", help="metrics of a saved model on labelled data"
    )
    evaluate.add_argument("--model", required=True)
    _add_input(evaluate, label=True)
    _add_handle_unknown(evaluate)
    actions.update({"linreg fit": fit, "linreg predict": predict, "linreg evaluate": evaluate})

    kmeans = algos.add_parser("kmeans", help="k-means (Lloyd over a cached RDD)")
    kmeans_actions = kmeans.add_subparsers(dest="action", required=True, parser_class=UsageParser)
    kfit = kmeans_actions.add_parser("fit", help="cluster and save the model")
    _add_input(kfit, label=False)
    kfit.add_argument("--weight-col", help="column of non-negative row weights")
    _add_output(kfit)
    kfit.add_argument("--k", type=_positive_int, required=True)
    kfit.add_argument(
        "--init",
        default="k-means||",
        help="k-means|| (default) | k-means++ | random | PATH of a CSV of k centres | "
        "spark-ml:DIR of a Spark ML KMeansModel",
    )
    kfit.add_argument("--max-iter", type=_positive_int, default=20)
    kfit.add_argument("--tol", type=_tolerance, default=1e-4)
    kfit.add_argument("--seed", type=int, default=0)
    kfit.add_argument("--distance", choices=["euclidean", "cosine"], default="euclidean")
    kfit.add_argument("--n-init", type=_positive_int, default=1)
    kfit.add_argument("--init-steps", type=_positive_int, default=2)
    kfit.add_argument("--checkpoint-dir", help="checkpoint the cached data there (cuts lineage)")
    kfit.add_argument(
        "--mode",
        choices=["auto", "broadcast", "barrier"],
        default="auto",
        help="auto (default): barrier when its stage gets all its task slots, else broadcast; "
        "broadcast: one job per iteration; barrier: all iterations in one barrier stage, "
        "data resident in the Python workers",
    )
    _add_report(kfit)
    kpredict = kmeans_actions.add_parser("predict", help="assign clusters with a saved model")
    kpredict.add_argument("--model", required=True)
    _add_input(kpredict, label=False)
    _add_output(kpredict, table=True)
    actions.update({"kmeans fit": kfit, "kmeans predict": kpredict})
    ksweep = kmeans_actions.add_parser(
        "sweep", help="fit every k of a range on one read of the data; recommend k"
    )
    _add_input(ksweep, label=False)
    ksweep.add_argument("--weight-col", help="column of non-negative row weights")
    _add_output(ksweep)
    ksweep.add_argument(
        "--k", required=True, type=parse_k_range, help="k values: a range 2..20 or a list 2,4,8"
    )
    ksweep.add_argument(
        "--init", default="k-means||", help="k-means|| (default) | k-means++ | random"
    )
    ksweep.add_argument("--max-iter", type=_positive_int, default=20)
    ksweep.add_argument("--tol", type=_tolerance, default=1e-4)
    ksweep.add_argument("--seed", type=int, default=0)
    ksweep.add_argument("--distance", choices=["euclidean", "cosine"], default="euclidean")
    kevaluate = kmeans_actions.add_parser(
        "evaluate", help="cost and sampled silhouette of a saved model on data"
    )
    kevaluate.add_argument("--model", required=True)
    _add_input(kevaluate, label=False)
    kevaluate.add_argument("--weight-col", help="column of non-negative row weights")
    actions.update({"kmeans sweep": ksweep, "kmeans evaluate": kevaluate})

    demo = algos.add_parser("demo", help="run both jobs on the bundled data and print the results")
    demo.add_argument("--data-dir", default=str(Path(__file__).resolve().parent.parent / "data"))
    demo.add_argument("--output", help="where to write the demo models (default: a temp dir)")
    actions["demo"] = demo
    export = algos.add_parser(
        "export", help="write a saved model in another library's format (Spark ML)"
    )
    export.add_argument("--model", required=True, help="our model directory")
    export.add_argument(
        "--to",
        required=True,
        choices=["spark-ml"],
        help="spark-ml: a directory pyspark.ml's LinearRegressionModel/KMeansModel.load opens",
    )
    _add_output(export)
    actions["export"] = export
    for sub in actions.values():
        _add_common(sub)
    return parser, actions


LIST_TYPES = (_csv_list, _penalty_list, parse_k_range)  # the options a TOML list may give


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


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse and check the command line; ``--config job.toml`` values come first, flags win."""
    parser, actions = build_parser()
    args = parser.parse_args(config.with_config(argv, actions, LIST_TYPES))
    check_args(args)
    return args


# --------------------------------------------------------------------------- entry point


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def configure_logging(verbose: bool) -> None:
    """Progress lines on the current stderr (re-bound at every call, for in-process use)."""
    handler = progress.make_handler(sys.stderr)  # in-place progress only on a terminal
    handler.setFormatter(logging.Formatter("sparkml-jobs: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    logging.getLogger("py4j").setLevel(logging.WARNING)


class Terminated(BaseException):
    """SIGTERM (what schedulers send on timeout), raised in the main thread so that every
    ``finally`` runs: temporary outputs are deleted before the process exits with 143."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    configure_logging(verbose)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        args = parse_args(argv)
        verbose = args.verbose  # verbose = true may come from the config file
        configure_logging(verbose)
        key = args.algo if args.algo in ("demo", "export") else f"{args.algo} {args.action}"
        # after parsing: a usage error costs no Spark import
        from sparkml_jobs import jobs, tracking
        from sparkml_jobs.io import persist

        try:
            result = jobs.with_row_account(args, tracking.run_action(key, args, jobs.ACTIONS[key]))
        finally:
            progress.end_line()  # results and error messages start on a fresh line
        persist.write_json(getattr(args, "metrics_json", None), result)
        return EXIT_OK
    except InputError as exc:
        print(f"sparkml-jobs: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sparkml-jobs: interrupted (SIGINT); temporary outputs removed", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print("sparkml-jobs: terminated (SIGTERM); temporary outputs removed", file=sys.stderr)
        return EXIT_SIGTERM
    except Exception as exc:  # anything else: one line, the traceback only when asked for
        if verbose:
            log.exception("failed")
        print(
            f"sparkml-jobs: failed: {type(exc).__name__}: {_one_line(exc)}"
            + ("" if verbose else " (run with --verbose for the traceback)"),
            file=sys.stderr,
        )
        return EXIT_FAILURE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
