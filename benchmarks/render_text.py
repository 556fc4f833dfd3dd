"""Parts of ``RESULTS.md``: the header (with the measured load), the wide runs, the footer.

Conditions are stated only through measured values: the load average at the start and end of
each run (``results["load"]``) and before / after every measurement. Results written before
those were recorded (a ``loadavg_range`` only) render the range they stored.
"""

from __future__ import annotations

from benchmarks.harness import LOAD_LIMIT, measured_loads
from benchmarks.tables import gib, markdown_table, mb, seconds
from benchmarks.targets import WIDE_RUNS as TARGET_WIDE_RUNS


def _triple(values: list[float] | None) -> str:
    return "—" if not values else " / ".join(f"{v:.2f}" for v in values)


def load_span(values: list[float]) -> str:
    """The range of measured 1-min load averages and how many there are."""
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
            f"{load_span(run.get('measurements') or [])}."
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
            f"{load_span(measured_loads({k: v for k, v in results.items() if k != 'load'}))}."
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


# the wide runs of results["wide"] (None: the top level, solver=auto) in table order
# the wide runs and their solvers: one list, the targets' (whose labels read "solver=...")
WIDE_RUNS = tuple((key, label.removeprefix("solver=")) for key, label, _ in TARGET_WIDE_RUNS)


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}x"


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _run_label(wide: dict, run: dict, solver: str) -> str:
    shape = f"{run.get('rows', wide['rows']):,} × {run.get('features', wide['features']):,}"
    return f"{shape}, `solver={solver}`"


def _wide_row(wide: dict, key: str | None, solver: str) -> list[str] | None:
    """One Spark run: time split, ratios to numpy, peak memory against the target."""
    run = wide.get(key) if key else wide
    if not run:
        return None
    from benchmarks.targets import wide_memory

    proc = run.get("process") or {}
    fit = seconds(run.get("seconds")) if run.get("seconds") is not None else "**failed**"
    target, over = wide_memory(wide, run)
    return [
        _run_label(wide, run, solver) + (f" ({run['solver']})" if run.get("solver") else ""),
        seconds(run.get("load_and_cache_s")),
        seconds(run.get("stats_fold_s")),
        seconds(_plus(run.get("stats_transfer_s"), run.get("stats_jvm_gc_s", 0.0))),
        seconds(_plus(run.get("stats_merge_s"), run.get("stats_unpack_s", 0.0))),  # (no unpack now)
        seconds(run.get("rest_of_fit_s")),
        fit,
        seconds(_plus(run.get("load_and_cache_s"), run.get("seconds"))),
        f"{_x(run.get('fit_over_numpy'))} / {_x(run.get('end_to_end_over_numpy'))}",
        f"{gib(proc.get('peak_rss_sum_bytes'))} ({gib(proc.get('peak_pss_sum_bytes'))})",
        gib(target),
        _x(over),
    ]


def _numpy_row(wide: dict) -> list[str] | None:
    numpy = wide.get("numpy")
    if not numpy:
        return None
    proc = numpy.get("process") or {}
    fit = numpy.get("numpy_fit_s")
    return [
        f"{wide['rows']:,} × {wide['features']:,}, numpy (one process, in memory)",
        seconds(numpy.get("numpy_read_s")) + " (read)",
        seconds(numpy.get("numpy_gram_s")) + " (`X.T @ X`)",
        "",
        "",
        seconds(numpy.get("numpy_solve_s")) + " (Cholesky + solve)",
        seconds(fit) if fit is not None else "**failed**",
        seconds(_plus(numpy.get("numpy_read_s"), fit)),
        "1x",
        f"{gib(proc.get('peak_rss_sum_bytes'))} ({gib(proc.get('peak_pss_sum_bytes'))})",
    ]


WIDE_HEADERS = [
    "run",
    "load + cache",
    "Gram (parallel job)",
    "transfer of partials (+ JVM GC)",
    "merge (+ unpack)",
    "rest of fit (solve, residuals)",
    "fit",
    "load + fit",
    "× numpy: fit / load + fit",
    "peak RSS (PSS), process tree",
    "memory target: raw + 4 × packed Gram",
    "peak RSS / target",
]


def wide_paragraph(results: dict) -> list[str]:
    """The wide linear regression runs (ours, numpy) and MLlib's answer at that width."""
    wide = results.get("wide")
    if not wide:
        return []
    rows = [_wide_row(wide, key, solver) for key, solver in WIDE_RUNS] + [_numpy_row(wide)]
    errors = [
        f"- {_run_label(wide, run, label)}: {run['error']}"
        for key, label in WIDE_RUNS
        if (run := (wide.get(key) if key else wide)) and run.get("error")
    ] + ([f"- numpy: {wide['numpy']['error']}"] if (wide.get("numpy") or {}).get("error") else [])
    lines = [
        f"## Wide linear regression ({wide['rows']:,} × {wide['features']:,}, ours only)",
        "",
        "Each run its own process with a time limit; the statistics pass split into the "
        "parallel Gram job, the transfer of the partials to the driver (then a full collection "
        "in its JVM) and their merge (+ the unpack to a full matrix, in runs before "
        "2026-12-07 11:30); "
        f"{wide.get('partitions')} partitions "
        f"({'planned, read by the fit' if wide.get('read_in_fit') else 'cached'}), "
        f"raw {mb(wide.get('raw_bytes'))}, an idle "
        f"session already holds {gib(wide.get('rss_idle_session_bytes'))}. "
        f"1-min load before / after each: {load_span(measured_loads(wide))}.",
        "",
        markdown_table(WIDE_HEADERS, [r for r in rows if r]),
        "",
        *(["Failures:", "", *errors, ""] if errors else []),
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
