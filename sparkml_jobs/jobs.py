"""One function per CLI action: build the session, read, fit or score, write, report.

Each action takes the parsed arguments (already validated by :mod:`~.cli`), does every check that
needs no Spark first (outputs free, report possible, parameters valid), then starts Spark, and
returns the metrics dictionary that ``--metrics-json`` writes. Nothing here parses arguments or
does maths: estimators live in :mod:`~.regression` and :mod:`~.clustering`, reading and writing in
:mod:`~.io`, tables and pages in :mod:`~.reporting`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sparkml_jobs import progress
from sparkml_jobs.clustering import sweep
from sparkml_jobs.clustering.estimator import INITS, KMeans
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import design as encoding
from sparkml_jobs.io import filesystem, invalid, models, persist, read, sparkml
from sparkml_jobs.regression import formula as fm
from sparkml_jobs.regression.estimator import LinearRegression
from sparkml_jobs.regression.estimator import update as update_linreg
from sparkml_jobs.reporting import figures, pages, tables
from sparkml_jobs.session import get_session

log = logging.getLogger("sparkml_jobs")


def _session(args: argparse.Namespace):
    """The session, then the output checks that need its file systems (before any data is read)."""
    spark = get_session(
        args.master,
        app_name=f"sparkml-jobs {args.algo} {getattr(args, 'action', '')}",
        conf=spark_conf(args),
    )
    if getattr(args, "input_table", None):
        args.input, args.format = args.input_table, read.TABLE
    check_outputs(args)
    return spark


def spark_conf(args: argparse.Namespace) -> dict[str, str]:
    """``--conf`` settings and ``--driver-memory`` as one Spark configuration."""
    conf = dict(getattr(args, "conf", None) or [])
    if getattr(args, "catalog", None) == "hive":
        conf["spark.sql.catalogImplementation"] = "hive"
    if getattr(args, "driver_memory", None):
        conf["spark.driver.memory"] = args.driver_memory
    return conf


def _load(
    spark,
    args: argparse.Namespace,
    *,
    label: str | None,
    features: list[str] | None,
    weight: str | None = None,
):
    """The input's blocks; with ``--handle-invalid skip`` the bad rows are dropped (and counted,
    and written to ``--rejects``) first. The account is kept on ``args`` for the metrics."""
    if getattr(args, "handle_invalid", "error") != "skip":
        return read.load(
            spark,
            args.input,
            args.format,
            label=label,
            features=features,
            weight=weight,
            delimiter=args.delimiter,
            num_partitions=args.partitions,
        )
    frame = read.read_source(spark, args.input, args.format, delimiter=args.delimiter)
    features = read.resolve_columns(
        frame, args.input, label=label, features=features, weight=weight
    )
    used = features + [c for c in (label, weight) if c is not None]
    frame, args.row_account = invalid.skip_invalid(
        frame, args.input, used, rejects=args.rejects, overwrite=args.overwrite
    )
    return read.to_blocks(
        frame,
        args.input,
        features=features,
        label=label,
        weight=weight,
        num_partitions=args.partitions,
    )


def with_row_account(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """The action's metrics plus, under ``--handle-invalid skip``, rows read / used / rejected."""
    account = getattr(args, "row_account", None)
    if account is None:
        return result
    print(f"input: {account.line()}")
    return {**result, "input": account.to_dict()}


def _check_report(args: argparse.Namespace) -> None:
    """Before any Spark work: --report needs matplotlib (the directory is checked later)."""
    if getattr(args, "report", None):
        figures.require_matplotlib()


def _overlaps(a: str, b: str) -> bool:
    """Whether qualified paths ``a`` and ``b`` are equal or one lies inside the other."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def check_outputs(args: argparse.Namespace) -> None:
    """Once the session is up: every output is free (or ``--overwrite``), apart from the others,
    and never equal to, inside or around an input or the model, ``--overwrite`` or not."""
    fs = filesystem.current()
    named = lambda flag: getattr(args, flag.lstrip("-").replace("-", "_"), None)  # noqa: E731
    flags = ("--output", "--report", "--rejects", "--metrics-json")
    outputs = [(flag, named(flag)) for flag in flags]
    outputs = [(flag, value, fs.qualify(value)) for flag, value in outputs if value]
    sources = [(flag, named(flag)) for flag in ("--input", "--subtract", "--model", "--init")]
    # --init spark-ml:DIR names the directory DIR
    sources = [(f, v and v.removeprefix(sparkml.INIT_PREFIX)) for f, v in sources]
    sources = [
        (flag, fs.qualify(value))
        for flag, value in sources
        if value
        and not (flag == "--input" and getattr(args, "format", None) == read.TABLE)
        and not (flag == "--init" and value in INITS)
    ]
    for i, (flag, value, target) in enumerate(outputs):
        for source_flag, source in sources:
            if _overlaps(target, source):
                raise InputError(
                    f"{flag} {value} would overwrite {source_flag}: choose another path"
                )
        for other_flag, _, other in outputs[:i]:
            if _overlaps(target, other):
                raise InputError(f"{flag} {value} lies inside or around {other_flag}")
        if flag != "--metrics-json":
            persist.check_output(value, args.overwrite, fs)


def _write_report(args: argparse.Namespace, model) -> None:
    if not getattr(args, "report", None):
        return

    write = pages.linreg_report if args.algo == "linreg" else pages.kmeans_report
    page = write(model, args.report, source=args.input, overwrite=args.overwrite)
    log.info("report written to %s", page)


def write_predictions(spark, args: argparse.Namespace, frame) -> dict[str, Any]:
    """Predictions as Parquet files published at ``--output``, or as ``--output-table``."""
    partition_by = args.partition_by or []
    missing = [c for c in partition_by if c not in frame.columns]
    if missing:
        raise InputError(f"--partition-by: no column(s) {', '.join(map(repr, missing))} to use")
    if args.output_table:
        persist.write_table(frame, args.output_table, partition_by, args.overwrite)
        log.info("predictions written to table %s", args.output_table)
        return {"rows": spark.table(args.output_table).count(), "table": args.output_table}
    with persist.spark_output(args.output, args.overwrite) as tmp:
        frame.write.partitionBy(*partition_by).parquet(tmp)
    log.info("predictions written to %s", args.output)
    return {"rows": spark.read.parquet(args.output).count(), "output": args.output}


def linreg_fit(args: argparse.Namespace) -> dict[str, Any]:

    _check_report(args)
    if len(args.reg_param) > 1 and args.cv < 2:
        raise InputError("a list of --reg-param values needs --cv K (K >= 2) to choose among them")
    estimator = LinearRegression(
        fit_intercept=args.fit_intercept,
        reg_param=args.reg_param[0],
        on_singular=args.on_singular,
        solver=args.solver,
        alias_tol=args.alias_tol,
        refine=args.refine,
        residual_pass=args.residual_pass,
    )
    if args.label is None and not args.formula:
        if args.format == "libsvm":
            args.label = "label"
        else:
            raise InputError("linreg fit needs --label NAME (or --formula 'y ~ ...')")
    spark = _session(args)
    data, design = _linreg_fit_data(spark, args)
    if design is not None:  # a formula says itself whether it has an intercept ('- 1')
        estimator = dataclasses.replace(estimator, fit_intercept=design.fit_intercept)
    log.info("fitting linear regression on %s (%d features)", args.input, data.n_features)
    if args.cv:
        model = estimator.fit_cv(data, args.reg_param, args.cv)
    else:
        model = estimator.fit(data)
    model = dataclasses.replace(model, design=design)
    models.save_linreg(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.linreg_table(model))
    _write_report(args, model)
    return tables.linreg_metrics(model)


def _linreg_fit_data(spark, args: argparse.Namespace):
    """(BlockData, design): a --formula, or --features with a text or boolean column, is
    encoded (levels found in one scan); plain numeric features take the direct path."""
    frame = read.read_source(spark, args.input, args.format, delimiter=args.delimiter)
    if args.formula:
        formula = fm.parse(args.formula)
    else:
        features = args.features or [
            c for c in read.data_columns(frame) if c not in (args.label, args.weight_col)
        ]
        skip = getattr(args, "handle_invalid", "error") == "skip"
        if not encoding.has_categories(frame, features, mixed_is_numeric=skip):
            weight = args.weight_col
            return _load(spark, args, label=args.label, features=args.features, weight=weight), None
        formula = fm.from_columns(args.label, features, args.fit_intercept)
    design = encoding.fit_design(
        frame,
        formula,
        args.input,
        max_levels=args.max_levels,
        handle_invalid=getattr(args, "handle_invalid", "error"),
    )
    for name, levels in design.levels.items():
        log.info("categorical %s: %d levels, reference %r", name, len(levels), levels[0])
    if getattr(args, "handle_invalid", "error") == "skip":
        used = formula.columns() + ([args.weight_col] if args.weight_col else [])
        categorical = frozenset(formula.factors[name].column for name in design.levels)
        frame, args.row_account = invalid.skip_invalid(
            frame,
            args.input,
            used,
            categorical=categorical,
            rejects=args.rejects,
            overwrite=args.overwrite,
        )
    data = encoding.to_data(
        frame, design, args.input, weight=args.weight_col, num_partitions=args.partitions
    )
    return data, design


def _encoded_input(spark, args: argparse.Namespace, model, path: str, handle_unknown: str):
    """(frame, unseen levels) of a formula model's input, its levels checked."""
    frame = read.read_source(spark, path, args.format, delimiter=args.delimiter)
    unseen = encoding.check_levels(
        frame,
        model.design,
        path,
        handle_unknown=handle_unknown,
        handle_invalid=getattr(args, "handle_invalid", "error"),
    )
    for column, found in unseen.items():
        log.info(
            "column '%s': %d rows with %d unseen level(s) get all-zero dummies",
            column,
            found["rows"],
            found["levels"],
        )
    return frame, unseen


def linreg_update(args: argparse.Namespace) -> dict[str, Any]:

    if not args.input and not args.subtract:
        raise InputError(
            "linreg update needs --input (rows to add) and/or --subtract (rows to remove)"
        )
    spark = _session(args)
    model = models.load_linreg(args.model)
    if model.label is None:
        raise InputError(f"model {args.model} has no label recorded")

    def part(path: str | None):
        if path is None:
            return None
        if model.design is not None:  # new rows cannot bring new levels: no column for them
            frame, _ = _encoded_input(spark, args, model, path, "error")
            return encoding.to_data(
                frame, model.design, path, weight=model.weight_col, num_partitions=args.partitions
            )
        return read.load(
            spark,
            path,
            args.format,
            label=model.label,
            features=model.features,
            weight=model.weight_col,
            delimiter=args.delimiter,
            num_partitions=args.partitions,
        )

    updated = update_linreg(model, part(args.input), part(args.subtract))
    models.save_linreg(updated, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.linreg_table(updated))
    return tables.linreg_metrics(updated)


def linreg_predict(args: argparse.Namespace) -> dict[str, Any]:

    spark = _session(args)
    model = sparkml.load_linreg(args.model, args.features)  # ours or a Spark ML model
    options = dict(interval=args.interval, level=args.level)
    if model.design is None:
        frame = read.read_for_scoring(
            spark, args.input, args.format, model.features, delimiter=args.delimiter
        )
        return write_predictions(spark, args, model.predict(frame, **options))
    numbers = encoding.numeric_inputs(model.design)
    if numbers:  # the numeric inputs checked as before (nulls, text, NaN, ragged rows)
        read.read_for_scoring(spark, args.input, args.format, numbers, delimiter=args.delimiter)
    frame, unseen = _encoded_input(spark, args, model, args.input, args.handle_unknown)
    corrupt = read.corrupt_column(frame)
    if corrupt is not None:
        frame = frame.drop(read.col(corrupt))
    frame, hidden = encoding.for_scoring(frame, model.design)
    scored = model.predict(frame, columns=hidden, **options).drop(*hidden)
    result = write_predictions(spark, args, scored)
    return {**result, **({"unknown_levels": unseen} if unseen else {})}


def linreg_evaluate(args: argparse.Namespace) -> dict[str, Any]:

    spark = _session(args)
    model = models.load_linreg(args.model)
    label = args.label or model.label
    if label is None:
        raise InputError("evaluation needs --label (the model has none recorded)")
    unseen = {}
    if model.design is not None:
        if label != model.label:
            raise InputError(f"the model's formula has the label {model.label!r}, not {label!r}")
        frame, unseen = _encoded_input(spark, args, model, args.input, args.handle_unknown)
        data = encoding.to_data(
            frame, model.design, args.input, weight=args.weight_col, num_partitions=args.partitions
        )
    else:
        data = _load(spark, args, label=label, features=model.features, weight=args.weight_col)
    metrics = model.evaluate(data)
    if unseen:
        metrics["unknown_levels"] = unseen
    print(persist.dumps(metrics), end="")  # the --metrics-json text: null, never NaN
    return metrics


def read_centers_file(spark, path: str, features: list[str], k: int):
    """An explicit initial-centres CSV (header, one centre per row) as a (k, d) array.

    The header must name exactly the data's features, in any order: columns are matched by name,
    never by position, so a file written for other columns is refused instead of misread.
    """
    try:
        text = filesystem.current().read_text(path)
    except InputError as exc:
        raise InputError(f"init centres file: {exc}") from exc
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise InputError(f"init centres file {path} is empty")
    header, body = rows[0], [r for r in rows[1:] if r]
    unknown = [repr(h) for h in header if h not in features]
    missing = [repr(f) for f in features if f not in header]
    twice = sorted({repr(h) for h in header if header.count(h) > 1})
    if unknown or missing or twice:
        problems = [
            *([f"unknown column(s) {', '.join(unknown)}"] if unknown else []),
            *([f"missing {', '.join(missing)}"] if missing else []),
            *([f"{', '.join(twice)} named twice"] if twice else []),
        ]
        raise InputError(
            f"init centres file {path} has {len(header)} columns, the data has {len(features)} "
            f"features ({', '.join(features)}): {'; '.join(problems)} (the first line must be a "
            "header naming the features)"
        )
    if any(len(r) != len(header) for r in body):
        raise InputError(f"init centres file {path}: a row does not have {len(header)} fields")
    order = [header.index(f) for f in features]  # the data's column order
    try:
        centers = np.array([[float(r[i]) for i in order] for r in body], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"init centres file {path}: {exc}") from exc
    if len(body) != k:
        raise InputError(f"init centres file {path} has {len(body)} rows, expected k={k}")
    if not np.isfinite(centers).all():
        raise InputError(f"init centres file {path} holds NaN or infinite values")
    return centers


def kmeans_fit(args: argparse.Namespace) -> dict[str, Any]:

    _check_report(args)
    given = args.init not in INITS
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
    KMeans(**options)  # validate the parameters before starting Spark
    spark = _session(args)
    from_spark_ml = args.init.startswith(sparkml.INIT_PREFIX)
    init_path = args.init.removeprefix(sparkml.INIT_PREFIX)
    if given and not filesystem.current().exists(init_path):
        raise InputError(
            f"--init must be one of {', '.join(INITS)}, an existing CSV file or "
            f"{sparkml.INIT_PREFIX}DIR (a Spark ML KMeansModel), got {args.init!r}"
        )
    data = _load(spark, args, label=None, features=args.features, weight=args.weight_col)
    if from_spark_ml:
        centers = sparkml.initial_centers(init_path, data.features, args.k)
    else:
        centers = read_centers_file(spark, args.init, data.features, args.k) if given else None
    model = KMeans(**options, initial_centers=centers).fit(data)
    models.save_kmeans(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.kmeans_table(model))
    _write_report(args, model)
    return tables.kmeans_metrics(model)


def kmeans_predict(args: argparse.Namespace) -> dict[str, Any]:

    spark = _session(args)
    model = sparkml.load_kmeans(args.model, args.features)  # ours or a Spark ML KMeansModel
    frame = read.read_for_scoring(
        spark, args.input, args.format, model.features, delimiter=args.delimiter
    )
    return write_predictions(spark, args, model.predict(frame))


def kmeans_sweep(args: argparse.Namespace) -> dict[str, Any]:

    ks = args.k
    KMeans(
        k=ks[0], init=args.init, max_iter=args.max_iter, tol=args.tol, distance=args.distance
    )  # validate before starting Spark
    plots = figures.matplotlib_available()
    if not plots:
        log.info("no elbow plot: matplotlib is not installed (%s)", figures.INSTALL_HINT)
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
    pages.write_sweep(result, args.output, overwrite=args.overwrite, source=args.input, plots=plots)
    log.info("sweep written to %s", args.output)
    print(tables.sweep_table(result))
    return result.to_dict()


def kmeans_evaluate(args: argparse.Namespace) -> dict[str, Any]:

    spark = _session(args)
    model = models.load_kmeans(args.model)
    data = _load(spark, args, label=None, features=model.features, weight=args.weight_col)
    metrics = sweep.evaluate(model, data)
    print(persist.dumps(metrics), end="")
    return metrics


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)  # the bundled (local) data: file:// URIs whatever defaultFS is
    diamonds, iris = data_dir / "diamonds.csv", data_dir / "iris.csv"
    for file in (diamonds, iris):
        if not file.exists():
            raise InputError(f"bundled data set not found: {file}")
    diamonds, iris = diamonds.resolve().as_uri(), iris.resolve().as_uri()
    out = args.output or Path(tempfile.mkdtemp(prefix="sparkml-demo-")).as_uri()
    spark = get_session(args.master, app_name="sparkml-jobs demo", conf=spark_conf(args))

    print(f"== linear regression: price ~ carat + depth + table + x + y + z on {diamonds}")
    prices = read.load(spark, diamonds, "csv", label="price")
    lin = LinearRegression().fit(prices)
    models.save_linreg(lin, f"{out}/linreg-model", overwrite=True)
    print(tables.linreg_table(lin))

    print(f"\n== k-means: k=3 on {iris}")
    flowers = read.load(spark, iris, "csv")
    km = KMeans(k=3, seed=1).fit(flowers)
    models.save_kmeans(km, f"{out}/kmeans-model", overwrite=True)
    progress.end_line()
    print(tables.kmeans_table(km))
    print(f"\nmodels saved under {out}")
    reports = write_reports(lin, km, out, sources={"linreg": diamonds, "kmeans": iris})
    return {
        "linreg": tables.linreg_metrics(lin),
        "kmeans": tables.kmeans_metrics(km),
        "reports": reports,
    }


def write_reports(lin, km, out: str, sources: dict[str, str]) -> dict[str, str]:
    """Both HTML reports under ``out`` when matplotlib (the 'report' extra) is installed."""
    if not figures.matplotlib_available():
        print(f"reports skipped: matplotlib is not installed ({figures.INSTALL_HINT})")
        return {}
    written = {
        "linreg": pages.linreg_report(
            lin, f"{out}/linreg-report", source=sources["linreg"], overwrite=True
        ),
        "kmeans": pages.kmeans_report(
            km, f"{out}/kmeans-report", source=sources["kmeans"], overwrite=True
        ),
    }
    for name, page in written.items():
        print(f"{name} report: {page}")
    return written


def demo(args: argparse.Namespace) -> dict[str, Any]:
    return run_demo(args)


def export(args: argparse.Namespace) -> dict[str, Any]:
    """``export --model DIR --to spark-ml --output DIR2``: a Spark ML model directory."""
    _session(args)
    result = sparkml.export(args.model, args.output, args.overwrite, to=args.to)
    print(f"{result['class']} written to {args.output}")
    return result


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
    "export": export,
}
