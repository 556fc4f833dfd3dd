"""Shared benchmark plumbing: synthetic data, machine info, process-tree memory, Spark helpers.

Everything here is used both by the in-process benchmark (:mod:`benchmarks.run`) and by the
one-job-per-process scripts it launches (:mod:`benchmarks.mllib_job`, :mod:`benchmarks.local_job`).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"  # gitignored
CHUNK_ROWS = 250_000
SEED = 20240601


# --------------------------------------------------------------------------- synthetic data


def _write_chunks(path: Path, names: list[str], chunks, row_group_rows: int) -> Path:
    """Write numpy chunks as one Parquet file, atomically (temp name, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    schema = pa.schema([pa.field(n, pa.float64()) for n in names])
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for chunk in chunks:
            table = pa.Table.from_arrays(
                [pa.array(chunk[:, j]) for j in range(chunk.shape[1])], schema=schema
            )
            writer.write_table(table, row_group_size=row_group_rows)
    os.replace(tmp, path)
    return path


def regression_truth(p: int, seed: int = SEED) -> tuple[np.ndarray, float, float]:
    """(coefficients, intercept, noise sd) of the synthetic regression problem."""
    rng = np.random.default_rng([seed, p, 1])
    return rng.uniform(-2.0, 2.0, p), 3.0, 0.5


def regression_parquet(
    rows: int,
    p: int = 20,
    seed: int = SEED,
    row_group_rows: int = 131_072,
    chunk_rows: int = CHUNK_ROWS,
) -> Path:
    """``f1..fp, label`` with label = 3 + x·β + N(0, 0.5²); cached by a size-keyed name."""
    path = DATA / f"linreg_r{rows}_p{p}_s{seed}.parquet"
    if path.exists():
        return path
    beta, b0, sd = regression_truth(p, seed)

    def chunks():
        for i, start in enumerate(range(0, rows, chunk_rows)):
            n = min(chunk_rows, rows - start)
            rng = np.random.default_rng([seed, p, 2, i])
            x = rng.standard_normal((n, p))
            y = x @ beta + b0 + sd * rng.standard_normal(n)
            yield np.column_stack([x, y])

    return _write_chunks(
        path, [f"f{j + 1}" for j in range(p)] + ["label"], chunks(), row_group_rows
    )


def blob_centres(d: int, blobs: int, seed: int = SEED) -> np.ndarray:
    # Centres ~ N(0, 1.6²) per coordinate with unit-variance blobs: the blobs overlap, so Lloyd
    # keeps moving boundary points for many iterations and every system runs all 20 of them.
    return np.random.default_rng([seed, d, blobs, 3]).normal(0.0, 1.6, (blobs, d))


def blobs_parquet(
    rows: int,
    d: int = 10,
    blobs: int = 10,
    seed: int = SEED,
    row_group_rows: int = 131_072,
    chunk_rows: int = CHUNK_ROWS,
) -> Path:
    """``f1..fd`` drawn from ``blobs`` Gaussian blobs (unit variance); cached by size."""
    path = DATA / f"kmeans_r{rows}_d{d}_c{blobs}_s{seed}.parquet"
    if path.exists():
        return path
    centres = blob_centres(d, blobs, seed)

    def chunks():
        for i, start in enumerate(range(0, rows, chunk_rows)):
            n = min(chunk_rows, rows - start)
            rng = np.random.default_rng([seed, d, 4, i])
            labels = rng.integers(0, blobs, n)
            yield centres[labels] + rng.standard_normal((n, d))

    return _write_chunks(path, [f"f{j + 1}" for j in range(d)], chunks(), row_group_rows)


def initial_centres(path: Path, k: int, seed: int = SEED) -> np.ndarray:
    """k rows of the data set picked at random (seeded): the shared starting centres."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    first = meta.read_row_group(0)
    x = table_to_numpy(first, first.column_names)
    idx = np.random.default_rng([seed, k, 5]).choice(len(x), size=k, replace=False)
    return x[np.sort(idx)]


def write_centres_csv(centres: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{j + 1}" for j in range(centres.shape[1])])
        for row in centres:
            writer.writerow([repr(float(v)) for v in row])
    os.replace(tmp, path)  # atomic: a concurrent run never reads half a file
    return path


def read_centres_csv(path: str | Path) -> np.ndarray:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return np.array([[float(v) for v in r] for r in rows[1:] if r])


def table_to_numpy(table, columns: list[str]) -> np.ndarray:
    """Arrow table columns → a C-contiguous float64 (rows, len(columns)) array."""
    out = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        out[:, j] = table.column(name).to_numpy()
    return out


def parquet_to_numpy(
    path: str | Path, columns: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    names = columns or table.column_names
    return table_to_numpy(table, names), names


def kmeans_cost(x: np.ndarray, centres: np.ndarray, chunk: int = 65_536) -> float:
    """Σ min_c ‖x − c‖², computed the same way for every system's centres."""
    total = 0.0
    c_sq = (centres * centres).sum(axis=1)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        d2 = (part * part).sum(axis=1)[:, None] - 2.0 * part @ centres.T + c_sq
        lab = d2.argmin(axis=1)
        diff = part - centres[lab]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


# --------------------------------------------------------------------------- machine info


def machine_info() -> dict:
    info: dict = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for mod in ("pyspark", "numpy", "pyarrow", "sklearn", "scipy", "pandas"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional
            versions[mod] = None
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        versions["java"] = (out.stderr or out.stdout).splitlines()[0]
    except Exception:  # noqa: BLE001
        versions["java"] = None
    try:
        import threadpoolctl

        versions["blas"] = sorted(
            {
                f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)"
                for p in threadpoolctl.threadpool_info()
            }
        )
    except Exception:  # noqa: BLE001
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "sparkml_jobs"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["git"] = commit + (" (+ uncommitted changes in sparkml_jobs/)" if dirty else "")
    except Exception:  # noqa: BLE001
        pass
    info["versions"] = versions
    return info


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


# --------------------------------------------------------------------------- process-tree memory


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_pss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes (0, 0 if it is gone)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


def _role(pid: int, root: int) -> str:
    """Which part of a job a process is: the launching process (``root``), its JVM, Python
    workers, or the job's own driver (a Python child of the root)."""
    if pid == root:
        return "root"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except OSError:
        return "other"
    if b"java" in cmdline.split(b"\0", 1)[0]:
        return "jvm"
    if b"pyspark.daemon" in cmdline or b"pyspark.worker" in cmdline:
        return "workers"
    return "driver" if b"python" in cmdline else "other"


@dataclass
class TreeMemory:
    """Polls the process tree under ``pid`` and keeps the peaks (sum over the tree, largest one),
    with the split of the peak by role (:func:`_role`) and each role's own peak."""

    pid: int
    interval: float = 0.1
    peak_rss_sum: int = 0
    peak_pss_sum: int = 0
    peak_single_rss: int = 0
    max_processes: int = 0
    samples: int = 0
    at_peak: dict = field(default_factory=dict)
    role_peaks: dict = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            values = [_rss_pss(p) for p in pids]
            rss = sum(v[0] for v in values)
            if rss:
                self.samples += 1
                roles: dict[str, int] = {}
                for p, v in zip(pids, values, strict=True):
                    role = _role(p, self.pid)
                    roles[role] = roles.get(role, 0) + v[0]
                for role, value in roles.items():
                    self.role_peaks[role] = max(self.role_peaks.get(role, 0), value)
                if rss > self.peak_rss_sum:
                    self.at_peak = roles | {"at": time.strftime("%H:%M:%S")}
                self.peak_rss_sum = max(self.peak_rss_sum, rss)
                self.peak_pss_sum = max(self.peak_pss_sum, sum(v[1] for v in values))
                self.peak_single_rss = max(self.peak_single_rss, max(v[0] for v in values))
                self.max_processes = max(self.max_processes, len(pids))
            self._stop.wait(self.interval)

    def stop(self) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return {
            "peak_rss_sum_bytes": self.peak_rss_sum,
            "peak_pss_sum_bytes": self.peak_pss_sum,
            "peak_single_process_rss_bytes": self.peak_single_rss,
            "max_processes": self.max_processes,
            "samples": self.samples,
            "peak_rss_by_role_bytes": self.at_peak,
            "role_peak_rss_bytes": self.role_peaks,
        }


def run_process(
    cmd: list[str], log_path: Path, env: dict | None = None, timeout: float = 3600
) -> dict:
    """Run ``cmd`` as a fresh process; wall time, exit code and the tree's peak memory."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = loadavg()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        monitor = TreeMemory(proc.pid).start()
        timed_out = False
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)  # the job's own process group: driver + JVM
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
        seconds = time.perf_counter() - started
        memory = monitor.stop()
    return {
        "seconds": seconds,
        "exit_code": code,
        "timed_out": timed_out,
        "log": str(log_path.relative_to(ROOT)),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        **memory,
    }


# --------------------------------------------------------------------------- Spark helpers


def spark_session(
    master: str, driver_memory: str, app: str = "sparkml-jobs-bench", extra: dict | None = None
):
    """The same SparkSession settings for every Spark system in the benchmark."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from sparkml_jobs.session import get_session

    conf = {"spark.driver.memory": driver_memory, "spark.ui.enabled": "false", **(extra or {})}
    return get_session(master, app_name=app, conf=conf)


def storage_info(sc) -> dict[int, dict]:
    """Spark's view of the cached RDDs: id → {name, mem, disk, cached/total partitions}."""
    out = {}
    for info in sc._jsc.sc().getRDDStorageInfo():
        out[int(info.id())] = {
            "name": str(info.name()),
            "mem_bytes": int(info.memSize()),
            "disk_bytes": int(info.diskSize()),
            "cached_partitions": int(info.numCachedPartitions()),
            "partitions": int(info.numPartitions()),
            "storage_level": str(info.storageLevel().description()),
        }
    return out


def cached_bytes(sc, before: dict[int, dict] | None = None, rdd_id: int | None = None) -> dict:
    """Bytes Spark reports for one cached RDD (by id) or for the RDDs cached since ``before``."""
    now = storage_info(sc)
    if rdd_id is not None:
        picked = {rdd_id: now[rdd_id]} if rdd_id in now else {}
    else:
        picked = {i: v for i, v in now.items() if i not in (before or {})}
    return {
        "mem_bytes": sum(v["mem_bytes"] for v in picked.values()),
        "disk_bytes": sum(v["disk_bytes"] for v in picked.values()),
        "cached_partitions": sum(v["cached_partitions"] for v in picked.values()),
        "partitions": sum(v["partitions"] for v in picked.values()),
        "rdds": [v["name"][:80] for v in picked.values()],
    }


def assembled_frame(spark, path: str | Path, features: list[str], label: str | None = None):
    """Parquet → VectorAssembler'd DataFrame (``features`` [+ ``label``]), as MLlib users do."""
    from pyspark.ml.feature import VectorAssembler

    frame = spark.read.parquet(str(path))
    out = VectorAssembler(inputCols=features, outputCol="features").transform(frame)
    return out.select("features", *([label] if label else []))


def jvm_vector_rdd(spark, assembled):
    """The JVM ``RDD[mllib.linalg.Vector]`` of an assembled frame (no Python on the data path).

    ``RowMatrix`` accepts a DataFrame of one mllib-vector column and exposes its rows as a JVM RDD.
    """
    from pyspark.mllib.linalg.distributed import RowMatrix
    from pyspark.mllib.util import MLUtils

    mllib_frame = MLUtils.convertVectorColumnsFromML(assembled.select("features"), "features")
    return RowMatrix(mllib_frame)._java_matrix_wrapper._java_model.rows()


def jvm_kmeans_model(spark, centres: np.ndarray):
    """A JVM ``mllib.clustering.KMeansModel`` holding ``centres`` (for ``setInitialModel``)."""
    gateway = spark.sparkContext._gateway
    jvm = spark.sparkContext._jvm
    vectors = gateway.new_array(jvm.org.apache.spark.mllib.linalg.Vector, len(centres))
    for i, row in enumerate(centres):
        values = gateway.new_array(gateway.jvm.double, len(row))
        for j, v in enumerate(row):
            values[j] = float(v)
        vectors[i] = jvm.org.apache.spark.mllib.linalg.Vectors.dense(values)
    return jvm.org.apache.spark.mllib.clustering.KMeansModel(vectors)


def jvm_kmeans(
    spark, k: int, max_iter: int, epsilon: float, centres: np.ndarray | None = None, seed: int = 0
):
    jvm = spark.sparkContext._jvm
    algo = (
        jvm.org.apache.spark.mllib.clustering.KMeans()
        .setK(k)
        .setMaxIterations(max_iter)
        .setEpsilon(float(epsilon))
        .setSeed(seed)
    )
    if centres is not None:
        algo = algo.setInitialModel(jvm_kmeans_model(spark, centres))
    return algo


def jvm_centres(jmodel) -> np.ndarray:
    return np.array([list(v.toArray()) for v in jmodel.clusterCenters()])


def dump_json(path: str | Path, document: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)
