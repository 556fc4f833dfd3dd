"""The report figures (matplotlib, Agg backend, no pyplot) and the cell formats they share.

matplotlib is optional (``pip install 'sparkml-jobs[report]'``): the jobs import this module only
when a report is asked for, and :func:`require_matplotlib` turns its absence into an
:class:`~sparkml_jobs.errors.InputError` (exit code 2) before any Spark work starts.

Everything plotted comes from the fitted model, so drawing costs no pass over the data:
the regression's bounded ``residual_sample`` and the k-means ``sample`` were drawn in the
same pass as the metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sps

from sparkml_jobs.errors import InputError

INSTALL_HINT = "pip install 'sparkml-jobs[report]'"
CI_LEVEL = 0.95


def require_matplotlib() -> None:
    """Raise :class:`InputError` (exit 2) naming the extra to install when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends import backend_agg  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"--report needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from exc


def matplotlib_available() -> bool:
    try:
        require_matplotlib()
    except InputError:
        return False
    return True


def new_figure(width: float, height: float):
    """A figure drawn by the Agg canvas (no pyplot: no global state, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def num(value: Any, digits: int = 6) -> str:
    """A table cell: ``—`` for missing / non-finite, thousands separators for integers."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    return f"{value:.{digits}g}" if np.isfinite(value) else "—"


def p_value(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return "< 1e-16" if value < 1e-16 else f"{value:.3g}"


def cluster_colors(k: int) -> list:
    from matplotlib import colormaps

    if k <= 10:
        return [colormaps["tab10"](j) for j in range(k)]
    if k <= 20:
        return [colormaps["tab20"](j) for j in range(k)]
    return [colormaps["turbo"](j / (k - 1)) for j in range(k)]


def coefficient_rows(model) -> list[dict[str, Any]]:
    """Term, estimate, standard error, 95 % CI (t quantile on ``df_resid``), t and p per term.

    The interval is ``β ± t₀.₉₇₅(df_resid) · se``; a dropped (aliased) term has no estimate.
    """
    s = model.summary
    with_intercept = bool(model.params.get("fit_intercept", True))
    names = (["intercept"] if with_intercept else []) + list(model.features)
    estimates = ([model.intercept] if with_intercept else []) + [
        None if np.isnan(c) else float(c) for c in model.coefficients
    ]
    q = float(sps.t.ppf(0.5 + CI_LEVEL / 2, s.df_resid)) if s.df_resid > 0 else float("nan")
    rows = []
    for name, est, se, t, p in zip(
        names, estimates, s.std_errors, s.t_values, s.p_values, strict=True
    ):
        ok = est is not None and se is not None and np.isfinite(se) and np.isfinite(q)
        rows.append(
            {
                "term": name,
                "estimate": est,
                "se": se,
                "t": t,
                "p": p,
                "low": est - q * se if ok else None,
                "high": est + q * se if ok else None,
            }
        )
    return rows


def feature_std(model) -> np.ndarray | None:
    """Weighted standard deviation of every feature, from the saved sufficient statistics."""
    if model.stats is None or model.stats.w_sum <= 0:
        return None
    p = len(model.features)
    return np.sqrt(np.clip(model.stats.diagonal()[:p], 0, None) / model.stats.w_sum)


def coefficient_figure(model, rows: list[dict[str, Any]]):
    """Forest plot of the feature coefficients with their 95 % CIs (intercept in the table only).

    A second panel shows the same intervals times the feature's standard deviation, the effect
    of a one-SD change, which puts features of very different units on one comparable axis.
    """
    features = rows[1:] if model.params.get("fit_intercept", True) else rows
    terms = [r for r in features if r["estimate"] is not None][::-1]  # first feature on top
    sd = feature_std(model)
    panels = [("coefficient", np.ones(len(terms)))]
    if sd is not None:
        by_name = dict(zip(model.features, sd, strict=True))
        scale = np.array([by_name[r["term"]] for r in terms])
        panels.append(("coefficient × SD of feature", scale))
    figure = new_figure(4.2 * len(panels) + 0.8, max(2.4, 0.42 * len(terms) + 1.2))
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(len(terms))
    for ax, (title, scale) in zip(axes, panels, strict=True):
        est = np.array([r["estimate"] for r in terms]) * scale
        low = np.array([np.nan if r["low"] is None else r["low"] for r in terms]) * scale
        high = np.array([np.nan if r["high"] is None else r["high"] for r in terms]) * scale
        has_ci = np.isfinite(low)
        ax.axvline(0.0, color="0.55", lw=1, ls="--")
        ax.errorbar(
            est[has_ci],
            y[has_ci],
            xerr=[est[has_ci] - low[has_ci], high[has_ci] - est[has_ci]],
            fmt="o",
            color="#1f77b4",
            ecolor="#1f77b4",
            capsize=3,
            ms=5,
            lw=1.5,
        )
        ax.plot(est[~has_ci], y[~has_ci], "o", color="0.4", ms=5)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [r["term"] for r in terms])
    axes[0].set_ylim(-0.7, len(terms) - 0.3)
    figure.suptitle(f"Coefficients with {CI_LEVEL:.0%} confidence intervals", fontsize=11)
    return figure


def residual_figure(sample: np.ndarray):
    """Residuals against fitted values, with the median residual of 20 fitted-value bins."""
    fitted, residual = sample[:, 0], sample[:, 1]
    figure = new_figure(6.4, 4.2)
    ax = figure.subplots()
    ax.scatter(
        fitted,
        residual,
        s=7,
        alpha=0.35,
        color="#1f77b4",
        linewidths=0,
        label=f"{len(sample):,} sampled rows",
    )
    ax.axhline(0.0, color="0.3", lw=1)
    if len(sample) >= 40:
        edges = np.unique(np.quantile(fitted, np.linspace(0, 1, 21)))
        which = np.clip(np.searchsorted(edges, fitted, side="right") - 1, 0, len(edges) - 2)
        centres, medians = [], []
        for b in range(len(edges) - 1):
            if (which == b).any():
                centres.append(np.median(fitted[which == b]))
                medians.append(np.median(residual[which == b]))
        ax.plot(centres, medians, color="#d62728", lw=2, label="binned median")
    ax.set_xlabel("fitted value")
    ax.set_ylabel("residual (observed − fitted)")
    ax.set_title("Residuals vs fitted", fontsize=11)
    ax.legend(loc="best", fontsize=9, frameon=False)
    ax.grid(alpha=0.3)
    return figure


def histogram_figure(residual: np.ndarray, sigma: float):
    """Histogram of the sampled residuals with the normal density N(0, σ̂²) for comparison.

    The axis spans the central 99 % of the residuals so a few outliers do not squash the bars;
    the density stays relative to every sampled row.
    """
    figure = new_figure(6.4, 4.0)
    ax = figure.subplots()
    low, high = np.quantile(residual, [0.005, 0.995])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    bins = int(np.clip(np.sqrt(len(residual)), 10, 60))
    width = (high - low) / bins
    outside = int(((residual < low) | (residual > high)).sum())
    ax.hist(
        residual,
        bins=bins,
        range=(low, high),
        weights=np.full(len(residual), 1.0 / (len(residual) * width)),
        color="#1f77b4",
        alpha=0.75,
        edgecolor="white",
        linewidth=0.5,
        label="sampled residuals" + (f" ({outside} beyond the axis)" if outside else ""),
    )
    if np.isfinite(sigma) and sigma > 0:
        grid = np.linspace(low, high, 300)
        ax.plot(
            grid,
            sps.norm.pdf(grid, 0.0, sigma),
            color="#d62728",
            lw=2,
            label=f"normal, σ̂ = {sigma:.4g}",
        )
    ax.set_xlabel("residual")
    ax.set_ylabel("density")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the legend
    ax.set_title("Residual distribution", fontsize=11)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return figure


def principal_axes(x: np.ndarray, n: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, components of shape (n, d), explained-variance ratios) of the rows of ``x``."""
    mean = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
    variance = singular**2
    ratio = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    return mean, vt[:n], ratio[:n]


def convergence_figure(history: list[dict[str, float]], tol: float, cost_label: str):
    """Cost per iteration, and the largest centre shift on a log axis (a zero shift, the
    assignment no longer changing, is marked on the bottom edge)."""
    figure = new_figure(7.2, 3.4)
    left, right = figure.subplots(1, 2)
    iterations = np.array([h["iteration"] for h in history])
    left.plot(iterations, [h["cost"] for h in history], "o-", color="#1f77b4", ms=4)
    left.set_title(f"cost ({cost_label})", fontsize=10)
    shifts = np.array([h["shift"] for h in history])
    moved = shifts > 0
    right.plot(iterations[moved], shifts[moved], "o-", color="#ff7f0e", ms=4)
    if moved.any():
        right.set_yscale("log")
    if tol > 0:
        right.axhline(tol, color="0.4", ls="--", lw=1, label=f"tol = {tol:g}")
    if not moved.all():
        right.plot(
            iterations[~moved],
            np.zeros((~moved).sum()),
            "v",
            color="#ff7f0e",
            ms=7,
            transform=right.get_xaxis_transform(),
            clip_on=False,
            label="no movement",
        )
    if tol > 0 or not moved.all():
        right.legend(fontsize=9, frameon=False)
    right.set_title("largest centre shift", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return figure


def sizes_figure(sizes: list[int], colors: list):
    figure = new_figure(6.4, 3.4)
    ax = figure.subplots()
    clusters = np.arange(len(sizes))
    ax.bar(clusters, sizes, color=colors, edgecolor="0.3", linewidth=0.5)
    ax.bar_label(ax.containers[0], labels=[f"{s:,}" for s in sizes], fontsize=8, padding=2)
    ax.set_xticks(clusters)
    ax.set_xlabel("cluster")
    ax.set_ylabel("rows")
    ax.set_title("Cluster sizes", fontsize=11)
    ax.margins(y=0.12)
    return figure


def projection_figure(points: np.ndarray, labels: np.ndarray, centers: np.ndarray, colors: list):
    """The sampled points on their first two principal components, coloured by cluster."""
    mean, components, ratio = principal_axes(points)
    xy, cxy = (points - mean) @ components.T, (centers - mean) @ components.T
    if xy.shape[1] == 1:  # one feature: a strip
        xy = np.column_stack([xy, np.zeros(len(xy))])
        cxy = np.column_stack([cxy, np.zeros(len(cxy))])
        ratio = np.append(ratio, 0.0)
    figure = new_figure(6.4, 5.0)
    ax = figure.subplots()
    size = 16 if len(points) < 500 else 8
    for j, color in enumerate(colors):
        mine = labels == j
        ax.scatter(
            xy[mine, 0],
            xy[mine, 1],
            s=size,
            alpha=0.6,
            color=color,
            linewidths=0,
            label=f"cluster {j}",
        )
    ax.scatter(
        cxy[:, 0],
        cxy[:, 1],
        marker="X",
        s=160,
        c=colors,
        edgecolors="black",
        linewidths=1.2,
        zorder=3,
    )
    ax.scatter([], [], marker="X", s=100, c="white", edgecolors="black", label="centres")
    for j, (cx, cy) in enumerate(cxy):
        ax.annotate(
            str(j),
            (cx, cy),
            xytext=(7, 7),
            textcoords="offset points",
            fontsize=9,
            fontweight="bold",
        )
    ax.set_xlabel(f"PC1 ({ratio[0]:.1%} of variance)")
    ax.set_ylabel(
        f"PC2 ({ratio[1]:.1%} of variance)"
        if points.shape[1] > 1
        else "(one feature: no second axis)"
    )
    ax.set_title(
        f"Sampled points ({len(points):,}) on the first two principal components", fontsize=11
    )
    if len(colors) <= 12:
        ax.legend(fontsize=8, frameon=False, loc="best", markerscale=1.5)
    ax.grid(alpha=0.3)
    return figure


def elbow_figure(ks: list[int], costs: list[float], silhouettes: list[float], recommended: int):
    """Cost against k (the elbow) and the sampled silhouette against k, recommended k marked."""

    figure = new_figure(8.0, 3.6)
    left, right = figure.subplots(1, 2, sharex=True)
    left.plot(ks, costs, "o-", color="#1f77b4", ms=4)
    left.set_title("cost (within-cluster Σ w·d²)", fontsize=10)
    right.plot(ks, silhouettes, "o-", color="#2ca02c", ms=4)
    right.set_title("silhouette (sampled)", fontsize=10)
    for ax in (left, right):
        ax.axvline(
            recommended, color="#d62728", ls="--", lw=1.2, label=f"recommended k = {recommended}"
        )
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    right.legend(fontsize=9, frameon=False, loc="best")
    return figure
