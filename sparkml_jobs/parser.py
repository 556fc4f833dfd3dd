"""The ``sparkml-jobs`` argument parser: every action's options, declared in one place.

:func:`build_parser` is long because it is a table: one block per action, each adding the shared
option groups (input, output, report, common) and its own options; splitting it would scatter the
command line's reference across functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparkml_jobs.errors import InputError
from sparkml_jobs.options import (
    FORMATS,
    csv_list,
    cv_folds,
    delimiter,
    level,
    parse_k_range,
    penalty_list,
    positive_int,
    spark_setting,
    tolerance,
)


class UsageParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 through our own handler."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file of option values (command-line flags win)")
    parser.add_argument("--master", help="Spark master URL (default local[*], or spark-submit's)")
    parser.add_argument("--metrics-json", help="also write the results/metrics as JSON here")
    parser.add_argument(
        "--conf",
        action="append",
        type=spark_setting,
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
        "--delimiter", default=",", type=delimiter, help="CSV field delimiter (default ,)"
    )
    parser.add_argument(
        "--partitions", type=positive_int, help="repartition the input to N partitions"
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
        type=csv_list,
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
            "--partition-by", type=csv_list, metavar="COL,...", help="partition the output"
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
    parser = UsageParser(
        prog="sparkml-jobs",
        description="Distributed machine learning as Spark batch jobs: "
        "linear regression and k-means.",
    )
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
        type=positive_int,
        default=1000,
        help="refuse a categorical column with more distinct values (default 1000)",
    )
    fit.add_argument(
        "--reg-param",
        type=penalty_list,
        default=[0.0],
        help="ridge penalty λ (default 0); a list a,b,c with --cv K picks the best",
    )
    fit.add_argument(
        "--cv", type=cv_folds, default=0, help="K-fold cross-validation of --reg-param"
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
    predict.add_argument("--level", type=level, default=0.95, help="interval level (default 0.95)")
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
    kfit.add_argument("--k", type=positive_int, required=True)
    kfit.add_argument(
        "--init",
        default="k-means||",
        help="k-means|| (default) | k-means++ | random | PATH of a CSV of k centres | "
        "spark-ml:DIR of a Spark ML KMeansModel",
    )
    kfit.add_argument("--max-iter", type=positive_int, default=20)
    kfit.add_argument("--tol", type=tolerance, default=1e-4)
    kfit.add_argument("--seed", type=int, default=0)
    kfit.add_argument("--distance", choices=["euclidean", "cosine"], default="euclidean")
    kfit.add_argument("--n-init", type=positive_int, default=1)
    kfit.add_argument("--init-steps", type=positive_int, default=2)
    kfit.add_argument(
        "--standardize",
        action="store_true",
        help="cluster (x - mean) / std per feature (weighted, computed in the load pass); the "
        "model saves mean and scale; centres in the data's units, cost and distances in "
        "standardised units; a constant column is refused",
    )
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
    ksweep.add_argument("--max-iter", type=positive_int, default=20)
    ksweep.add_argument("--tol", type=tolerance, default=1e-4)
    ksweep.add_argument("--seed", type=int, default=0)
    ksweep.add_argument("--distance", choices=["euclidean", "cosine"], default="euclidean")
    ksweep.add_argument(
        "--standardize",
        action="store_true",
        help="as kmeans fit --standardize: one scaling (from the load pass) for every k; centres "
        "in the data's units, costs and silhouettes in standardised units",
    )
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
