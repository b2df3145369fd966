"""ALS (algs/als.py) on MovieLens-100K against a single-process numpy ALS written here.

The reference solves the same regularised normal equations row by row with
``numpy.linalg.solve``, from the start the algorithm documents
(``default_rng(seed)``: P then Q, rows in sorted-id order), for the same k,
regularisation and number of rounds. The job's test RMSE must be within 1% of
the reference's, its objective must match, and the objective must never go up
from round to round (each ALS half-step is an exact minimisation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid.datasets import movielens_100k, split_ratings
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)

K, ROUNDS, SEED, INIT_STD = 10, 10, 0, 0.1


def _read(path: Path):
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def _index(vocab: list[str], ids: list[str]) -> np.ndarray:
    pos = {x: n for n, x in enumerate(vocab)}
    return np.array([pos.get(x, -1) for x in ids], dtype=np.int64)


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    train, test = split_ratings(movielens_100k(), tmp_path_factory.mktemp("ml"), seed=0)
    tu, ti, tr = _read(train)
    users, items = sorted(set(tu)), sorted(set(ti))  # the job's row order: ids sorted as strings
    su, si, sr = _read(test)
    return {"paths": (train, test), "users": users, "items": items,
            "train": (_index(users, tu), _index(items, ti), tr),
            "test": (_index(users, su), _index(items, si), sr)}


def numpy_als(data, k: int, reg: float, rounds: int, weighted: bool, biases: bool) -> dict:
    """ALS in one process, one ``np.linalg.solve`` per row; returns test RMSE, objective and the factors."""
    u, i, r = data["train"]
    nu, ni = len(data["users"]), len(data["items"])
    mu = r.mean()
    rng = np.random.default_rng(SEED)
    P = rng.normal(0.0, INIT_STD, (nu, k))
    Q = rng.normal(0.0, INIT_STD, (ni, k))
    bu, bi = np.zeros(nu), np.zeros(ni)
    by_user = np.split(np.argsort(u, kind="stable"), np.cumsum(np.bincount(u, minlength=nu))[:-1])
    by_item = np.split(np.argsort(i, kind="stable"), np.cumsum(np.bincount(i, minlength=ni))[:-1])

    def half(X, xb, Y, yb, groups, other):
        for row, idx in enumerate(groups):
            Z = Y[other[idx]]
            t = r[idx] - mu
            if biases:
                Z = np.hstack([Z, np.ones((len(idx), 1))])
                t = t - yb[other[idx]]
            lam = reg * (len(idx) if weighted else 1.0)
            sol = np.linalg.solve(Z.T @ Z + lam * np.eye(Z.shape[1]), Z.T @ t)
            X[row] = sol[:k]
            if biases:
                xb[row] = sol[k]

    for _ in range(rounds):
        half(P, bu, Q, bi, by_user, i)
        half(Q, bi, P, bu, by_item, u)
    err = r - (mu + bu[u] + bi[i] + np.einsum("nj,nj->n", P[u], Q[i]))
    wu = np.bincount(u, minlength=nu) if weighted else np.ones(nu)
    wi = np.bincount(i, minlength=ni) if weighted else np.ones(ni)
    objective = err @ err + reg * (wu @ ((P * P).sum(1) + bu * bu) + wi @ ((Q * Q).sum(1) + bi * bi))
    return {"test_rmse": _rmse(data["test"], P, Q, bu, bi, mu), "objective": float(objective),
            "P": P, "Q": Q, "mu": mu}


def _rmse(test, P, Q, bu, bi, mu) -> float:
    su, si, sr = test
    pred = np.full(len(sr), mu)
    pred[su >= 0] += bu[su[su >= 0]]
    pred[si >= 0] += bi[si[si >= 0]]
    both = (su >= 0) & (si >= 0)
    pred[both] += np.einsum("nj,nj->n", P[su[both]], Q[si[both]])
    return float(np.sqrt(np.mean((sr - pred) ** 2)))


@pytest.fixture(scope="module")
def reference_wr(movielens):
    return numpy_als(movielens, K, 0.1, ROUNDS, weighted=True, biases=True)


def _run(tmp_path, movielens, **keys) -> tuple[dict, Path]:
    train, test = movielens["paths"]
    out = tmp_path / "out"
    cfg = write_config(tmp_path, input=str(train), test_input=str(test), output=str(out), rounds=ROUNDS,
                       seed=SEED, k=K, **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "als.py")], timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), out


def _check(metrics: dict, out: Path, ref: dict, movielens) -> None:
    assert abs(metrics["test_rmse"] - ref["test_rmse"]) <= 0.01 * ref["test_rmse"], (metrics, ref["test_rmse"])
    assert metrics["objective"] == pytest.approx(ref["objective"], rel=1e-6)
    baseline = float(np.sqrt(np.mean((movielens["test"][2] - movielens["train"][2].mean()) ** 2)))
    assert metrics["test_rmse"] < 0.9 * baseline, (metrics["test_rmse"], baseline)  # far better than the mean
    assert metrics["singular_rows"] == 0
    # the saved factors reproduce the reported test RMSE
    P, Q = np.load(out / "P.npy"), np.load(out / "Q.npy")
    bu, bi = np.load(out / "bu.npy")[:, 0], np.load(out / "bi.npy")[:, 0]
    assert (out / "users.txt").read_text().split() == movielens["users"]
    assert _rmse(movielens["test"], P, Q, bu, bi, metrics["global_mean"]) == pytest.approx(metrics["test_rmse"],
                                                                                          rel=1e-9)
    objectives = [float(line.split("\t")[1]) for line in (out / "history.tsv").read_text().splitlines()[1:]]
    assert len(objectives) == ROUNDS
    assert all(b <= a * (1 + 1e-12) for a, b in zip(objectives, objectives[1:])), objectives


def test_als_two_workers_matches_numpy(tmp_path, movielens, reference_wr):
    metrics, out = _run(tmp_path, movielens, nworker=2, nserver=1, reg=0.1)
    _check(metrics, out, reference_wr, movielens)
    assert metrics["nworker"] == 2 and metrics["cross_node_bytes"] == 0


def test_als_two_nodes_matches_numpy(tmp_path, movielens, reference_wr):
    metrics, out = _run(tmp_path, movielens, nworker=2, nserver=2, simulate_nodes=2, reg=0.1)
    _check(metrics, out, reference_wr, movielens)
    assert metrics["nodes"] == 2 and metrics["cross_node_bytes"] > 0


def test_als_plain_lambda_no_biases_three_workers(tmp_path, movielens):
    ref = numpy_als(movielens, K, 10.0, ROUNDS, weighted=False, biases=False)
    metrics, out = _run(tmp_path, movielens, nworker=3, nserver=1, reg=10.0, weighted=False, biases=False)
    _check(metrics, out, ref, movielens)
    assert not np.load(out / "bu.npy").any() and not np.load(out / "bi.npy").any()
