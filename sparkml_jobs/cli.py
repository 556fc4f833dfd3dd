"""The sparkml-jobs command: linreg fit|predict|evaluate, kmeans fit|predict|sweep|evaluate, demo.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 any other failure.
Progress goes to stderr one line per stage; results (tables) go to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sparkml_jobs import progress
from sparkml_jobs.errors import InputError

log = logging.getLogger("sparkml_jobs")

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


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


def _float_list(text: str) -> list[float]:
    try:
        return [float(item) for item in _csv_list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from exc


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file of option values (command-line flags win)")
    parser.add_argument("--master", help="Spark master URL (default local[*], or spark-submit's)")
    parser.add_argument("--metrics-json", help="also write the results/metrics as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks")


def _add_input(parser: argparse.ArgumentParser, label: bool) -> None:
    parser.add_argument("--input", required=True, help="input path (file, directory or glob)")
    parser.add_argument("--format", default="csv", help="csv | parquet | libsvm (default csv)")
    parser.add_argument("--delimiter", default=",", help="CSV field delimiter (default ,)")
    parser.add_argument("--partitions", type=int, help="repartition the input to N partitions")
    if label:
        parser.add_argument("--label", help="label column (libsvm: 'label')")
        parser.add_argument("--weight-col", help="column of non-negative row weights")
    parser.add_argument(
        "--features",
        type=_csv_list,
        help="comma-separated feature columns (default: all but label/weight)",
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="output directory (written atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="also write DIR/report.html with plots (needs the 'report' extra)",
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
        "--reg-param",
        type=_float_list,
        default=[0.0],
        help="ridge penalty λ (default 0); a list a,b,c with --cv K picks the best",
    )
    fit.add_argument("--cv", type=int, default=0, help="K-fold cross-validation of --reg-param")
    fit.add_argument("--on-singular", choices=["error", "drop"], default="error")
    fit.add_argument("--solver", choices=["auto", "cholesky", "tsqr"], default="auto")
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
    update.add_argument("--format", default="csv")
    update.add_argument("--delimiter", default=",")
    update.add_argument("--partitions", type=int)
    _add_output(update)
    actions["linreg update"] = update
    _add_report(fit)
    predict = linreg_actions.add_parser("predict", help="score data with a saved model (Parquet)")
    predict.add_argument("--model", required=True)
    _add_input(predict, label=False)
    _add_output(predict)
    evaluate = linreg_actions.add_parser(
        "evaluate", help="metrics of a saved model on labelled data"
    )
    evaluate.add_argument("--model", required=True)
    _add_input(evaluate, label=True)
    actions.update({"linreg fit": fit, "linreg predict": predict, "linreg evaluate": evaluate})

    kmeans = algos.add_parser("kmeans", help="k-means (Lloyd over a cached RDD)")
    kmeans_actions = kmeans.add_subparsers(dest="action", required=True, parser_class=UsageParser)
    kfit = kmeans_actions.add_parser("fit", help="cluster and save the model")
    _add_input(kfit, label=False)
    kfit.add_argument("--weight-col", help="column of non-negative row weights")
    _add_output(kfit)
    kfit.add_argument("--k", type=int, required=True)
    kfit.add_argument(
        "--init",
        default="k-means||",
        help="k-means|| (default) | k-means++ | random | PATH of a CSV of k centres",
    )
    kfit.add_argument("--max-iter", type=int, default=20)
    kfit.add_argument("--tol", type=float, default=1e-4)
    kfit.add_argument("--seed", type=int, default=0)
    kfit.add_argument("--distance", choices=["euclidean", "cosine"], default="euclidean")
    kfit.add_argument("--n-init", type=int, default=1)
    kfit.add_argument("--init-steps", type=int, default=2)
    kfit.add_argument("--checkpoint-dir", help="checkpoint the cached data there (cuts lineage)")
    kfit.add_argument(
        "--mode",
        choices=["broadcast", "barrier"],
        default="broadcast",
        help="broadcast: one job per iteration (default); barrier: all iterations "
        "in one barrier stage, data resident in the Python workers",
    )
    _add_report(kfit)
    kpredict = kmeans_actions.add_parser("predict", help="assign clusters with a saved model")
    kpredict.add_argument("--model", required=True)
    _add_input(kpredict, label=False)
    _add_output(kpredict)
    actions.update({"kmeans fit": kfit, "kmeans predict": kpredict})
    ksweep = kmeans_actions.add_parser(
        "sweep", help="fit every k of a range on one read of the data; recommend k"
    )
    _add_input(ksweep, label=False)
    ksweep.add_argument("--weight-col", help="column of non-negative row weights")
    _add_output(ksweep)
    ksweep.add_argument("--k", required=True, help="k values: a range 2..20 or a list 2,4,8")
    ksweep.add_argument(
        "--init", default="k-means||", help="k-means|| (default) | k-means++ | random"
    )
    ksweep.add_argument("--max-iter", type=int, default=20)
    ksweep.add_argument("--tol", type=float, default=1e-4)
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
    for sub in actions.values():
        _add_common(sub)
    return parser, actions


def _config_path(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse flags; values from ``--config job.toml`` become defaults that flags override."""
    parser, actions = build_parser()
    config_path = _config_path(argv)
    key = "demo" if argv[:1] == ["demo"] else " ".join(argv[:2])
    if config_path and key in actions:
        sub = actions[key]
        try:
            config = tomllib.loads(Path(config_path).read_text())
        except FileNotFoundError as exc:
            raise InputError(f"config file not found: {config_path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"config file {config_path} is not valid TOML: {exc}") from exc
        known = {action.dest for action in sub._actions}
        values = {k.replace("-", "_"): v for k, v in config.items()}
        if isinstance(values.get("features"), str):
            values["features"] = _csv_list(values["features"])
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"config file {config_path}: unknown option(s) {', '.join(unknown)}")
        sub.set_defaults(**values)
        for action in sub._actions:  # a required flag may now come from the config
            if action.dest in values:
                action.required = False
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- output helpers


def write_json(path: str | None, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (temp file + rename)."""
    if not path:
        return
    from sparkml_jobs.persist import dumps

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(dumps(document))
    os.replace(tmp, target)


def _session(args: argparse.Namespace):
    from sparkml_jobs.session import get_session

    return get_session(
        args.master, app_name=f"sparkml-jobs {args.algo} {getattr(args, 'action', '')}"
    )


def _load(
    spark,
    args: argparse.Namespace,
    *,
    label: str | None,
    features: list[str] | None,
    weight: str | None = None,
):
    from sparkml_jobs import data

    return data.load(
        spark,
        args.input,
        args.format,
        label=label,
        features=features,
        weight=weight,
        delimiter=args.delimiter,
        num_partitions=args.partitions,
    )


def _check_report(args: argparse.Namespace) -> None:
    """Before any Spark work: --report needs matplotlib and a free (or --overwrite) directory."""
    if not getattr(args, "report", None):
        return
    from sparkml_jobs import persist, visual

    visual.require_matplotlib()
    if Path(args.report).resolve() == Path(args.output).resolve():
        raise InputError("--report must be a different directory from --output")
    persist.check_output(args.report, args.overwrite)


def _write_report(args: argparse.Namespace, model) -> None:
    if not getattr(args, "report", None):
        return
    from sparkml_jobs import visual

    write = visual.linreg_report if args.algo == "linreg" else visual.kmeans_report
    page = write(model, args.report, source=args.input, overwrite=args.overwrite)
    log.info("report written to %s", page)


def _write_predictions(frame, output: str, overwrite: bool) -> None:
    from sparkml_jobs.persist import atomic_output

    with atomic_output(output, overwrite) as tmp:
        frame.write.parquet(str(tmp))


def _validate_frame(spark, args, features: list[str]) -> Any:
    """Read the input for scoring and check its feature columns (JVM-side counts only)."""
    from pyspark.sql import functions as F

    from sparkml_jobs import data

    frame = data.read_source(spark, args.input, args.format, delimiter=args.delimiter)
    data.resolve_columns(frame, args.input, label=None, features=features)
    checks = [F.count(F.lit(1)).alias("rows")]
    if data.CORRUPT in frame.columns:
        checks.append(F.sum(F.col(data.CORRUPT).isNotNull().cast("int")).alias("ragged"))
    for j, name in enumerate(features):
        typed = data.as_double(name)
        checks.append(F.sum(typed.isNull().cast("int")).alias(f"n{j}"))
        checks.append(
            F.sum((F.isnan(typed) | F.abs(typed).eqNullSafe(float("inf"))).cast("int")).alias(
                f"f{j}"
            )
        )
    row = frame.agg(*checks).first()
    import numpy as np

    counts = data.Counts(
        rows=row["rows"],
        nulls=np.array([row[f"n{j}"] or 0 for j in range(len(features))]),
        nonfinite=np.array([row[f"f{j}"] or 0 for j in range(len(features))]),
        ragged=(row["ragged"] or 0) if data.CORRUPT in frame.columns else 0,
    )
    typed_frame = frame.select(
        *[data.as_double(c).alias(c) for c in features],
        *[F.col(f"`{c}`").alias(f"__raw_{c}") for c in features],
    )
    data.check_counts(counts, features, args.input, typed_frame)
    if data.CORRUPT in frame.columns:
        frame = frame.drop(data.CORRUPT)
    return frame


# --------------------------------------------------------------------------- actions


def linreg_fit(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import linreg, persist, report

    persist.check_output(args.output, args.overwrite)
    _check_report(args)
    if len(args.reg_param) > 1 and args.cv < 2:
        raise InputError("a list of --reg-param values needs --cv K (K >= 2) to choose among them")
    estimator = linreg.LinearRegression(
        fit_intercept=args.fit_intercept,
        reg_param=args.reg_param[0],
        on_singular=args.on_singular,
        solver=args.solver,
        refine=args.refine,
        residual_pass=args.residual_pass,
    )
    if args.label is None:
        if args.format == "libsvm":
            args.label = "label"
        else:
            raise InputError("linreg fit needs --label NAME")
    spark = _session(args)
    data = _load(spark, args, label=args.label, features=args.features, weight=args.weight_col)
    log.info("fitting linear regression on %s (%d features)", args.input, data.n_features)
    if args.cv:
        model = estimator.fit_cv(data, args.reg_param, args.cv)
    else:
        model = estimator.fit(data)
    linreg.save_model(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(report.linreg_table(model))
    _write_report(args, model)
    return report.linreg_metrics(model)


def linreg_update(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import data, linreg, persist, report

    persist.check_output(args.output, args.overwrite)
    if not args.input and not args.subtract:
        raise InputError(
            "linreg update needs --input (rows to add) and/or --subtract (rows to remove)"
        )
    model = linreg.load_model(args.model)
    if model.label is None:
        raise InputError(f"model {args.model} has no label recorded")
    spark = _session(args)

    def part(path: str | None):
        if path is None:
            return None
        return data.load(
            spark,
            path,
            args.format,
            label=model.label,
            features=model.features,
            weight=model.weight_col,
            delimiter=args.delimiter,
            num_partitions=args.partitions,
        )

    updated = linreg.update(model, part(args.input), part(args.subtract))
    linreg.save_model(updated, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(report.linreg_table(updated))
    return report.linreg_metrics(updated)


def linreg_predict(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import linreg, persist

    persist.check_output(args.output, args.overwrite)
    model = linreg.load_model(args.model)
    spark = _session(args)
    frame = _validate_frame(spark, args, model.features)
    _write_predictions(model.predict(frame), args.output, args.overwrite)
    log.info("predictions written to %s", args.output)
    return {"rows": spark.read.parquet(args.output).count(), "output": args.output}


def linreg_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import linreg

    model = linreg.load_model(args.model)
    spark = _session(args)
    label = args.label or model.label
    if label is None:
        raise InputError("evaluation needs --label (the model has none recorded)")
    data = _load(spark, args, label=label, features=model.features, weight=args.weight_col)
    metrics = linreg.evaluate(model, data)
    print(json.dumps(metrics, indent=2))
    return metrics


def read_centers_file(spark, path: str, features: list[str], k: int):
    """An explicit initial-centres CSV (header, one centre per row) as a (k, d) array."""
    import numpy as np

    if not Path(path).exists():
        raise InputError(f"init centres file not found: {path}")
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InputError(f"init centres file {path} is empty")
    header, body = rows[0], [r for r in rows[1:] if r]
    if header != features and len(header) == len(features) and all(h in features for h in header):
        order = [header.index(f) for f in features]
        body = [[r[i] for i in order] for r in body]
    elif len(header) != len(features):
        raise InputError(
            f"init centres file {path} has {len(header)} columns, the data has {len(features)} "
            f"features ({', '.join(features)})"
        )
    try:
        centers = np.array([[float(v) for v in r] for r in body], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"init centres file {path}: {exc}") from exc
    if len(body) != k or any(len(r) != len(features) for r in body):
        raise InputError(f"init centres file {path} has {len(body)} rows, expected k={k}")
    if not np.isfinite(centers).all():
        raise InputError(f"init centres file {path} holds NaN or infinite values")
    return centers


def kmeans_fit(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import kmeans, persist, report

    persist.check_output(args.output, args.overwrite)
    _check_report(args)
    given = args.init not in kmeans.INITS
    if given and not Path(args.init).exists():
        raise InputError(
            f"--init must be one of {', '.join(kmeans.INITS)} or an existing CSV file, "
            f"got {args.init!r}"
        )
    options = dict(
        k=args.k,
        init="k-means||" if given else args.init,
        max_iter=args.max_iter,
        tol=args.tol,
        seed=args.seed,
        distance=args.distance,
        n_init=args.n_init,
        init_steps=args.init_steps,
        mode=args.mode,
        checkpoint_dir=args.checkpoint_dir,
    )
    kmeans.KMeans(**options)  # validate the parameters before starting Spark
    spark = _session(args)
    data = _load(spark, args, label=None, features=args.features, weight=args.weight_col)
    centers = read_centers_file(spark, args.init, data.features, args.k) if given else None
    model = kmeans.KMeans(**options, initial_centers=centers).fit(data)
    kmeans.save_model(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(report.kmeans_table(model))
    _write_report(args, model)
    return report.kmeans_metrics(model)


def kmeans_predict(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import kmeans, persist

    persist.check_output(args.output, args.overwrite)
    model = kmeans.load_model(args.model)
    spark = _session(args)
    frame = _validate_frame(spark, args, model.features)
    _write_predictions(model.predict(frame), args.output, args.overwrite)
    log.info("predictions written to %s", args.output)
    return {"rows": spark.read.parquet(args.output).count(), "output": args.output}


def kmeans_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import kmeans, persist, sweep, visual

    persist.check_output(args.output, args.overwrite)
    ks = sweep.parse_k_range(str(args.k))
    kmeans.KMeans(
        k=ks[0], init=args.init, max_iter=args.max_iter, tol=args.tol, distance=args.distance
    )  # validate before starting Spark
    plots = visual.matplotlib_available()
    if not plots:
        log.info("no elbow plot: matplotlib is not installed (%s)", visual.INSTALL_HINT)
    spark = _session(args)
    data = _load(spark, args, label=None, features=args.features, weight=args.weight_col)
    result = sweep.sweep(
        data,
        ks,
        seed=args.seed,
        max_iter=args.max_iter,
        tol=args.tol,
        init=args.init,
        distance=args.distance,
    )
    sweep.write_sweep(result, args.output, overwrite=args.overwrite, source=args.input, plots=plots)
    log.info("sweep written to %s", args.output)
    print(sweep.sweep_table(result))
    return result.to_dict()


def kmeans_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs import kmeans, persist, sweep

    model = kmeans.load_model(args.model)
    spark = _session(args)
    data = _load(spark, args, label=None, features=model.features, weight=args.weight_col)
    metrics = sweep.evaluate(model, data)
    print(persist.dumps(metrics), end="")
    return metrics


def demo(args: argparse.Namespace) -> dict[str, Any]:
    from sparkml_jobs.demo import run_demo

    return run_demo(args)


ACTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "linreg fit": linreg_fit,
    "linreg update": linreg_update,
    "linreg predict": linreg_predict,
    "linreg evaluate": linreg_evaluate,
    "kmeans fit": kmeans_fit,
    "kmeans predict": kmeans_predict,
    "kmeans sweep": kmeans_sweep,
    "kmeans evaluate": kmeans_evaluate,
    "demo": demo,
}


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    configure_logging(verbose)
    try:
        args = parse_args(argv)
        key = "demo" if args.algo == "demo" else f"{args.algo} {args.action}"
        try:
            result = ACTIONS[key](args)
        finally:
            progress.end_line()  # results and error messages start on a fresh line
        write_json(getattr(args, "metrics_json", None), result)
        return EXIT_OK
    except InputError as exc:
        print(f"sparkml-jobs: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sparkml-jobs: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # anything else: one line, the traceback only when asked for
        if verbose:
            log.exception("failed")
        print(
            f"sparkml-jobs: failed: {type(exc).__name__}: {_one_line(exc)}"
            + ("" if verbose else " (run with --verbose for the traceback)"),
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
