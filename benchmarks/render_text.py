"""The prose parts of ``RESULTS.md``: the header (with the measured load), the wide row, the footer.

Conditions are stated only through measured values: the load average at the start and end of
each run (``results["load"]``) and before / after every measurement. Results written before
those were recorded (a ``loadavg_range`` only) render the range they stored.
"""

from __future__ import annotations

from benchmarks.harness import LOAD_LIMIT, measured_loads
from benchmarks.tables import gib, mb, seconds


def _triple(values: list[float] | None) -> str:
    return "—" if not values else " / ".join(f"{v:.2f}" for v in values)


def _span(values: list[float]) -> str:
    return "—" if not values else f"{min(values):.2f}–{max(values):.2f} ({len(values)} values)"


def load_lines(results: dict) -> tuple[list[str], list[str]]:
    """The measured load average of every run behind these results, and the under-load mark.

    Returns
    -------
    tuple of (list of str, list of str)
        One line per run with its measured load; and, when a run started with the 1-min load
        above the limit, the "measured under load" paragraph (else empty).
    """
    load = results.get("load") or {}
    limit = load.get("limit", LOAD_LIMIT)
    lines, loaded = [], []
    for run in load.get("runs", []):
        lines.append(
            f"Load average (`os.getloadavg()`, 1 / 5 / 15 min), run of {run['started']} "
            f"(sections {', '.join(run['sections'])}): at start {_triple(run['start'])}, at end "
            f"{_triple(run.get('end'))}; 1-min before / after each measurement: "
            f"{_span(run.get('measurements') or [])}."
        )
        if run["start"][0] > limit:
            loaded.append(f"{run['start'][0]:.2f} at the start of the run of {run['started']}")
    legacy = results.get("loadavg_range")
    if legacy:
        # stored before per-run start / end were recorded: the range of the 1-min value at the
        # start and after each section, so the start was at least its minimum
        lines.append(
            f"Load average (`os.getloadavg()`, 1 min) at the start and after each section: "
            f"{legacy[0]:.2f}–{legacy[1]:.2f}; before / after each measurement: "
            f"{_span(measured_loads({k: v for k, v in results.items() if k != 'load'}))}."
        )
        if legacy[0] > limit:
            loaded.append(f"at least {legacy[0]:.2f} at the start")
    mark = [
        f"> **Measured under load**: the 1-min load average was {'; '.join(loaded)} (above "
        f"{limit}): other work shared the cores, so these timings are not those of a quiet "
        "machine.",
        "",
    ]
    return lines, mark if loaded else []


def header(results: dict) -> list[str]:
    """Title, command, configuration, machine, measured load, later partial re-runs."""
    cfg, m = results["config"], results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if k != "blas" and v)
    measured, mark = load_lines(results)
    return [
        "# Benchmark results",
        "",
        *mark,
        f"`{results['command']}` — {results['started']} — {cfg['rows']:,} rows, master "
        f"`{cfg['master']}`, driver memory {cfg['driver_memory']}, median of {cfg['repeats']} "
        f"(secondary rows: {cfg['secondary_repeats']}, scaling: {cfg['scaling_repeats']}).",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB; "
        + versions
        + (f"; git {m['git']}" if m.get("git") else "")
        + ".",
        *measured,
        *[
            f"Re-run later: sections {', '.join(u['sections'])} with `{u['command']}` "
            f"({u['started']}, git {u.get('git')})."
            for u in results.get("updates", [])
        ],
        "",
    ]


def wide_paragraph(results: dict) -> list[str]:
    """The wide linear regression (ours only) and MLlib's answer at that width."""
    wide = results.get("wide")
    if not wide:
        return []
    proc = wide.get("process") or {}
    if wide.get("seconds") is not None:
        outcome = (
            f"fit on cached data {seconds(wide['seconds'])} (solver {wide.get('solver')}, "
            f"max |β̂ − β| {wide.get('max_abs_coef_error_vs_truth', float('nan')):.2g})"
        )
    else:
        outcome = f"**failed**: {wide.get('error')}"
        if wide.get("seconds_until_error") is not None:
            outcome += f" after {seconds(wide['seconds_until_error'])} of fitting"
    lines = [
        f"## Wide linear regression ({wide['rows']:,} × {wide['features']:,}, ours only)",
        "",
        f"ours: {outcome}. Load + cache {seconds(wide.get('load_and_cache_s'))}, "
        f"{wide.get('partitions')} partitions, raw {mb(wide['raw_bytes'])}; whole "
        f"process {seconds(proc.get('seconds'))}, peak memory (PSS / RSS) "
        f"{gib(proc.get('peak_pss_sum_bytes'))} / {gib(proc.get('peak_rss_sum_bytes'))}.",
        f'MLlib `LinearRegression(solver="normal")` with '
        f"{wide.get('mllib_normal_width')} features: "
        f"{str(wide.get('mllib_normal')).rstrip('.')}.",
        "",
    ]
    for old in results.get("wide_previous_attempts", []):
        cmd = str(old.get("command") or "")
        memory = cmd.split("--driver-memory ")[1].split()[0] if "--driver-memory" in cmd else "?"
        result = (
            f"fit {seconds(old['seconds'])}"
            if old.get("seconds")
            else f"failed: {old.get('error')}"
        )
        lines += [f"Earlier attempt (driver memory {memory}): {result}.", ""]
    return lines


def footer(results: dict) -> list[str]:
    """How peak memory is measured, and any notes stored with the results."""
    lines = [
        "Peak memory: the largest sum, over the process tree of the job (driver Python + JVM + "
        "Python workers), of RSS and of PSS (PSS splits shared pages between the forked "
        "workers, so it does not double count), polled from /proc every 0.1 s.",
        "",
    ]
    # the harness writes no notes; these are annotations stored by hand with a results.json
    notes = list(results.get("notes", []))
    if (results.get("wide") or {}).get("note"):
        notes.append("Wide row: " + results["wide"]["note"] + ".")
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return lines
