"""Pure numpy: one-pass ridge path with k-fold cross-validation, from per-fold statistics.

Every row goes to a fold chosen by a hash of its values (so the split does not depend on how the
data is partitioned or ordered); one pass computes the statistics of every fold. For each λ and
fold, the model trained on the other folds (their merged statistics) is scored on the held-out
fold from that fold's statistics alone — MLlib's ``CrossValidator`` reads the data k × |grid|
times for the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import reduce
from typing import Any

import numpy as np

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression.solver import Solver

_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def fold_of_rows(values: np.ndarray, folds: int) -> np.ndarray:
    """Fold index of every row: a 64-bit hash of the row's bytes (splitmix64 finaliser) mod k."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros(len(values), dtype=np.uint64)
        for j in range(bits.shape[1]):
            h = (h ^ bits[:, j]) * _MIX[j % 3] + np.uint64(j + 1)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h % np.uint64(folds)).astype(np.int64)


def held_out_sse(fold: st.SufficientStats, sol: st.Solution) -> float:
    """Σ w (y − b − xβ)² over a fold, from its centred statistics: cᵀCc + W·e(mean)²."""
    beta = np.nan_to_num(sol.coefficients, nan=0.0)
    c = np.concatenate([-beta, [1.0]])
    at_mean = fold.mean[-1] - fold.mean[:-1] @ beta - sol.intercept
    return float(c @ fold.comoment @ c + fold.w_sum * at_mean**2)


@dataclass(frozen=True, kw_only=True)
class CrossValidation:
    folds: int
    reg_params: list[float]
    cv_mse: list[float]
    best_reg_param: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def cross_validate(
    per_fold: list[st.SufficientStats],
    reg_params: list[float],
    *,
    solver: Solver,
    names: list[str],
) -> CrossValidation:
    """Mean held-out squared error of every λ; the best is the smallest error (ties: larger λ).

    Every fold's model is solved by ``solver`` as Cholesky from the merged statistics of the
    other folds, aliased columns dropped: the one pass has no R factor per fold.
    """
    if any(f.w_sum <= 0 for f in per_fold):
        raise InputError(
            f"a cross-validation fold is empty: too few rows for {len(per_fold)} folds"
        )
    mse = []
    total_w = sum(f.w_sum for f in per_fold)
    for lam in reg_params:
        sse = 0.0
        fold_solver = replace(solver, kind="cholesky", reg_param=lam, on_singular="drop")
        for k, held in enumerate(per_fold):
            train = reduce(st.SufficientStats.merge, [f for j, f in enumerate(per_fold) if j != k])
            sol, _ = fold_solver.solve(train, names=names)
            sse += held_out_sse(held, sol)
        mse.append(sse / total_w)
    order = sorted(range(len(reg_params)), key=lambda i: (mse[i], -reg_params[i]))
    return CrossValidation(
        folds=len(per_fold),
        reg_params=list(reg_params),
        cv_mse=mse,
        best_reg_param=reg_params[order[0]],
    )
