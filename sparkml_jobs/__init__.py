"""Distributed machine learning as Spark batch jobs: linear regression and k-means on RDDs of
numpy blocks."""

from sparkml_jobs.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
