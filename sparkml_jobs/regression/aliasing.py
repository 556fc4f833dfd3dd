"""Pure numpy/scipy: which columns of a design are (numerically) combinations of earlier ones,
found from the column-scaled Gram matrix, and a sentence naming them."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from sparkml_jobs.regression.dense import cholesky_in_place

# A column whose residual variance, after projecting it on the columns before it, is below this
# fraction of its own variance is treated as aliased (a linear combination of the others). The
# normal equations square the condition number, so a pivot is only known to ~κ²·eps: they cannot
# resolve what TSQR can, and their default stays at 1e-5 relative in norm (1e-10 in variance).
ALIAS_TOL = 1e-10


def find_aliased(corr: np.ndarray, tol: float = ALIAS_TOL) -> list[int]:
    """Columns that are (numerically) linear combinations of the columns before them.

    A column's Cholesky pivot ``L_jj²`` is the fraction of its variance left after projecting it
    on the columns before it (as R's ``lm``). Fast path: one LAPACK Cholesky of the whole matrix;
    only when some pivot is negligible does the column-by-column version run, skipping the
    aliased columns.
    """
    p = len(corr)
    diag = np.diag(corr)
    if p and np.all(diag > 0):
        chol, info = cholesky_in_place(np.array(corr))  # a copy: corr is the caller's
        if info == 0 and np.all(np.diag(chol) ** 2 > tol * diag):
            return []
    kept: list[int] = []
    aliased: list[int] = []
    factor = np.zeros((p, p))  # Cholesky factor of the kept columns, packed in the leading block
    for j in range(p):
        if not np.isfinite(diag[j]) or diag[j] <= 0:
            aliased.append(j)
            continue
        q = len(kept)
        row = (
            linalg.solve_triangular(factor[:q, :q], corr[kept, j], lower=True, check_finite=False)
            if q
            else np.zeros(0)
        )
        pivot = diag[j] - row @ row
        if pivot <= tol * diag[j]:
            aliased.append(j)
            continue
        factor[q, :q] = row
        factor[q, q] = np.sqrt(pivot)
        kept.append(j)
    return aliased


def explain_aliased(corr: np.ndarray, aliased: list[int], names: list[str]) -> str:
    """One sentence naming each aliased column and the kept columns it is a combination of."""
    kept = [j for j in range(len(names)) if j not in aliased]
    parts = []
    for j in aliased:
        if not np.isfinite(corr[j, j]) or corr[j, j] <= 0:
            parts.append(f"'{names[j]}' is constant")
            continue
        earlier = [k for k in kept if k < j]
        coef = linalg.lstsq(corr[np.ix_(earlier, earlier)], corr[earlier, j])[0] if earlier else []
        partners = [names[k] for k, c in zip(earlier, coef, strict=False) if abs(c) > 1e-6]
        parts.append(
            f"'{names[j]}' is a linear combination of "
            + (", ".join(f"'{n}'" for n in partners) or "the others")
        )
    return "; ".join(parts)
