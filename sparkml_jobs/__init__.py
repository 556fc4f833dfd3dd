"""Distributed machine learning as Spark batch jobs: linear regression and k-means on RDDs of
numpy blocks.

``from sparkml_jobs import LinearRegression, KMeans`` gives the DataFrame-first API
(:mod:`sparkml_jobs.api`); it is imported on first use, so ``import sparkml_jobs`` alone does not
import pyspark (the pure kernels are used where pyspark is not installed).
"""

from __future__ import annotations

from typing import Any

from sparkml_jobs.errors import InputError

__version__ = "0.1.0"

# name → module: resolved on first access (PEP 562), so the package import stays Spark-free
_LAZY = {
    "LinearRegression": "sparkml_jobs.api",
    "LinearRegressionModel": "sparkml_jobs.api",
    "KMeans": "sparkml_jobs.api",
    "KMeansModel": "sparkml_jobs.api",
    "as_blocks": "sparkml_jobs.api",
}

__all__ = ["InputError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sparkml_jobs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
