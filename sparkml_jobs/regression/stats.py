"""Pure numpy: sufficient statistics of a weighted least-squares problem, merge, solve, inference.

The statistics of ``z = [x, y]`` are kept *centred*: weighted mean and the co-moment matrix
``C = Σ wᵢ (zᵢ − z̄)(zᵢ − z̄)ᵀ``. Blocks are merged with the pairwise update of Chan, Golub &
LeVeque, so no raw ``Σ x²`` is ever formed and no variance is computed as ``E[x²] − E[x]²``
(the cancellation that costs MLlib digits on data with large means).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import rfp
from sparkml_jobs.regression.aliasing import ALIAS_TOL, explain_aliased, find_aliased
from sparkml_jobs.regression.dense import (
    EXACT_CONDITION_MAX_P,
    PANEL_ROWS,
    cholesky_in_place,
    condition_from_factor,
    condition_number,
    divide_symmetric,
    one_norm,
    symmetric_inverse,
)

# Above this many columns the unregularised solve works in RFP storage (:mod:`~.rfp`): half the
# memory of the full matrix, where the condition number is an estimate anyway
RFP_MIN_P = EXACT_CONDITION_MAX_P


@dataclass(frozen=True, kw_only=True)
class SufficientStats:
    """Weighted first and second moments of ``z = [x₁ … x_p, y]`` (a monoid under :meth:`merge`).

    Attributes
    ----------
    n : int
        Number of rows.
    w_sum : float
        Sum of the weights (``n`` when unweighted).
    mean : ndarray of shape (p + 1,)
        Weighted mean of ``z``.
    comoment : ndarray of shape (p + 1, p + 1)
        ``Σ wᵢ (zᵢ − mean)(zᵢ − mean)ᵀ``.
    """

    n: int
    w_sum: float
    mean: np.ndarray
    comoment: np.ndarray

    @classmethod
    def zero(cls, width: int) -> SufficientStats:
        return cls(n=0, w_sum=0.0, mean=np.zeros(width), comoment=np.zeros((width, width)))

    # what the solve, the guards and the summary read, which the packed triangle of a wide design
    # (:class:`~.packed.PackedStats`) also answers without forming the full matrix
    def diagonal(self) -> np.ndarray:
        """The co-moment's diagonal (a copy)."""
        return np.diagonal(self.comoment).copy()

    def column(self, j: int) -> np.ndarray:
        """Column ``j`` of the co-moment (a copy)."""
        return self.comoment[:, j].copy()

    def nonfinite_column(self) -> int | None:
        """The first column of the co-moment with a non-finite entry (``None``: none)."""
        bad = np.flatnonzero(~np.isfinite(self.comoment).all(axis=0))
        return int(bad[0]) if len(bad) else None

    def quadratic(self, v: np.ndarray) -> float:
        """``vᵀ C v`` for a vector of the full width."""
        return float(v @ self.comoment @ v)

    def scaled_rfp(self, n: int, scale: np.ndarray, shift=None) -> np.ndarray:
        """:func:`~.rfp.from_upper` of the leading ``n × n`` block."""
        return rfp.from_upper(self.comoment, n, scale, shift)

    def full(self) -> SufficientStats:
        """These statistics with the full co-moment matrix (the dense solvers, merges)."""
        return self

    def __reduce__(self):
        # ship only the upper triangle of the symmetric co-moment: half the bytes per partial
        # (sliced row by row: index arrays for a wide triangle would outweigh the triangle)
        from sparkml_jobs.regression.packed import pack  # packed imports this module

        return _unpack_stats, (self.n, self.w_sum, self.mean, pack(self.comoment))

    @classmethod
    def of_block(cls, z: np.ndarray, w: np.ndarray | None = None) -> SufficientStats:
        """Statistics of one block ``z`` of shape (rows, p + 1); one GEMM (``AᵀA``) per block."""
        n = len(z)
        if n == 0:
            return cls.zero(z.shape[1])
        if w is None:
            w_sum = float(n)
            mean = z.mean(axis=0)
            centred = z - mean
        else:
            w_sum = float(w.sum())
            if w_sum <= 0:
                return cls(
                    n=n, w_sum=0.0, mean=np.zeros(z.shape[1]), comoment=np.zeros((z.shape[1],) * 2)
                )
            mean = (w @ z) / w_sum
            centred = (z - mean) * np.sqrt(w)[:, None]
        return cls(n=n, w_sum=w_sum, mean=mean, comoment=centred.T @ centred)

    def merge(self, other: SufficientStats) -> SufficientStats:
        """Chan et al. pairwise update: exact, associative, and stable for large means."""
        if other.w_sum == 0:
            return SufficientStats(
                n=self.n + other.n,
                w_sum=self.w_sum,
                mean=self.mean,
                comoment=self.comoment + other.comoment,
            )
        if self.w_sum == 0:
            return SufficientStats(
                n=self.n + other.n,
                w_sum=other.w_sum,
                mean=other.mean,
                comoment=self.comoment + other.comoment,
            )
        w_sum = self.w_sum + other.w_sum
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.w_sum / w_sum)
        comoment = self.comoment + other.comoment
        comoment += np.outer(delta, delta) * (self.w_sum * other.w_sum / w_sum)
        return SufficientStats(n=self.n + other.n, w_sum=w_sum, mean=mean, comoment=comoment)

    def subtract(self, other: SufficientStats) -> SufficientStats:
        """Inverse of :meth:`merge`: the statistics of ``self`` without the rows of ``other``."""
        w_sum = self.w_sum - other.w_sum
        n = self.n - other.n
        if n < 0 or w_sum < -1e-9 * max(self.w_sum, 1.0):
            raise InputError("cannot subtract more data than the model was fitted on")
        if w_sum <= 1e-12 * max(self.w_sum, 1.0):
            return SufficientStats.zero(len(self.mean))
        mean = (self.mean * self.w_sum - other.mean * other.w_sum) / w_sum
        delta = other.mean - mean
        comoment = self.comoment - other.comoment
        comoment -= np.outer(delta, delta) * (w_sum * other.w_sum / self.w_sum)
        return SufficientStats(n=n, w_sum=w_sum, mean=mean, comoment=comoment)


def _unpack_stats(n: int, w_sum: float, mean: np.ndarray, upper: np.ndarray) -> SufficientStats:
    from sparkml_jobs.regression.packed import unpack

    return SufficientStats(n=n, w_sum=w_sum, mean=mean, comoment=unpack(upper, len(mean)))


@dataclass(frozen=True, kw_only=True)
class Solution:
    """Coefficients and the quantities inference needs, from :func:`solve`."""

    intercept: float
    coefficients: np.ndarray  # NaN for dropped (aliased) columns
    kept: np.ndarray  # bool mask of the columns in the fit
    condition_number: float
    # Variances of the kept coefficients per unit residual variance (σ² = 1), and the
    # intercept's: the diagonal of the coefficients' covariance, all inference reads of it (the
    # whole p × p matrix is not kept: at 8,192 columns it is 537 MB through the residual pass)
    unscaled_var: np.ndarray
    unscaled_var_intercept: float
    aliased: list[int] = field(default_factory=list)


def _design_moments(
    s: SufficientStats, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """(A, b, yy): the (centred if intercept) Gram matrix, cross-products and y sum of squares.

    With an intercept ``A`` is a view of the co-moment (no copy); without one it is a new array,
    the raw moments added a panel of rows at a time (no ``p × p`` temporaries).
    """
    s = s.full()
    p = len(s.mean) - 1
    a = s.comoment[:p, :p]
    b = s.comoment[:p, p]
    yy = float(s.comoment[p, p])
    if not fit_intercept:
        mx, my = s.mean[:p], s.mean[p]
        a = np.array(a)
        for i0 in range(0, p, PANEL_ROWS):
            a[i0 : i0 + PANEL_ROWS] += s.w_sum * np.outer(mx[i0 : i0 + PANEL_ROWS], mx)
        b = b + s.w_sum * mx * my
        yy = yy + s.w_sum * my * my
    return a, b, yy


def scaled_gram(s: SufficientStats, fit_intercept: bool):
    """(C, b/d, d): the Gram matrix scaled to unit diagonal, the scaled cross-products and the
    column scales d (zero-variance columns get d = 1 and a zero row/column in C).

    ``C`` is one new ``p × p`` array, scaled in place (no further temporaries): on a wide
    design every copy of the Gram is hundreds of MB.
    """
    a, b, _ = _design_moments(s, fit_intercept)
    scale = np.sqrt(np.clip(np.diag(a), 0.0, None))
    nonzero = scale > 0
    safe = np.where(nonzero, scale, 1.0)
    corr = np.array(a) if fit_intercept else a  # without an intercept ``a`` is already new
    divide_symmetric(corr, safe)
    corr[~nonzero, :] = 0.0
    corr[:, ~nonzero] = 0.0
    return corr, b / safe, safe


def gram_condition(s: SufficientStats, fit_intercept: bool) -> float:
    """Condition number of the column-scaled Gram matrix (what ``solver="auto"`` looks at)."""
    p = len(s.mean) - 1
    found = rfp.factored(s, fit_intercept) if p > RFP_MIN_P else None
    if found is not None:  # a wide design: factored in half the memory
        factor, _, _, anorm, info = found
        return rfp.condition(factor, p, anorm) if info == 0 else float("inf")
    corr, _, _ = scaled_gram(s, fit_intercept)
    if len(corr) <= EXACT_CONDITION_MAX_P:
        return condition_number(corr)
    anorm = one_norm(corr)
    chol, info = cholesky_in_place(corr)  # corr is ours: factored where it lies
    return condition_from_factor(chol, chol, anorm) if info == 0 else float("inf")


def solve(
    s: SufficientStats,
    *,
    fit_intercept: bool = True,
    reg_param: float = 0.0,
    on_singular: str = "error",
    names: list[str] | None = None,
    alias_tol: float | None = None,
) -> Solution:
    """Solve the (ridge-)regularised weighted normal equations from the statistics alone.

    Minimises ``(1/Σw) Σ wᵢ (yᵢ − b − xᵢᵀβ)² + λ‖β‖²`` (the intercept ``b`` is not penalised;
    with ``reg_param=0`` this is ordinary/weighted least squares). Columns are scaled to unit
    norm before the Cholesky factorisation, and the condition number reported is that of the
    scaled Gram matrix. ``alias_tol`` is the relative residual *norm* below which a column is
    aliased (as TSQR's), so the pivot test uses its square; default :data:`ALIAS_TOL`.

    Memory and flops matter on a wide design (8,192 columns: 537 MB a matrix, 183 GFlop a
    factorisation): the scaled Gram is the one ``p × p`` array made; it is factored in place
    (whose pivots are also the aliasing test when nothing is aliased), inverted in place
    (``dpotri``) and unscaled in place into the coefficient covariance. A ridge keeps one more
    copy for the sandwich covariance; aliased columns take the column-by-column path.
    """
    p = len(s.mean) - 1
    names = names or [f"x{j + 1}" for j in range(p)]
    tol = ALIAS_TOL if alias_tol is None else alias_tol**2
    if reg_param <= 0 and p > RFP_MIN_P:
        solved = _solve_rfp(s, fit_intercept, tol)
        if solved is not None:
            return solved
    corr, b_scaled, safe = scaled_gram(s, fit_intercept)
    nonzero = np.diag(corr) > 0
    chol = condition = None
    if reg_param <= 0 and p and np.all(nonzero):
        # fast path: one factorisation of the whole matrix is the solve *and* the alias test
        small = p <= EXACT_CONDITION_MAX_P
        condition = condition_number(corr) if small else None
        anorm = one_norm(corr)
        chol, info = cholesky_in_place(corr)
        if info == 0 and np.all(np.diag(chol) ** 2 > tol):  # the diagonal of corr is 1
            if condition is None:
                condition = condition_from_factor(chol, chol, anorm)
            aliased: list[int] = []
        else:  # a negligible pivot: rebuild the matrix for the column-by-column test
            chol = condition = None
            corr, b_scaled, safe = scaled_gram(s, fit_intercept)
    if chol is None:
        if reg_param > 0:
            aliased = [j for j in range(p) if not nonzero[j]]
        else:
            aliased = find_aliased(corr, tol)
    if aliased and on_singular != "drop" and reg_param <= 0:
        raise InputError(
            "singular design (rank-deficient features): "
            + explain_aliased(corr, aliased, names)
            + "; remove those columns, pass --on-singular drop, or use --reg-param > 0"
        )
    kept = np.ones(p, dtype=bool)
    kept[aliased] = False
    idx = np.flatnonzero(kept)
    rhs = b_scaled[idx]
    corr_k = None
    if len(idx) and chol is None:
        corr_k = corr[np.ix_(idx, idx)] if aliased else corr
        # ridge in the scaled coordinates: (C + λ Σw D⁻²) γ = D⁻¹ b, with β = γ / d
        system = np.array(corr_k) if reg_param > 0 else corr_k  # the sandwich needs C
        system[np.diag_indices(len(idx))] += reg_param * s.w_sum / safe[idx] ** 2
        del corr
        condition = condition_number(system) if len(idx) <= EXACT_CONDITION_MAX_P else None
        anorm = one_norm(system)
        chol, info = cholesky_in_place(system)
        if info != 0:
            raise InputError(
                "the design is numerically singular (condition number "
                f"{condition if condition is not None else float('inf'):.3g}); "
                "use --reg-param > 0 or remove collinear columns"
            )
        if condition is None:
            condition = condition_from_factor(chol, chol, anorm)
    if len(idx):
        gamma, _ = linalg.lapack.dpotrs(chol, rhs, lower=1)
        inv = symmetric_inverse(chol)
        # Cov(γ)/σ² = S⁻¹ C S⁻¹ (sandwich; equals C⁻¹ when λ = 0)
        cov = inv @ corr_k @ inv if reg_param > 0 else inv
        del inv, corr_k
        divide_symmetric(cov, safe[idx])
        beta_k = gamma / safe[idx]
        mx = s.mean[:p][idx]
        var, quadratic = np.diag(cov).copy(), float(mx @ cov @ mx)
        del cov
    else:
        condition, beta_k, var, quadratic = 1.0, np.zeros(0), np.zeros(0), 0.0
    return _solution(s, idx, beta_k, var, quadratic, float(condition), fit_intercept, aliased)


def _solve_rfp(s: SufficientStats, fit_intercept: bool, tol: float) -> Solution | None:
    """:func:`solve` of a wide design without a ridge, in RFP storage (:mod:`~.rfp`): one
    half-size array is factored, used for the solve and the condition estimate, and inverted
    in place for the variances. ``None`` (the full path decides) when a column has no variance
    or a pivot is negligible: aliasing is tested and explained column by column there."""
    found = rfp.factored(s, fit_intercept)
    if found is None:
        return None
    factor, rhs, scale, anorm, info = found
    p = len(scale)
    if info != 0 or not np.all(rfp.diagonal(factor, p) ** 2 > tol):
        return None
    condition = rfp.condition(factor, p, anorm)
    beta = rfp.solve(factor, p, rhs) / scale
    inv = rfp.inverse(factor, p)
    var = rfp.diagonal(inv, p) / scale**2
    u = s.mean[:p] / scale
    quadratic = float(u @ rfp.matvec(inv, p, u)) if fit_intercept else 0.0
    return _solution(s, np.arange(p), beta, var, quadratic, condition, fit_intercept, [])


def _solution(
    s: SufficientStats,
    idx: np.ndarray,
    beta_k: np.ndarray,
    var: np.ndarray,
    quadratic: float,
    condition: float,
    fit_intercept: bool,
    aliased: list[int],
) -> Solution:
    """The :class:`Solution` of the kept columns ``idx``; ``quadratic`` is ``x̄ᵀ Cov x̄`` of
    their means (the intercept's variance beyond ``1/Σw``)."""
    p = len(s.mean) - 1
    coefficients = np.full(p, np.nan)
    coefficients[idx] = beta_k
    kept = np.zeros(p, dtype=bool)
    kept[idx] = True
    if fit_intercept:
        intercept = float(s.mean[p] - s.mean[:p][idx] @ beta_k)
        var_intercept = 1.0 / s.w_sum + quadratic
    else:
        intercept, var_intercept = 0.0, float("nan")
    return Solution(
        intercept=intercept,
        coefficients=coefficients,
        kept=kept,
        condition_number=condition,
        unscaled_var=var,
        unscaled_var_intercept=var_intercept,
        aliased=list(aliased),
    )


def residual_sum_of_squares(s: SufficientStats, sol: Solution, fit_intercept: bool) -> float:
    """Σ wᵢ rᵢ² from the statistics (used when no residual pass is made, e.g. a ridge path):
    ``vᵀ M v`` with ``v = (−β, 1)`` and ``M`` the co-moment (raw moments without an intercept),
    read off the statistics as they are kept (a wide triangle is never made a full matrix)."""
    v = np.append(-np.where(sol.kept, sol.coefficients, 0.0), 1.0)
    ssr = s.quadratic(v)
    if not fit_intercept:
        ssr += s.w_sum * float(s.mean @ v) ** 2
    return max(ssr, 0.0)


@dataclass(frozen=True, kw_only=True)
class Inference:
    """Standard errors, t-values and two-sided p-values; the intercept first when fitted."""

    std_errors: list[float | None]
    t_values: list[float | None]
    p_values: list[float | None]
    df_resid: int
    sigma: float


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def inference(s: SufficientStats, sol: Solution, ssr: float, *, fit_intercept: bool) -> Inference:
    """OLS inference (statsmodels' conventions): σ² = SSR/(n − k), t = β/se, p = 2·P(T > |t|)."""
    k = int(sol.kept.sum()) + int(fit_intercept)
    df_resid = s.n - k
    sigma2 = ssr / df_resid if df_resid > 0 else float("nan")
    # √v·σ rather than √(v·σ²): the product overflows for columns of very different scales
    sigma = np.sqrt(sigma2)
    se_k = np.sqrt(np.clip(sol.unscaled_var, 0, None)) * sigma
    se = np.full(len(sol.coefficients), np.nan)
    se[sol.kept] = se_k
    estimates = sol.coefficients
    if fit_intercept:
        se = np.concatenate([[np.sqrt(sol.unscaled_var_intercept) * sigma], se])
        estimates = np.concatenate([[sol.intercept], estimates])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = estimates / se
    from scipy import stats  # imported here: executors unpickling this module never need it

    p = 2 * stats.t.sf(np.abs(t), df_resid) if df_resid > 0 else np.full(len(t), np.nan)
    return Inference(
        std_errors=_finite_or_none(se),
        t_values=_finite_or_none(t),
        p_values=_finite_or_none(p),
        df_resid=df_resid,
        sigma=float(np.sqrt(sigma2)) if sigma2 == sigma2 else float("nan"),
    )


def total_sum_of_squares(s: SufficientStats, fit_intercept: bool) -> float:
    """Weighted TSS: centred with an intercept, uncentred without (as statsmodels)."""
    p = len(s.mean) - 1
    tss = float(s.diagonal()[p])
    if not fit_intercept:
        tss += s.w_sum * float(s.mean[p]) ** 2
    return tss
