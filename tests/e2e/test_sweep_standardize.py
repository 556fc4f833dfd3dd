"""``kmeans sweep --standardize``: one scaling for every k, each k's model the one
``kmeans fit --standardize`` gives with the same k, seed and init (centres in data units)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from tests.conftest import DATA
from tests.e2e.helpers import IRIS_FEATURES, run_cli


def test_sweep_standardize_equals_fit_standardize(spark, tmp_path, capsys):
    frame = pd.read_csv(DATA / "iris.csv")[IRIS_FEATURES]
    frame["petal_length"] *= 1000.0  # one feature on a much larger scale
    data = tmp_path / "iris.csv"
    frame.to_csv(data, index=False)
    common = ["--input", data, "--seed", "3", "--tol", "0", "--max-iter", "50", "--standardize"]
    code, _, err = run_cli(
        capsys, "kmeans", "sweep", *common, "--k", "2,3", "--output", tmp_path / "sweep"
    )
    assert code == 0, err
    swept = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    code, _, err = run_cli(capsys, "kmeans", "fit", *common, "--k", "3", "--output", tmp_path / "m")
    assert code == 0, err
    model = json.loads((tmp_path / "m" / "model.json").read_text())

    x = frame.to_numpy(float)
    sk = StandardScaler().fit(x)
    np.testing.assert_allclose(swept["mean"], sk.mean_, rtol=1e-12)
    np.testing.assert_allclose(swept["scale"], sk.scale_, rtol=1e-12)
    assert swept["params"]["standardize"] is True

    j = swept["k"].index(3)
    centres = np.array(swept["centers"][j])
    np.testing.assert_allclose(centres, np.array(model["centers"]), rtol=1e-12, atol=1e-12)
    # centres in the data's units; the cost in standardised ones (what was minimised)
    z, zc = sk.transform(x), sk.transform(centres)
    d2 = ((z[:, None, :] - zc[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(swept["cost"][j], d2.min(axis=1).sum(), rtol=1e-9)
    # and each centre is the mean of its cluster (a Lloyd fixed point, tol=0)
    labels = d2.argmin(axis=1)
    means = np.array([x[labels == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(centres, means, rtol=1e-9)
