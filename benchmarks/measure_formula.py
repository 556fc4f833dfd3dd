"""Formula fit with text categories (issue 13): the same model three ways, each a fresh process.

``ours_formula`` fits ``y ~ x1 + … + x5 + a + b + c`` on the Parquet with text columns ``a``,
``b``, ``c`` (8, 10 and 14 levels, skewed frequencies: 29 dummies); ``ours_numeric`` fits the
same rows pre-encoded as 0/1 float64 dummies with treatment coding (first level in sorted order
as reference, as our formula does), so both estimate the same coefficients; ``mllib_rformula``
is MLlib's ``RFormula`` + ``LinearRegression(solver="normal")`` on the text Parquet (its own
reference levels, so only R² and fitted values are comparable with ours).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterator
from functools import partial
from itertools import count
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.common import CHUNK_ROWS, DATA, SEED
from benchmarks.harness import RUN_DIR, Measurement, run_rotated, say, summarise
from benchmarks.measure_e2e import _mllib, _one_process, _ours

NUMERIC = ("x1", "x2", "x3", "x4", "x5")
# level names deliberately not in frequency order: the most frequent level is not the reference
LEVELS = {
    "a": ("ruby", "amber", "jade", "onyx", "pearl", "coral", "ivory", "slate"),
    "b": ("north", "east", "south", "west", "centre", "coast", "hills", "lakes", "plain", "delta"),
    "c": (
        "kilo",
        "alpha",
        "mike",
        "bravo",
        "lima",
        "charlie",
        "juliet",
        "delta",
        "india",
        "echo",
        "hotel",
        "foxtrot",
        "golf",
        "november",
    ),
}
FORMULA = "y ~ " + " + ".join([*NUMERIC, *LEVELS])
AGREEMENT_TOL = 1e-9


def dummy_names() -> list[str]:
    """The encoded columns after the numeric ones: ``a_lvl`` per non-reference level, in order."""
    return [f"{col}_{lvl}" for col, levels in LEVELS.items() for lvl in sorted(levels)[1:]]


def _frequencies(n_levels: int) -> np.ndarray:
    """Zipf-like (∝ 1/rank) level probabilities: a few common levels, a long thin tail."""
    weights = 1.0 / np.arange(1, n_levels + 1)
    return weights / weights.sum()


def _chunk(
    rows: int, index: int, seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """One chunk: numeric columns, level indices per text column, label."""
    truth = np.random.default_rng([seed, 13, 1])
    beta = truth.uniform(-2.0, 2.0, len(NUMERIC))
    effects = {c: truth.normal(0.0, 1.0, len(v)) for c, v in LEVELS.items()}
    rng = np.random.default_rng([seed, 13, 2, index])
    x = rng.standard_normal((rows, len(NUMERIC)))
    codes = {c: rng.choice(len(v), size=rows, p=_frequencies(len(v))) for c, v in LEVELS.items()}
    y = 1.0 + x @ beta + sum(effects[c][codes[c]] for c in LEVELS)
    return x, codes, y + 0.5 * rng.standard_normal(rows)


def _encoded(x: np.ndarray, codes: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
    """Numeric columns, treatment-coded dummies (sorted levels, first dropped), label."""
    parts = [x]
    for col, levels in LEVELS.items():
        names = np.array(levels)[codes[col]]
        parts += [(names == lvl).astype(np.float64)[:, None] for lvl in sorted(levels)[1:]]
    return np.column_stack([*parts, y])


def formula_parquets(rows: int, seed: int = SEED, chunk_rows: int = CHUNK_ROWS) -> dict[str, Path]:
    """The text Parquet and the same rows pre-encoded; cached by a size-keyed name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {
        "text": DATA / f"formula_r{rows}_s{seed}.parquet",
        "encoded": DATA / f"formula_encoded_r{rows}_s{seed}.parquet",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = {k: p.with_name(f".{p.name}.tmp-{os.getpid()}") for k, p in paths.items()}
    text_schema = pa.schema(
        [pa.field(n, pa.float64()) for n in NUMERIC]
        + [pa.field(c, pa.string()) for c in LEVELS]
        + [pa.field("y", pa.float64())]
    )
    enc_names = [*NUMERIC, *dummy_names(), "y"]
    enc_schema = pa.schema([pa.field(n, pa.float64()) for n in enc_names])
    with (
        pq.ParquetWriter(tmp["text"], text_schema, compression="snappy") as text_out,
        pq.ParquetWriter(tmp["encoded"], enc_schema, compression="snappy") as enc_out,
    ):
        for i, start in enumerate(range(0, rows, chunk_rows)):
            x, codes, y = _chunk(min(chunk_rows, rows - start), i, seed)
            columns = [pa.array(x[:, j]) for j in range(x.shape[1])]
            columns += [pa.array(np.array(v)[codes[c]].tolist()) for c, v in LEVELS.items()]
            text_out.write_table(pa.Table.from_arrays([*columns, pa.array(y)], schema=text_schema))
            enc = _encoded(x, codes, y)
            enc_out.write_table(
                pa.Table.from_arrays(
                    [pa.array(enc[:, j]) for j in range(enc.shape[1])], schema=enc_schema
                )
            )
    for key, path in paths.items():
        os.replace(tmp[key], path)  # atomic: a concurrent run never reads half a file
    return paths


def formula_commands(args: argparse.Namespace, paths: dict[str, Path]) -> dict[str, list[str]]:
    """``{system: argv}``: the three fits of the same model as fresh processes."""
    text, enc, master = str(paths["text"]), str(paths["encoded"]), args.master
    return {
        "ours_formula": _ours("linreg", text, "ours-formula", master, "--formula", FORMULA),
        "ours_numeric": _ours("linreg", enc, "ours-formula-numeric", master, "--label", "y"),
        "mllib_rformula": _mllib("linreg-formula", args, "--input", text, "--formula", FORMULA),
    }


def _measure(cmd: list[str], stem: str, env: dict[str, str], repeat: Iterator[int]) -> Measurement:
    """One run; also keeps R², intercept and coefficients from its metrics JSON."""
    name = f"{stem}-{next(repeat)}"
    out = _one_process(cmd, name, env)
    metrics = RUN_DIR / "logs" / f"{name}.json"
    if metrics.exists():
        reported = json.loads(metrics.read_text())
        out["fit"] = {k: reported.get(k) for k in ("r2", "intercept", "coefficients", "features")}
    return out


def _by_encoded_name(fit: dict) -> dict[str, float]:
    """Intercept and coefficients keyed by the pre-encoded column name.

    The formula names a dummy as statsmodels does (``a[T.jade]``) and orders the terms as patsy
    does (categorical terms first); the pre-encoded file calls that column ``a_jade``.
    """
    names = [re.sub(r"^(\w+)\[T\.(.+)\]$", r"\1_\2", f) for f in fit["features"]]
    return {"(intercept)": fit["intercept"], **dict(zip(names, fit["coefficients"], strict=True))}


def agreement(section: dict) -> dict:
    """Max differences between the fits (first successful run of each system).

    ``r2_*``: |R² difference| (formula vs numeric, formula vs MLlib); ``coef``: max |difference|
    of intercept and coefficients, formula vs numeric, matched by name (same coding, so the same
    parameters; ``None`` if the names do not match).
    """

    def fit(system: str) -> dict | None:
        runs = (section.get(system) or {}).get("runs") or []
        return next((r["fit"] for r in runs if not r.get("error") and r.get("fit")), None)

    ours, numeric, mllib = fit("ours_formula"), fit("ours_numeric"), fit("mllib_rformula")
    out: dict = {"tolerance": AGREEMENT_TOL}
    if ours and numeric:
        out["max_abs_r2_diff_formula_vs_numeric"] = abs(ours["r2"] - numeric["r2"])
        a, b = _by_encoded_name(ours), _by_encoded_name(numeric)
        out["max_abs_coef_diff_formula_vs_numeric"] = (
            max(abs(a[k] - b[k]) for k in a) if a.keys() == b.keys() else None
        )
        out["formula_features"] = ours["features"]
    if ours and mllib:
        out["max_abs_r2_diff_formula_vs_mllib"] = abs(ours["r2"] - mllib["r2"])
    diffs = [v for k, v in out.items() if k.startswith("max_abs")]
    out["agree"] = len(diffs) == 3 and all(v is not None and v <= AGREEMENT_TOL for v in diffs)
    return out


def bench_formula(args: argparse.Namespace, results: dict) -> None:
    """Measure the three fits into ``results["formula"]`` (rotated repeats, fresh processes)."""
    say(f"formula: generating {args.rows:,} rows with text categories (cached)")
    paths = formula_parquets(args.rows)
    env = {"PYSPARK_SUBMIT_ARGS": f"--driver-memory {args.driver_memory} pyspark-shell"}
    commands = formula_commands(args, paths)
    runs = run_rotated(
        {
            name: (partial(_measure, cmd, f"formula-{name}", env, count()), args.repeats)
            for name, cmd in commands.items()
        },
        "formula",
    )
    section: dict = {
        "rows": args.rows,
        "formula": FORMULA,
        "numeric": len(NUMERIC),
        "levels": {c: len(v) for c, v in LEVELS.items()},
        "dummies": len(dummy_names()),
        "data": {k: str(p.relative_to(common.ROOT)) for k, p in paths.items()},
        "commands": {name: " ".join(cmd) for name, cmd in commands.items()},
    }
    for name, rs in runs.items():
        section[name] = summarise(rs)
        ok = [r for r in rs if not r.get("error")]
        for key in ("peak_rss_sum_bytes", "peak_pss_sum_bytes"):
            section[name][key] = max((r[key] for r in ok), default=None)
    section["agreement"] = agreement(section)
    say(f"  formula agreement: {section['agreement']}")
    results["formula"] = section
