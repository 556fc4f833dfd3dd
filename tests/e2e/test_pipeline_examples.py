"""The scheduling examples in submit/: the Airflow DAG (imported if Airflow is installed, else
parsed and checked) and the crontab (every job line well-formed and calling submit/run.sh)."""

from __future__ import annotations

import ast
import importlib.util
import re

import pytest

from tests.conftest import ROOT

DAG_FILE = ROOT / "submit" / "airflow_dag.py"


def test_airflow_dag_imports_or_parses():
    if importlib.util.find_spec("airflow") is not None:
        spec = importlib.util.spec_from_file_location("sparkml_dag", DAG_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from airflow import DAG

        dags = [v for v in vars(module).values() if isinstance(v, DAG)]
        assert len(dags) == 1 and len(dags[0].tasks) >= 2
        return
    tree = ast.parse(DAG_FILE.read_text())
    source = DAG_FILE.read_text()
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert {"DAG", "SparkSubmitOperator"} <= imported
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert any(getattr(c.func, "id", None) == "DAG" for c in calls)
    assert re.search(r'schedule="0 3 \* \* \*"', source)  # daily
    assert "linreg" in source and "kmeans" in source and "entry.py" in source


def test_crontab_example_lines_are_well_formed():
    jobs = []
    for line in (ROOT / "submit" / "crontab.example").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        for field in fields[:5]:
            assert re.fullmatch(r"[\d*/,\-]+", field), line
        jobs.append(fields[5])
    assert len(jobs) >= 2
    assert all("submit/run.sh" in job and "--overwrite" in job for job in jobs)
    assert any(" linreg fit " in job for job in jobs) and any(" kmeans fit " in job for job in jobs)


@pytest.mark.parametrize("script", ["cluster.sh", "run.sh"])
def test_submit_scripts_are_valid_bash(script):
    import subprocess

    assert subprocess.run(["bash", "-n", str(ROOT / "submit" / script)]).returncode == 0
