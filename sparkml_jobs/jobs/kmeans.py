"""The ``kmeans`` actions: fit (from given, Spark ML or drawn centres), predict, sweep, evaluate."""

from __future__ import annotations

import argparse
import csv
import io
import logging
from typing import Any

import numpy as np

from sparkml_jobs.clustering import sweep
from sparkml_jobs.clustering.estimator import INITS, KMeans
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import filesystem, models, persist, sparkml
from sparkml_jobs.jobs.common import (
    check_report,
    load_input,
    scoring_input,
    start_session,
    write_predictions,
    write_report,
)
from sparkml_jobs.reporting import figures, pages, tables

log = logging.getLogger("sparkml_jobs")


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

    check_report(args)
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
        standardize=getattr(args, "standardize", False),  # before and after the CLI flag exists
    )
    KMeans(**options)  # validate the parameters before starting Spark
    spark = start_session(args)
    from_spark_ml = args.init.startswith(sparkml.INIT_PREFIX)
    init_path = args.init.removeprefix(sparkml.INIT_PREFIX)
    if given and not filesystem.current().exists(init_path):
        raise InputError(
            f"--init must be one of {', '.join(INITS)}, an existing CSV file or "
            f"{sparkml.INIT_PREFIX}DIR (a Spark ML KMeansModel), got {args.init!r}"
        )
    data = load_input(spark, args, label=None, features=args.features, weight=args.weight_col)
    if from_spark_ml:
        centers = sparkml.initial_centers(init_path, data.features, args.k)
    else:
        centers = read_centers_file(spark, args.init, data.features, args.k) if given else None
    model = KMeans(**options, initial_centers=centers).fit(data)
    models.save_kmeans(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.kmeans_table(model))
    write_report(args, model)
    return tables.kmeans_metrics(model)


def kmeans_predict(args: argparse.Namespace) -> dict[str, Any]:

    spark = start_session(args)
    model = sparkml.load_kmeans(args.model, args.features)  # ours or a Spark ML KMeansModel
    frame = scoring_input(spark, args, model.features)
    return write_predictions(spark, args, model.predict(frame))


def kmeans_sweep(args: argparse.Namespace) -> dict[str, Any]:

    ks = args.k
    standardize = getattr(args, "standardize", False)
    KMeans(
        k=ks[0],
        init=args.init,
        max_iter=args.max_iter,
        tol=args.tol,
        distance=args.distance,
        standardize=standardize,
    )  # validate before starting Spark
    plots = figures.matplotlib_available()
    if not plots:
        log.info("no elbow plot: matplotlib is not installed (%s)", figures.INSTALL_HINT)
    spark = start_session(args)
    data = load_input(spark, args, label=None, features=args.features, weight=args.weight_col)
    result = sweep.sweep(
        data,
        ks,
        seed=args.seed,
        max_iter=args.max_iter,
        tol=args.tol,
        init=args.init,
        distance=args.distance,
        standardize=standardize,
    )
    pages.write_sweep(result, args.output, overwrite=args.overwrite, source=args.input, plots=plots)
    log.info("sweep written to %s", args.output)
    print(tables.sweep_table(result))
    return result.to_dict()


def kmeans_evaluate(args: argparse.Namespace) -> dict[str, Any]:

    spark = start_session(args)
    model = models.load_kmeans(args.model)
    data = load_input(spark, args, label=None, features=model.features, weight=args.weight_col)
    metrics = sweep.evaluate(model, data)
    print(persist.dumps(metrics), end="")
    return metrics
