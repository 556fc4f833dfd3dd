"""Failures on real Spark: failed task attempts, a killed executor, and a long k-means run.

* Task failures: ``sparkml_jobs.engine.faults`` fails the first attempt of chosen tasks of every
  aggregation (``spark.executorEnv.SPARKML_JOBS_FAIL_FIRST_ATTEMPT``) on master ``local[2,4]``
  (up to 4 attempts per task). Spark's event log proves the failures happened and were retried;
  the models must be *identical* to the undisturbed run: partials are pure functions of their
  partition and are merged in partition order.
* Executor loss: on ``local-cluster[2,1,1024]`` one executor JVM is SIGKILLed in the middle of a
  k-means fit; its cached blocks are recomputed from lineage (the event log shows the input read
  again) and the model is identical to an undisturbed run on the same master.
* 500 Lloyd iterations in one fit (Python API): broadcast files, cached RDDs and the driver's peak
  RSS stay flat, sampled at every iteration (no timing).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sparkml_jobs.engine import faults
from tests.conftest import peak_rss_mb, reset_peak_rss
from tests.e2e import helpers
from tests.e2e.helpers import SPLIT, finish, job_args, model_numbers, script_env

# --------------------------------------------------------------------------- helpers


def start_sh(submit_opts: list[str], args: list[str]) -> subprocess.Popen:
    """``run.sh`` with the fault hook's variable only ever through ``spark.executorEnv``."""
    return helpers.start_sh(submit_opts, args, script_env(faults.ENV_VAR))


def event_log_conf(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        "--conf",
        "spark.eventLog.enabled=true",
        "--conf",
        f"spark.eventLog.dir={directory.as_uri()}",
        "--conf",
        "spark.eventLog.compress=false",
        "--conf",
        "spark.eventLog.rolling.enabled=false",
    ]


def events(directory: Path) -> list[dict]:
    files = [f for f in directory.iterdir() if not f.name.startswith(".")]
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def job_results(log: list[dict]) -> list[str]:
    return [e["Job Result"]["Result"] for e in log if e["Event"] == "SparkListenerJobEnd"]


# --------------------------------------------------------------------------- the hook itself


def test_hook_selection_and_no_op(monkeypatch):
    assert faults.selected("all", 7) and faults.selected("*", 0)
    assert faults.selected("0, 2", 2) and not faults.selected("0,2", 1)
    with pytest.raises(ValueError, match=faults.ENV_VAR):
        faults.selected("first", 0)
    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    faults.maybe_fail(0)  # unset: nothing happens
    monkeypatch.setenv(faults.ENV_VAR, "all")
    faults.maybe_fail(0)  # set, but not inside a Spark task (the driver): nothing happens


# --------------------------------------------------------------------------- failed task attempts


@pytest.mark.slow
def test_failed_task_attempts_are_retried_to_the_identical_model(local_models, work):
    # k-means: every task of every aggregation fails once; linreg: only partition 0's tasks
    selection = {"kmeans": "all", "linreg": "0"}
    started = {}
    for job, spec in selection.items():
        started[job] = start_sh(
            [
                "--master",
                "local[2,4]",
                "--conf",
                "spark.ui.enabled=false",
                "--conf",
                f"spark.sql.files.maxPartitionBytes={SPLIT[job]}",
                "--conf",
                f"spark.executorEnv.{faults.ENV_VAR}={spec}",
                *event_log_conf(work / f"events-{job}"),
            ],
            # k-means: the one-job-per-iteration path, where every iteration is an aggregation
            # to fail (the reference ran the default mode: the models must still be identical)
            job_args(job, work / f"faulty-{job}", work / "init.csv")
            + (["--mode", "broadcast"] if job == "kmeans" else []),
        )
    for job, proc in started.items():
        done = finish(proc, 900, check=True)
        assert f"model saved to {work / f'faulty-{job}'}" in done.stderr
        log = events(work / f"events-{job}")
        assert job_results(log) and set(job_results(log)) == {"JobSucceeded"}
        ends = [e for e in log if e["Event"] == "SparkListenerTaskEnd"]
        injected = [
            e
            for e in ends
            if e["Task End Reason"]["Reason"] == "ExceptionFailure"
            and "InjectedFault" in json.dumps(e["Task End Reason"])
        ]
        assert len(injected) >= 2, job
        other_failures = [
            e for e in ends if e["Task End Reason"]["Reason"] != "Success" and e not in injected
        ]
        assert not other_failures, other_failures[:1]
        succeeded = {
            (e["Stage ID"], e["Task Info"]["Partition ID"], e["Task Info"]["Attempt"])
            for e in ends
            if e["Task End Reason"]["Reason"] == "Success"
        }
        for e in injected:  # each failed first attempt was retried, and the retry succeeded
            stage, partition = e["Stage ID"], e["Task Info"]["Partition ID"]
            assert e["Task Info"]["Attempt"] == 0
            assert (stage, partition, 1) in succeeded, (job, stage, partition)
            if selection[job] != "all":
                assert partition == int(selection[job])
        # identical, not merely close: same partials, merged in the same order
        got, want = model_numbers(work / f"faulty-{job}"), model_numbers(local_models[job])
        for numbers in (got, want):  # which path ran (and why) is the only allowed difference
            for key in ("mode", "mode_reason"):
                numbers.get("summary", {}).pop(key, None)
        assert got == want, job


# --------------------------------------------------------------------------- executor loss

N_ROWS, K, MAX_ITER, SPLIT_LOSS = 60_000, 30, 25, "256k"
LOSS_PARTITIONS = 4


def executor_jvms(ancestor: int) -> dict[int, str]:
    """pid → executor id of the CoarseGrainedExecutorBackend JVMs descending from ``ancestor``."""
    parents, found = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    for pid in parents:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" not in cmdline:
            continue
        chain, node = set(), pid
        while node in parents and node not in chain and node > 1:
            chain.add(node)
            node = parents[node]
        if ancestor in chain:
            found[pid] = cmdline[cmdline.index(b"--executor-id") + 1].decode()
    return found


@pytest.fixture(scope="module")
def grid_csv(tmp_path_factory) -> tuple[Path, Path]:
    """Points on a jittered line (Lloyd drifts slowly: no convergence in 25 steps) + init."""
    path = tmp_path_factory.mktemp("executor-loss")
    rng = np.random.default_rng(2024)
    a = np.arange(N_ROWS) / 10.0 + rng.uniform(-0.01, 0.01, N_ROWS)
    b = rng.uniform(0.0, 1.0, N_ROWS)
    rows = np.column_stack([a, b])
    np.savetxt(path / "grid.csv", rows, fmt="%.5f", delimiter=",", header="a,b", comments="")
    np.savetxt(path / "init.csv", rows[:K], fmt="%.5f", delimiter=",", header="a,b", comments="")
    return path / "grid.csv", path / "init.csv"


def loss_run(csv: Path, init: Path, out: Path, events_dir: Path) -> subprocess.Popen:
    return start_sh(
        [
            "--master",
            "local-cluster[2,1,1024]",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            f"spark.sql.files.maxPartitionBytes={SPLIT_LOSS}",
            *event_log_conf(events_dir),
        ],
        [
            "kmeans",
            "fit",
            "--input",
            str(csv),
            "--k",
            str(K),
            "--init",
            str(init),
            "--max-iter",
            str(MAX_ITER),
            "--tol",
            "0",
            "--mode",  # lineage recovery between iterations: the one-job-per-iteration path
            "broadcast",
            "--partitions",  # a small CSV is read whole (multiLine): spread it over both executors
            str(LOSS_PARTITIONS),
            "--output",
            str(out),
        ],
    )


def local_loss_reference(spark, csv: Path, init: Path, out: Path) -> dict:
    """The executor-loss fit in-process on the shared local[2] session, same splits and mode."""
    from sparkml_jobs.cli import main

    spark.conf.set("spark.sql.files.maxPartitionBytes", SPLIT_LOSS)
    try:
        args = [
            "kmeans", "fit", "--input", str(csv), "--k", str(K), "--init", str(init),
            "--max-iter", str(MAX_ITER), "--tol", "0", "--mode", "broadcast",
            "--partitions", str(LOSS_PARTITIONS), "--output", str(out),
        ]  # fmt: skip
        assert main(args) == 0
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    return model_numbers(out)


@pytest.mark.slow
def test_killed_executor_is_recovered_from_lineage_to_the_identical_model(
    spark, grid_csv, tmp_path
):
    """The reference is the same fit in embedded local mode (same splits, same mode): partials
    are merged in partition order whatever the master, so the disturbed local-cluster model must
    equal it bit for bit (one local-cluster run, not a second undisturbed one beside it)."""
    csv, init = grid_csv
    proc = loss_run(csv, init, tmp_path / "disturbed", tmp_path / "events-kill")
    lines: list[str] = []
    second_iteration = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if re.search(r"\biteration 2\b", line):
                second_iteration.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    killed = None
    try:
        deadline = time.monotonic() + 600
        while not second_iteration.wait(0.2):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines[-50:])
        executors = executor_jvms(proc.pid)
        wait_until = time.monotonic() + 30  # the second executor may still be starting
        while len(executors) < 2 and time.monotonic() < wait_until:
            time.sleep(0.5)
            executors = executor_jvms(proc.pid)
        assert executors, "no executor JVM found under this run"
        killed = min(executors, key=lambda pid: int(executors[pid]))  # the oldest, "0"
        os.kill(killed, signal.SIGKILL)
        # the reference fits in this process while the disturbed run recovers
        want = local_loss_reference(spark, csv, init, tmp_path / "local")
        stdout = proc.stdout.read()
        code = proc.wait(timeout=900)
        stderr = "".join(lines)
        assert code == 0, f"exit {code}\n{stdout}\n{stderr[-6000:]}"
    finally:
        if proc.poll() is None:  # only on failures: it has ended otherwise
            proc.terminate()  # run.sh passes it on to spark-submit
            proc.wait(timeout=60)
        reader.join(timeout=60)
    log = events(tmp_path / "events-kill")
    assert set(job_results(log)) == {"JobSucceeded"}
    removed = [
        i
        for i, e in enumerate(log)
        if e["Event"] == "SparkListenerExecutorRemoved" and e["Executor ID"] == executors[killed]
    ]
    assert removed, "the killed executor was never reported lost"
    tasks = [
        e["Stage Info"]["Number of Tasks"]
        for e in log[: removed[0]]
        if e["Event"] == "SparkListenerStageSubmitted"
    ]
    assert max(tasks) >= 3, "the input should be split over both executors"
    after = log[removed[0] :]
    assert any(e["Event"] == "SparkListenerJobStart" for e in after), "no job ran after the loss"
    # the lost cached blocks were rebuilt from lineage: tasks after the loss read the CSV again
    reread = [
        e
        for e in after
        if e["Event"] == "SparkListenerTaskEnd"
        and e["Task End Reason"]["Reason"] == "Success"
        and e.get("Task Metrics", {}).get("Input Metrics", {}).get("Bytes Read", 0) > 0
    ]
    assert reread, "no task re-read the input after the executor was lost"

    got = model_numbers(tmp_path / "disturbed")
    assert want["summary"]["n_iter"] == MAX_ITER
    # identical, not merely close: local-cluster (separate executor JVMs, one of them killed)
    # against embedded local mode
    assert got == want


# --------------------------------------------------------------------------- 500 iterations


class IterationProbe(logging.Handler):
    """Samples the driver at every Lloyd iteration's log line: a fixed number of samples whatever
    the load, where a timed sampling thread may be starved or outrun."""

    def __init__(self, temp_dir: str, baseline_at: int) -> None:
        super().__init__(logging.INFO)
        self.temp_dir, self.baseline_at = temp_dir, baseline_at
        self.files: list[int] = []  # broadcast files on disk once each iteration ended
        self.baseline_mb = float("nan")

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("iteration "):
            return
        self.files.append(len(os.listdir(self.temp_dir)))
        if len(self.files) == self.baseline_at:  # warmed up: a new peak starts here
            reset_peak_rss()
            self.baseline_mb = peak_rss_mb()


@pytest.mark.slow
def test_500_lloyd_iterations_keep_broadcasts_cache_and_memory_flat(spark):
    """One fit, 500 iterations (tol=0 on data that cannot converge that fast): every broadcast is
    destroyed, lineage and the cache stay one RDD, the driver's memory stays flat."""
    from sparkml_jobs.clustering import estimator as K
    from sparkml_jobs.clustering import lloyd
    from sparkml_jobs.io import dataset as D

    rng = np.random.default_rng(500)
    # points on a jittered line, centres crowded at one end: Lloyd spreads them out one step at
    # a time and needs ~800 iterations to stop
    x = (np.arange(2000) + rng.uniform(-0.1, 0.1, 2000))[:, None]
    init = x[:30].copy()
    data = D.from_numpy(spark, x, num_partitions=2)
    sc = spark.sparkContext
    persisted_before = len(sc._jsc.getPersistentRDDs())
    files_before = len(os.listdir(sc._temp_dir))
    probe = IterationProbe(sc._temp_dir, baseline_at=100)
    logger = logging.getLogger(lloyd.__name__)
    saved = logger.level, logger.propagate
    logger.addHandler(probe)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # 500 progress lines are not this test's output
    try:
        estimator = K.KMeans(k=30, initial_centers=init, max_iter=500, tol=0, mode="broadcast")
        model = estimator.fit(data)
    finally:
        logger.removeHandler(probe)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

    assert model.summary.n_iter == 500 and not model.summary.converged
    assert len(model.summary.history) == 500
    assert len(probe.files) == 500
    assert set(probe.files) == {files_before}  # each iteration's broadcast gone before the next
    assert len(os.listdir(sc._temp_dir)) == files_before
    assert len(sc._jsc.getPersistentRDDs()) == persisted_before  # the fit's cache released
    # driver memory: what the first 100 iterations needed is enough for the other 400
    growth = peak_rss_mb() - probe.baseline_mb
    assert growth < 40, (probe.baseline_mb, growth)
    # and the result is plain Lloyd's, computed naively in numpy (no cluster empties here)
    centers = init.copy()
    for _ in range(500):
        labels = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        centers = np.array([x[labels == j].mean(axis=0) for j in range(30)])
    np.testing.assert_allclose(model.centers, centers, rtol=1e-9, atol=1e-9)
