"""The ``svd`` algorithm benchmark: algs/svd.py (2 workers, 1 server) vs scipy's and scikit-learn's truncated SVDs.

Data: MovieLens-100K, every rating, as a 943 × 1682 matrix
(``parasol_hybrid.datasets.movielens_ratings``). Quality is the largest
relative error of the top ``k`` singular values against the exact ones
(dense LAPACK ``numpy.linalg.svd``), for the job and for each reference.
Job time is the job's own ``seconds`` (the power iterations and the
Rayleigh–Ritz step, after loading); the launcher's wall time is reported too.
Reference times are the calls alone, in this process. Medians over repeats.

    python -c "from benchmarks.alg_svd import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from parasol_hybrid.datasets import movielens_ratings

from .common import REPO, run_job, say

__all__ = ["bench"]

K, OVERSAMPLE, ROUNDS = 10, 10, 15


def read_matrix(path: Path) -> sp.csr_matrix:
    """The ``row col value`` file as CSR (rows and columns sorted as strings, repeats added)."""
    rows, cols, vals = [], [], []
    for line in path.read_text().splitlines():
        f = line.replace(",", " ").split()
        if f:
            rows.append(f[0])
            cols.append(f[1])
            vals.append(float(f[2]))
    ri = {x: n for n, x in enumerate(sorted(set(rows)))}
    ci = {x: n for n, x in enumerate(sorted(set(cols)))}
    return sp.coo_matrix((vals, ([ri[x] for x in rows], [ci[x] for x in cols])),
                         shape=(len(ri), len(ci))).tocsr()


def _rel_error(values, exact) -> float:
    return float(np.max(np.abs(np.sort(np.asarray(values))[::-1][:K] - exact) / exact))


def _timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench(quick: bool = False) -> list[dict]:
    """Run the job and the references on the same matrix; one row per reference."""
    from scipy.sparse.linalg import svds
    from sklearn.utils.extmath import randomized_svd

    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-svd-") as tmp:
        work = Path(tmp)
        matrix = movielens_ratings(work)
        A = read_matrix(matrix)
        exact = np.linalg.svd(A.toarray(), compute_uv=False)[:K]

        seconds, walls, errors = [], [], []
        for r in range(repeats):
            cfg = {"nworker": 2, "nserver": 1, "input": str(matrix), "output": str(work / f"out{r}"),
                   "rounds": ROUNDS, "k": K, "oversample": OVERSAMPLE, "seed": r, "log_every": ROUNDS}
            metrics, wall = run_job(cfg, REPO / "algs" / "svd.py", work, f"svd{r}")
            seconds.append(metrics["seconds"])
            walls.append(wall)
            errors.append(_rel_error(metrics["singular_values"], exact))
        ours = {"ours_seconds": statistics.median(seconds), "ours_wall_seconds": statistics.median(walls),
                "ours_quality": max(errors)}
        say(f"svd: job {ours['ours_seconds']:.2f} s (wall {ours['ours_wall_seconds']:.1f} s), "
            f"max rel. error {ours['ours_quality']:.2e}")

        svds_s, svds_v = _timed(lambda: svds(A, k=K, return_singular_vectors=False, random_state=0), repeats)
        rsvd_s, rsvd_v = _timed(lambda: randomized_svd(A, K, n_oversamples=OVERSAMPLE, n_iter=ROUNDS,
                                                       power_iteration_normalizer="QR", random_state=0)[1],
                                repeats)
    common = {"bench": "svd", "metric": f"max relative error of the top {K} singular values vs numpy.linalg.svd "
                                         f"(dense); MovieLens-100K 943x1682, {ROUNDS} power iterations, "
                                         f"oversample {OVERSAMPLE}", **ours}
    return [
        {**common, "ref_seconds": svds_s, "ref_quality": _rel_error(svds_v, exact),
         "reference": "scipy.sparse.linalg.svds (ARPACK)"},
        {**common, "ref_seconds": rsvd_s, "ref_quality": _rel_error(rsvd_v, exact),
         "reference": f"scikit-learn randomized_svd (n_iter={ROUNDS}, n_oversamples={OVERSAMPLE}, QR)"},
    ]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench(quick="--quick" in sys.argv), indent=2))
