"""Pure numpy: the one solver interface that ``fit``, ``fit_cv`` and ``update`` go through.

A :class:`Solver` is the solve-side half of the parameters (kind, intercept, ridge penalty,
rank policy and tolerance). Whatever its kind, the estimator asks it the same things:

1. :meth:`Solver.resolve` — the concrete solver for these statistics (``auto`` picks Cholesky or
   TSQR by the scaled Gram condition) and that condition number, which is what every model
   reports, fitted or updated, whatever the solver;
2. :attr:`Solver.needs_factor` — whether the TSQR pass (the R factor of ``√w·[1, X, y]``) must run;
3. :meth:`Solver.solve` — coefficients and the residual sum of squares from what it was given
   (the statistics, plus the R factor for TSQR), with no pass over the rows;
4. :meth:`Solver.check_update` — whether a saved model can be updated by this solver from what
   it saved: statistics can be merged and subtracted; an R factor can take more rows but cannot
   give rows back (QR downdating is not offered), and an old model may not have saved one.

An update never switches solvers: a model records the solver its fit resolved to and an update
uses that one, or stops with one line saying why it cannot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression import tsqr

SOLVERS = ("auto", "cholesky", "tsqr")
ON_SINGULAR = ("error", "drop")
# solver="auto" switches to TSQR above this condition number of the scaled Gram matrix: the
# normal equations lose about log10(κ) of float64's 16 digits, TSQR about half as many.
AUTO_CONDITION_LIMIT = 1e4


@dataclass(frozen=True, kw_only=True)
class Solver:
    """How to solve a least-squares / ridge problem from its mergeable state.

    Parameters
    ----------
    kind : {"auto", "cholesky", "tsqr"}
        ``auto`` must be :meth:`resolve`-d before :meth:`solve`.
    fit_intercept : bool
        Fit an (unpenalised) intercept.
    reg_param : float
        Ridge penalty λ ≥ 0.
    on_singular : {"error", "drop"}
        What to do with aliased columns.
    alias_tol : float, optional
        A column is aliased when its norm left after projection on the columns before it is at
        most ``alias_tol`` times its norm. Default (None): TSQR uses LAPACK's practice,
        ``min(1e-7, max(n_rows, n_cols)·eps)`` (:func:`~.tsqr.default_alias_tol`); Cholesky,
        whose pivots are only known to ~κ²·eps, uses ``√ALIAS_TOL`` = 1e-5. ``1e-7`` is R's ``lm``.
    """

    kind: str = "auto"
    fit_intercept: bool = True
    reg_param: float = 0.0
    on_singular: str = "error"
    alias_tol: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOLVERS:
            raise InputError(f"solver must be one of {', '.join(SOLVERS)}, got {self.kind!r}")
        if not (self.reg_param >= 0 and np.isfinite(self.reg_param)):
            raise InputError(f"reg_param must be a finite number >= 0, got {self.reg_param!r}")
        if self.on_singular not in ON_SINGULAR:
            raise InputError(f"on_singular must be one of {ON_SINGULAR}, got {self.on_singular!r}")
        tol = self.alias_tol
        if tol is not None and not (isinstance(tol, int | float) and 0 < tol < 1):
            raise InputError(f"alias_tol must be a number in (0, 1), got {tol!r}")

    def with_kind(self, kind: str) -> Solver:
        return dataclasses.replace(self, kind=kind)

    def resolve(self, stats: st.SufficientStats) -> tuple[Solver, float | None]:
        """The concrete solver for ``stats`` and, for ``auto``, the scaled Gram condition
        number it chose by (``None`` for a named solver: :meth:`condition` gives it after the
        solve, without factoring a wide Gram one more time).

        The condition number is :func:`~.stats.gram_condition` (centred when there is an
        intercept, columns scaled to unit norm) for every solver, so it means the same thing in
        every model.
        """
        if self.kind != "auto":
            return self, None
        condition = st.gram_condition(stats, self.fit_intercept)
        kind = "cholesky" if condition <= AUTO_CONDITION_LIMIT else "tsqr"
        return self.with_kind(kind), condition

    def condition(self, stats: st.SufficientStats, sol: st.Solution) -> float:
        """:func:`~.stats.gram_condition` of ``stats``; read from a Cholesky solution when that
        solve factored exactly the scaled Gram (no ridge, nothing aliased)."""
        if self.kind == "cholesky" and self.reg_param == 0 and not sol.aliased:
            return sol.condition_number
        return st.gram_condition(stats, self.fit_intercept)

    @property
    def needs_factor(self) -> bool:
        """True when :meth:`solve` needs the R factor of the rows (one more pass)."""
        return self.kind == "tsqr"

    def solve(
        self,
        stats: st.SufficientStats,
        factor: tsqr.RFactor | None = None,
        names: list[str] | None = None,
    ) -> tuple[st.Solution, float]:
        """Coefficients and the residual sum of squares Σ wᵢ rᵢ², from the state alone.

        The SSR comes from the centred statistics (Cholesky) or from the last diagonal entry of
        R (TSQR); a fit replaces it with an exact pass over the rows when it can.
        """
        options = dict(
            fit_intercept=self.fit_intercept,
            reg_param=self.reg_param,
            on_singular=self.on_singular,
            names=names,
            alias_tol=self.alias_tol,
        )
        if self.kind == "cholesky":
            sol = st.solve(stats, **options)
            return sol, st.residual_sum_of_squares(stats, sol, self.fit_intercept)
        if self.kind == "tsqr":
            if factor is None:
                raise ValueError("the TSQR solver needs the R factor")
            return tsqr.solve_r(factor, w_sum=stats.w_sum, **options)
        raise ValueError("resolve() an 'auto' solver before solving")

    def check_update(self, factor: tsqr.RFactor | None, *, removing: bool) -> None:
        """Raise :class:`InputError` (one line) if a model solved by this solver, which saved
        ``factor``, cannot be updated — never fall back to another solver."""
        if self.kind != "tsqr":
            return
        if removing:
            raise InputError(
                "a model fitted with TSQR cannot remove rows (--subtract): its R factor takes new "
                "rows but QR downdating is not supported; refit on the remaining rows, or fit "
                "with --solver cholesky to be able to subtract"
            )
        if factor is None:
            raise InputError(
                "this model was fitted with TSQR but has no saved R factor (it was saved by an "
                "older version), so it cannot be updated; refit it"
            )
