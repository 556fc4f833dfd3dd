"""The pure kernels never import pyspark: each imports in an interpreter where pyspark cannot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

# The modules the executors' maths lives in (numpy/scipy/pyarrow only), by design and by STYLE.md.
PURE = [
    "sparkml_jobs.errors",
    "sparkml_jobs.progress",
    "sparkml_jobs.io.blocks",
    "sparkml_jobs.io.fs_parquet",
    "sparkml_jobs.regression.stats",
    "sparkml_jobs.regression.dense",
    "sparkml_jobs.regression.rfp",
    "sparkml_jobs.regression.aliasing",
    "sparkml_jobs.regression.tsqr",
    "sparkml_jobs.regression.cv",
    "sparkml_jobs.clustering.kernels",
    "sparkml_jobs.clustering.wire",
    "sparkml_jobs.clustering.compiled",
    "sparkml_jobs.clustering.bounds",
    "sparkml_jobs.clustering.seeding",
    "sparkml_jobs.clustering.rescale",
    "sparkml_jobs.clustering.silhouette",
    "sparkml_jobs.reporting.tables",
]
# Spark wiring that still imports without pyspark (lazily or for annotations only), so its pure
# parts are unit-tested here too; the package itself must not pull pyspark in either.
SPARK_FREE_IMPORT = ["sparkml_jobs", "sparkml_jobs.engine.aggregate", "sparkml_jobs.engine.faults"]

# Installed before any import: every attempt to import pyspark (or py4j) raises ImportError.
BLOCKER = """
import importlib, importlib.abc, sys

class NoSpark(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "py4j"):
            raise ImportError(f"{name} is blocked in this interpreter")
        return None

sys.meta_path.insert(0, NoSpark())
failed = []
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failed.append(f"{module}: {exc}")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j"))
print("\\n".join(failed + [f"loaded anyway: {m}" for m in leaked]))
sys.exit(1 if failed or leaked else 0)
"""


def import_without_pyspark(modules: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pure_modules_import_without_pyspark():
    done = import_without_pyspark(PURE + SPARK_FREE_IMPORT)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


def test_the_blocker_does_block_pyspark():
    """The guard has teeth: a module that needs pyspark fails to import under it."""
    done = import_without_pyspark(["sparkml_jobs.errors", "sparkml_jobs.session"])
    assert done.returncode == 1
    assert done.stdout.strip().splitlines() == [
        "sparkml_jobs.session: pyspark is blocked in this interpreter"
    ]


def test_every_listed_module_exists():
    for module in PURE + SPARK_FREE_IMPORT[1:]:
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_git_grep_lists_no_pure_module():
    done = subprocess.run(
        ["git", "grep", "--untracked", "-l", "pyspark", "--", "sparkml_jobs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode not in (0, 1):  # 1: nothing found; anything else: not a git work tree
        pytest.skip(f"git grep unavailable: {done.stderr.strip()}")
    listed = set(done.stdout.split())
    assert "sparkml_jobs/session.py" in listed  # the search itself works
    pure_files = {module.replace(".", "/") + ".py" for module in PURE}
    assert not listed & pure_files, sorted(listed & pure_files)
