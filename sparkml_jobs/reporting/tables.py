"""Text tables and metric dictionaries of fitted models (what the CLI prints and writes)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _fmt(value: float | None, width: int = 12) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return f"{'—':>{width}}"
    return f"{value:>{width}.6g}"


def linreg_table(model) -> str:
    """A statsmodels-like coefficient table plus the fit metrics."""
    s = model.summary
    names = (["intercept"] if model.params.get("fit_intercept", True) else []) + model.features
    estimates = ([model.intercept] if model.params.get("fit_intercept", True) else []) + [
        None if np.isnan(c) else float(c) for c in model.coefficients
    ]
    width = max(12, max(len(n) for n in names) + 2)
    lines = [
        f"linear regression: {model.label} ~ {' + '.join(model.features)}",
        f"{'':<{width}}{'coef':>14}{'std err':>14}{'t':>14}{'P>|t|':>14}",
    ]
    for row in zip(names, estimates, s.std_errors, s.t_values, s.p_values, strict=True):
        lines.append(f"{row[0]:<{width}}" + "".join(_fmt(v, 14) for v in row[1:]))
    lines += [
        f"n = {s.n}   R² = {s.r2:.6g}   adj. R² = {s.r2_adj:.6g}   RMSE = {s.rmse:.6g}   "
        f"MAE = {s.mae:.6g}",
        f"residual std = {s.residual_std:.6g} (df {s.df_resid})   "
        f"condition number = {s.condition_number:.4g}   solver = {s.solver}",
    ]
    if s.aliased:
        lines.append(f"dropped (aliased) columns: {', '.join(s.aliased)}")
    if s.cross_validation:
        cv = s.cross_validation
        lines.append(f"{cv['folds']}-fold cross-validation (held-out MSE):")
        for lam, err in zip(cv["reg_params"], cv["cv_mse"], strict=True):
            mark = "  <- chosen" if lam == cv["best_reg_param"] else ""
            lines.append(f"  reg_param {lam:<10g} {err:.6g}{mark}")
    return "\n".join(lines)


def linreg_metrics(model) -> dict[str, Any]:
    s = model.summary
    return {
        "kind": "linear_regression",
        "features": model.features,
        "intercept": model.intercept,
        "coefficients": model.coefficients,
        **s.to_dict(),
    }


def kmeans_table(model) -> str:
    s = model.summary
    header = "".join(f"{name[:11]:>12}" for name in model.features)
    lines = [
        f"k-means: k={len(model.centers)}  cost={s.cost:.6g}  iterations={s.n_iter}  "
        f"converged={s.converged}  init={s.init}",
        f"{'cluster':>8}{'size':>10}{header}",
    ]
    for j, (center, size) in enumerate(zip(model.centers, s.cluster_sizes, strict=True)):
        lines.append(f"{j:>8}{size:>10}" + "".join(f"{v:>12.5g}" for v in center))
    if s.reseeded:
        lines.append(f"empty clusters re-seeded: {s.reseeded}")
    return "\n".join(lines)


def kmeans_metrics(model) -> dict[str, Any]:
    return {
        "kind": "kmeans",
        "features": model.features,
        "centers": model.centers,
        **model.summary.to_dict(),
    }


def sweep_table(result) -> str:
    lines = [
        f"k-means sweep over k = {result.k[0]}..{result.k[-1]} on {result.n} rows "
        f"(silhouette on {result.silhouette_rows} sampled rows)",
        f"{'k':>5}{'cost':>16}{'silhouette':>12}{'iterations':>12}",
    ]
    for k, cost, score, iters, done in zip(
        result.k, result.cost, result.silhouette, result.n_iter, result.converged, strict=True
    ):
        mark = "  ← recommended" if k == result.recommended_k else ""
        lines.append(f"{k:>5}{cost:>16.6g}{score:>12.4f}{iters:>11}{'' if done else '*'}{mark}")
    if not all(result.converged):
        lines.append("* reached max_iter before converging")
    lines.append(f"recommended k = {result.recommended_k} (highest silhouette; ties → smaller k)")
    return "\n".join(lines)
