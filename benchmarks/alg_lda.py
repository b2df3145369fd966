"""The ``lda`` benchmark: ``algs/lda.py`` (2 workers, 1 server) vs scikit-learn's ``LatentDirichletAllocation``.

Data: gensim's Lee corpus split by document (``parasol_hybrid.datasets.lee_split``,
80 % train / 20 % held out), tokenised as the job does (``lda_kernels.tokenize``,
stop words removed, words seen fewer than twice dropped). Both models get
K = 10 topics and the priors α = 0.1, β = 0.01; the job runs 200 Gibbs
sweeps, scikit-learn batch variational Bayes for 20 (``quick``: 10) passes.
Quality: held-out perplexity of each model by the same estimator
(``lda_kernels.completion_log_likelihood``, document completion); lower is
better. Time: the job's ``seconds`` (the sweeps, slowest worker; start-up
excluded; its whole wall time is reported beside it) against ``fit`` (after
one untimed warm-up fit).

    .venv/bin/python -c "from benchmarks.alg_lda import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from .common import REPO, median, run_job, say

if str(REPO / "algs") not in sys.path:
    sys.path.insert(0, str(REPO / "algs"))

from lda_kernels import completion_log_likelihood, index_words, tokenize  # noqa: E402

K, ALPHA, BETA, ROUNDS, MIN_COUNT = 10, 0.1, 0.01, 200, 2


def _docs(path: Path) -> list[list[str]]:
    return [tokenize(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _perplexity(phi, docs) -> float:
    ll, n = completion_log_likelihood(phi, docs, ALPHA)
    return float(np.exp(-ll / n))


def bench(quick: bool = False) -> list[dict]:
    """One row: the job's and scikit-learn's held-out perplexity and seconds (medians over 1 or 3 repeats)."""
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import LatentDirichletAllocation

    from parasol_hybrid.datasets import lee_split

    repeats = 1 if quick else 3
    sk_iters = 10 if quick else 20
    ours_s, ours_wall, ours_q, ref_s, ref_q = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-lda-") as tmp:
        work = Path(tmp)
        train, test = lee_split(work / "lee")
        train_words = _docs(train)
        counts = Counter(w for d in train_words for w in d)
        vocab = np.array(sorted(w for w, c in counts.items() if c >= MIN_COUNT))
        docs = [index_words(vocab, d) for d in train_words]
        held = [index_words(vocab, d) for d in _docs(test)]
        rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
        X = csr_matrix((np.ones(len(rows)), (rows, np.concatenate(docs))), shape=(len(docs), len(vocab)))
        LatentDirichletAllocation(n_components=K, max_iter=1).fit(X)  # warm-up, untimed
        for r in range(repeats):
            out = work / f"out{r}"
            cfg = {"nworker": 2, "nserver": 1, "input": str(train), "test_input": str(test), "output": str(out),
                   "rounds": ROUNDS, "topics": K, "alpha": ALPHA, "beta": BETA, "min_count": MIN_COUNT, "seed": r,
                   "log_every": 1000}
            metrics, wall = run_job(cfg, REPO / "algs" / "lda.py", work, f"lda{r}")
            t0 = time.perf_counter()
            model = LatentDirichletAllocation(n_components=K, doc_topic_prior=ALPHA, topic_word_prior=BETA,
                                              learning_method="batch", max_iter=sk_iters, random_state=r).fit(X)
            ref_s.append(time.perf_counter() - t0)
            ref_q.append(_perplexity(model.components_ / model.components_.sum(1, keepdims=True), held))
            ours_s.append(metrics["seconds"])
            ours_wall.append(wall)
            ours_q.append(metrics["perplexity"])
            say(f"lda repeat {r + 1}/{repeats}: held-out perplexity {metrics['perplexity']:.1f} vs {ref_q[-1]:.1f}, "
                f"{metrics['seconds']:.2f} s vs {ref_s[-1]:.2f} s")
    return [{"bench": "lda", "ours_seconds": median(ours_s), "ref_seconds": median(ref_s),
             "ours_quality": median(ours_q), "ref_quality": median(ref_q),
             "metric": "held-out perplexity, document completion (lower is better)",
             "reference": f"scikit-learn LatentDirichletAllocation (batch VB, {sk_iters} passes, same K and priors)",
             "ours_wall_seconds": median(ours_wall), "repeats": repeats, "data": "gensim lee_background.cor 80/20",
             "topics": K, "gibbs_sweeps": ROUNDS, "tokens": int(X.sum()), "nworker": 2, "nserver": 1}]


if __name__ == "__main__":
    import json

    print(json.dumps(bench(quick=True), indent=2))
