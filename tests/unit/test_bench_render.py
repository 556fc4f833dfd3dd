"""The benchmark's rendering: the one Markdown table helper and the measured-load header."""

from __future__ import annotations

import pytest

from benchmarks.harness import measured_loads
from benchmarks.render_text import load_lines
from benchmarks.tables import markdown_table, ratio, seconds


def test_markdown_table_layout_and_padding():
    text = markdown_table(
        ["", "ours", "ours/x"], [["fit", "1.00 s", "0.50x"], ["iterations", "20"]]
    )
    assert text == (
        "| | ours | ours/x |\n"
        "|---|---|---|\n"
        "| fit | 1.00 s | 0.50x |\n"
        "| iterations | 20 | |"  # short rows padded with one-space empty cells
    )


def test_markdown_table_refuses_a_row_wider_than_the_headers():
    with pytest.raises(ValueError, match="3 cells, the table 2 columns"):
        markdown_table(["a", "b"], [["1", "2", "3"]])


def test_value_formats():
    assert seconds(None) == "—"
    assert seconds(0.095) == "0.10 s"  # 0.095 s and above in seconds
    assert seconds(0.052) == "52 ms"
    assert ratio(0.87, 1.71) == f"{0.87 / 1.71:.2f}x" == "0.51x"
    assert ratio(1.0, 0) == "—"


def test_measured_loads_collects_every_nested_value():
    results = {
        "e2e": {"linreg": {"ours": {"runs": [{"loadavg_before": 0.5, "loadavg_after": 0.75}]}}},
        "scaling": {"rows": [{"linreg": [{"loadavg_before": 2, "seconds": 1.0}]}]},
        "loadavg_before": "not a number",
    }
    assert sorted(measured_loads(results)) == [0.5, 0.75, 2.0]


def _results(start: float) -> dict:
    run = {
        "started": "2026-01-01T00:00:00+00:00",
        "sections": ["linreg"],
        "start": [start, 0.9, 0.8],
        "end": [1.25, 1.0, 0.8],
        "measurements": [0.5, 1.25, 0.75],
    }
    return {"load": {"limit": 1.5, "runs": [run]}}


def test_load_header_shows_the_measured_values():
    lines, mark = load_lines(_results(0.4))
    assert mark == []
    assert lines == [
        "Load average (`os.getloadavg()`, 1 / 5 / 15 min), run of 2026-01-01T00:00:00+00:00 "
        "(sections linreg): at start 0.40 / 0.90 / 0.80, at end 1.25 / 1.00 / 0.80; 1-min "
        "before / after each measurement: 0.50–1.25 (3 values)."
    ]


@pytest.mark.parametrize(("start", "marked"), [(1.5, False), (1.51, True), (6.0, True)])
def test_results_are_marked_measured_under_load_above_the_limit_at_start(start, marked):
    _, mark = load_lines(_results(start))
    assert bool(mark) is marked
    if marked:
        assert mark[0].startswith("> **Measured under load**")
        assert f"{start:.2f} at the start" in mark[0]


def test_stored_range_without_per_run_loads_is_marked_by_its_minimum():
    lines, mark = load_lines({"loadavg_range": [2.68, 15.68], "x": {"loadavg_before": 3.0}})
    assert "2.68–15.68" in lines[0] and "3.00–3.00 (1 values)" in lines[0]
    assert "at least 2.68 at the start" in mark[0]


# --------------------------------------------------------------------------- formula (issue 13)


def _formula_results(formula_s: float, numeric_s: float, mllib_s: float) -> dict:
    def system(median: float, r2: float, pss: int) -> dict:
        run = {"seconds": median, "loadavg_before": 0.5, "loadavg_after": 0.75, "fit": {"r2": r2}}
        return {
            "runs": [run],
            "median_s": median,
            "n": 1,
            "errors": [],
            "peak_pss_sum_bytes": pss,
            "peak_rss_sum_bytes": 2 * pss,
        }

    return {
        "formula": {
            "rows": 2_000_000,
            "formula": "y ~ x1 + a",
            "numeric": 5,
            "levels": {"a": 8, "b": 10, "c": 14},
            "dummies": 29,
            "ours_formula": system(formula_s, 0.9, 2**30),
            "ours_numeric": system(numeric_s, 0.9, 2**29),
            "mllib_rformula": system(mllib_s, 0.9 + 4e-12, 2**31),
            "agreement": {
                "tolerance": 1e-9,
                "max_abs_r2_diff_formula_vs_numeric": 0.0,
                "max_abs_r2_diff_formula_vs_mllib": 4e-12,
                "max_abs_coef_diff_formula_vs_numeric": 3e-13,
                "agree": True,
            },
        }
    }


@pytest.mark.parametrize(("formula_s", "met"), [(13.0, True), (13.1, False)])
def test_formula_target_is_formula_over_numeric_at_most_1_3(formula_s, met):
    from benchmarks.targets import evaluate_targets

    found = {t["target"]: t for t in evaluate_targets(_formula_results(formula_s, 10.0, 40.0))}
    target = next(t for name, t in found.items() if name.startswith("formula fit (3 text"))
    assert target["measured"] == pytest.approx(formula_s / 10.0)
    assert target["met"] is met and target["limit"] == 1.3
    mllib = found["formula fit end-to-end vs MLlib RFormula + LinearRegression (normal)"]
    assert mllib["measured"] == pytest.approx(formula_s / 40.0)
    assert mllib["met"] is None and mllib["limit"] is None  # reported, no target
    agree = next(t for name, t in found.items() if name.startswith("formula fits agree"))
    assert agree["met"] is True and "r2 diff formula vs mllib 4.0e-12" in agree["detail"]


def test_formula_table_rows():
    from benchmarks.render import formula_section

    lines = formula_section(_formula_results(13.0, 10.0, 40.0))
    assert lines[0] == "## Formula with text categories (2,000,000 rows: 5 numeric + 29 dummies)"
    assert "1-min load before / after each: 0.50–0.75 (6 values)." in lines[2]
    table = lines[4].splitlines()
    assert table[2] == "| end-to-end process | 13.00 s | 10.00 s | 40.00 s | 1.30x | 0.33x |"
    assert table[3] == (
        "| peak memory, process tree (PSS / RSS) | 1.00 GiB / 2.00 GiB | 0.50 GiB / 1.00 GiB "
        "| 2.00 GiB / 4.00 GiB | 2.00x | 0.50x |"
    )
    assert table[4] == "| R² (first run) | 0.9 | 0.9 | 0.900000000004 | | |"
    assert "formula vs MLlib 4.0e-12" in lines[6] and "(tolerance 1e-09: agree)" in lines[6]


def test_formula_agreement_from_the_runs():
    from benchmarks.measure_formula import agreement

    def runs(r2, intercept, coefs, names):
        fit = {"r2": r2, "intercept": intercept, "coefficients": coefs, "features": names}
        return {"runs": [{"error": "exit code 1", "fit": None}, {"error": None, "fit": fit}]}

    # the formula lists the categorical terms first (patsy's order), the encoded file does not
    section = {
        "ours_formula": runs(0.5, 1.0, [3.0, 2.0], ["a[T.jade]", "x1"]),
        "ours_numeric": runs(0.5 + 2e-10, 1.0 + 5e-10, [2.0, 3.0 - 2e-9], ["x1", "a_jade"]),
        "mllib_rformula": runs(0.5 - 1e-10, -7.0, [9.0], ["z"]),  # own coding: R² only
    }
    out = agreement(section)
    assert out["max_abs_r2_diff_formula_vs_numeric"] == pytest.approx(2e-10, rel=1e-5)
    assert out["max_abs_r2_diff_formula_vs_mllib"] == pytest.approx(1e-10, rel=1e-5)
    assert out["max_abs_coef_diff_formula_vs_numeric"] == pytest.approx(2e-9, rel=1e-6)
    assert out["agree"] is False  # 2e-9 > 1e-9
    section["ours_numeric"] = runs(0.5, 1.0, [2.0, 3.0 - 5e-10], ["x1", "a_jade"])
    assert agreement(section)["agree"] is True
    section["ours_numeric"] = runs(0.5, 1.0, [2.0, 3.0], ["x1", "a_onyx"])  # names differ
    assert agreement(section)["max_abs_coef_diff_formula_vs_numeric"] is None
    assert agreement(section)["agree"] is False


def test_formula_data_encoding_matches_pandas_dummies(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from benchmarks import measure_formula as mf

    monkeypatch.setattr(mf, "DATA", tmp_path)
    paths = mf.formula_parquets(5_000, chunk_rows=2_000)  # three chunks, the last short
    text = pq.read_table(paths["text"]).to_pandas()
    encoded = pq.read_table(paths["encoded"]).to_pandas()
    # pandas sorts the levels and drop_first drops the first sorted one: treatment coding
    oracle = pd.get_dummies(text, columns=list(mf.LEVELS), drop_first=True, dtype=float)
    oracle = oracle[[*mf.NUMERIC, *[c for c in oracle if c[:2] in ("a_", "b_", "c_")], "y"]]
    assert list(encoded.columns) == list(oracle.columns)
    np.testing.assert_array_equal(encoded.to_numpy(), oracle.to_numpy())
    assert len(mf.dummy_names()) == 29
    counts = text["c"].value_counts()
    assert counts.max() > 5 * counts.min()  # skewed frequencies, every level present
    assert len(counts) == 14


# --------------------------------------------------------------------------- wide (issue 15)


def _wide_run(fit: float | None, load: float, peak: int, target: int, **extra) -> dict:
    run = {
        "rows": 20_000,
        "features": extra.pop("features", 8192),
        "seconds": fit,
        "load_and_cache_s": load,
        "memory_target_bytes": target,
        "process": {"peak_rss_sum_bytes": peak, "peak_pss_sum_bytes": peak // 2},
        **extra,
    }
    if peak and target:
        run["peak_over_memory_target"] = peak / target
    return run


def _wide_results() -> dict:
    gib = 2**30
    numpy = {
        "numpy_read_s": 6.0,
        "numpy_gram_s": 24.0,
        "numpy_solve_s": 10.0,
        "numpy_fit_s": 34.0,
        "process": {"peak_rss_sum_bytes": 2 * gib, "peak_pss_sum_bytes": 2 * gib},
    }
    auto = _wide_run(
        60.0,
        50.0,
        2 * gib,
        4 * gib,
        solver="cholesky",
        stats_fold_s=30.0,
        stats_transfer_s=5.0,
        stats_merge_s=4.0,
        stats_unpack_s=1.0,
        rest_of_fit_s=20.0,
        fit_over_numpy=60.0 / 34.0,
        end_to_end_over_numpy=110.0 / 40.0,
    )
    return {
        "wide": {
            **auto,
            "partitions": 12,
            "raw_bytes": 1_310_880_000,
            "mllib_normal_width": 8192,
            "mllib_normal": "refused: requirement failed: max 4096.",
            "cholesky": _wide_run(
                70.0, 60.0, 5 * gib, 4 * gib, fit_over_numpy=70 / 34, end_to_end_over_numpy=3.25
            ),
            "tsqr": _wide_run(None, 55.0, 3 * gib, 4 * gib, error="did not finish within 900 s"),
            "numpy": numpy,
            "large": _wide_run(300.0, 200.0, 6 * gib, 8 * gib, features=16_384),
        }
    }


def test_wide_targets_numpy_ratio_memory_and_finishing():
    from benchmarks.targets import evaluate_targets

    found = {t["target"]: t for t in evaluate_targets(_wide_results())}
    auto = "wide 20,000 × 8,192, solver=auto"
    chol = "wide 20,000 × 8,192, solver=cholesky"
    assert found[f"{auto}: end-to-end ≤3× single-process numpy"]["measured"] == 110 / 40
    assert found[f"{auto}: end-to-end ≤3× single-process numpy"]["met"] is True
    assert (
        "ours 110.00 s vs numpy 40.00 s"
        in found[f"{auto}: end-to-end ≤3× single-process numpy"]["detail"]
    )
    assert found[f"{chol}: end-to-end ≤3× single-process numpy"]["met"] is False  # 3.25 > 3
    assert found[f"{auto}: peak memory ≤ raw data + 4 × packed Gram"]["measured"] == 0.5
    assert found[f"{chol}: peak memory ≤ raw data + 4 × packed Gram"]["met"] is False  # 5 > 4
    assert found[f"{auto} finishes"]["met"] is True
    tsqr = found["wide 20,000 × 8,192, solver=tsqr finishes"]
    assert tsqr["met"] is False and tsqr["detail"] == "did not finish within 900 s"
    assert found["wide 20,000 × 16,384, solver=cholesky finishes"]["met"] is True
    assert (
        found["wide 20,000 × 16,384, solver=cholesky: peak memory ≤ raw data + 4 × packed Gram"][
            "measured"
        ]
        == 0.75
    )
    # TSQR and the wider row have no numpy baseline of their own: no 3x target for them
    assert not any(
        "tsqr: end-to-end" in name or "16,384, solver=cholesky: end" in name for name in found
    )


def test_wide_table_one_row_per_run():
    from benchmarks.render_text import wide_paragraph

    lines = wide_paragraph(_wide_results())
    table = lines[4].splitlines()
    assert table[2] == (
        "| 20,000 × 8,192, `solver=auto` (cholesky) | 50.00 s | 30.00 s | 5.00 s | 5.00 s "
        "| 20.00 s | 60.00 s | 110.00 s | 1.76x / 2.75x | 2.00 GiB (1.00 GiB) | 4.00 GiB | 0.50x |"
    )
    assert table[3].startswith("| 20,000 × 8,192, `solver=cholesky` | 60.00 s | — | — | — | — ")
    assert table[3].endswith("| 2.06x / 3.25x | 5.00 GiB (2.50 GiB) | 4.00 GiB | 1.25x |")
    assert "| **failed** |" in table[4] and table[4].startswith("| 20,000 × 8,192, `solver=tsqr`")
    assert table[5].startswith("| 20,000 × 16,384, `solver=cholesky` | 200.00 s |")
    assert table[6] == (
        "| 20,000 × 8,192, numpy (one process, in memory) | 6.00 s (read) | 24.00 s (`X.T @ X`) "
        "| | | 10.00 s (Cholesky + solve) | 34.00 s | 40.00 s | 1x | 2.00 GiB (2.00 GiB) | | |"
    )
    assert len(table) == 7
    assert "- 20,000 × 8,192, `solver=tsqr`: did not finish within 900 s" in lines


def test_wide_memory_target_from_the_shape_when_not_stored():
    from benchmarks.targets import wide_memory

    wide = {"rows": 20_000, "features": 8192}
    run = {"process": {"peak_rss_sum_bytes": 17 * 2**30}}  # stored before the target was
    target, over = wide_memory(wide, run)
    # raw 20,000 x 8,193 float64 + 4 x the packed triangle of 8,193 columns (+1 for the label)
    assert target == 20_000 * 8193 * 8 + 4 * 8 * 8193 * 8194 // 2 == 2_385_015_072
    assert over == 17 * 2**30 / 2_385_015_072
    stored = {"memory_target_bytes": 2**30, "process": {"peak_rss_sum_bytes": 2**29}}
    assert wide_memory(wide, stored) == (2**30, 0.5)


def test_load_path_table_splits_the_stages_and_the_target_compares_with_mllib():
    from benchmarks.render import load_path_section
    from benchmarks.targets import evaluate_targets

    def system(s):
        return {"median_s": s, "n": 3, "runs": [{"loadavg_before": 0.4, "loadavg_after": 0.6}]}

    lp = {
        "ours_direct": system(0.5),
        "ours_jvm_arrow": system(2.0),
        "ours_to_python": system(2.5),
        "ours_blocks": system(3.25),
        "ours_cached": system(4.0),
        "mllib_cached": system(5.0),
        "breakdown": {
            "jvm_decode_arrow_s": 2.0,
            "arrow_transfer_s": 0.5,
            "numpy_assembly_s": 0.75,
            "caching_s": 0.75,
        },
        "rows": 2_000_000,
        "columns": 21,
    }
    text = "\n".join(load_path_section({"load_path": lp}))
    assert "2,000,000 × 21" in text
    assert "| numpy block assembly | 3.25 s | 0.75 s |" in text
    assert "| ours through Spark's reader, cached / MLlib cached | 0.80x | |" in text
    assert "| **ours default / MLlib cached** | 0.10x | |" in text
    target = next(t for t in evaluate_targets({"load_path": lp}) if "load path" in t["target"])
    assert target["measured"] == pytest.approx(0.1) and target["met"] is True
