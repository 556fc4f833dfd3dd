"""Plots of fitted models and the ``--report DIR`` pages (matplotlib, Agg backend, no pyplot).

matplotlib is optional (``pip install 'sparkml-jobs[report]'``): the jobs import this module only
when a report is asked for, and :func:`require_matplotlib` turns its absence into an
:class:`~sparkml_jobs.errors.InputError` (exit code 2) before any Spark work starts.

Everything plotted comes from the fitted model, so drawing costs no pass over the data:
the regression's bounded ``residual_sample`` and the k-means ``sample`` were drawn in the
same pass as the metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from sparkml_jobs.errors import InputError
from sparkml_jobs.html_page import Section, Table, write_report

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


# --------------------------------------------------------------------------- linear regression


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
    return np.sqrt(np.clip(np.diag(model.stats.comoment)[:p], 0, None) / model.stats.w_sum)


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


def linreg_sections(model) -> list[Section]:
    s = model.summary
    rows = coefficient_rows(model)
    coef_table = Table(
        caption="Coefficients",
        headers=["term", "coef", "std err", "95% CI low", "95% CI high", "t", "P>|t|"],
        rows=[
            [
                r["term"],
                num(r["estimate"]),
                num(r["se"], 4),
                num(r["low"]),
                num(r["high"]),
                num(r["t"], 4),
                p_value(r["p"]),
            ]
            for r in rows
        ],
    )
    fit_table = Table(
        caption="Fit",
        headers=["statistic", "value"],
        rows=[
            ["rows (n)", num(s.n)],
            ["R²", num(s.r2)],
            ["adjusted R²", num(s.r2_adj)],
            ["RMSE", num(s.rmse)],
            ["MAE", num(s.mae)],
            ["residual std σ̂", num(s.residual_std)],
            ["residual df", num(s.df_resid)],
            ["condition number", num(s.condition_number, 4)],
            ["ridge λ", num(model.params.get("reg_param", 0.0))],
            ["solver", s.solver],
            ["dropped (aliased)", ", ".join(s.aliased) or "none"],
        ],
    )
    sections = [
        Section(
            title="Coefficients",
            image="coefficients.png",
            stack=True,
            figure=coefficient_figure(model, rows),
            tables=[coef_table],
            caption="Points are estimates, bars 95% confidence intervals "
            "(t distribution on the residual degrees of freedom).",
        )
    ]
    sample = model.residual_sample
    if sample is None or len(sample) == 0:
        return [
            *sections,
            Section(
                title="Residuals", tables=[fit_table], caption="No residual sample on this model."
            ),
        ]
    residual = sample[:, 1]
    quantiles = np.quantile(residual, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1])
    spread = Table(
        caption=f"Sampled residuals ({len(sample):,} rows)",
        headers=["quantile", "residual"],
        rows=[
            [name, num(v)]
            for name, v in zip(
                ["min", "5%", "25%", "median", "75%", "95%", "max"], quantiles, strict=True
            )
        ],
    )
    return [
        *sections,
        Section(
            title="Residuals vs fitted",
            image="residuals.png",
            tables=[fit_table],
            figure=residual_figure(sample),
            caption="A systematic sample of the training rows, drawn in the residual pass; "
            "the red line is the median residual per bin of fitted values.",
        ),
        Section(
            title="Residual distribution",
            image="residual_histogram.png",
            tables=[spread],
            figure=histogram_figure(residual, s.residual_std),
        ),
    ]


def linreg_report(model, path: str | Path, *, source: str = "", overwrite: bool = False) -> Path:
    """Write ``path/report.html`` with the coefficient and residual plots; returns the page."""
    require_matplotlib()
    lines = [f"{model.label} ~ {' + '.join(model.features)}"]
    if source:
        lines.append(f"data: {source}")
    return write_report(path, "Linear regression report", lines, linreg_sections(model), overwrite)


# --------------------------------------------------------------------------- k-means


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


def kmeans_sections(model) -> list[Section]:
    s = model.summary
    k = len(model.centers)
    colors = cluster_colors(k)
    total = max(sum(s.cluster_sizes), 1)
    overview = Table(
        caption="Fit",
        headers=["statistic", "value"],
        rows=[
            ["k", num(k)],
            ["rows (n)", num(s.n)],
            ["cost", num(s.cost)],
            ["cost per row", num(s.cost / s.n if s.n else None)],
            ["iterations", num(s.n_iter)],
            ["converged", "yes" if s.converged else "no"],
            ["init", s.init or "—"],
            ["distance", model.distance],
            ["tol", num(model.params.get("tol"))],
            ["seed", num(model.params.get("seed"))],
            [
                "re-seeded empty clusters",
                ", ".join(f"{r['cluster']} (iteration {r['iteration']})" for r in s.reseeded)
                or "none",
            ],
        ],
    )
    history = Table(
        caption=f"Every iteration ({len(s.history)})",
        collapsed=True,
        headers=["iteration", "cost", "max shift"],
        rows=[[str(h["iteration"]), num(h["cost"]), num(h["shift"], 4)] for h in s.history],
    )
    sizes = Table(
        caption="Cluster sizes",
        headers=["cluster", "rows", "share"],
        rows=[[str(j), num(size), f"{size / total:.1%}"] for j, size in enumerate(s.cluster_sizes)],
    )
    centres = Table(
        caption="Centres",
        headers=["cluster", *model.features],
        rows=[[str(j), *(num(v, 5) for v in centre)] for j, centre in enumerate(model.centers)],
    )
    sections = [
        Section(
            title="Convergence",
            image="convergence.png",
            tables=[overview, history],
            figure=convergence_figure(
                s.history,
                float(model.params.get("tol", 0.0)),
                "Σ w·(1 − cos)" if model.distance == "cosine" else "Σ w·d² to nearest centre",
            ),
            caption="Cost and largest centre movement after each Lloyd iteration.",
        ),
        Section(
            title="Cluster sizes",
            image="cluster_sizes.png",
            tables=[sizes],
            figure=sizes_figure(s.cluster_sizes, colors),
        ),
        Section(title="Centres", tables=[centres]),
    ]
    if model.sample is not None and len(model.sample[0]) >= 2:
        sections.append(projection_section(model, colors))
    return sections


def projection_section(model, colors: list) -> Section:
    points, labels = model.sample
    _, components, ratio = principal_axes(points)
    loadings = Table(
        caption="Principal axes (loadings)",
        headers=["feature", *(f"PC{i + 1} ({r:.1%})" for i, r in enumerate(ratio))],
        rows=[
            [name, *(num(c, 3) for c in components[:, j])] for j, name in enumerate(model.features)
        ],
    )
    return Section(
        title="Clusters in the first two principal components",
        image="projection.png",
        figure=projection_figure(points, labels, model.centers, colors),
        tables=[loadings],
        caption="A systematic sample of the rows drawn in the final assignment pass, projected "
        "on the sample's principal axes; crosses are the centres"
        + (" (unit-normalised rows, cosine distance)." if model.distance == "cosine" else "."),
    )


def kmeans_report(model, path: str | Path, *, source: str = "", overwrite: bool = False) -> Path:
    """Write ``path/report.html`` with convergence, cluster sizes and the PCA projection."""
    require_matplotlib()
    lines = [f"k = {len(model.centers)} on {', '.join(model.features)}"]
    if source:
        lines.append(f"data: {source}")
    return write_report(path, "k-means report", lines, kmeans_sections(model), overwrite)
