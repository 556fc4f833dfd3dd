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
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sparkml_jobs import progress
from sparkml_jobs.clustering import sweep
from sparkml_jobs.clustering.estimator import INITS, KMeans
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import models, persist, read
from sparkml_jobs.io.persist import atomic_output, dumps
from sparkml_jobs.regression.estimator import LinearRegression
from sparkml_jobs.regression.estimator import update as update_linreg
from sparkml_jobs.reporting import figures, pages, tables
from sparkml_jobs.session import get_session

log = logging.getLogger("sparkml_jobs")


def write_json(path: str | None, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (temp file + rename)."""
    if not path:
        return

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(dumps(document))
    os.replace(tmp, target)


def _session(args: argparse.Namespace):

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


def _check_report(args: argparse.Namespace) -> None:
    """Before any Spark work: --report needs matplotlib and a free (or --overwrite) directory."""
    if not getattr(args, "report", None):
        return

    figures.require_matplotlib()
    if Path(args.report).resolve() == Path(args.output).resolve():
        raise InputError("--report must be a different directory from --output")
    persist.check_output(args.report, args.overwrite)


def _write_report(args: argparse.Namespace, model) -> None:
    if not getattr(args, "report", None):
        return

    write = pages.linreg_report if args.algo == "linreg" else pages.kmeans_report
    page = write(model, args.report, source=args.input, overwrite=args.overwrite)
    log.info("report written to %s", page)


def _write_predictions(frame, output: str, overwrite: bool) -> None:

    with atomic_output(output, overwrite) as tmp:
        frame.write.parquet(str(tmp))


def linreg_fit(args: argparse.Namespace) -> dict[str, Any]:

    persist.check_output(args.output, args.overwrite)
    _check_report(args)
    if len(args.reg_param) > 1 and args.cv < 2:
        raise InputError("a list of --reg-param values needs --cv K (K >= 2) to choose among them")
    estimator = LinearRegression(
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
    models.save_linreg(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.linreg_table(model))
    _write_report(args, model)
    return tables.linreg_metrics(model)


def linreg_update(args: argparse.Namespace) -> dict[str, Any]:

    persist.check_output(args.output, args.overwrite)
    if not args.input and not args.subtract:
        raise InputError(
            "linreg update needs --input (rows to add) and/or --subtract (rows to remove)"
        )
    model = models.load_linreg(args.model)
    if model.label is None:
        raise InputError(f"model {args.model} has no label recorded")
    spark = _session(args)

    def part(path: str | None):
        if path is None:
            return None
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

    persist.check_output(args.output, args.overwrite)
    model = models.load_linreg(args.model)
    spark = _session(args)
    frame = read.read_for_scoring(
        spark, args.input, args.format, model.features, delimiter=args.delimiter
    )
    _write_predictions(model.predict(frame), args.output, args.overwrite)
    log.info("predictions written to %s", args.output)
    return {"rows": spark.read.parquet(args.output).count(), "output": args.output}


def linreg_evaluate(args: argparse.Namespace) -> dict[str, Any]:

    model = models.load_linreg(args.model)
    spark = _session(args)
    label = args.label or model.label
    if label is None:
        raise InputError("evaluation needs --label (the model has none recorded)")
    data = _load(spark, args, label=label, features=model.features, weight=args.weight_col)
    metrics = model.evaluate(data)
    print(persist.dumps(metrics), end="")  # the --metrics-json text: null, never NaN
    return metrics


def read_centers_file(spark, path: str, features: list[str], k: int):
    """An explicit initial-centres CSV (header, one centre per row) as a (k, d) array.

    The header must name exactly the data's features, in any order: columns are matched by name,
    never by position, so a file written for other columns is refused instead of misread.
    """

    if not Path(path).exists():
        raise InputError(f"init centres file not found: {path}")

    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
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

    persist.check_output(args.output, args.overwrite)
    _check_report(args)
    given = args.init not in INITS
    if given and not Path(args.init).exists():
        raise InputError(
            f"--init must be one of {', '.join(INITS)} or an existing CSV file, got {args.init!r}"
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
    KMeans(**options)  # validate the parameters before starting Spark
    spark = _session(args)
    data = _load(spark, args, label=None, features=args.features, weight=args.weight_col)
    centers = read_centers_file(spark, args.init, data.features, args.k) if given else None
    model = KMeans(**options, initial_centers=centers).fit(data)
    models.save_kmeans(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.kmeans_table(model))
    _write_report(args, model)
    return tables.kmeans_metrics(model)


def kmeans_predict(args: argparse.Namespace) -> dict[str, Any]:

    persist.check_output(args.output, args.overwrite)
    model = models.load_kmeans(args.model)
    spark = _session(args)
    frame = read.read_for_scoring(
        spark, args.input, args.format, model.features, delimiter=args.delimiter
    )
    _write_predictions(model.predict(frame), args.output, args.overwrite)
    log.info("predictions written to %s", args.output)
    return {"rows": spark.read.parquet(args.output).count(), "output": args.output}


def kmeans_sweep(args: argparse.Namespace) -> dict[str, Any]:

    persist.check_output(args.output, args.overwrite)
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

    model = models.load_kmeans(args.model)
    spark = _session(args)
    data = _load(spark, args, label=None, features=model.features, weight=args.weight_col)
    metrics = sweep.evaluate(model, data)
    print(persist.dumps(metrics), end="")
    return metrics


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)
    diamonds, iris = data_dir / "diamonds.csv", data_dir / "iris.csv"
    for file in (diamonds, iris):
        if not file.exists():
            raise InputError(f"bundled data set not found: {file}")
    out = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="sparkml-demo-"))
    spark = get_session(args.master, app_name="sparkml-jobs demo")

    print(f"== linear regression: price ~ carat + depth + table + x + y + z on {diamonds}")
    prices = read.load(spark, str(diamonds), "csv", label="price")
    lin = LinearRegression().fit(prices)
    models.save_linreg(lin, str(out / "linreg-model"), overwrite=True)
    print(tables.linreg_table(lin))

    print(f"\n== k-means: k=3 on {iris}")
    flowers = read.load(spark, str(iris), "csv")
    km = KMeans(k=3, seed=1).fit(flowers)
    models.save_kmeans(km, str(out / "kmeans-model"), overwrite=True)
    progress.end_line()
    print(tables.kmeans_table(km))
    print(f"\nmodels saved under {out}")
    pages = write_reports(lin, km, out, sources={"linreg": diamonds, "kmeans": iris})
    return {
        "linreg": tables.linreg_metrics(lin),
        "kmeans": tables.kmeans_metrics(km),
        "reports": {name: str(page) for name, page in pages.items()},
    }


def write_reports(lin, km, out: Path, sources: dict[str, Path]) -> dict[str, Path]:
    """Both HTML reports under ``out`` when matplotlib (the 'report' extra) is installed."""
    if not figures.matplotlib_available():
        print(f"reports skipped: matplotlib is not installed ({figures.INSTALL_HINT})")
        return {}
    written = {
        "linreg": pages.linreg_report(
            lin, out / "linreg-report", source=str(sources["linreg"]), overwrite=True
        ),
        "kmeans": pages.kmeans_report(
            km, out / "kmeans-report", source=str(sources["kmeans"]), overwrite=True
        ),
    }
    for name, page in written.items():
        print(f"{name} report: {page}")
    return written


def demo(args: argparse.Namespace) -> dict[str, Any]:
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
