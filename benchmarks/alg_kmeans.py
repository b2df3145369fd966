"""The ``kmeans`` benchmark: ``algs/kmeans.py`` (2 workers, 1 server) vs scikit-learn's ``KMeans`` on the digits.

Data: scikit-learn's digits (1,797 × 64), written as libsvm by
``parasol_hybrid.datasets.digits_libsvm``. The job seeds its centres
with k-means++ (``seed``); scikit-learn then starts from the very same centres
(``init=<the job's init_centroids.npy>, n_init=1``, Lloyd, same ``tol`` and
iteration cap), so the two runs are the same algorithm and their inertia
should agree. Time: the job's ``seconds`` (seeding + Lloyd rounds + final
inertia, slowest worker; start-up and data loading excluded) against the
wall time of ``KMeans.fit`` (after one untimed warm-up fit); the job's whole wall time (launcher, MPI,
numba cache loads) is reported beside it.

    .venv/bin/python -c "from benchmarks.alg_kmeans import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .common import REPO, median, run_job, say

K, TOL, ROUNDS = 10, 1e-4, 300


def bench(quick: bool = False) -> list[dict]:
    """One row: the job's and scikit-learn's inertia and seconds (medians over 1 or 3 repeats)."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits

    from parasol_hybrid.datasets import digits_libsvm

    repeats = 1 if quick else 3
    X, _ = load_digits(return_X_y=True)
    ours_s, ours_wall, ours_q, ref_s, ref_q, iters = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-kmeans-") as tmp:
        work = Path(tmp)
        data = digits_libsvm(work)
        KMeans(n_clusters=K, init=X[:K], n_init=1, max_iter=2).fit(X)  # warm-up (threads, imports), untimed
        for r in range(repeats):
            out = work / f"out{r}"
            cfg = {"nworker": 2, "nserver": 1, "input": str(data), "output": str(out), "rounds": ROUNDS, "k": K,
                   "tol": TOL, "init": "k-means++", "seed": r, "log_every": 1000}
            metrics, wall = run_job(cfg, REPO / "algs" / "kmeans.py", work, f"kmeans{r}")
            init = np.load(out / "init_centroids.npy")
            t0 = time.perf_counter()
            model = KMeans(n_clusters=K, init=init, n_init=1, max_iter=ROUNDS, tol=TOL, algorithm="lloyd").fit(X)
            ref_s.append(time.perf_counter() - t0)
            ref_q.append(float(model.inertia_))
            ours_s.append(metrics["seconds"])
            ours_wall.append(wall)
            ours_q.append(metrics["inertia"])
            iters.append((metrics["iterations"], int(model.n_iter_)))
            say(f"kmeans repeat {r + 1}/{repeats}: inertia {metrics['inertia']:.6g} vs {model.inertia_:.6g}, "
                f"{metrics['seconds']:.3f} s vs {ref_s[-1]:.3f} s")
    return [{"bench": "kmeans", "ours_seconds": median(ours_s), "ref_seconds": median(ref_s),
             "ours_quality": median(ours_q), "ref_quality": median(ref_q), "metric": "inertia (lower is better)",
             "reference": "scikit-learn KMeans (lloyd, same k-means++ initial centres, n_init=1)",
             "ours_wall_seconds": median(ours_wall), "iterations_ours_ref": iters, "repeats": repeats,
             "data": "scikit-learn digits 1797x64", "k": K, "nworker": 2, "nserver": 1}]


if __name__ == "__main__":
    import json

    print(json.dumps(bench(quick=True), indent=2))
