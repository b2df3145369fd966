"""The ``lr`` benchmark: ``algs/lr.py`` (2 workers, 1 server) by L-BFGS, FTRL and SGD vs scikit-learn.

Data: scikit-learn's breast-cancer set split 75/25 and standardised
(``parasol_hybrid.datasets.breast_cancer``). The reference is
``LogisticRegression`` (L-BFGS) with ``C = 1 / (beta * n)``, the same
objective as the job's (mean log-loss + ``beta/2 ||w||^2``, bias not
penalised):

- ``lbfgs`` row: the job's full-batch L-BFGS, ``beta = 1/n`` (C = 1), both
  sides at gradient tolerance 1e-6; quality is the test log-loss.
- ``ftrl`` and ``sgd`` rows (not in ``quick``): 30 rounds of mini-batches
  (``beta`` 0.001, FTRL with ``l1`` 3), quality the test accuracy, with the
  reference at the same ``beta``; ``nonzeros`` counts non-zero weights.

Time: the job's ``seconds`` (training only, slowest worker) against the
wall time of ``LogisticRegression.fit`` (after an untimed warm-up fit).

    .venv/bin/python -c "from benchmarks.alg_lr import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .common import REPO, median, run_job, say

TOL = 1e-6


def bench(quick: bool = False) -> list[dict]:
    """Rows for lbfgs (and ftrl, sgd unless ``quick``): medians over 1 or 3 repeats."""
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from parasol_hybrid.datasets import breast_cancer

    repeats = 1 if quick else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lr-") as tmp:
        work = Path(tmp)
        train, test = breast_cancer(work / "bc")
        X, y = load_svmlight_file(str(train), n_features=30)
        Xt, yt = load_svmlight_file(str(test), n_features=30)
        n = X.shape[0]
        cases = [("lbfgs", {"method": "lbfgs", "beta": 1.0 / n, "tol": TOL, "rounds": 500}, "test_logloss")]
        if not quick:
            cases += [("ftrl", {"method": "ftrl", "beta": 0.001, "alpha": 0.5, "l1": 3.0, "rounds": 30},
                       "test_accuracy"),
                      ("sgd", {"method": "sgd", "beta": 0.001, "alpha": 0.1, "rounds": 30}, "test_accuracy")]
        for name, keys, metric in cases:
            C = 1.0 / (keys["beta"] * n)
            LogisticRegression(C=C, tol=TOL, max_iter=10_000).fit(X, y)  # warm-up, untimed
            ours_s, ours_wall, ours_q, ref_s, ref_q, nonzeros = [], [], [], [], [], []
            for r in range(repeats):
                out = work / f"{name}-out{r}"
                cfg = {"nworker": 2, "nserver": 1, "input": str(train), "test_input": str(test),
                       "output": str(out), "seed": r, "log_every": 1000, **keys}
                metrics, wall = run_job(cfg, REPO / "algs" / "lr.py", work, f"lr-{name}{r}")
                t0 = time.perf_counter()
                model = LogisticRegression(C=C, tol=TOL, max_iter=10_000).fit(X, y)
                ref_s.append(time.perf_counter() - t0)
                ref = (log_loss(yt, model.predict_proba(Xt)) if metric == "test_logloss" else model.score(Xt, yt))
                ref_q.append(float(ref))
                ours_s.append(metrics["seconds"])
                ours_wall.append(wall)
                ours_q.append(metrics[metric])
                nonzeros.append(metrics["nonzeros"])
                say(f"lr {name} repeat {r + 1}/{repeats}: {metric} {ours_q[-1]:.5f} vs {ref_q[-1]:.5f}, "
                    f"{metrics['seconds']:.3f} s vs {ref_s[-1]:.4f} s")
            rows.append({"bench": f"lr_{name}", "ours_seconds": median(ours_s), "ref_seconds": median(ref_s),
                         "ours_quality": median(ours_q), "ref_quality": median(ref_q),
                         "metric": metric.replace("_", " ") + (" (lower is better)" if metric == "test_logloss"
                                                               else " (higher is better)"),
                         "reference": f"scikit-learn LogisticRegression (lbfgs, C = 1/(beta n) = {C:.4g}, tol {TOL})",
                         "nonzeros": median(nonzeros), "ours_wall_seconds": median(ours_wall), "repeats": repeats,
                         "data": f"breast cancer {n}x30 train, {Xt.shape[0]} test", "nworker": 2, "nserver": 1})
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(bench(quick=True), indent=2))
