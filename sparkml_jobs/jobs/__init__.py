"""One function per CLI action: build the session, read, fit or score, write, report.

Each action takes the parsed arguments (already validated by :mod:`~sparkml_jobs.cli`), does every
check that needs no Spark first (report possible, parameters valid), then starts Spark, checks its
outputs (free, apart from every input), and returns the metrics dictionary that ``--metrics-json``
writes. Nothing here parses arguments or does maths: estimators live in
:mod:`~sparkml_jobs.regression` and :mod:`~sparkml_jobs.clustering`, reading and writing in
:mod:`~sparkml_jobs.io`, tables and pages in :mod:`~sparkml_jobs.reporting`. A package rather than
one module so that no file grows past a few hundred lines: :mod:`.common` holds what the actions
share, :mod:`.linreg`, :mod:`.kmeans` and :mod:`.demo` the actions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sparkml_jobs.jobs.common import with_row_account
from sparkml_jobs.jobs.demo import demo, export
from sparkml_jobs.jobs.kmeans import kmeans_evaluate, kmeans_fit, kmeans_predict, kmeans_sweep
from sparkml_jobs.jobs.linreg import linreg_evaluate, linreg_fit, linreg_predict, linreg_update

__all__ = ["ACTIONS", "with_row_account"]

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
