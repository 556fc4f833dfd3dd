"""``demo`` (both jobs on the bundled data) and ``export`` (a model in Spark ML's layout)."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

from sparkml_jobs import progress
from sparkml_jobs.clustering.estimator import KMeans
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import export as model_export
from sparkml_jobs.io import models, read
from sparkml_jobs.jobs.common import start_session
from sparkml_jobs.regression.estimator import LinearRegression
from sparkml_jobs.reporting import figures, pages, tables
from sparkml_jobs.session import session_for

log = logging.getLogger("sparkml_jobs")


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)  # the bundled (local) data: file:// URIs whatever defaultFS is
    diamonds, iris = data_dir / "diamonds.csv", data_dir / "iris.csv"
    for file in (diamonds, iris):
        if not file.exists():
            raise InputError(f"bundled data set not found: {file}")
    diamonds, iris = diamonds.resolve().as_uri(), iris.resolve().as_uri()
    out = args.output or Path(tempfile.mkdtemp(prefix="sparkml-demo-")).as_uri()
    spark = session_for(args)

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
    start_session(args)
    result = model_export.export(args.model, args.output, args.overwrite, to=args.to)
    print(f"{result['class']} written to {args.output}")
    return result
