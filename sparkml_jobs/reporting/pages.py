"""The ``--report DIR`` pages: which figures and tables each model's report shows, and the sweep.

The figures are drawn by :mod:`~.figures`, the page by :mod:`~.html`; the directory is written
atomically through :mod:`sparkml_jobs.io.persist`.
"""

from __future__ import annotations

import numpy as np

from sparkml_jobs.io.persist import atomic_output, dumps
from sparkml_jobs.reporting import html
from sparkml_jobs.reporting.figures import (
    cluster_colors,
    coefficient_figure,
    coefficient_rows,
    convergence_figure,
    elbow_figure,
    histogram_figure,
    num,
    p_value,
    principal_axes,
    projection_figure,
    require_matplotlib,
    residual_figure,
    sizes_figure,
)
from sparkml_jobs.reporting.html import Section, Table, write_report

SWEEP_FILE = "sweep.json"
ELBOW_FILE = "elbow.png"

INSTALL_HINT = "pip install 'sparkml-jobs[report]'"
CI_LEVEL = 0.95


# --------------------------------------------------------------------------- linear regression


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


def linreg_report(model, path: str, *, source: str = "", overwrite: bool = False) -> str:
    """Write ``path/report.html`` with the coefficient and residual plots; returns the page."""
    require_matplotlib()
    lines = [f"{model.label} ~ {' + '.join(model.features)}"]
    if source:
        lines.append(f"data: {source}")
    return write_report(path, "Linear regression report", lines, linreg_sections(model), overwrite)


# --------------------------------------------------------------------------- k-means


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


def kmeans_report(model, path: str, *, source: str = "", overwrite: bool = False) -> str:
    """Write ``path/report.html`` with convergence, cluster sizes and the PCA projection."""
    require_matplotlib()
    lines = [f"k = {len(model.centers)} on {', '.join(model.features)}"]
    if source:
        lines.append(f"data: {source}")
    return write_report(path, "k-means report", lines, kmeans_sections(model), overwrite)


def write_sweep(
    result,
    path: str,
    *,
    overwrite: bool = False,
    source: str = "",
    plots: bool = True,
) -> str:
    """``sweep.json`` and, when ``plots``, ``elbow.png`` with a ``report.html``, atomically."""
    with atomic_output(path, overwrite) as tmp:
        tmp.mkdir(parents=True)
        (tmp / SWEEP_FILE).write_text(dumps(result.to_dict()))
        if plots:
            table = html.Table(
                caption="Every k",
                headers=["k", "cost", "silhouette", "iterations"],
                rows=[
                    [str(k), num(c), num(s, 4), str(i)]
                    for k, c, s, i in zip(
                        result.k, result.cost, result.silhouette, result.n_iter, strict=True
                    )
                ],
            )
            section = html.Section(
                title=f"Recommended k = {result.recommended_k}",
                image=ELBOW_FILE,
                figure=elbow_figure(result.k, result.cost, result.silhouette, result.recommended_k),
                tables=[table],
                caption="The cost falls as k grows (look for the elbow); the recommended "
                "k has the highest silhouette on a bounded sample, ties going to the "
                "smaller k.",
            )
            lines = [f"{len(result.k)} fits on {result.n:,} rows of {', '.join(result.features)}"]
            html.write_into(
                tmp, "k-means sweep", lines + ([f"data: {source}"] if source else []), [section]
            )
    return path
