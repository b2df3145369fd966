"""The ``als`` algorithm benchmark: algs/als.py (2 workers, 1 server) vs a single-process numpy ALS.

Data: MovieLens-100K, the 80/20 split of ``split_ratings(movielens_100k(), dir, seed=0)``.
Both sides run ALS-WR with biases (k = 10, reg = 0.1 weighted by the row's
rating count, 10 rounds) from the same start (``default_rng(0)``: P then Q,
std 0.1); quality is the test RMSE. The reference solves one
``numpy.linalg.solve`` per row (the obvious numpy code); the job's time is its
own ``seconds`` (the rounds, after loading), the launcher's wall time is
reported too. Medians over repeats.

    python -c "from benchmarks.alg_als import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from parasol_hybrid.datasets import movielens_100k, split_ratings

from .common import REPO, run_job, say

__all__ = ["bench", "numpy_als"]

K, REG, ROUNDS, SEED, INIT_STD = 10, 0.1, 10, 0, 0.1


def _read(path: Path):
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def _index(vocab: list[str], ids: list[str]) -> np.ndarray:
    pos = {x: n for n, x in enumerate(vocab)}
    return np.array([pos.get(x, -1) for x in ids], dtype=np.int64)


def numpy_als(train: Path, test: Path, k: int = K, reg: float = REG, rounds: int = ROUNDS) -> float:
    """Test RMSE of ALS-WR with biases, in this process (one ``np.linalg.solve`` per user and item)."""
    tu, ti, r = _read(train)
    users, items = sorted(set(tu)), sorted(set(ti))
    u, i = _index(users, tu), _index(items, ti)
    nu, ni = len(users), len(items)
    mu = r.mean()
    rng = np.random.default_rng(SEED)
    P, Q = rng.normal(0.0, INIT_STD, (nu, k)), rng.normal(0.0, INIT_STD, (ni, k))
    bu, bi = np.zeros(nu), np.zeros(ni)
    by_user = np.split(np.argsort(u, kind="stable"), np.cumsum(np.bincount(u, minlength=nu))[:-1])
    by_item = np.split(np.argsort(i, kind="stable"), np.cumsum(np.bincount(i, minlength=ni))[:-1])

    def half(X, xb, Y, yb, groups, other):
        for row, idx in enumerate(groups):
            Z = np.hstack([Y[other[idx]], np.ones((len(idx), 1))])
            t = r[idx] - mu - yb[other[idx]]
            sol = np.linalg.solve(Z.T @ Z + reg * len(idx) * np.eye(k + 1), Z.T @ t)
            X[row], xb[row] = sol[:k], sol[k]

    for _ in range(rounds):
        half(P, bu, Q, bi, by_user, i)
        half(Q, bi, P, bu, by_item, u)
    su, si, sr = _read(test)
    su, si = _index(users, su), _index(items, si)
    pred = np.full(len(sr), mu)
    pred[su >= 0] += bu[su[su >= 0]]
    pred[si >= 0] += bi[si[si >= 0]]
    both = (su >= 0) & (si >= 0)
    pred[both] += np.einsum("nj,nj->n", P[su[both]], Q[si[both]])
    return float(np.sqrt(np.mean((sr - pred) ** 2)))


def bench(quick: bool = False) -> list[dict]:
    """Run the job and the numpy reference on the same split; one row."""
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-als-") as tmp:
        work = Path(tmp)
        train, test = split_ratings(movielens_100k(), work / "ml", seed=0)
        seconds, walls, rmses = [], [], []
        for rep in range(repeats):
            cfg = {"nworker": 2, "nserver": 1, "input": str(train), "test_input": str(test),
                   "output": str(work / f"out{rep}"), "rounds": ROUNDS, "k": K, "reg": REG, "seed": SEED,
                   "log_every": ROUNDS}
            metrics, wall = run_job(cfg, REPO / "algs" / "als.py", work, f"als{rep}")
            seconds.append(metrics["seconds"])
            walls.append(wall)
            rmses.append(metrics["test_rmse"])
        ref_seconds, ref_rmse = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            ref_rmse = numpy_als(train, test)
            ref_seconds.append(time.perf_counter() - t0)
    row = {"bench": "als", "ours_seconds": statistics.median(seconds), "ours_wall_seconds": statistics.median(walls),
           "ref_seconds": statistics.median(ref_seconds), "ours_quality": statistics.median(rmses),
           "ref_quality": ref_rmse,
           "metric": f"test RMSE, MovieLens-100K 80/20 (seed 0), ALS-WR with biases, k={K}, reg={REG}, "
                     f"{ROUNDS} rounds, same start",
           "reference": "numpy ALS in one process (numpy.linalg.solve per row)"}
    say(f"als: job {row['ours_seconds']:.2f} s (wall {row['ours_wall_seconds']:.1f} s) RMSE {row['ours_quality']:.4f}; "
        f"numpy {row['ref_seconds']:.2f} s RMSE {row['ref_quality']:.4f}")
    return [row]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench(quick="--quick" in sys.argv), indent=2))
