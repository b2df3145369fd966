"""algs/svd.py against scipy.sparse.linalg.svds on the same matrix.

The matrix is MovieLens-100K, every rating (943 × 1682, the file
``parasol_hybrid.datasets.movielens_ratings`` writes), on one node and
on two simulated nodes; and a tiny hand-written matrix with awkward ids and a
repeated entry, on three workers. The reference values are computed here:
the top-k singular values must agree within 1e-4 (relative), and the vectors
the job writes must be orthonormal singular vectors of the same matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from parasol_hybrid.datasets import movielens_ratings
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)

K = 10


def read_matrix(path: Path) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """The ``row col value`` file as a CSR matrix (rows and columns: ids sorted as strings; repeats add up)."""
    rows, cols, vals = [], [], []
    for line in path.read_text().splitlines():
        f = line.replace(",", " ").split()
        if f and not f[0].startswith("#"):
            rows.append(f[0])
            cols.append(f[1])
            vals.append(float(f[2]))
    rid, cid = sorted(set(rows)), sorted(set(cols))
    ri, ci = {x: n for n, x in enumerate(rid)}, {x: n for n, x in enumerate(cid)}
    A = sp.coo_matrix((vals, ([ri[x] for x in rows], [ci[x] for x in cols])), shape=(len(rid), len(cid)))
    return A.tocsr(), rid, cid


def reference_values(A, k: int) -> np.ndarray:
    return np.sort(svds(A, k=k, return_singular_vectors=False, random_state=0))[::-1]


def run_svd(tmp_path: Path, matrix: Path, **keys) -> tuple[dict, Path]:
    out = tmp_path / "out"
    cfg = write_config(tmp_path, input=str(matrix), output=str(out), **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "svd.py")], timeout=200)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), out


def check_result(out: Path, metrics: dict, A, rid, cid, want: np.ndarray, k: int) -> None:
    got = np.array([float(x) for x in (out / "singular_values.txt").read_text().split()])
    assert got.shape == (k,)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=0)
    np.testing.assert_allclose(metrics["singular_values"], got, rtol=1e-15)
    assert (out / "rows.txt").read_text().split("\n")[:-1] == rid
    assert (out / "cols.txt").read_text().split("\n")[:-1] == cid
    U, V = np.load(out / "U.npy"), np.load(out / "V.npy")
    assert U.shape == (A.shape[0], k) and V.shape == (A.shape[1], k)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-8)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-8)
    # singular triplets of A: A v_i = s_i u_i and A^T u_i = s_i v_i, up to the subspace's convergence
    res_u = np.linalg.norm(A @ V - U * got, axis=0) / got
    res_v = np.linalg.norm(A.T @ U - V * got, axis=0) / got
    assert res_u.max() < 1e-3 and res_v.max() < 1e-3, (res_u, res_v)
    assert metrics["max_residual"] == pytest.approx(res_u.max(), rel=1e-6, abs=1e-12)


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    path = movielens_ratings(tmp_path_factory.mktemp("ml"))
    A, rid, cid = read_matrix(path)
    assert A.shape == (943, 1682) and A.nnz == 100_000
    return path, A, rid, cid, reference_values(A, K)


@pytest.mark.parametrize("layout", [
    {"nworker": 2, "nserver": 1},
    {"nworker": 2, "nserver": 2, "simulate_nodes": 2},
], ids=["one-node", "two-nodes"])
def test_svd_movielens_matches_svds(tmp_path, movielens, layout):
    path, A, rid, cid, want = movielens
    metrics, out = run_svd(tmp_path, path, rounds=15, k=K, oversample=10, seed=0, **layout)
    assert metrics["rows"] == 943 and metrics["cols"] == 1682 and metrics["nnz"] == 100_000
    assert metrics["nodes"] == layout.get("simulate_nodes", 1)
    if metrics["nodes"] == 2:
        assert metrics["cross_node_bytes"] > 0
    else:
        assert metrics["cross_node_bytes"] == 0
    check_result(out, metrics, A, rid, cid, want, K)


def test_svd_tiny_matrix_three_workers(tmp_path):
    """String ids (with commas and tabs as separators), a repeated entry that adds up, 3 workers, k = 3."""
    rng = np.random.default_rng(7)
    lines = []
    for r in range(12):
        for c in rng.choice(9, size=5, replace=False):
            lines.append(f"user-{r:02d},item_{c}\t{rng.normal():.6f}")
    lines.append("user-00 item_0 2.5")  # a repeat of a (row, col) pair or a new entry: either way it adds up
    matrix = tmp_path / "tiny.txt"
    matrix.write_text("\n".join(lines) + "\n")
    A, rid, cid = read_matrix(matrix)
    metrics, out = run_svd(tmp_path, matrix, nworker=3, nserver=1, rounds=30, k=3, oversample=4)
    check_result(out, metrics, A, rid, cid, reference_values(A, 3), 3)
