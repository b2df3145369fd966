"""Full-batch MF by CG and L-BFGS (algs/mf_batch.py) against scipy.optimize.minimize on MovieLens-100K.

Fair comparison: the same objective f(P, Q) = ½Σ(r - P[u]·Q[i])² + ½λ(‖P‖² + ‖Q‖²)
on the same train split, from the same start (the documented
``default_rng(seed)`` draws: P then Q, rows in sorted-id order), for the same
number of iterations (scipy's ``maxiter`` with its own stopping tests switched
off: ``ftol = gtol = 0``), L-BFGS with the same memory (``maxcor``). scipy
uses Wolfe line searches, the job an exact one, so the final objectives are
close but not equal; they must agree within 1%.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from parasol_hybrid.datasets import movielens_100k, split_ratings
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "algs"))

from mf_batch import lbfgs_coefficients, quartic_minimum  # noqa: E402

pytestmark = pytest.mark.timeout(240)

K, REG, ITERS, SEED, INIT_STD, MEMORY = 8, 5.0, 60, 0, 0.1, 10
SCIPY = {"lbfgs": "L-BFGS-B", "cg": "CG"}


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


class Objective:
    """f and its gradient over the flattened [P, Q] with scipy.sparse products."""

    def __init__(self, data, k: int, reg: float):
        self.u, self.i, self.r = data["train"]
        self.nu, self.ni, self.k, self.reg = len(data["users"]), len(data["items"]), k, reg
        self.by_user = np.lexsort((self.i, self.u))  # rating order of a CSR matrix over (user, item)
        self.by_item = np.lexsort((self.u, self.i))
        ones = np.ones(len(self.r))
        self.E = sp.csr_matrix((ones, (self.u, self.i)), shape=(self.nu, self.ni))
        self.Et = sp.csr_matrix((ones, (self.i, self.u)), shape=(self.ni, self.nu))

    def split(self, x):
        return x[: self.nu * self.k].reshape(self.nu, self.k), x[self.nu * self.k:].reshape(self.ni, self.k)

    def __call__(self, x):
        P, Q = self.split(x)
        e = self.r - np.einsum("nj,nj->n", P[self.u], Q[self.i])
        self.E.data[:] = e[self.by_user]
        self.Et.data[:] = e[self.by_item]
        grad = np.concatenate([(self.reg * P - self.E @ Q).ravel(), (self.reg * Q - self.Et @ P).ravel()])
        return 0.5 * (e @ e) + 0.5 * self.reg * (x @ x), grad


def start(data) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    P0 = rng.normal(0.0, INIT_STD, (len(data["users"]), K))
    Q0 = rng.normal(0.0, INIT_STD, (len(data["items"]), K))
    return np.concatenate([P0.ravel(), Q0.ravel()])


@pytest.fixture(scope="module")
def scipy_results(movielens):
    fun = Objective(movielens, K, REG)
    found = {}
    for method, name in SCIPY.items():
        options = {"maxiter": ITERS, "gtol": 0.0}
        if name == "L-BFGS-B":
            options.update(ftol=0.0, maxcor=MEMORY)
        res = minimize(fun, start(movielens), jac=True, method=name, options=options)
        assert res.nit == ITERS, res.message  # the same number of iterations as the job
        found[method] = float(res.fun)
    return found


def rmse_of(test, P, Q, fallback) -> float:
    su, si, sr = test
    pred = np.full(len(sr), fallback)
    both = (su >= 0) & (si >= 0)
    pred[both] = np.einsum("nj,nj->n", P[su[both]], Q[si[both]])
    return float(np.sqrt(np.mean((sr - pred) ** 2)))


def _run(tmp_path, movielens, **keys) -> tuple[dict, Path]:
    train, test = movielens["paths"]
    out = tmp_path / "out"
    cfg = write_config(tmp_path, input=str(train), test_input=str(test), output=str(out), rounds=ITERS,
                       seed=SEED, k=K, reg=REG, memory=MEMORY, init_std=INIT_STD, **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "mf_batch.py")], timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), out


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
@pytest.mark.parametrize("layout", [{"nworker": 2, "nserver": 1},
                                    {"nworker": 2, "nserver": 2, "simulate_nodes": 2}], ids=["one_node", "two_nodes"])
def test_matches_scipy(tmp_path, movielens, scipy_results, method, layout):
    metrics, out = _run(tmp_path, movielens, method=method, **layout)
    ref = scipy_results[method]
    assert metrics["iterations"] == ITERS and metrics["stopped_by"] == "rounds"
    assert abs(metrics["objective"] - ref) <= 0.01 * ref, (metrics["objective"], ref)
    # the reported objective and test RMSE are those of the saved factors
    fun = Objective(movielens, K, REG)
    P, Q = np.load(out / "P.npy"), np.load(out / "Q.npy")
    assert (out / "items.txt").read_text().split() == movielens["items"]
    f, grad = fun(np.concatenate([P.ravel(), Q.ravel()]))
    assert metrics["objective"] == pytest.approx(f, rel=1e-9)
    assert metrics["grad_max"] == pytest.approx(np.abs(grad).max(), rel=1e-6)
    assert metrics["test_rmse"] == pytest.approx(rmse_of(movielens["test"], P, Q, metrics["global_mean"]), rel=1e-9)
    # every step lowered the objective, from far above to the optimum's neighbourhood
    objectives = [float(line.split("\t")[1]) for line in (out / "history.tsv").read_text().splitlines()[1:]]
    assert all(b < a for a, b in zip(objectives, objectives[1:]))
    assert objectives[-1] < 0.5 * fun(start(movielens))[0]
    if layout.get("simulate_nodes"):
        assert metrics["nodes"] == 2 and metrics["cross_node_bytes"] > 0


def test_quartic_minimum_is_the_global_minimum_over_positive_steps():
    rng = np.random.default_rng(1)
    grid = np.linspace(0.0, 10.0, 200_001)
    for _ in range(50):
        c = np.array([rng.normal(), -abs(rng.normal()) - 0.01, rng.normal(), rng.normal(), abs(rng.normal()) + 0.01])
        alpha = quartic_minimum(c)
        values = np.polyval(c[::-1], grid)
        assert alpha > 0
        assert np.polyval(c[::-1], alpha) <= values.min() + 1e-9
    assert quartic_minimum(np.array([1.0, 0.5, 1.0, 0.0, 1.0])) == 0.0  # not a descent direction


def test_lbfgs_coefficients_equal_the_two_loop_recursion():
    rng = np.random.default_rng(2)
    n, m = 40, 5
    A = rng.normal(size=(n, n))
    A = A @ A.T + n * np.eye(n)  # a quadratic's Hessian: y = A s, so s·y > 0
    S = [rng.normal(size=n) for _ in range(m)]
    Y = [A @ s for s in S]
    g = rng.normal(size=n)
    q, alphas = g.copy(), []
    for s, y in zip(reversed(S), reversed(Y)):
        a = (s @ q) / (s @ y)
        alphas.append(a)
        q -= a * y
    q *= (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
    for (s, y), a in zip(zip(S, Y), reversed(alphas)):
        q += s * (a - (y @ q) / (s @ y))
    basis = np.stack(S + Y + [g], axis=1)
    c = lbfgs_coefficients(basis.T @ basis, m)
    np.testing.assert_allclose(basis @ c, q, rtol=1e-10, atol=1e-12)
