"""What users see, end to end on a real local Spark: ``--report`` pages, the k sweep, ``kmeans
evaluate``, the demo's reports, progress on a terminal, and the jobs without matplotlib."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from sparkml_jobs.cli import main
from sparkml_jobs.io import models
from sparkml_jobs.reporting import figures
from tests.conftest import DATA
from tests.e2e.helpers import run_cli

DIAMONDS = str(DATA / "diamonds.csv")
IRIS = str(DATA / "iris.csv")
LINREG_PNGS = {"coefficients.png", "residuals.png", "residual_histogram.png"}
KMEANS_PNGS = {"convergence.png", "cluster_sizes.png", "projection.png"}
INSTALL_HINT = "pip install 'sparkml-jobs[report]'"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def assert_png_drawn(path: Path) -> None:
    """The file is a PNG that decodes to a real picture: more than one colour, pixel variance."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200, f"{path.name}: {pixels.shape}"
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert flat.var(axis=0).sum() > 0, f"{path.name} is blank"
    assert len(np.unique(flat, axis=0)) > 10, f"{path.name} has almost no colours"


def assert_report(directory: Path, pngs: set[str]) -> str:
    """report.html references exactly the PNGs beside it, loads nothing remote, all PNGs drawn."""
    assert (directory / "_SUCCESS").exists()
    page = (directory / "report.html").read_text(encoding="utf-8")
    on_disk = {p.name for p in directory.glob("*.png")}
    assert on_disk == pngs
    assert set(re.findall(r'<img src="([^"]+)"', page)) == on_disk
    assert not re.search(r"https?://|<script|<link", page), "the page must be self-contained"
    for name in on_disk:
        assert_png_drawn(directory / name)
    return page


def _blobs_csv(path: Path, rng) -> np.ndarray:
    """Four well-separated blobs of 500 rows in 3-d (2000 rows: the silhouette sample is all)."""
    centres = np.array([[0, 0, 0], [12, 0, 0], [0, 12, 0], [0, 0, 12]], dtype=float)
    x = np.vstack([c + rng.normal(size=(500, 3)) for c in centres])
    x = x[rng.permutation(len(x))]
    pd.DataFrame(x, columns=["a", "b", "c"]).to_csv(path, index=False)
    return pd.read_csv(path).to_numpy(float)  # exactly what the job reads


def _nearest(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    return d2.argmin(1), d2.min(1)


# --------------------------------------------------------------------------- --report


def test_linreg_report_shows_statsmodels_intervals(spark, tmp_path, capsys):
    model_dir, report_dir = tmp_path / "model", tmp_path / "report"
    code, _, err = run_cli(
        capsys,
        "linreg",
        "fit",
        "--input",
        DIAMONDS,
        "--label",
        "price",
        "--output",
        model_dir,
        "--report",
        report_dir,
    )
    assert code == 0, err
    assert f"report written to {report_dir / 'report.html'}" in err
    page = assert_report(report_dir, LINREG_PNGS)

    frame = pd.read_csv(DIAMONDS)
    ols = sm.OLS(frame["price"], sm.add_constant(frame.iloc[:, :6])).fit()
    rows = figures.coefficient_rows(models.load_linreg(str(model_dir)))
    np.testing.assert_allclose([[r["low"], r["high"]] for r in rows], ols.conf_int(0.05), rtol=1e-6)
    for row in rows:  # the table beside the plot shows them
        assert f"<td>{row['term']}</td>" in page and figures.num(row["high"]) in page


def test_kmeans_report_projects_the_sample_on_its_principal_axes(spark, tmp_path, capsys):
    model_dir, report_dir = tmp_path / "model", tmp_path / "report"
    code, _, err = run_cli(
        capsys,
        "kmeans",
        "fit",
        "--input",
        IRIS,
        "--k",
        "3",
        "--seed",
        "1",
        "--output",
        model_dir,
        "--report",
        report_dir,
    )
    assert code == 0, err
    page = assert_report(report_dir, KMEANS_PNGS)
    doc = json.loads((model_dir / "model.json").read_text())
    for size in doc["summary"]["cluster_sizes"]:
        assert f"<td class=num>{size}</td>" in page
    # 150 rows: the plotted sample is every row, so its axes are iris' principal axes
    ratio = PCA(2).fit(pd.read_csv(IRIS).to_numpy(float)).explained_variance_ratio_
    assert f"PC1 ({ratio[0]:.1%})" in page and f"PC2 ({ratio[1]:.1%})" in page


def test_report_checks_come_before_any_work(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    args = ["linreg", "fit", "--input", DIAMONDS, "--label", "price", "--output", tmp_path / "m"]
    code, _, err = run_cli(capsys, *args, "--report", tmp_path / "taken")
    assert code == 2 and "already holds" in err and "--overwrite" in err
    code, _, err = run_cli(capsys, *args, "--report", tmp_path / "m")
    assert code == 2 and "--report" in err and "lies inside or around --output" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "job",
    [
        ["linreg", "fit", "--input", DIAMONDS, "--label", "price"],
        ["kmeans", "fit", "--input", IRIS, "--k", "3"],
    ],
)
def test_report_without_matplotlib_exits_2_with_the_install_line(
    monkeypatch, tmp_path, capsys, job
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    code, out, err = run_cli(capsys, *job, "--output", tmp_path / "m", "--report", tmp_path / "r")
    assert code == 2, err
    assert INSTALL_HINT in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_jobs_run_without_matplotlib(spark, monkeypatch, tmp_path, capsys, rng):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    source = tmp_path / "blobs.csv"
    _blobs_csv(source, rng)
    code, _, err = run_cli(
        capsys, "kmeans", "fit", "--input", source, "--k", "4", "--output", tmp_path / "m"
    )
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "kmeans", "sweep", "--input", source, "--k", "3..5", "--output", tmp_path / "s"
    )
    assert code == 0, err
    assert INSTALL_HINT in err and "recommended k = 4" in out
    listed = [p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith(".")]
    assert sorted(listed) == ["_SUCCESS", "sweep.json"]  # (hidden: Hadoop's .crc files)


# --------------------------------------------------------------------------- sweep, evaluate


def test_sweep_recovers_four_blobs(spark, tmp_path, capsys, rng):
    source, out_dir, metrics = tmp_path / "blobs.csv", tmp_path / "sweep", tmp_path / "m.json"
    x = _blobs_csv(source, rng)
    code, out, err = run_cli(
        capsys,
        "kmeans",
        "sweep",
        "--input",
        source,
        "--k",
        "2..8",
        "--seed",
        "3",
        "--output",
        out_dir,
        "--metrics-json",
        metrics,
    )
    assert code == 0, err
    assert err.count("loaded 2000 rows") == 1  # one read and validation for all seven fits
    doc = json.loads((out_dir / "sweep.json").read_text())
    assert doc["k"] == list(range(2, 9))
    assert all(np.diff(doc["cost"]) < 0), doc["cost"]
    assert doc["recommended_k"] == 4
    assert json.loads(metrics.read_text()) == doc
    assert re.search(r"^\s+4\s.*← recommended$", out, re.MULTILINE)
    for k, centres, cost, score in zip(
        doc["k"], doc["centers"], doc["cost"], doc["silhouette"], strict=True
    ):
        labels, d2 = _nearest(x, np.array(centres))
        assert len(np.array(centres)) == k
        assert cost == pytest.approx(d2.sum(), rel=1e-9)
        assert score == pytest.approx(silhouette_score(x, labels), abs=1e-9)
    assert_report(out_dir, {"elbow.png"})


def test_sweep_rejects_a_bad_range_before_spark(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "kmeans", "sweep", "--input", IRIS, "--k", "1..5", "--output", tmp_path / "s"
    )
    assert code == 2 and "--k values must lie in 2..1000" in err


def test_evaluate_scores_the_saved_centres(spark, tmp_path, capsys):
    model_dir, metrics = tmp_path / "model", tmp_path / "m.json"
    assert (
        run_cli(
            capsys,
            "kmeans",
            "fit",
            "--input",
            IRIS,
            "--k",
            "3",
            "--seed",
            "2",
            "--output",
            model_dir,
        )[0]
        == 0
    )
    code, out, err = run_cli(
        capsys,
        "kmeans",
        "evaluate",
        "--model",
        model_dir,
        "--input",
        IRIS,
        "--metrics-json",
        metrics,
    )
    assert code == 0, err
    got = json.loads(metrics.read_text())
    assert json.loads(out) == got
    x = pd.read_csv(IRIS).to_numpy(float)
    centres = np.array(json.loads((model_dir / "model.json").read_text())["centers"])
    labels, d2 = _nearest(x, centres)
    assert got["n"] == 150 and got["k"] == 3
    assert got["cost"] == pytest.approx(d2.sum(), rel=1e-12)
    assert got["cluster_sizes"] == np.bincount(labels, minlength=3).tolist()
    assert got["silhouette_rows"] == 150
    assert got["silhouette"] == pytest.approx(silhouette_score(x, labels), abs=1e-9)

    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run_cli(capsys, "kmeans", "evaluate", "--model", model_dir, "--input", other)
    assert code == 2 and "sepal_length" in err


# --------------------------------------------------------------------------- demo, progress


def test_demo_writes_both_reports(spark, tmp_path, capsys):
    code, out, err = run_cli(capsys, "demo", "--output", tmp_path)
    assert code == 0, err
    for name, pngs in (("linreg", LINREG_PNGS), ("kmeans", KMEANS_PNGS)):
        assert f"{name} report: {tmp_path / f'{name}-report' / 'report.html'}" in out
        assert_report(tmp_path / f"{name}-report", pngs)


def test_progress_is_one_line_in_place_on_a_terminal(spark, tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(
        [
            "kmeans",
            "fit",
            "--input",
            IRIS,
            "--k",
            "3",
            "--max-iter",
            "50",
            "--mode",  # the live line is the broadcast mode's (barrier logs after its stage)
            "broadcast",
            "--output",
            str(tmp_path / "m"),
        ]
    )
    text = terminal.getvalue()
    assert code == 0, text
    assert re.search(
        r"\rsparkml-jobs: k-means k=3  iteration 1/50  cost \S+  shift \S+  "
        r"\d+\.\ds\x1b\[K",
        text,
    )
    assert "iteration 1: cost" not in text  # the plain lines are for logs, not terminals
    assert "\x1b[K\nsparkml-jobs: model saved to" in text
