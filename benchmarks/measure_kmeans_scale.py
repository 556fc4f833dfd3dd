"""k-means per iteration from the same centres, by two iteration counts (issue 14's table).

Every system fits the same cached data from the same centres with ``tol=0`` twice, for ``a`` and
``b`` iterations; ``(time(b) − time(a)) / (b − a)`` is its cost per iteration — start-up, load and
fixed set-up cancel. Rows: ``R × 10, k = 10`` (R = ``--rows``), and ``R/4 × 64`` with k = 1,000 and
k = 4,096. Systems: ours in the default mode (``auto``) and in broadcast mode, MLlib's JVM RDD
``KMeans`` on a cached ``RDD[Vector]``, scikit-learn (``algorithm="lloyd"``, its in-process fit).
The final cost of every system is recomputed with numpy from its centres. For ours, where the time
goes: the mode ``auto`` chose and why, and the single-process numpy compute of one iteration
(plain kernel, and with the distance bounds the barrier mode uses for k ≥ ``bounds.MIN_K``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from benchmarks import common
from benchmarks.harness import median, say, timed


@dataclass(frozen=True, kw_only=True)
class Row:
    label: str
    rows: int
    d: int
    blobs: int
    k: int
    counts: tuple[int, int]  # the two iteration counts
    mllib_counts: tuple[int, int] | None = None  # MLlib's, when its iterations take a minute


def rows_of(args: argparse.Namespace) -> list[Row]:
    big = max(args.rows // 4, 10 * 4_096)
    return [
        Row(
            label=f"{args.rows:,} x 10, k=10", rows=args.rows, d=10, blobs=10, k=10, counts=(5, 25)
        ),
        Row(label=f"{big:,} x 64, k=1,000", rows=big, d=64, blobs=1_000, k=1_000, counts=(2, 6)),
        Row(
            label=f"{big:,} x 64, k=4,096",
            rows=big,
            d=64,
            blobs=1_000,
            k=4_096,
            counts=(2, 4),
            mllib_counts=(1, 2),  # ~1 min per iteration: one repeat, no warm-up
        ),
    ]


def _ours(data, centres, mode):
    from sparkml_jobs.clustering.estimator import KMeans

    def fit(n_iter):
        model = KMeans(
            k=len(centres), initial_centers=centres, max_iter=n_iter, tol=0.0, mode=mode
        ).fit(data)
        summary = model.summary
        return model.centers, summary.n_iter, {"mode": summary.mode, "why": summary.mode_reason}

    return fit


def _mllib(spark, vectors, centres):
    def fit(n_iter):
        jmodel = common.jvm_kmeans(spark, len(centres), n_iter, 0.0, centres).run(vectors)
        return common.jvm_centres(jmodel), int(jmodel.numIter()), {}

    return fit


def _sklearn(x, centres):
    from sklearn.cluster import KMeans

    def fit(n_iter):
        est = KMeans(
            n_clusters=len(centres),
            init=centres,
            n_init=1,
            max_iter=n_iter,
            tol=0.0,
            algorithm="lloyd",
        )
        model = est.fit(x)
        return model.cluster_centers_, int(model.n_iter_), {}

    return fit


def two_counts(
    fit, counts: tuple[int, int], repeats: int, x: np.ndarray, label: str, warmup: bool = True
) -> dict:
    """Median fit time at both counts, per-iteration cost, numpy cost of the longer run."""
    times: dict[int, list[float]] = {c: [] for c in counts}
    out: dict = {"counts": list(counts), "repeats": repeats}
    if warmup:  # JIT, Python workers, broadcasts: not measured
        out["warmup_s"] = timed(fit, counts[0])[0]
    for rep in range(repeats):
        for n_iter in counts if rep % 2 == 0 else counts[::-1]:
            seconds, (centres, done, extra), l0, l1 = timed(fit, n_iter)
            times[n_iter].append(seconds)
            say(f"  {label} {n_iter} iterations: {seconds:.2f} s (ran {done}) [load {l0}->{l1}]")
            if done != n_iter:
                out["warning"] = f"{n_iter} iterations asked, {done} ran: per iteration is biased"
            if n_iter == counts[1]:
                out.update(extra, cost=common.kmeans_cost(x, centres), iterations=done)
    a, b = (median(times[c]) for c in counts)
    return {
        **out,
        "seconds": {str(c): times[c] for c in counts},
        "per_iter_s": (b - a) / (counts[1] - counts[0]),
    }


def compute_floor(x: np.ndarray, centres: np.ndarray, steps: int = 3) -> dict:
    """Single-process numpy per iteration on the whole array (the kernels the tasks run)."""
    from sparkml_jobs.clustering import bounds
    from sparkml_jobs.clustering import kernels as kk

    k = len(centres)
    c, state, plain, bounded = centres.copy(), None, [], []
    for _ in range(steps):
        started = time.perf_counter()
        part = kk.lloyd_partial(x, c, keep_far=k)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        _, state = bounds.bounded_partial(x, c, None, state, keep_far=k)
        bounded.append(time.perf_counter() - started)
        c, _ = kk.new_centers(part, c)
    return {"numpy_plain_s": median(plain[1:]), "numpy_bounded_s": median(bounded[1:])}


def chunk_budget(k: int, d: int) -> dict:
    """The chunk the kernels use for ``k × d`` centres and its float64 temporaries' bytes."""
    from sparkml_jobs.clustering import kernels as kk

    rows = kk.chunk_rows_for(k, d)
    return {"rows": rows, "bytes": rows * (k + d) * 8, "budget": kk.DISTANCE_BLOCK_BYTES}


class WorkerPeak:
    """Polls the PySpark worker processes (``pyspark.daemon`` and its forks) every 0.2 s and keeps
    the largest single RSS and the largest sum: the memory of the tasks themselves."""

    def __init__(self) -> None:
        self.peak_single = self.peak_sum = self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> WorkerPeak:
        self._thread.start()
        return self

    def _run(self) -> None:
        from benchmarks.common import _rss_pss

        while not self._stop.is_set():
            rss = [_rss_pss(pid)[0] for pid in _workers()]
            if rss:
                self.seen = max(self.seen, len(rss))
                self.peak_single = max(self.peak_single, max(rss))
                self.peak_sum = max(self.peak_sum, sum(rss))
            self._stop.wait(0.2)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {
            "peak_single_rss_bytes": self.peak_single,
            "peak_sum_rss_bytes": self.peak_sum,
            "max_processes": self.seen,
        }


def _workers() -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if b"pyspark.daemon" in handle.read():
                        out.append(int(entry))
            except OSError:
                continue
    return out


def _cached(spark, path: str, x: np.ndarray, names: list[str]):
    from benchmarks.measure_kmeans import kmeans_setup

    data = kmeans_setup(spark, path)
    vectors = common.jvm_vector_rdd(spark, common.assembled_frame(spark, path, names))
    sc = spark.sparkContext
    vectors.persist(sc._jvm.org.apache.spark.storage.StorageLevel.MEMORY_ONLY())
    vectors.count()
    return data, vectors


def bench_row(spark, args: argparse.Namespace, row: Row) -> dict:
    path = common.blobs_parquet(row.rows, d=row.d, blobs=row.blobs)
    x, names = common.parquet_to_numpy(str(path))
    centres = common.initial_centres(path, row.k)
    say(f"k-means per iteration, {row.label}: iterations {row.counts[0]} and {row.counts[1]}")
    data, vectors = _cached(spark, str(path), x, names)
    systems = {
        "ours": _ours(data, centres, "auto"),
        "ours_broadcast": _ours(data, centres, "broadcast"),
        "mllib_jvm": _mllib(spark, vectors, centres),
        "sklearn": _sklearn(x, centres),
    }
    out: dict = {"label": row.label, "k": row.k, "rows": row.rows, "d": row.d}
    out["partitions"] = data.blocks.getNumPartitions()
    out["chunk"] = chunk_budget(row.k, row.d)
    try:
        for name, fit in systems.items():
            slow = name == "mllib_jvm" and row.mllib_counts is not None
            counts, repeats = (row.mllib_counts, 1) if slow else (row.counts, args.repeats)
            watch = WorkerPeak().start() if name == "ours" else None
            try:
                out[name] = two_counts(fit, counts, repeats, x, f"{row.label} {name}", not slow)
            except Exception as exc:  # noqa: BLE001 - recorded, the other systems still run
                say(f"  {row.label} {name}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
                out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            finally:
                if watch is not None:
                    out["ours_workers"] = watch.stop()
    finally:
        vectors.unpersist(False)
        data.unpersist()
    out["ours_breakdown"] = compute_floor(x, centres)
    return out


def bench_kmeans_scale(spark, args: argparse.Namespace, results: dict) -> None:
    """Fill ``results["kmeans_per_iteration"]`` with one entry per row of :func:`rows_of`."""
    rows = rows_of(args)
    wanted = range(len(rows)) if args.kmeans_rows == "all" else _indices(args.kmeans_rows)
    kept = (results.get("kmeans_per_iteration") or {}).get("rows") or []
    section = {"method": __doc__.split("\n\n")[1].replace("\n", " "), "rows": list(kept)}
    results["kmeans_per_iteration"] = section
    for index in wanted:
        entry = bench_row(spark, args, rows[index])
        entry["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
        if index < len(section["rows"]):
            section["rows"][index] = entry
        else:
            section["rows"].append(entry)
        say(render_rows([entry]))


def _indices(text: str) -> list[int]:
    return sorted({int(v) for v in text.split(",") if v.strip()})


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b and a > 0 and b > 0 else "-"


def render_rows(rows: list[dict]) -> str:
    """Markdown table: per-iteration seconds and ratios, numpy costs, ours' mode and compute."""
    lines = [
        "| row | ours (mode) s/iter | ours broadcast | MLlib JVM | scikit-learn | ours/MLlib | "
        "ours/sklearn | cost ours / MLlib / sklearn | numpy compute plain / bounded (1 proc) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = {s: (r.get(s) or {}).get("per_iter_s") for s in ("ours", "ours_broadcast")}
        per |= {s: (r.get(s) or {}).get("per_iter_s") for s in ("mllib_jvm", "sklearn")}
        costs = " / ".join(
            f"{(r.get(s) or {}).get('cost', float('nan')):.6g}"
            for s in ("ours", "mllib_jvm", "sklearn")
        )
        floor = r.get("ours_breakdown", {})
        lines.append(
            f"| {r['label']} | {_fmt(per['ours'])} ({(r.get('ours') or {}).get('mode', '?')}) | "
            f"{_fmt(per['ours_broadcast'])} | {_per(r, 'mllib_jvm')} | {_fmt(per['sklearn'])} "
            f"| {_ratio(per['ours'], per['mllib_jvm'])} | {_ratio(per['ours'], per['sklearn'])} "
            f"| {costs} | {_fmt(floor.get('numpy_plain_s'))} / "
            f"{_fmt(floor.get('numpy_bounded_s'))} |"
        )
    notes = [_memory_note(r) for r in rows if r.get("ours_workers") or r.get("chunk")]
    return "\n".join(lines + ([""] + notes if notes else []))


def _memory_note(r: dict) -> str:
    chunk, workers = r.get("chunk") or {}, r.get("ours_workers") or {}
    mib = 2**20
    text = f"- {r['label']}" + (f" (measured {r['measured'][:10]})" if r.get("measured") else "")
    text += ": "
    if chunk:
        text += (
            f"chunk {chunk['rows']:,} rows, its distances + differences "
            f"{chunk['bytes'] / mib:.1f} MB (budget {chunk['budget'] / mib:.0f} MB)"
        )
    if workers.get("peak_single_rss_bytes"):
        raw = r["rows"] * r["d"] * 8 / mib
        one, total = workers["peak_single_rss_bytes"] / mib, workers["peak_sum_rss_bytes"] / mib
        text += (
            f"; ours' Python workers during its fits: largest {one:,.0f} MB RSS, all "
            f"{workers['max_processes']} together {total:,.0f} MB (raw data {raw:,.0f} MB)"
        )
    mllib, ours = r.get("mllib_jvm") or {}, r.get("ours") or {}
    if mllib.get("counts") and mllib.get("counts") != ours.get("counts"):
        text += f"; MLlib at {mllib['counts'][0]} and {mllib['counts'][1]} iterations, once"
    return text


def _per(r: dict, system: str) -> str:
    """Per-iteration seconds; when the longer run was not slower (noise above one iteration's
    cost: MLlib at k = 4,096, run once), the fit times instead."""
    entry = r.get(system) or {}
    per, seconds = entry.get("per_iter_s"), entry.get("seconds") or {}
    if per is None or per > 0 or not seconds:
        return _fmt(per)
    fits = ", ".join(f"{median(v):.0f} s at {c} it" for c, v in seconds.items())
    return f"not resolved ({fits})"


def _fmt(seconds) -> str:
    return f"{seconds:.3f}" if seconds is not None else "-"
