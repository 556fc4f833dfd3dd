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
