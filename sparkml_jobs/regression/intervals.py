"""Pure numpy: confidence and prediction intervals of a fitted least-squares model.

For a new row ``x₀`` the predicted mean has variance ``σ² x̃₀ᵀ (X̃ᵀWX̃)⁻¹ x̃₀`` and a new
observation (weight 1) ``σ² (1 + x̃₀ᵀ (X̃ᵀWX̃)⁻¹ x̃₀)``, with ``X̃`` the design with its intercept
column, as statsmodels' ``get_prediction().summary_frame()`` (``mean_ci_*``, ``obs_ci_*``). Both
come from what a model saves: with an intercept ``x̃₀ᵀ(X̃ᵀWX̃)⁻¹x̃₀ = 1/Σw + (x₀ − x̄)ᵀ A⁻¹ (x₀ − x̄)``,
``A`` the centred Gram of the kept (non-aliased) columns, from the centred sufficient statistics —
or, for a TSQR model, from its R factor (``A = R₂₂ᵀR₂₂``, no squared condition number). The
quantile is Student's t with the residual degrees of freedom; σ is the summary's residual std.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression import stats as st

KINDS = ("confidence", "prediction")


@dataclass(frozen=True, kw_only=True)
class IntervalState:
    """What an interval needs, small enough to ship to the executors in a closure.

    ``transform`` is lower triangular with ``transformᵀ transform = A⁻¹``, so the quadratic
    form is a squared norm (never negative, no inverse formed).
    """

    kept: np.ndarray
    center: np.ndarray
    transform: np.ndarray
    intercept_var: float
    sigma: float
    quantile: float
    observation: bool

    def bounds(self, x: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) for rows ``x`` of shape (rows, n_features) and their predictions."""
        d = (x[:, self.kept] - self.center) @ self.transform.T
        unscaled = self.intercept_var + np.einsum("ij,ij->i", d, d) + float(self.observation)
        half = self.quantile * self.sigma * np.sqrt(unscaled)
        return prediction - half, prediction + half


def interval_state(model, kind: str, level: float) -> IntervalState:
    """The :class:`IntervalState` of a fitted least-squares ``model`` (its saved state only)."""
    if kind not in KINDS:
        raise InputError(f"--interval must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 0 < level < 1:
        raise InputError(f"--level must lie strictly between 0 and 1, got {level!r}")
    if model.params.get("reg_param", 0.0) > 0:
        raise InputError(
            "intervals are for least-squares models; this one was fitted with --reg-param "
            f"{model.params['reg_param']} (ridge estimates are biased)"
        )
    summary = model.summary
    if model.stats is None or summary is None or not summary.df_resid > 0:
        raise InputError(
            "the model has no saved statistics or no residual degrees of freedom for intervals"
        )
    fit_intercept = bool(model.params.get("fit_intercept", True))
    kept = ~np.isnan(model.coefficients)
    if model.factor is not None:
        transform = _transform_from_r(model.factor.r, kept, fit_intercept)
    else:
        transform = _transform_from_stats(model.stats, kept, fit_intercept)
    from scipy import stats  # the t quantile, on the driver only

    p = len(kept)
    center = model.stats.mean[:p][kept] if fit_intercept else np.zeros(int(kept.sum()))
    return IntervalState(
        kept=kept,
        center=center,
        transform=transform,
        intercept_var=1.0 / model.stats.w_sum if fit_intercept else 0.0,
        sigma=float(summary.residual_std),
        quantile=float(stats.t.ppf(0.5 + level / 2, summary.df_resid)),
        observation=kind == "prediction",
    )


def _transform_from_stats(s: st.SufficientStats, kept: np.ndarray, fit_intercept: bool):
    """``L⁻¹ D⁻¹`` with ``D⁻¹ A D⁻¹ = L Lᵀ`` (the column-scaled Gram, as the solver uses)."""
    corr, _, scale = st.scaled_gram(s, fit_intercept)
    idx = np.flatnonzero(kept)
    chol = linalg.cholesky(corr[np.ix_(idx, idx)], lower=True, check_finite=False)
    return linalg.solve_triangular(chol, np.diag(1.0 / scale[idx]), lower=True)


def _transform_from_r(r: np.ndarray, kept: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``R_K⁻ᵀ`` with ``R_K`` the R factor of the kept feature columns after the intercept's.

    The factor is of ``√w·[1?, X, y]``; dropping the intercept row/column leaves the factor of the
    weighted-centred ``X`` (and ``y``), and a small QR re-triangularises the kept columns.
    """
    width = r.shape[1]
    full = np.zeros((width, width))
    full[: r.shape[0]] = r
    offset = int(fit_intercept)
    block = full[offset : width - 1, offset : width - 1]
    sub = block[:, np.flatnonzero(kept)]
    r_kept = linalg.qr(sub, mode="r")[0][: sub.shape[1]]
    return linalg.solve_triangular(r_kept, np.eye(sub.shape[1]), trans="T", lower=False)
