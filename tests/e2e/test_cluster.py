"""A real Spark standalone cluster (``submit/cluster.sh``) and ``local-cluster`` runs.

One master + two workers (1 core, 1 GiB each) from the pip-installed pyspark, started once for the
module and always stopped by the fixture's finalizer. Both jobs are submitted through
``submit/run.sh --master spark://…`` with inputs split into several partitions, so both workers hold
data, and must give the model of the embedded local run (same partitioning) to 1e-9. (The
``local-cluster[2,1,1024]`` master is checked against local mode in ``test_faults.py``, whose
executor-loss test runs on it anyway.)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA, ROOT
from tests.e2e.helpers import job_args, run_sh, script_env, split_conf

CLUSTER = ROOT / "submit" / "cluster.sh"

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- helpers


def env_for(cluster_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """``script_env`` with no inherited ``SPARK_AUTH_SECRET`` (only ever the one in ``extra``)."""
    env = script_env("SPARK_AUTH_SECRET", **extra)
    if cluster_dir is not None:
        env["SPARKML_CLUSTER_DIR"] = str(cluster_dir)
    return env


def cluster_sh(action: str, cluster_dir: Path, timeout: float = 180, **extra: str):
    return subprocess.run(
        [str(CLUSTER), action],
        env=env_for(cluster_dir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def submit(submit_opts: list[str], args: list[str], **extra: str) -> subprocess.CompletedProcess:
    """``run.sh`` to a cluster; must exit 0."""
    return run_sh(submit_opts, args, env=env_for(None, **extra), check=True)


def fitted(path: Path) -> np.ndarray:
    doc = json.loads((Path(path) / "model.json").read_text())
    assert (Path(path) / "_SUCCESS").exists()
    if doc["kind"] == "kmeans":
        return np.array(doc["centers"], dtype=float)
    return np.array([doc["intercept"], *doc["coefficients"]], dtype=float)


def assert_same_model(path: Path, reference: Path) -> None:
    got, want = fitted(path), fitted(reference)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def master_json(cluster_dir: Path) -> dict:
    ports = dict(item.split("=") for item in (cluster_dir / "ports").read_text().split())
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['webui']}/json/", timeout=10) as r:
        return json.load(r)


def pids(cluster_dir: Path) -> dict[str, int]:
    return {f.stem: int(f.read_text()) for f in cluster_dir.glob("*.pid")}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until_dead(named_pids: dict[str, int], timeout: float = 30) -> list[str]:
    """The names whose process is still alive after up to ``timeout`` s of polling (a process
    signalled a moment ago, e.g. SIGKILLed by ``cluster.sh stop``, may not have exited yet)."""
    deadline = time.monotonic() + timeout
    while (living := [n for n, pid in named_pids.items() if alive(pid)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    return living


def poll(condition, timeout: float):
    """``condition()``'s first truthy value, polled until ``timeout`` s; its last value then."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def listening_addresses(pid: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets ``pid`` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                found.append(fields[1].split(":")[0])
    return found


def is_loopback(hex_address: str) -> bool:
    v4 = "0100007F"  # 127.0.0.1, little-endian
    return hex_address in (v4, "00000000000000000000000001000000") or (
        hex_address == "0000000000000000FFFF0000" + v4
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master + 2 workers on loopback; stopped by the finalizer whatever happens
    (after this module: idle daemons would take CPU from the rest of the suite)."""
    state = tmp_path_factory.mktemp("cluster")
    try:
        proc = cluster_sh("start", state)
        assert proc.returncode == 0, proc.stderr[-4000:]
        url = proc.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"spark://127\.0\.0\.1:\d+", url), proc.stdout
        yield {"url": url, "dir": state}
    finally:
        started_pids = pids(state)
        stop = cluster_sh("stop", state)
        assert stop.returncode == 0, stop.stderr
        assert not wait_until_dead(started_pids), stop.stderr


# --------------------------------------------------------------------------- tests


def test_cluster_is_up_on_loopback_only(cluster):
    state = cluster["dir"]
    status = cluster_sh("status", state)
    assert status.returncode == 0 and "running" in status.stdout.splitlines()[-1]
    assert cluster["url"] in status.stdout
    doc = master_json(state)
    assert doc["status"] == "ALIVE"
    assert len([w for w in doc["workers"] if w["state"] == "ALIVE"]) == 2
    assert all(
        w["host"] == "127.0.0.1" and w["cores"] == 1 and w["memory"] == 1024 for w in doc["workers"]
    )
    started = pids(state)
    assert set(started) == {"master", "worker-1", "worker-2"}
    for name, pid in started.items():
        addresses = listening_addresses(pid)
        assert addresses, name
        assert all(is_loopback(a) for a in addresses), (name, addresses)
    # a second start is a no-op that prints the same URL
    again = cluster_sh("start", state)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == cluster["url"]
    assert pids(state) == started


@pytest.fixture(scope="module")
def cluster_fit(cluster, work):
    """``cluster_fit(job)``: ``job`` submitted to the cluster once per module (input split as
    ``SPLIT`` says), as (output directory, spark-submit's process, the master's new completed
    applications). k-means reads and writes through file:// URIs: Hadoop's FileSystem on the
    driver, Spark's readers on the executors; its model is also what the predict test scores."""
    done: dict[str, tuple] = {}

    def fit(job: str) -> tuple:
        if job in done:
            return done[job]
        before = {app["id"] for app in master_json(cluster["dir"]).get("completedapps", [])}
        out = work / f"cluster-{job}"
        args = job_args(job, out, work / "init.csv")
        if job == "kmeans":
            uris = {str(DATA / "iris.csv"): (DATA / "iris.csv").as_uri(), str(out): out.as_uri()}
            args = [uris.get(a, a) for a in args]
            assert set(uris.values()) <= set(args)
        proc = submit(
            ["--master", cluster["url"], "--conf", "spark.ui.enabled=false", *split_conf(job)],
            args,
        )

        def new_completed_apps() -> list[dict]:
            completed = master_json(cluster["dir"]).get("completedapps", [])
            return [app for app in completed if app["id"] not in before]

        # the master files the application as completed asynchronously, after spark-submit exits
        done[job] = (out, proc, poll(new_completed_apps, timeout=60))
        return done[job]

    return fit


@pytest.mark.parametrize("job", ["linreg", "kmeans"])
def test_jobs_on_the_standalone_cluster_match_local_mode(cluster, cluster_fit, local_models, job):
    out, proc, apps = cluster_fit(job)
    assert f"master={cluster['url']}" in proc.stderr
    assert_same_model(out, local_models[job])
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED", apps
    # both workers ran an executor of this application (the input had several partitions)
    for worker in (1, 2):
        assert (cluster["dir"] / f"work-{worker}" / apps[0]["id"]).is_dir(), worker


def test_predict_with_file_uris_on_the_cluster(cluster, cluster_fit, work):
    """Predictions named by file:// URIs (executors write them, the driver commits them), from
    the model the k-means cluster run wrote through file:// URIs (no second fit)."""
    model, preds = cluster_fit("kmeans")[0], work / "cluster-uri-preds"
    predict = [
        "kmeans",
        "predict",
        "--model",
        model.as_uri(),
        "--input",
        (DATA / "iris.csv").as_uri(),
        "--output",
        preds.as_uri(),
    ]
    submit(["--master", cluster["url"], "--conf", "spark.ui.enabled=false"], predict)
    assert (model / "_SUCCESS").exists() and (preds / "_SUCCESS").exists()
    centres = np.array(json.loads((model / "model.json").read_text())["centers"])
    x = pd.read_csv(DATA / "iris.csv").to_numpy(float)
    got = pd.read_parquet(preds)
    expected = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = got[features].astype(float).to_numpy()
    assert sorted(map(tuple, np.column_stack([rows, got["cluster"]]))) == sorted(
        map(tuple, np.column_stack([x, expected]))
    )
    assert not list(work.glob(".cluster-*"))  # no temporary sibling left


def test_authenticated_cluster(tmp_path, local_models, work):
    """``SPARK_AUTH_SECRET``: master, worker and the application share a secret, never on a
    command line (one worker this time: the cheapest cluster that still authenticates)."""
    secret = secrets.token_hex(16)
    state = tmp_path / "auth-cluster"
    try:
        proc = cluster_sh("start", state, SPARK_AUTH_SECRET=secret, SPARKML_WORKERS="1")
        assert proc.returncode == 0, proc.stderr[-4000:]
        url = proc.stdout.strip().splitlines()[-1]
        assert (state / "daemon.properties").stat().st_mode & 0o077 == 0
        for name in ("master", "worker-1"):
            assert "authentication enabled" in (state / "logs" / f"{name}.out").read_text(), name
        out = work / "auth-kmeans"
        submit(
            ["--master", url, "--conf", "spark.ui.enabled=false", *split_conf("kmeans")],
            job_args("kmeans", out, work / "init.csv"),
            SPARK_AUTH_SECRET=secret,
        )
        assert_same_model(out, local_models["kmeans"])
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                assert secret not in cmdline.read_bytes().decode(errors="replace"), cmdline
            except OSError:
                continue
    finally:
        started_pids = pids(state) if state.exists() else {}
        stop = cluster_sh("stop", state)
        assert stop.returncode == 0, stop.stderr
        assert not wait_until_dead(started_pids), stop.stderr
    status = cluster_sh("status", state)
    assert status.returncode == 3 and status.stdout.strip() == "not running"
