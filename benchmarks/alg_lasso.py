"""The ``lasso`` benchmark: ``algs/lasso.py`` (2 workers, 1 server) vs scikit-learn's ``Lasso`` on real data.

Data (``parasol_hybrid.datasets``): scikit-learn's diabetes set
(train part, 355 × 10, ``alpha`` 0.1) and, unless ``quick``, the breast-cancer
tumours' mean area predicted from the 29 other measurements (train part,
440 × 29, ``alpha`` 5). Both sides stop on the same rule (duality gap at most
``tol * ||y - mean(y)||^2``, ``tol`` 1e-8) and fit the intercept. Quality is
the Lasso objective (lower is better); ``same_support`` says whether the
job's non-zero coefficients are those of scikit-learn solved to a gap of
1e-12. Time: the job's ``seconds`` (centring, power iteration, FISTA rounds,
final objective; slowest worker, start-up and loading excluded) against the
wall time of ``Lasso.fit`` (after an untimed warm-up fit); the job's whole
wall time is reported beside it.

    .venv/bin/python -c "from benchmarks.alg_lasso import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .common import REPO, median, run_job, say

TOL = 1e-8


def _objective(X, y, w, b, alpha) -> float:
    r = y - X @ w - b
    return float(r @ r / (2 * len(y)) + alpha * np.abs(w).sum())


def bench(quick: bool = False) -> list[dict]:
    """One row per data set: objective and seconds of the job and of scikit-learn (medians over 1 or 3 repeats)."""
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import Lasso

    from parasol_hybrid.datasets import cancer_area, diabetes

    repeats = 1 if quick else 3
    cases = [("diabetes", diabetes, 10, 0.1)] + ([] if quick else [("cancer_area", cancer_area, 29, 5.0)])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lasso-") as tmp:
        work = Path(tmp)
        for name, make, d, alpha in cases:
            train, _ = make(work / name)
            X, y = load_svmlight_file(str(train), n_features=d, zero_based=True)
            X = X.toarray()
            exact = Lasso(alpha=alpha, tol=1e-12, max_iter=1_000_000).fit(X, y)
            Lasso(alpha=alpha, tol=TOL, max_iter=1_000_000).fit(X, y)  # warm-up, untimed
            ours_s, ours_wall, ours_q, ref_s, ref_q, support, iters = [], [], [], [], [], [], []
            for r in range(repeats):
                out = work / f"{name}-out{r}"
                cfg = {"nworker": 2, "nserver": 1, "input": str(train), "output": str(out), "alpha": alpha,
                       "tol": TOL, "rounds": 20_000, "log_every": 100_000}
                metrics, wall = run_job(cfg, REPO / "algs" / "lasso.py", work, f"lasso-{name}{r}")
                w = np.load(out / "weights.npy")
                t0 = time.perf_counter()
                model = Lasso(alpha=alpha, tol=TOL, max_iter=1_000_000).fit(X, y)
                ref_s.append(time.perf_counter() - t0)
                ref_q.append(_objective(X, y, model.coef_, model.intercept_, alpha))
                ours_s.append(metrics["seconds"])
                ours_wall.append(wall)
                ours_q.append(_objective(X, y, w[:-1], w[-1], alpha))
                support.append(bool(np.array_equal(w[:-1] != 0, exact.coef_ != 0)))
                iters.append((metrics["iterations"], int(model.n_iter_)))
                say(f"lasso {name} repeat {r + 1}/{repeats}: objective {ours_q[-1]:.10g} vs {ref_q[-1]:.10g}, "
                    f"{metrics['seconds']:.3f} s vs {ref_s[-1]:.4f} s")
            rows.append({"bench": f"lasso_{name}", "ours_seconds": median(ours_s), "ref_seconds": median(ref_s),
                         "ours_quality": median(ours_q), "ref_quality": median(ref_q),
                         "metric": "Lasso objective (lower is better)",
                         "reference": f"scikit-learn Lasso (coordinate descent, alpha {alpha}, tol {TOL})",
                         "same_support": all(support), "nonzeros": int(np.count_nonzero(exact.coef_)),
                         "ours_wall_seconds": median(ours_wall), "iterations_ours_ref": iters, "repeats": repeats,
                         "data": f"{name} {X.shape[0]}x{d}", "nworker": 2, "nserver": 1})
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(bench(quick=True), indent=2))
