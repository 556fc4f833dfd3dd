"""``sparkml-jobs demo``: both jobs on the bundled data, in embedded local mode."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

from sparkml_jobs import data, kmeans, linreg, progress, report
from sparkml_jobs.errors import InputError
from sparkml_jobs.session import get_session

log = logging.getLogger(__name__)


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)
    diamonds, iris = data_dir / "diamonds.csv", data_dir / "iris.csv"
    for file in (diamonds, iris):
        if not file.exists():
            raise InputError(f"bundled data set not found: {file}")
    out = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="sparkml-demo-"))
    spark = get_session(args.master, app_name="sparkml-jobs demo")

    print(f"== linear regression: price ~ carat + depth + table + x + y + z on {diamonds}")
    prices = data.load(spark, str(diamonds), "csv", label="price")
    lin = linreg.LinearRegression().fit(prices)
    linreg.save_model(lin, str(out / "linreg-model"), overwrite=True)
    print(report.linreg_table(lin))

    print(f"\n== k-means: k=3 on {iris}")
    flowers = data.load(spark, str(iris), "csv")
    km = kmeans.KMeans(k=3, seed=1).fit(flowers)
    kmeans.save_model(km, str(out / "kmeans-model"), overwrite=True)
    progress.end_line()
    print(report.kmeans_table(km))
    print(f"\nmodels saved under {out}")
    pages = write_reports(lin, km, out, sources={"linreg": diamonds, "kmeans": iris})
    return {
        "linreg": report.linreg_metrics(lin),
        "kmeans": report.kmeans_metrics(km),
        "reports": {name: str(page) for name, page in pages.items()},
    }


def write_reports(lin, km, out: Path, sources: dict[str, Path]) -> dict[str, Path]:
    """Both HTML reports under ``out`` when matplotlib (the 'report' extra) is installed."""
    from sparkml_jobs import visual

    if not visual.matplotlib_available():
        print(f"reports skipped: matplotlib is not installed ({visual.INSTALL_HINT})")
        return {}
    pages = {
        "linreg": visual.linreg_report(
            lin, out / "linreg-report", source=str(sources["linreg"]), overwrite=True
        ),
        "kmeans": visual.kmeans_report(
            km, out / "kmeans-report", source=str(sources["kmeans"]), overwrite=True
        ),
    }
    for name, page in pages.items():
        print(f"{name} report: {page}")
    return pages
