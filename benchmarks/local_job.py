"""One single-process job (no Spark): read Parquet with pyarrow → numpy → fit → save.

python -m benchmarks.local_job numpy-linreg   --input P --label label --output OUT
python -m benchmarks.local_job sklearn-linreg --input P --label label --output OUT
python -m benchmarks.local_job sklearn-kmeans --input P --k 10 --init centres.csv \
        --max-iter 20 --tol 0 --output OUT
python -m benchmarks.local_job sklearn-kmeans --input P --k 10 --output OUT  (sklearn defaults)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import linalg

from benchmarks import common


def normal_equations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """OLS with intercept: centred normal equations + Cholesky (our job's maths, one process)."""
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    gram = xc.T @ xc
    beta = linalg.cho_solve(linalg.cho_factor(gram), xc.T @ (y - my))
    return beta, float(my - mx @ beta)


def sklearn_kmeans(k: int, centres: np.ndarray | None, max_iter: int | None, tol: float | None):
    from sklearn.cluster import KMeans

    if (
        centres is None
    ):  # scikit-learn's defaults (k-means++, n_init="auto" → 1, tol 1e-4, 300 iters)
        return KMeans(n_clusters=k, random_state=0)
    return KMeans(
        n_clusters=k, init=centres, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.local_job")
    parser.add_argument("job", choices=["numpy-linreg", "sklearn-linreg", "sklearn-kmeans"])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--label", default="label")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--init")
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--tol", type=float, default=0.0)
    parser.add_argument("--metrics-json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import pyarrow.parquet as pq

    names = pq.ParquetFile(args.input).schema_arrow.names
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict = {"job": args.job}
    if args.job.endswith("linreg"):
        features = [c for c in names if c != args.label]
        z, _ = common.parquet_to_numpy(args.input, features + [args.label])
        x, y = z[:, :-1], z[:, -1]
        if args.job == "numpy-linreg":
            beta, b0 = normal_equations(x, y)
        else:
            from sklearn.linear_model import LinearRegression

            model = LinearRegression().fit(x, y)
            beta, b0 = model.coef_, float(model.intercept_)
        document = {"features": features, "intercept": b0, "coefficients": beta.tolist()}
    else:
        x, _ = common.parquet_to_numpy(args.input, names)
        centres = common.read_centres_csv(args.init) if args.init else None
        model = sklearn_kmeans(args.k, centres, args.max_iter, args.tol).fit(x)
        document = {"features": names, "centers": model.cluster_centers_.tolist()}
        metrics.update(iterations=int(model.n_iter_), cost=float(model.inertia_))
    (out / "model.json").write_text(json.dumps(document))
    metrics["seconds_in_process"] = time.perf_counter() - started
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
