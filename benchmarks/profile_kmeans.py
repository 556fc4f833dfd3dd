"""Where one k-means iteration's time goes, on the same cached data the benchmark uses.

    python -m benchmarks.profile_kmeans [--rows 2000000] [--k 10] [--master local[2]] [--repeats 5]

Measures, each as the median of ``--repeats``:

1. ``empty job``      — a Spark job with one Python task per partition of the data and no data;
2. ``touch pass``     — one pass over the cached points that deserialises every block in the
                        Python workers but computes nothing (the JVM→Python transfer + unpickle);
   ``unpickle``       — of that, the pickle.loads of the same blocks in one process;
3. ``numpy compute``  — ``lloyd_partial`` on every block, in one process, 1 BLAS thread (as one
                        worker), summed; divided by the parallelism for the ideal wall time; split
                        into assign (GEMM + argmin + exact distance), per-cluster sums, far points;
4. ``lloyd_step``     — the library's real iteration (broadcast + job + tree merge), and
   ``new_centers``    — the driver-side update.

Also: the same touch pass with float32 storage, compute at other chunk sizes, and the
environment the Python workers see (OMP/BLAS threads).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time

import numpy as np

from benchmarks import common


def med(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def worker_env(_):
    import threadpoolctl

    info = [(p["internal_api"], p["num_threads"]) for p in threadpoolctl.threadpool_info()]
    return [(os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS"), info)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.profile_kmeans")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=str(common.BENCH / "profile_kmeans.json"))
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from sparkml_jobs.clustering import kernels as kk
    from sparkml_jobs.clustering.lloyd import lloyd_step, prepare
    from sparkml_jobs.engine.aggregate import tree_aggregate
    from sparkml_jobs.io.read import load

    path = common.blobs_parquet(args.rows)
    centres = common.initial_centres(path, args.k)
    spark = common.spark_session(args.master, args.driver_memory, app="profile kmeans")
    sc = spark.sparkContext
    data = load(spark, str(path), "parquet")
    data.cache()
    data.blocks.count()
    points = prepare(data, "euclidean")
    points.count()
    data.unpersist()
    parts = points.getNumPartitions()
    parallel = min(parts, sc.defaultParallelism)
    r = args.repeats
    out: dict = {
        "rows": args.rows,
        "k": args.k,
        "d": 10,
        "master": sc.master,
        "partitions": parts,
        "parallelism": parallel,
        "loadavg_before": common.loadavg(),
    }
    out["points_cache"] = common.cached_bytes(sc, rdd_id=points.id())
    out["worker_env"] = (
        sc.parallelize(range(parallel), parallel).mapPartitions(worker_env).collect()
    )

    print(
        f"profiling one k-means iteration: {args.rows:,} x 10, k={args.k}, {parts} partitions, "
        f"master {sc.master}"
    )
    # 1. empty job (Python tasks, no data), and our tree_aggregate on an empty RDD
    empty = sc.parallelize([], parts)
    out["empty_job_s"] = med(
        lambda: sc.parallelize(range(parts), parts).mapPartitions(lambda it: [0]).collect(), r
    )
    out["empty_tree_aggregate_s"] = med(
        lambda: tree_aggregate(empty, 0, lambda a, b: a, lambda a, b: a), r
    )
    out["broadcast_destroy_s"] = med(lambda: sc.broadcast(centres).destroy(), r)

    # 2. touch pass: every block deserialised in the workers, nothing computed
    out["touch_pass_s"] = med(
        lambda: tree_aggregate(
            points, 0, lambda acc, block: acc + len(block.x), lambda a, b: a + b
        ),
        r,
    )
    items = points.collect()  # the blocks, to time the pieces in one process
    blocks = [block.x for block in items]
    out["blocks"] = len(blocks)
    out["block_rows"] = int(statistics.median(len(b) for b in blocks))
    payloads = [pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL) for item in items]
    out["pickled_bytes"] = sum(len(p) for p in payloads)
    out["unpickle_all_s"] = med(lambda payloads=payloads: [pickle.loads(p) for p in payloads], r)
    del items

    # 3. numpy compute per block, one thread (as one worker process would)
    with threadpool_limits(1):

        def compute(chunk_rows=kk.DEFAULT_CHUNK_ROWS):
            for x in blocks:
                kk.lloyd_partial(x, centres, None, keep_far=args.k, chunk_rows=chunk_rows)

        compute()  # warm-up: first touch of the arrays, BLAS initialisation
        out["compute_all_1thread_s"] = med(compute, r)
        out["compute_by_chunk_rows_1thread_s"] = {
            str(c): med(lambda c=c: compute(c), max(1, r // 2)) for c in (4096, 65536)
        }
        labels_d2 = []

        def assign():
            labels_d2.clear()
            for x in blocks:
                labels_d2.append(kk.assign(x, centres))

        out["compute_assign_1thread_s"] = med(assign, r)

        def sums():
            for x, (labels, _) in zip(blocks, labels_d2, strict=True):
                s = np.empty((args.k, x.shape[1]))
                for j in range(x.shape[1]):
                    s[:, j] = np.bincount(labels, weights=x[:, j], minlength=args.k)
                np.bincount(labels, minlength=args.k)

        out["compute_sums_1thread_s"] = med(sums, r)
        out["compute_far_points_1thread_s"] = med(
            lambda: [
                kk.top_farthest(d2, x, args.k) for x, (_, d2) in zip(blocks, labels_d2, strict=True)
            ],
            r,
        )
    out["compute_wall_ideal_s"] = out["compute_all_1thread_s"] / parallel

    # float32 storage lever: transfer of half the bytes
    points32 = points.map(
        lambda b: kk.PointBlock(b.x.astype(np.float32), b.w, b.counts, b.zero_norm)
    ).persist()
    points32.count()
    out["touch_pass_float32_s"] = med(
        lambda: tree_aggregate(
            points32, 0, lambda acc, block: acc + len(block.x), lambda a, b: a + b
        ),
        r,
    )
    points32.unpersist()

    # 4. the real iteration
    out["lloyd_step_s"] = med(lambda: lloyd_step(points, centres, args.k, kk.DEFAULT_CHUNK_ROWS), r)
    partial = lloyd_step(points, centres, args.k, kk.DEFAULT_CHUNK_ROWS)
    out["new_centers_s"] = med(lambda: kk.new_centers(partial, centres), r)
    out["loadavg_after"] = common.loadavg()

    transfer = max(out["touch_pass_s"] - out["empty_job_s"], 0.0)
    rest = out["lloyd_step_s"] - out["empty_job_s"] - transfer - out["compute_wall_ideal_s"]
    out["breakdown_s"] = {
        "empty_job": out["empty_job_s"],
        "jvm_to_python_transfer (touch − empty)": transfer,
        "numpy_compute (1-thread total / parallelism)": out["compute_wall_ideal_s"],
        "unexplained (lloyd_step − the above)": rest,
        "lloyd_step": out["lloyd_step_s"],
    }
    width = max(len(k) for k in out["breakdown_s"])
    print(
        f"\nper-iteration breakdown (median of {r}; "
        f"load {out['loadavg_before']}→{out['loadavg_after']}):"
    )
    for key, value in out["breakdown_s"].items():
        share = value / out["lloyd_step_s"] * 100 if out["lloyd_step_s"] else 0
        print(f"  {key:<{width}} {value * 1000:8.0f} ms  {share:5.1f}%")
    print(
        f"\n  unpickle of all blocks, one process: {out['unpickle_all_s'] * 1000:.0f} ms "
        f"({out['pickled_bytes'] / 1e6:.0f} MB pickled, {out['blocks']} blocks of "
        f"~{out['block_rows']:,} rows)"
    )
    print(
        f"  compute, 1 thread, all blocks: {out['compute_all_1thread_s'] * 1000:.0f} ms = assign "
        f"{out['compute_assign_1thread_s'] * 1000:.0f} + sums "
        f"{out['compute_sums_1thread_s'] * 1000:.0f} "
        f"+ far points {out['compute_far_points_1thread_s'] * 1000:.0f} (+ rest)"
    )
    print(
        "  compute by chunk_rows (1 thread): "
        + ", ".join(
            f"{c}: {v * 1000:.0f} ms" for c, v in out["compute_by_chunk_rows_1thread_s"].items()
        )
        + f", {kk.DEFAULT_CHUNK_ROWS}: {out['compute_all_1thread_s'] * 1000:.0f} ms"
    )
    print(
        f"  touch pass float64 {out['touch_pass_s'] * 1000:.0f} ms vs float32 "
        f"{out['touch_pass_float32_s'] * 1000:.0f} ms"
    )
    print(
        f"  empty tree_aggregate {out['empty_tree_aggregate_s'] * 1000:.0f} ms, broadcast+destroy "
        f"{out['broadcast_destroy_s'] * 1000:.1f} ms, "
        f"new_centers {out['new_centers_s'] * 1000:.1f} ms"
    )
    print(
        f"  points cache: {out['points_cache']['mem_bytes'] / 1e6:.0f} MB; worker env "
        f"(OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, pools): {out['worker_env'][0]}"
    )
    common.dump_json(args.json, out)
    print(f"\nwrote {args.json}")
    points.unpersist()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
