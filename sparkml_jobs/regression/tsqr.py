"""Pure numpy: TSQR, the stable least-squares solver (tall-skinny QR reduced up a tree).

Every block ``Z = √w·[1, X, y]`` is QR-factored and only its ``R`` (m × m) is kept; two ``R``
factors merge by factoring their stack. Since ``ZᵀZ = RᵀR``, the final ``R`` holds everything
least squares needs without ever forming ``XᵀX``: the error grows with κ(X), not κ(X)², and the
residual sum of squares is read off the last diagonal entry. Standard errors come from ``R⁻¹``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression.packed import assemble, slice_count, slices
from sparkml_jobs.regression.stats import Solution

# R's lm aliases a column whose norm, after projection on the columns before it, is below 1e-7
# of its own norm. That refuses NIST's Filip (whose x¹⁰ keeps 5e-8 of its norm and is certified
# solvable), so it is only the ceiling of the default and what --alias-tol 1e-7 asks for.
R_ALIAS_TOL = 1e-7
EPS = float(np.finfo(np.float64).eps)


def default_alias_tol(n_rows: int, n_cols: int) -> float:
    """LAPACK practice (``numpy.linalg.matrix_rank``, ``lstsq``'s ``rcond``): relative to machine
    precision and the problem size, ``max(n_rows, n_cols)·eps`` — never above R's 1e-7."""
    return min(R_ALIAS_TOL, max(n_rows, n_cols) * EPS)


def weighted_design(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None, fit_intercept: bool
) -> np.ndarray:
    """``√w·[1?, x, y]``: the rows whose R factor TSQR keeps."""
    columns = [np.ones((len(x), 1))] if fit_intercept else []
    z = np.hstack([*columns, x, y[:, None]])
    if w is not None:
        z *= np.sqrt(w)[:, None]
    return z


@dataclass(frozen=True, slots=True)
class RFactor:
    """The R of ``√w·[1?, X, y]`` over some rows (a monoid: :meth:`merge`), with row count."""

    r: np.ndarray  # (≤ m, m) upper triangular
    n: int

    @classmethod
    def zero(cls, width: int) -> RFactor:
        return cls(np.zeros((0, width)), 0)

    @classmethod
    def of_block(
        cls, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, fit_intercept: bool
    ) -> RFactor:
        return cls(_triangle(weighted_design(x, y, w, fit_intercept)), len(x))

    def __reduce__(self):
        """Pickled as its upper trapezoid (row ``i``: columns ``i …``), half the bytes: a wide R
        travels between tasks and the driver, and PySpark frames a pickle with a 32-bit length
        (16,386 columns in full are 2.15 GB, over the limit; packed, 1.07 GB)."""
        return _unpack_r, (pack_rows(self.r), self.r.shape, self.n)

    def merge(self, other: RFactor) -> RFactor:
        if other.r.shape[0] == 0:
            return RFactor(self.r, self.n + other.n)
        if self.r.shape[0] == 0:
            return RFactor(other.r, self.n + other.n)
        return RFactor(_triangle(np.vstack([self.r, other.r])), self.n + other.n)


def pack_rows(r: np.ndarray) -> np.ndarray:
    """The upper trapezoid of ``r`` (k × m, k ≤ m), row by row: ``r[0, 0:], r[1, 1:], …``."""
    k = r.shape[0]
    return np.concatenate([r[i, i:] for i in range(k)]) if k else np.zeros(0)


def _unpack_r(packed: np.ndarray, shape: tuple[int, int], n: int) -> RFactor:
    k, m = shape
    r = np.zeros(shape)
    start = 0
    for i in range(k):
        r[i, i:] = packed[start : start + m - i]
        start += m - i
    return RFactor(r, n)


@dataclass(frozen=True, slots=True)
class StackedR:
    """An :class:`RFactor` that folds rows in a width at a time: the accumulator of a wide design.

    Folding each block of ``b < m`` rows into an ``m × m`` R costs a QR of ``(m + b) × m`` —
    about ``(4/3) m³`` flops a block, whatever ``b``. Stacking blocks until at least ``m`` rows
    wait and then factoring ``[R; rows]`` once costs about ``(10/3) m²`` flops *a row*, so the
    fold's cost follows the rows, not the number of blocks. The waiting rows are weighted
    (``√w·[1?, x, y]``) and never exceed ``m − 1`` between folds.
    """

    factor: RFactor
    pending: tuple[np.ndarray, ...] = ()

    @classmethod
    def zero(cls, width: int) -> StackedR:
        return cls(RFactor.zero(width))

    @property
    def waiting(self) -> int:
        return sum(len(z) for z in self.pending)

    def add(
        self, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, fit_intercept: bool
    ) -> StackedR:
        z = weighted_design(x, y, w, fit_intercept)
        stacked = StackedR(RFactor(self.factor.r, self.factor.n + len(x)), (*self.pending, z))
        return stacked.fold() if stacked.waiting >= z.shape[1] else stacked

    def fold(self) -> StackedR:
        """The waiting rows factored into R (one QR of the stack)."""
        if not self.pending:
            return self
        r = _triangle(np.vstack([self.factor.r, *self.pending]))
        return StackedR(RFactor(r, self.factor.n))

    def merge(self, other: StackedR) -> StackedR:
        a, b = self.fold().factor, other.fold().factor
        return StackedR(a.merge(b))

    def to_factor(self) -> RFactor:
        return self.fold().factor

    def pieces(self, piece_bytes: int) -> Iterator:
        """The folded R as records: ``(shape, n)``, then its upper trapezoid (:func:`pack_rows`)
        in consecutive slices of at most ``piece_bytes``."""
        factor = self.to_factor()
        yield factor.r.shape, factor.n
        yield from slices(pack_rows(factor.r), piece_bytes)

    @staticmethod
    def piece_count(width: int, piece_bytes: int) -> int:
        """The most records :meth:`pieces` yields for ``width`` columns (R at most square)."""
        return 1 + slice_count(width * (width + 1) // 2, piece_bytes)

    @staticmethod
    def absorb_pieces(acc: StackedR, records: Iterator) -> StackedR:
        """``acc`` merged with the R whose :meth:`pieces` are ``records``."""
        shape, n = next(records)
        k, m = shape
        packed = assemble(records, k * m - k * (k - 1) // 2)
        return acc.merge(StackedR(_unpack_r(packed, shape, n)))


def _triangle(z: np.ndarray) -> np.ndarray:
    """R of a QR factorisation with a non-negative diagonal (so the result is unique)."""
    r = np.linalg.qr(z, mode="r")
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return r * signs[:, None]


def _aliased(r: np.ndarray, tol: float) -> list[int]:
    """Columns of the design whose projected norm |R_jj| is at most ``tol`` times their norm."""
    norms = np.linalg.norm(r, axis=0)
    diag = (
        np.abs(np.diag(r))
        if r.shape[0] >= r.shape[1]
        else np.abs(np.concatenate([np.diag(r), np.zeros(r.shape[1] - r.shape[0])]))
    )
    return [j for j in range(r.shape[1]) if norms[j] == 0 or diag[j] <= tol * norms[j]]


def _explain(r: np.ndarray, aliased: list[int], names: list[str], offset: int) -> str:
    parts = []
    for j in aliased:
        earlier = [k for k in range(j) if k not in aliased]
        coef = linalg.lstsq(r[:, earlier], r[:, j])[0] if earlier else np.zeros(0)
        partners = [
            names[k - offset]
            for k, c in zip(earlier, coef, strict=True)
            if k >= offset and abs(c) > 1e-6
        ]
        if not partners:
            parts.append(f"'{names[j - offset]}' is constant")
        else:
            parts.append(
                f"'{names[j - offset]}' is a linear combination of "
                + ", ".join(f"'{p}'" for p in partners)
            )
    return "; ".join(parts)


def solve_r(
    factor: RFactor,
    *,
    w_sum: float,
    fit_intercept: bool = True,
    reg_param: float = 0.0,
    on_singular: str = "error",
    names: list[str] | None = None,
    alias_tol: float | None = None,
) -> tuple[Solution, float]:
    """Coefficients, unscaled covariance and SSR from the reduced R.

    Returns the :class:`~sparkml_jobs.stats.Solution` and the residual sum of squares
    ``R[m−1, m−1]²`` (exact for the least-squares solution; for ridge, recomputed from R).
    A column is aliased when ``|R_jj| ≤ alias_tol·‖R_:j‖`` (default :func:`default_alias_tol`).
    """
    m = factor.r.shape[1]
    r = np.zeros((m, m))
    r[: factor.r.shape[0]] = factor.r
    offset = int(fit_intercept)
    p = m - 1 - offset
    names = names or [f"x{j + 1}" for j in range(p)]
    design = r[:, : m - 1]
    tol = default_alias_tol(factor.n, m - 1) if alias_tol is None else alias_tol
    aliased = [j for j in _aliased(design, tol) if j >= offset]
    if aliased and on_singular != "drop" and reg_param <= 0:
        raise InputError(
            "singular design (rank-deficient features): "
            + _explain(design, aliased, names, offset)
            + "; remove those columns, pass --on-singular drop, or use --reg-param > 0"
        )
    if reg_param > 0:
        aliased = [j for j in aliased if np.linalg.norm(design[:, j]) == 0]
    keep = [j for j in range(m - 1) if j not in aliased]
    sub = r[:, keep + [m - 1]]
    penalised = [i for i, j in enumerate(keep) if j >= offset]
    if reg_param > 0:  # ridge: append √(λ·Σw)·I rows for the penalised columns
        extra = np.zeros((len(penalised), len(keep) + 1))
        extra[np.arange(len(penalised)), penalised] = np.sqrt(reg_param * w_sum)
        sub = np.vstack([sub, extra])
    reduced = _triangle(sub)
    q = len(keep)
    r11, r12 = reduced[:q, :q], reduced[:q, q]
    scale = np.linalg.norm(r11, axis=0)
    scaled = r11 / np.where(scale > 0, scale, 1.0)
    sv = np.linalg.svd(scaled, compute_uv=False)
    condition = float((sv[0] / sv[-1]) ** 2) if sv[-1] > 0 else float("inf")  # of the scaled Gram
    if sv[-1] == 0:
        raise InputError("the design is numerically singular; use --reg-param > 0")
    beta = linalg.solve_triangular(r11, r12, check_finite=False)
    r_inv = linalg.solve_triangular(r11, np.eye(q), check_finite=False)
    cov = r_inv @ r_inv.T  # (R̃ᵀR̃)⁻¹
    if reg_param > 0:  # sandwich M⁻¹ (XᵀWX) M⁻¹ with XᵀWX = RᵀR of the unpenalised factor
        gram = r[:, keep].T @ r[:, keep]
        cov = cov @ gram @ cov
        residual = r[:, keep] @ beta - r[:, m - 1]  # ‖Zc‖ = ‖Rc‖ for any c
        ssr = float(residual @ residual)
    else:
        ssr = float(reduced[q, q] ** 2) if reduced.shape[0] > q else 0.0
    coefficients = np.full(p, np.nan)
    feature_cols = [i for i, j in enumerate(keep) if j >= offset]
    coefficients[[keep[i] - offset for i in feature_cols]] = beta[feature_cols]
    kept = ~np.isnan(coefficients)
    if fit_intercept:
        intercept, var_intercept = float(beta[0]), float(cov[0, 0])
    else:
        intercept, var_intercept = 0.0, float("nan")
    return (
        Solution(
            intercept=intercept,
            coefficients=coefficients,
            kept=kept,
            condition_number=condition,
            unscaled_var=np.diag(cov)[feature_cols],
            unscaled_var_intercept=var_intercept,
            aliased=[j - offset for j in aliased],
        ),
        ssr,
    )


def refine(sol: Solution, factor: RFactor, gradient: np.ndarray, fit_intercept: bool) -> Solution:
    """One step of iterative refinement: β += (RᵀR)⁻¹ · [1, X]ᵀW r, with r from a data pass.

    ``gradient`` is ``Σ wᵢ rᵢ [1?, xᵢ]`` over the kept columns, computed with the current
    coefficients (corrected semi-normal equations, Björck 1987).
    """
    m = factor.r.shape[1]
    offset = int(fit_intercept)
    keep = list(range(offset)) + [offset + j for j in np.flatnonzero(sol.kept)]
    r = np.zeros((m, m))
    r[: factor.r.shape[0]] = factor.r
    r11 = _triangle(r[:, keep])[: len(keep), : len(keep)]
    step = linalg.solve_triangular(
        r11,
        linalg.solve_triangular(r11, gradient, trans="T", check_finite=False),
        check_finite=False,
    )
    coefficients = sol.coefficients.copy()
    coefficients[sol.kept] += step[offset:]
    intercept = sol.intercept + (float(step[0]) if fit_intercept else 0.0)
    return Solution(
        intercept=intercept,
        coefficients=coefficients,
        kept=sol.kept,
        condition_number=sol.condition_number,
        unscaled_var=sol.unscaled_var,
        unscaled_var_intercept=sol.unscaled_var_intercept,
        aliased=sol.aliased,
    )
