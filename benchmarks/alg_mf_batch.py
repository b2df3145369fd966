"""The ``mf_batch`` algorithm benchmark: algs/mf_batch.py (CG and L-BFGS; 2 workers, 1 server)
vs ``scipy.optimize.minimize`` (``CG`` and ``L-BFGS-B``) on the same objective.

Objective: f(P, Q) = ½Σ(r - P[u]·Q[i])² + ½λ(‖P‖² + ‖Q‖²) over the MovieLens-100K
train split (``split_ratings(..., seed=0)``), k = 8, λ = 5, the same start
(``default_rng(0)``: P then Q, std 0.1). Two comparisons per method:

- the same number of iterations (quick: 30, full: 100), scipy's own stopping
  tests off (``ftol = gtol = 0``);
- (full only) to convergence: both stop when max |gradient| ≤ 0.1 (scipy: ``gtol=0.1``,
  L-BFGS-B with ``ftol=0``), at most 5,000 iterations.

Quality is the final objective (lower is better); each row also carries the
test RMSE and the iteration counts. The scipy objective/gradient is numpy +
scipy.sparse (products with a CSR matrix of the residuals), in this process.
Job time is the job's own ``seconds`` (iterations, after loading).

    python -c "from benchmarks.alg_mf_batch import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from parasol_hybrid.datasets import movielens_100k, split_ratings

from .common import REPO, run_job, say

__all__ = ["bench"]

K, REG, SEED, INIT_STD, MEMORY, GTOL, MAX_ITERS = 8, 5.0, 0, 0.1, 10, 0.1, 5000
SCIPY = {"cg": "CG", "lbfgs": "L-BFGS-B"}


def _read(path: Path):
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def _index(vocab: list[str], ids: list[str]) -> np.ndarray:
    pos = {x: n for n, x in enumerate(vocab)}
    return np.array([pos.get(x, -1) for x in ids], dtype=np.int64)


class Problem:
    """The objective and gradient over the flattened [P, Q], the start, and the test RMSE."""

    def __init__(self, train: Path, test: Path):
        tu, ti, self.r = _read(train)
        users, items = sorted(set(tu)), sorted(set(ti))
        self.u, self.i = _index(users, tu), _index(items, ti)
        self.nu, self.ni = len(users), len(items)
        su, si, self.sr = _read(test)
        self.su, self.si = _index(users, su), _index(items, si)
        self.by_user = np.lexsort((self.i, self.u))
        self.by_item = np.lexsort((self.u, self.i))
        ones = np.ones(len(self.r))
        self.E = sp.csr_matrix((ones, (self.u, self.i)), shape=(self.nu, self.ni))
        self.Et = sp.csr_matrix((ones, (self.i, self.u)), shape=(self.ni, self.nu))

    def split(self, x):
        return x[: self.nu * K].reshape(self.nu, K), x[self.nu * K:].reshape(self.ni, K)

    def start(self) -> np.ndarray:
        rng = np.random.default_rng(SEED)
        return np.concatenate([rng.normal(0.0, INIT_STD, (self.nu, K)).ravel(),
                               rng.normal(0.0, INIT_STD, (self.ni, K)).ravel()])

    def __call__(self, x):
        P, Q = self.split(x)
        e = self.r - np.einsum("nj,nj->n", P[self.u], Q[self.i])
        self.E.data[:] = e[self.by_user]
        self.Et.data[:] = e[self.by_item]
        grad = np.concatenate([(REG * P - self.E @ Q).ravel(), (REG * Q - self.Et @ P).ravel()])
        return 0.5 * (e @ e) + 0.5 * REG * (x @ x), grad

    def test_rmse(self, x) -> float:
        P, Q = self.split(x)
        pred = np.full(len(self.sr), self.r.mean())
        both = (self.su >= 0) & (self.si >= 0)
        pred[both] = np.einsum("nj,nj->n", P[self.su[both]], Q[self.si[both]])
        return float(np.sqrt(np.mean((self.sr - pred) ** 2)))


def _scipy(problem: Problem, method: str, iters: int, gtol: float) -> dict:
    options = {"maxiter": iters, "gtol": gtol}
    if method == "lbfgs":
        options.update(ftol=0.0, maxcor=MEMORY)
    t0 = time.perf_counter()
    res = minimize(problem, problem.start(), jac=True, method=SCIPY[method], options=options)
    return {"seconds": time.perf_counter() - t0, "objective": float(res.fun), "iterations": int(res.nit),
            "evaluations": int(res.nfev), "test_rmse": problem.test_rmse(res.x), "message": str(res.message)}


def bench(quick: bool = False) -> list[dict]:
    """For CG and L-BFGS: the job and scipy at a fixed iteration count (and, in full mode, to convergence)."""
    fixed = 30 if quick else 100
    runs = [("fixed", fixed, 0.0)] + ([] if quick else [("converged", MAX_ITERS, GTOL)])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-mf-batch-") as tmp:
        work = Path(tmp)
        train, test = split_ratings(movielens_100k(), work / "ml", seed=0)
        problem = Problem(train, test)
        for method in ("cg", "lbfgs"):
            for kind, iters, gtol in runs:
                name = f"mf_{method}_{kind}"
                cfg = {"nworker": 2, "nserver": 1, "input": str(train), "test_input": str(test),
                       "output": str(work / name), "rounds": iters, "gtol": gtol, "method": method, "k": K,
                       "reg": REG, "memory": MEMORY, "init_std": INIT_STD, "seed": SEED, "log_every": 100}
                metrics, wall = run_job(cfg, REPO / "algs" / "mf_batch.py", work, name)
                ref = _scipy(problem, method, iters, gtol)
                stop = f"{iters} iterations" if kind == "fixed" else f"max |gradient| <= {gtol} (cap {iters})"
                rows.append({
                    "bench": f"mf_{method}", "ours_seconds": metrics["seconds"], "ours_wall_seconds": wall,
                    "ref_seconds": ref["seconds"], "ours_quality": metrics["objective"],
                    "ref_quality": ref["objective"], "ours_iterations": metrics["iterations"],
                    "ref_iterations": ref["iterations"], "ref_evaluations": ref["evaluations"],
                    "ours_test_rmse": metrics["test_rmse"], "ref_test_rmse": ref["test_rmse"],
                    "ref_message": ref["message"],
                    "metric": f"final objective ½Σ(r-p·q)²+½λ(‖P‖²+‖Q‖²) (lower is better), MovieLens-100K "
                              f"train, k={K}, λ={REG}, same start, stop: {stop}",
                    "reference": f"scipy.optimize.minimize(method={SCIPY[method]!r})"})
                say(f"{name}: job {metrics['seconds']:.2f} s f={metrics['objective']:.2f} "
                    f"({metrics['iterations']} it.); scipy {ref['seconds']:.2f} s f={ref['objective']:.2f} "
                    f"({ref['iterations']} it.)")
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench(quick="--quick" in sys.argv), indent=2))
