"""``results.json`` → ``RESULTS.md``: every table through :func:`benchmarks.tables.markdown_table`.

Rendering reads only the stored results, so a stored ``results.json`` renders again without
running anything: ``python -m benchmarks.render [results.json] [-o RESULTS.md]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import K, measured_loads
from benchmarks.render_text import footer, header, load_span, wide_paragraph
from benchmarks.tables import get as _get
from benchmarks.tables import gib, markdown_table, mb, number, ratio, seconds, sig6


def _row(label: str, values: dict, systems: Sequence[str], fmt=seconds) -> list[str]:
    """``label``, each system's value, then ours / every other system."""
    others = [s for s in systems if s != "ours"]
    return [
        label,
        *[fmt(values.get(s)) for s in systems],
        *[ratio(values.get("ours"), values.get(s)) for s in others],
    ]


def _medians(section: dict, systems: Sequence[str], key: str = "median_s") -> dict:
    return {s: _get(section, s, key) for s in systems}


def _memory_row(section: dict, systems: Sequence[str]) -> list[str]:
    pss = _medians(section, systems, "peak_pss_sum_bytes")
    rss = _medians(section, systems, "peak_rss_sum_bytes")
    row = _row("peak memory, process tree (PSS / RSS)", pss, systems, gib)
    row[1 : 1 + len(systems)] = [f"{gib(pss[s])} / {gib(rss[s])}" for s in systems]
    return row


def _timing_rows(cached: dict, e2e: dict, systems: Sequence[str]) -> list[list[str]]:
    return [
        _row(label, _medians(sec, systems), systems)
        for label, sec in (("fit on cached data", cached), ("end-to-end process", e2e))
        if sec
    ]


def linreg_section(results: dict, rows: int) -> list[str]:
    cached, e2e = _get(results, "linreg_cached") or {}, _get(results, "e2e", "linreg") or {}
    if not (cached or e2e):
        return []
    systems = ("ours", "mllib", "numpy", "sklearn")
    table = _timing_rows(cached, e2e, systems) + ([_memory_row(e2e, systems)] if e2e else [])
    headers = ["", "ours", 'MLlib `solver="normal"`', "numpy normal eq.", "scikit-learn"]
    headers += ["ours/MLlib", "ours/numpy", "ours/sklearn"]
    lines = [f"## Linear regression ({rows:,} × 20 + label)", "", markdown_table(headers, table)]
    diff = _get(cached, "max_abs_coef_diff_vs_numpy")
    if diff:
        lines += [
            "",
            "Max |coefficient − numpy's|: "
            + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
            + f". Parquet partitions: {cached.get('partitions')}; our solver: "
            f'{cached.get("ours_solver")} (`solver="auto"`).',
        ]
    return [*lines, ""]


def _kmeans_cached_rows(cached: dict, systems: Sequence[str]) -> list[list[str]]:
    per_iter = _medians(cached, systems, "per_iter_s")
    steady = _get(cached, "ours", "steady_per_iter_s")
    steady_row = _row(
        "per iteration, ours steady state (between iteration logs)",
        {**per_iter, "ours": steady},
        systems,
    )
    steady_row[2 : 1 + len(systems)] = [""] * (len(systems) - 1)
    return [
        _row("per iteration, cached (fit / iterations)", per_iter, systems),
        steady_row,
        ["iterations run", *[number(v) for v in _medians(cached, systems, "iterations").values()]],
        [
            "final cost (recomputed with numpy)",
            *[sig6(v) for v in _medians(cached, systems, "cost").values()],
        ],
    ]


def kmeans_given_section(results: dict, rows: int, iterations: int) -> list[str]:
    cached, e2e = _get(results, "kmeans_cached") or {}, _get(results, "e2e", "kmeans_given") or {}
    if not (cached or e2e):
        return []
    systems = ("ours", "mllib", "mllib_pyrdd", "sklearn")
    table = _timing_rows(cached, e2e, systems)
    if cached:
        table += _kmeans_cached_rows(cached, systems)
    if e2e:
        table.append(_memory_row(e2e, systems))
    headers = ["", "ours", "MLlib (JVM RDD)", "pyspark.mllib", "scikit-learn", "ours/MLlib"]
    headers += ["ours/pyspark.mllib", "ours/sklearn"]
    return [
        f"## k-means, {iterations} Lloyd iterations from the same initial centres "
        f"({rows:,} × 10, k={K}, tol 0)",
        "",
        "MLlib = `org.apache.spark.mllib.clustering.KMeans` with `setInitialModel` run on "
        "the JVM `RDD[Vector]` of the assembled frame (the Scala path; `pyspark.ml` "
        "KMeans takes no initial centres in Spark 4.x); pyspark.mllib = "
        "`pyspark.mllib.clustering.KMeans.train(rdd, initialModel=…)` on a cached RDD "
        "of numpy rows (it re-pickles every row into the JVM each fit).",
        "",
        markdown_table(headers, table),
        "",
    ]


def kmeans_default_section(results: dict) -> list[str]:
    cached = _get(results, "kmeans_default_cached") or {}
    e2e = _get(results, "e2e", "kmeans_default") or {}
    if not (cached or e2e):
        return []
    systems = ("ours", "mllib", "sklearn")
    table = _timing_rows(cached, e2e, systems)
    if cached:
        iterations = _medians(cached, systems, "iterations")
        table.append(["iterations", *[number(v) for v in iterations.values()]])
        table.append(_row("final cost", _medians(cached, systems, "cost"), systems, sig6))
    headers = ["", "ours", "MLlib (DataFrame)", "scikit-learn", "ours/MLlib", "ours/sklearn"]
    return [
        f"## k-means, each system's default initialisation and stopping rule (k={K})",
        "",
        "ours: k-means‖ (2 steps), tol 1e-4, ≤20 iterations; MLlib `pyspark.ml` KMeans: "
        "k-means‖ (2 steps), tol 1e-4, ≤20; scikit-learn: k-means++, n_init=1, tol 1e-4, "
        "≤300. Cost = Σ min‖x−c‖² recomputed with numpy for every system.",
        "",
        markdown_table(headers, table),
        "",
    ]


LOAD_STAGES = (
    ("ours_jvm_arrow", "jvm_decode_arrow_s", "JVM: Parquet decode + cast + Arrow batches"),
    ("ours_to_python", "arrow_transfer_s", "Arrow batches → Python workers (transfer)"),
    ("ours_blocks", "numpy_assembly_s", "numpy block assembly"),
    ("ours_cached", "caching_s", "caching the blocks (persist + count)"),
)


def load_path_section(results: dict) -> list[str]:
    """Issue 14's load path: Parquet → cached blocks, split by stage, against MLlib's."""
    lp = results.get("load_path")
    if not lp:
        return []
    breakdown = lp.get("breakdown") or {}
    rows = [
        [label, seconds(_get(lp, name, "median_s")), seconds(breakdown.get(key))]
        for name, key, label in LOAD_STAGES
    ]
    direct = _get(lp, "ours_direct", "median_s")
    ours, mllib = _get(lp, "ours_cached", "median_s"), _get(lp, "mllib_cached", "median_s")
    rows.append(["**MLlib**: VectorAssembler + cache() + count()", seconds(mllib), ""])
    rows.append(["ours through Spark's reader, cached / MLlib cached", ratio(ours, mllib), ""])
    if direct is not None:
        rows.insert(
            0,
            [
                "**ours, default**: local Parquet read by the tasks (pyarrow), blocks counted "
                "(never cached: every pass reads the file)",
                seconds(direct),
                "",
            ],
        )
        rows.append(["**ours default / MLlib cached**", ratio(direct, mllib), ""])
    return [
        f"## Load path: Parquet → blocks ({lp['rows']:,} × {lp['columns']} float64)",
        "",
        "Each row is a whole job from the file in the same SparkSession (nothing cached between "
        "them). The default reads local Parquet in the tasks; the four stages below it are "
        "Spark's reader path (HDFS, object stores, text columns; "
        "`spark.sparkml.parquet.direct=false`), each including the ones above it, so their "
        "differences split that load. Median of "
        f"{_get(lp, 'ours_cached', 'n')} run(s); 1-min load before / after each: "
        f"{load_span(measured_loads(lp))}.",
        "",
        markdown_table(["stage (cumulative)", "time", "this stage"], rows),
        "",
    ]


FORMULA_SYSTEMS = ("ours_formula", "ours_numeric", "mllib_rformula")


def _first_r2(section: dict, system: str) -> float | None:
    runs = _get(section, system, "runs") or []
    return next((r["fit"].get("r2") for r in runs if r.get("fit") and not r.get("error")), None)


def formula_section(results: dict) -> list[str]:
    """Issue 13's row: formula on text categories vs pre-encoded numeric vs MLlib RFormula."""
    f = results.get("formula")
    if not f:
        return []
    t = _medians(f, FORMULA_SYSTEMS)
    ours, numeric, mllib = (t[s] for s in FORMULA_SYSTEMS)
    pss = _medians(f, FORMULA_SYSTEMS, "peak_pss_sum_bytes")
    rss = _medians(f, FORMULA_SYSTEMS, "peak_rss_sum_bytes")
    table = [
        [
            "end-to-end process",
            *[seconds(v) for v in t.values()],
            ratio(ours, numeric),
            ratio(ours, mllib),
        ],
        [
            "peak memory, process tree (PSS / RSS)",
            *[f"{gib(pss[s])} / {gib(rss[s])}" for s in FORMULA_SYSTEMS],
            ratio(pss["ours_formula"], pss["ours_numeric"]),
            ratio(pss["ours_formula"], pss["mllib_rformula"]),
        ],
        ["R² (first run)", *[sig12(_first_r2(f, s)) for s in FORMULA_SYSTEMS]],
    ]
    headers = ["", "ours `--formula`", "ours, pre-encoded numeric", "MLlib RFormula + LR"]
    headers += ["formula/numeric", "formula/MLlib"]
    agree = f.get("agreement") or {}
    levels = ", ".join(f"`{c}` {n}" for c, n in (f.get("levels") or {}).items())
    return [
        f"## Formula with text categories ({f['rows']:,} rows: {f['numeric']} numeric + "
        f"{f['dummies']} dummies)",
        "",
        f"`{f['formula']}`; text columns with skewed level frequencies ({levels} levels), "
        "treatment coded. Pre-encoded: the same rows with the dummies as 0/1 float64 columns "
        "(first sorted level as reference, as our formula codes them); MLlib: `RFormula` + "
        '`LinearRegression(solver="normal")` as one pipeline on the text Parquet. Each a fresh '
        f"process, median of {f['ours_formula'].get('n')} run(s); 1-min load before / after "
        f"each: {load_span(measured_loads(f))}.",
        "",
        markdown_table(headers, table),
        "",
        "Agreement (max |difference|): R² formula vs numeric "
        f"{_sci(agree.get('max_abs_r2_diff_formula_vs_numeric'))}, formula vs MLlib "
        f"{_sci(agree.get('max_abs_r2_diff_formula_vs_mllib'))}; intercept and coefficients "
        f"formula vs numeric {_sci(agree.get('max_abs_coef_diff_formula_vs_numeric'))} "
        f"(tolerance {agree.get('tolerance', 1e-9):g}: "
        f"{'agree' if agree.get('agree') else '**do not agree**'}).",
        "",
    ]


def sig12(v: float | None) -> str:
    """Twelve significant digits (R² compared across systems)."""
    return "—" if v is None else f"{v:.12g}"


def _sci(v: float | None) -> str:
    return "—" if v is None else f"{v:.1e}"


SERIALIZED, COLUMNAR = "MEMORY_ONLY, serialized", "MEMORY_AND_DISK, columnar"
FOOTPRINT_ROWS = {
    "ours_linreg_blocks": ("ours, linreg blocks (pickled numpy)", SERIALIZED),
    "ours_kmeans_blocks": ("ours, k-means blocks (pickled numpy)", SERIALIZED),
    "ours_kmeans_points": (
        "ours, k-means points (own cache only for cosine / uncached input; else 0)",
        SERIALIZED,
    ),
    "mllib_linreg_dataframe": ("MLlib, assembled DataFrame `.cache()` (linreg)", COLUMNAR),
    "mllib_kmeans_dataframe": ("MLlib, assembled DataFrame `.cache()` (k-means)", COLUMNAR),
    "mllib_kmeans_jvm_vectors": ("MLlib, JVM RDD[Vector] (k-means)", "MEMORY_ONLY, deserialized"),
    "pyspark_mllib_python_rows": ("pyspark.mllib, Python RDD of numpy rows", SERIALIZED),
}


def footprint_section(results: dict) -> list[str]:
    fp = _get(results, "footprint") or {}
    if not fp:
        return []
    table = []
    for key, (label, level) in FOOTPRINT_ROWS.items():
        if key in fp:
            e = fp[key]
            cached = e["mem_bytes"] + e.get("disk_bytes", 0)
            table.append(
                [label, level, mb(cached), mb(e["raw_bytes"]), ratio(cached, e["raw_bytes"])]
            )
    headers = ["cached data set", "storage", "cached", "raw rows×cols×8", "cached/raw"]
    return [
        "## Cached footprint (bytes Spark's block manager reports vs raw float64)",
        "",
        markdown_table(headers, table),
        "",
    ]


def scaling_section(results: dict, rows: int) -> list[str]:
    lines = []
    by_rows = _get(results, "scaling", "rows") or []
    if by_rows:
        table, prev = [], {}
        for e in by_rows:
            lin, km, per = e["linreg_median_s"], e["kmeans_median_s"], e["kmeans_per_iter_s"]
            table.append(
                [
                    f"{e['rows']:,}",
                    seconds(lin),
                    ratio(lin, prev.get("linreg_median_s")),
                    seconds(km),
                    number(e.get("kmeans_iterations")),
                    ratio(km, prev.get("kmeans_median_s")),
                    seconds(per),
                    ratio(per, prev.get("kmeans_per_iter_s")),
                ]
            )
            prev = e
        headers = ["rows", "linreg fit", "×prev", "k-means fit", "iterations", "×prev"]
        headers += ["k-means per iteration", "×prev"]
        lines += ["## Scaling of our jobs (fit on cached data)", ""]
        lines += [markdown_table(headers, table), ""]
    by_k = _get(results, "scaling", "k") or []
    if by_k:
        table = [
            [
                str(e["k"]),
                seconds(e["kmeans_median_s"]),
                number(e.get("kmeans_iterations")),
                seconds(e["kmeans_per_iter_s"]),
            ]
            for e in by_k
        ]
        headers = [f"k ({rows:,} rows)", "k-means fit", "iterations", "per iteration"]
        lines += [markdown_table(headers, table), ""]
    return lines


MODES = (
    (
        "linreg fit on cached data, `--one-pass` (no residual pass)",
        ("linreg_cached",),
        "ours_onepass",
    ),
    ("linreg end-to-end process, `--one-pass`", ("e2e", "linreg"), "ours_onepass"),
    ("k-means {n} iterations on cached data, `--mode barrier`", ("kmeans_cached",), "ours_barrier"),
    (
        "k-means {n} iterations end-to-end process, `--mode barrier`",
        ("e2e", "kmeans_given"),
        "ours_barrier",
    ),
)


def modes_section(results: dict, iterations: int) -> list[str]:
    table = []
    for label, keys, mode in MODES:
        t = {s: _get(results, *keys, s, "median_s") for s in (mode, "ours", "mllib", "sklearn")}
        if t[mode] is None:
            continue
        table.append(
            [
                label.format(n=iterations),
                *[seconds(v) for v in t.values()],
                ratio(t[mode], t["mllib"]),
                ratio(t[mode], t["sklearn"]),
            ]
        )
    if not table:
        return []
    headers = ["", "this mode", "ours, default mode", "MLlib", "scikit-learn", "mode/MLlib"]
    headers += ["mode/sklearn"]
    return ["## Our optional modes (same run)", "", markdown_table(headers, table), ""]


def targets_section(results: dict) -> list[str]:
    targets = results.get("targets") or []
    if not targets:
        return []
    table = []
    for t in targets:
        met = "n/a" if t["met"] is None else ("**met**" if t["met"] else "**missed**")
        value = "—" if t["measured"] is None else f"{t['measured']:.2f}x"
        table.append([t["target"], value, t["how"], met, t["detail"]])
    headers = ["target", "measured", "rule", "met?", "detail"]
    return ["## Targets", "", markdown_table(headers, table), ""]


def kmeans_per_iteration_section(results: dict) -> list[str]:
    """Issue 14's per-iteration rows (two iteration counts), if measured."""
    from benchmarks.measure_kmeans_scale import render_rows

    section = results.get("kmeans_per_iteration")
    if not section:
        return []
    title = "## k-means per iteration from the same centres (two iteration counts, tol=0)"
    return [title, "", section["method"], "", render_rows(section["rows"]), ""]


def render(results: dict) -> str:
    """The whole ``RESULTS.md`` text of ``results``."""
    cfg = results["config"]
    rows, iterations = cfg["rows"], cfg.get("iterations", 20)
    lines = [
        *header(results),
        *linreg_section(results, rows),
        *load_path_section(results),
        *formula_section(results),
        *kmeans_given_section(results, rows, iterations),
        *kmeans_default_section(results),
        *kmeans_per_iteration_section(results),
        *footprint_section(results),
        *scaling_section(results, rows),
        *wide_paragraph(results),
        *modes_section(results, iterations),
        *targets_section(results),
        *footer(results),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.render", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=str(Path(__file__).parent / "results.json"))
    parser.add_argument("-o", "--output", help="write here instead of printing")
    args = parser.parse_args(argv)
    text = render(json.loads(Path(args.results).read_text()))
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
