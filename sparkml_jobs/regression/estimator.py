"""The linear regression estimator and model: parameters validated up front, then orchestration.

``LinearRegression.fit``: one pass computes every partition's :class:`~.stats.SufficientStats`
(and the validation counts) and a tree aggregation merges them (:mod:`~.passes`); the driver
solves; a second, cheap pass computes the residual sums exactly (SSR and MAE), which the standard
errors use. The model's JSON schema is in :mod:`sparkml_jobs.io.models`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from sparkml_jobs.errors import InputError
from sparkml_jobs.io.dataset import BlockData
from sparkml_jobs.io.fs_parquet import release_memory
from sparkml_jobs.io.score import score_frame
from sparkml_jobs.regression import formula as fm
from sparkml_jobs.regression import guards, intervals, tsqr
from sparkml_jobs.regression import packed as pk
from sparkml_jobs.regression import stats as st
from sparkml_jobs.regression.passes import (
    ResidualSums,
    aggregate_r,
    aggregate_stats,
    fold_stats,
    residual_pass,
)
from sparkml_jobs.regression.passes import evaluate as evaluate_pass
from sparkml_jobs.regression.solver import (  # noqa: F401  (re-exported)
    AUTO_CONDITION_LIMIT,
    ON_SINGULAR,
    SOLVERS,
    Solver,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LinearRegressionSummary:
    """Training summary (statsmodels-OLS grade). Lists have the intercept first when fitted."""

    n: int
    weight_sum: float
    r2: float
    r2_adj: float
    rmse: float
    mae: float
    residual_std: float
    df_resid: int
    std_errors: list[float | None]
    t_values: list[float | None]
    p_values: list[float | None]
    condition_number: float
    solver: str
    aliased: list[str] = field(default_factory=list)
    cross_validation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, kw_only=True)
class LinearRegressionModel:
    """A fitted linear model ``y ≈ intercept + x · coefficients`` (NaN coefficient = dropped)."""

    features: list[str]
    label: str | None
    intercept: float
    coefficients: np.ndarray
    params: dict[str, Any]
    summary: LinearRegressionSummary | None = None
    stats: st.SufficientStats | None = None
    weight_col: str | None = None
    # TSQR models: the R factor of √w·[1?, X, y] over the training rows, so rows can be added
    factor: tsqr.RFactor | None = field(default=None, repr=False)
    # (fitted, residual) pairs of a bounded sample of the training rows (not saved)
    residual_sample: np.ndarray | None = field(default=None, repr=False, compare=False)
    # formula models: the formula (or --features) with each categorical column's levels; the
    # features are then the design's columns, named as statsmodels names them
    design: fm.Design | None = field(default=None, repr=False)

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        """Predictions for a (rows, n_features) array."""
        return x @ np.nan_to_num(self.coefficients, nan=0.0) + self.intercept

    def predict(
        self,
        frame: DataFrame,
        output_col: str = "prediction",
        *,
        columns: list[str] | None = None,
        interval: str | None = None,
        level: float = 0.95,
    ) -> DataFrame:
        """All columns of ``frame`` plus ``prediction``, row order kept (one ``mapInArrow``).

        ``columns`` are the frame's columns holding the features (default: named as them; a
        formula model's encoded design, see :func:`sparkml_jobs.io.design.encode`).
        ``interval`` ("confidence" or "prediction") adds ``lower`` and ``upper`` at ``level``:
        statsmodels' ``get_prediction().summary_frame()`` ``mean_ci_*`` / ``obs_ci_*`` (a new
        observation has weight 1), from the saved statistics (:mod:`~.intervals`).
        """
        outputs = [output_col]
        if interval is None:
            score = lambda x: {output_col: self.predict_array(x)}  # noqa: E731
        else:
            state = intervals.interval_state(self, interval, level)
            outputs += ["lower", "upper"]

            def score(x: np.ndarray) -> dict[str, np.ndarray]:
                prediction = self.predict_array(x)
                lower, upper = state.bounds(x, prediction)
                return {output_col: prediction, "lower": lower, "upper": upper}

        return score_frame(
            frame,
            columns or self.features,
            score,
            T.StructType([T.StructField(c, T.DoubleType()) for c in outputs]),
        )

    def evaluate(self, data: BlockData) -> dict[str, float]:
        """Metrics on labelled data: n, mse, rmse, mae, r2 (one pass)."""
        return evaluate_pass(self, data)


@dataclass(frozen=True, kw_only=True)
class LinearRegression:
    """Least squares / ridge on a :class:`BlockData`, by distributed normal equations or TSQR.

    Parameters
    ----------
    fit_intercept : bool
        Fit an (unpenalised) intercept.
    reg_param : float
        Ridge penalty λ ≥ 0 in ``(1/Σw) Σ wᵢ rᵢ² + λ‖β‖²`` (on the features' own scale).
    on_singular : {"error", "drop"}
        Rank-deficient design: stop with an error naming the aliased columns, or drop them
        (their coefficients are reported as null, as R's ``lm`` does).
    solver : {"auto", "cholesky", "tsqr"}
        ``cholesky`` solves the normal equations from the sufficient statistics (one pass);
        ``tsqr`` reduces per-block QR factors (one more pass, error ∝ κ instead of κ²);
        ``auto`` uses Cholesky when the scaled Gram matrix's condition number is at most
        ``AUTO_CONDITION_LIMIT`` and TSQR otherwise. :func:`update` uses the solver the fit
        resolved to (see :class:`~.solver.Solver`).
    alias_tol : float, optional
        Rank decision: a column whose norm left after projection on the columns before it is at
        most ``alias_tol`` times its norm is aliased. Default: ``min(1e-7, max(n, p)·eps)`` for
        TSQR (LAPACK practice), 1e-5 for Cholesky; 1e-7 is R's ``lm``.
    refine : bool
        With TSQR, one refinement pass: residuals and ``Xᵀr`` in extended precision, then
        ``β += (RᵀR)⁻¹ Xᵀr`` (corrected semi-normal equations).
    residual_pass : bool
        Make a second pass over the cached blocks for the exact residual sums (SSR, MAE) and the
        residual sample. Without it the fit reads the data once: the SSR comes from the centred
        statistics (accurate unless R² is within ~1e-8 of 1) and the MAE is not computed —
        the equivalent of what MLlib's ``fit`` does before its summary is asked for.
    tree_depth : int
        Depth of the tree aggregation.
    """

    fit_intercept: bool = True
    reg_param: float = 0.0
    on_singular: str = "error"
    solver: str = "auto"
    alias_tol: float | None = None
    refine: bool = True
    residual_pass: bool = True
    tree_depth: int = 2

    def __post_init__(self) -> None:
        self.solver_spec()  # validates the solve-side parameters
        if self.tree_depth < 1:
            raise InputError(f"tree_depth must be >= 1, got {self.tree_depth!r}")

    def params(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def solver_spec(self) -> Solver:
        """The :class:`~.solver.Solver` these parameters describe (``kind`` as requested)."""
        return Solver(
            kind=self.solver,
            fit_intercept=self.fit_intercept,
            reg_param=self.reg_param,
            on_singular=self.on_singular,
            alias_tol=self.alias_tol,
        )

    def fit(self, data: BlockData) -> LinearRegressionModel:
        """Fit on ``data`` (which must have a label). Raises :class:`InputError` on bad input."""
        if data.label is None:
            raise InputError("linear regression needs a label column")
        try:
            return self._fit(data)
        finally:
            data.unpersist()

    def fit_cv(self, data: BlockData, reg_params: list[float], folds: int) -> LinearRegressionModel:
        """Pick λ among ``reg_params`` by ``folds``-fold cross-validation, in the same single pass
        that computes the statistics, then fit on all the data with the best λ."""
        from sparkml_jobs.regression import cv

        if data.label is None:
            raise InputError("linear regression needs a label column")
        if folds < 2 or not reg_params or min(reg_params) < 0:
            raise InputError("cross-validation needs --cv K >= 2 and reg-params >= 0")
        try:
            per_fold, counts, ranges = fold_stats(data, folds, self.tree_depth)
            data.check(counts)
            stats = reduce(st.SufficientStats.merge, per_fold)
            _check_statistics(stats, data, ranges)
            result = cv.cross_validate(
                per_fold, reg_params, solver=self.solver_spec(), names=data.features
            )
            for lam, err in zip(result.reg_params, result.cv_mse, strict=True):
                log.info("cv: reg_param %g: held-out mse %.6g", lam, err)
            best = LinearRegression(**{**self.params(), "reg_param": result.best_reg_param})
            model = best._fit(data, stats)
        finally:
            data.unpersist()
        summary = LinearRegressionSummary(
            **{**model.summary.to_dict(), "cross_validation": result.to_dict()}
        )
        return LinearRegressionModel(**{**model.__dict__, "summary": summary})

    def _fit(
        self, data: BlockData, stats: st.SufficientStats | None = None
    ) -> LinearRegressionModel:
        if stats is None:  # (fit_cv passes the merged statistics of its folds, checked)
            # one pass (and not TSQR): nothing reads the blocks again, so no cache; should
            # "auto" find an ill-conditioned design, its TSQR pass re-reads the source instead
            again = self.residual_pass or self.solver == "tsqr"
            stats, counts, ranges = aggregate_stats(data, self.tree_depth, cache=again)
            data.check(counts)
            _check_statistics(stats, data, ranges)
        log.info("statistics: %d rows, %d features", stats.n, data.n_features)
        solver, condition = self.solver_spec().resolve(stats)
        if self.solver == "auto":
            log.info("scaled Gram condition number %.3g: solver %s", condition, solver.kind)
        factor = (
            aggregate_r(data, self.fit_intercept, self.tree_depth) if solver.needs_factor else None
        )
        sol, _ = solver.solve(stats, factor, data.features)
        if condition is None:
            condition = solver.condition(stats, sol)
        # a wide solve frees Gram-sized buffers (factor, inverse) on glibc's heap, which keeps them
        # through the residual pass (8,193 columns: 0.28 GB) unless told to hand them back
        release_memory()
        if factor is not None and self.refine and self.reg_param == 0:
            gradient = residual_pass(
                sol, data, stats.n, precise=True, gradient=True, fit_intercept=self.fit_intercept
            ).gradient
            sol = tsqr.refine(sol, factor, gradient, self.fit_intercept)
            log.info("refinement pass done")
        log.info("solved (%s)", solver.kind)
        if self.residual_pass:
            residuals = residual_pass(
                sol, data, stats.n, precise=factor is not None, depth=self.tree_depth
            )
            log.info("residual pass done")
        else:  # one pass in all: SSR from the centred statistics, no MAE, no residual sample
            residuals = ResidualSums(
                st.residual_sum_of_squares(stats, sol, self.fit_intercept), float("nan")
            )
        summary = make_summary(
            stats, sol, residuals, self.fit_intercept, data.features, solver.kind, condition
        )
        return LinearRegressionModel(
            features=data.features,
            label=data.label,
            intercept=sol.intercept,
            coefficients=sol.coefficients,
            params=self.params(),
            stats=stats,
            summary=summary,
            residual_sample=residuals.sample,
            weight_col=data.weight,
            factor=factor,
        )


def _check_statistics(
    stats: st.SufficientStats, data: BlockData, ranges: guards.ColumnRange, whole: bool = True
) -> None:
    guards.check_statistics(
        stats,
        [*data.features, data.label],
        weight=data.weight,
        ranges=ranges,
        source=data.source,
        whole=whole,
    )


def update(
    model: LinearRegressionModel,
    added: BlockData | None = None,
    removed: BlockData | None = None,
) -> LinearRegressionModel:
    """Refit from the saved state plus ``added`` minus ``removed`` (only they are read).

    The solver is the one the fit resolved to (``summary.solver``), never another: Cholesky
    merges and subtracts statistics; TSQR merges the saved R factor with the new rows' and cannot
    remove rows. The residual sum of squares comes from that state (there is no pass over the old
    rows), so the MAE of an updated model is not available (null).
    """
    if model.stats is None:
        raise InputError("the model has no saved statistics to update (refit it with this version)")
    params = {k: v for k, v in model.params.items() if k in LinearRegression.__dataclass_fields__}
    estimator = LinearRegression(**params)
    solver = estimator.solver_spec()
    recorded = model.summary.solver if model.summary is not None else solver.kind
    solver = solver.with_kind(recorded) if recorded in SOLVERS else solver
    if solver.kind == "auto":  # a model without a summary: resolve on what it was fitted on
        solver, _ = solver.resolve(model.stats)
    solver.check_update(model.factor, removing=removed is not None)
    stats, factor = model.stats.full(), model.factor  # (a wide model's triangle is read-only)
    for data, sign in ((added, 1), (removed, -1)):
        if data is None:
            continue
        if data.features != model.features:
            raise InputError(f"{data.source}: features differ from the model's")
        try:
            part, counts, part_ranges = aggregate_stats(data)
            data.check(counts)
            _check_statistics(part, data, part_ranges, whole=False)
            if sign > 0 and solver.needs_factor:
                factor = factor.merge(aggregate_r(data, estimator.fit_intercept))
        finally:
            data.unpersist()
        part = part.full()
        stats = stats.merge(part) if sign > 0 else stats.subtract(part)
        log.info("%s %d rows from %s", "added" if sign > 0 else "removed", part.n, data.source)
    if isinstance(model.stats, pk.PackedStats):  # a wide model stays packed, as its fit kept it
        packed = pk.pack(stats.comoment)
        stats = pk.PackedStats(n=stats.n, w_sum=stats.w_sum, mean=stats.mean, packed=packed)
        stats = stats.frozen()
    guards.check_statistics(
        stats, [*model.features, model.label or "label"], weight=model.weight_col
    )
    sol, ssr = solver.solve(stats, factor, model.features)
    condition = solver.condition(stats, sol)
    summary = make_summary(
        stats,
        sol,
        ResidualSums(ssr, float("nan")),
        estimator.fit_intercept,
        model.features,
        solver.kind,
        condition,
    )
    return LinearRegressionModel(
        features=model.features,
        label=model.label,
        intercept=sol.intercept,
        coefficients=sol.coefficients,
        params=model.params,
        summary=summary,
        stats=stats,
        weight_col=model.weight_col,
        factor=factor,
        design=model.design,
    )


def make_summary(
    stats: st.SufficientStats,
    sol: st.Solution,
    residuals: ResidualSums,
    fit_intercept: bool,
    names: list[str],
    solver: str,
    condition: float,
) -> LinearRegressionSummary:
    """The training summary; ``condition`` is :func:`~.stats.gram_condition` for every solver.

    Raises :class:`InputError` rather than return a model with non-finite estimates.
    """
    inf = st.inference(stats, sol, residuals.ssr, fit_intercept=fit_intercept)
    guards.check_fitted(
        sol.intercept, sol.coefficients, sol.kept, inf.std_errors, inf.df_resid, names
    )
    # a design without an intercept column may still span the constant (a categorical coded
    # with a column per level, 'y ~ group - 1'): R² is then centred, as statsmodels does
    has_constant = fit_intercept or _spans_constant(stats, sol.kept)
    tss = st.total_sum_of_squares(stats, has_constant)
    r2 = 1.0 - residuals.ssr / tss if tss > 0 else float("nan")
    k_const = int(has_constant)
    r2_adj = (
        1.0 - (stats.n - k_const) / inf.df_resid * (1.0 - r2) if inf.df_resid > 0 else float("nan")
    )
    return LinearRegressionSummary(
        n=stats.n,
        weight_sum=stats.w_sum,
        r2=r2,
        r2_adj=r2_adj,
        rmse=float(np.sqrt(residuals.ssr / stats.w_sum)),
        mae=residuals.sar / stats.w_sum,
        residual_std=inf.sigma,
        df_resid=inf.df_resid,
        std_errors=inf.std_errors,
        t_values=inf.t_values,
        p_values=inf.p_values,
        condition_number=condition,
        solver=solver,
        aliased=[names[j] for j in sol.aliased],
    )


def _spans_constant(stats: st.SufficientStats, kept: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether the kept columns (no intercept) span the constant: the weighted residual of
    regressing 1 on them, ``1 − Σw·x̄ᵀG⁻¹x̄`` (G the uncentred Gram), is negligible."""
    if not kept.any() or stats.w_sum <= 0:
        return False
    corr, _, scale = st.scaled_gram(stats, False)
    idx = np.flatnonzero(kept)
    mean = stats.mean[:-1][idx] / scale[idx]
    try:
        solved = np.linalg.solve(corr[np.ix_(idx, idx)], mean)
    except np.linalg.LinAlgError:
        return False
    return 1.0 - stats.w_sum * float(mean @ solved) <= tol
