"""k-means (algs/kmeans.py) on scikit-learn's digits, checked against scikit-learn's KMeans.

The reference is ``sklearn.cluster.KMeans`` (Lloyd) started from the very
centres the job started from (``init_centroids.npy``, ``n_init=1``), with the
same k, tolerance and iteration cap, fitted here on the same 1,797 × 64
matrix. The job's inertia must be within 2 % of it, on one node and on two
simulated nodes; its outputs must agree with each other (labels are the
nearest centres, the inertia is theirs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid.datasets import digits_libsvm
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(180)

K = 10
TOL = 1e-4
ROUNDS = 300


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from sklearn.datasets import load_digits

    path = digits_libsvm(tmp_path_factory.mktemp("digits"))
    X, _ = load_digits(return_X_y=True)
    return path, X


def _run(tmp_path: Path, **keys) -> tuple[dict, Path]:
    out = tmp_path / "out"
    cfg = write_config(tmp_path, output=str(out), rounds=ROUNDS, k=K, tol=TOL, seed=0, **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "kmeans.py")], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), out


def _sklearn(X: np.ndarray, init: np.ndarray):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=K, init=init, n_init=1, max_iter=ROUNDS, tol=TOL, algorithm="lloyd").fit(X)


def _check_outputs(metrics: dict, out: Path, X: np.ndarray) -> np.ndarray:
    """The written labels are the nearest written centres and the inertia is theirs; returns the centres."""
    centres = np.load(out / "centroids.npy")
    assert centres.shape == (K, X.shape[1])
    labels = np.loadtxt(out / "assignments.txt", dtype=np.int64)
    d2 = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    assert labels.shape == (len(X),)
    assert np.all(d2[np.arange(len(X)), labels] <= d2.min(1) + 1e-6), "a point is not assigned to its nearest centre"
    inertia = float(d2[np.arange(len(X)), labels].sum())
    assert metrics["inertia"] == pytest.approx(inertia, rel=1e-9)
    assert metrics["points"] == len(X) and metrics["features"] == X.shape[1]
    assert sum(metrics["cluster_sizes"]) == len(X)
    return centres


@pytest.mark.parametrize("layout", ["one_node", "two_nodes"])
def test_kmeans_plus_plus_matches_sklearn(tmp_path, digits, layout):
    path, X = digits
    extra = {"nserver": 1} if layout == "one_node" else {"nserver": 2, "simulate_nodes": 2}
    metrics, out = _run(tmp_path, nworker=2, input=str(path), init="k-means++", **extra)
    init = np.load(out / "init_centroids.npy")
    rows = {tuple(r) for r in X}
    assert all(tuple(c) in rows for c in init), "k-means++ centres must be input points"
    assert len({tuple(c) for c in init}) == K
    ref = _sklearn(X, init)
    assert metrics["converged"], metrics
    assert abs(metrics["inertia"] - ref.inertia_) <= 1e-9 * ref.inertia_, (metrics["inertia"], ref.inertia_)
    _check_outputs(metrics, out, X)
    if layout == "two_nodes":
        assert metrics["nodes"] == 2 and metrics["cross_node_bytes"] > 0
    else:
        assert metrics["nodes"] == 1 and metrics["cross_node_bytes"] == 0


def test_kmeans_first_init_three_workers_stale_config(tmp_path, digits):
    """init "first" takes the first k rows; staleness 2 in the config must not break Lloyd's rounds."""
    path, X = digits
    metrics, out = _run(tmp_path, nworker=3, nserver=1, staleness=2, input=str(path), init="first")
    init = np.load(out / "init_centroids.npy")
    np.testing.assert_array_equal(init, X[:K])
    ref = _sklearn(X, X[:K].copy())
    assert abs(metrics["inertia"] - ref.inertia_) <= 1e-9 * ref.inertia_, (metrics["inertia"], ref.inertia_)
    assert metrics["iterations"] <= ROUNDS
    _check_outputs(metrics, out, X)
