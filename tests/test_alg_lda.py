"""LDA (algs/lda.py) on gensim's Lee corpus, checked against scikit-learn's LatentDirichletAllocation.

The corpus is split by document (``parasol_hybrid.datasets.lee_split``: 80 % train,
20 % held out). The reference is scikit-learn's variational LDA fitted here
on the same document-term matrix (the same tokens, the same vocabulary
recomputed here), with the same number of topics and the same priors, run
to convergence. Both models are scored by an estimator independent of ours,
built on scikit-learn's own inference (document completion: θ of the first
half of each held-out document inferred by ``LatentDirichletAllocation.transform``
with the model's φ fixed, the second half scored). The job's held-out
perplexity (of φ averaged over its last 50 sweeps) must be within 5 % of
scikit-learn's (collapsed Gibbs usually beats batch variational here), and below the unigram
model's; its metric must equal our own estimator on its φ; its counts must be
exactly those of its tokens.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid.datasets import lee_split
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "algs") not in sys.path:
    sys.path.insert(0, str(REPO / "algs"))

from lda_kernels import completion_log_likelihood, index_words, phi_of, tokenize  # noqa: E402

pytestmark = pytest.mark.timeout(240)

K, ALPHA, BETA, MIN_COUNT, ROUNDS = 10, 0.1, 0.01, 2, 200


def _documents(path: Path) -> list[list[str]]:
    return [tokenize(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The split files, the vocabulary recomputed here, and the train/test documents as word ids."""
    train, test = lee_split(tmp_path_factory.mktemp("lee"))
    train_words = _documents(train)
    counts = Counter(w for doc in train_words for w in doc)
    vocab = np.array(sorted(w for w, c in counts.items() if c >= MIN_COUNT))
    return {"train": train, "test": test, "vocab": vocab,
            "train_docs": [index_words(vocab, d) for d in train_words],
            "test_docs": [index_words(vocab, d) for d in _documents(test)]}


def _perplexity(phi: np.ndarray, docs) -> float:
    """Our estimator (lda_kernels): what the job's metrics report."""
    ll, n = completion_log_likelihood(phi, docs, ALPHA)
    return float(np.exp(-ll / n))


def _halves(docs, V: int):
    """First halves of the documents (of 2+ tokens) as a count matrix, second halves as id lists."""
    from scipy.sparse import csr_matrix

    docs = [np.asarray(d, dtype=np.int64) for d in docs if len(d) >= 2]
    first = [d[: len(d) // 2] for d in docs]
    rows = np.repeat(np.arange(len(first)), [len(f) for f in first])
    X = csr_matrix((np.ones(len(rows)), (rows, np.concatenate(first))), shape=(len(first), V))
    return X, [d[len(d) // 2:] for d in docs]


def _sklearn_perplexity(phi: np.ndarray, docs) -> float:
    """Document-completion perplexity with θ inferred by scikit-learn (not our code) for a fixed φ."""
    from sklearn.decomposition import LatentDirichletAllocation

    K, V = phi.shape
    X, held = _halves(docs, V)
    model = LatentDirichletAllocation(n_components=K, doc_topic_prior=ALPHA, topic_word_prior=BETA,
                                      max_doc_update_iter=500, mean_change_tol=1e-6)
    model.components_ = phi * 1e7  # pseudo-counts: E[log φ] under the variational Dirichlet ≈ log φ
    model.exp_dirichlet_component_ = phi.copy()
    model.n_features_in_ = V
    model.n_batch_iter_ = 1
    model.doc_topic_prior_, model.topic_word_prior_ = ALPHA, BETA
    theta = model.transform(X)
    ll = sum(float(np.log(t @ phi[:, h]).sum()) for t, h in zip(theta, held))
    return float(np.exp(-ll / sum(len(h) for h in held)))


@pytest.fixture(scope="module")
def reference(corpus):
    """Held-out perplexities of scikit-learn's LDA and of the unigram model, by the shared estimator."""
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import LatentDirichletAllocation

    docs, V = corpus["train_docs"], len(corpus["vocab"])
    rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    X = csr_matrix((np.ones(len(rows)), (rows, np.concatenate(docs))), shape=(len(docs), V))
    model = LatentDirichletAllocation(n_components=K, doc_topic_prior=ALPHA, topic_word_prior=BETA,
                                      learning_method="batch", max_iter=500, evaluate_every=10, perp_tol=1e-3,
                                      random_state=0).fit(X)
    assert model.n_iter_ < 500, "scikit-learn's LDA did not converge"
    phi = model.components_ / model.components_.sum(1, keepdims=True)
    unigram = phi_of(np.asarray(X.sum(0)).reshape(V, 1), BETA)
    return {"sklearn": _sklearn_perplexity(phi, corpus["test_docs"]),
            "unigram": _sklearn_perplexity(np.tile(unigram, (K, 1)), corpus["test_docs"]),
            "tokens": int(X.sum())}


def _run(tmp_path: Path, corpus, **keys) -> tuple[dict, Path]:
    out = tmp_path / "out"
    cfg = write_config(tmp_path, output=str(out), input=str(corpus["train"]), test_input=str(corpus["test"]),
                       rounds=ROUNDS, topics=K, alpha=ALPHA, beta=BETA, min_count=MIN_COUNT, seed=0, log_every=50,
                       average=50,
                       **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "lda.py")], timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), out


def _check(metrics: dict, out: Path, corpus, reference) -> None:
    vocab = np.array((out / "vocab.txt").read_text().split())
    np.testing.assert_array_equal(vocab, corpus["vocab"])
    word_topic = np.load(out / "word_topic.npy")
    totals = np.load(out / "topic_counts.npy")
    assert word_topic.shape == (len(vocab), K) and word_topic.dtype == np.int64
    # exact counts: every token counted once, each word's row sums to its frequency, totals = column sums
    assert metrics["counts_consistent"] is True, metrics
    assert metrics["tokens"] == reference["tokens"] == int(word_topic.sum())
    freq = np.bincount(np.concatenate(corpus["train_docs"]), minlength=len(vocab))
    np.testing.assert_array_equal(word_topic.sum(1), freq)
    np.testing.assert_array_equal(totals, word_topic.sum(0))
    assert word_topic.min() >= 0
    # the metrics are the shared estimator applied to the written φ (averaged over the last sweeps) and counts
    phi = np.load(out / "phi.npy")
    assert phi.shape == (K, len(vocab)) and np.allclose(phi.sum(1), 1.0) and phi.min() > 0
    assert metrics["phi_samples"] == 50
    assert metrics["perplexity"] == pytest.approx(_perplexity(phi, corpus["test_docs"]), rel=1e-9)
    assert metrics["perplexity_final_counts"] == pytest.approx(
        _perplexity(phi_of(word_topic, BETA), corpus["test_docs"]), rel=1e-9)
    ours, ref = _sklearn_perplexity(phi, corpus["test_docs"]), reference["sklearn"]
    # measured: 1,308-1,487 over 20 runs here (1, 2 nodes), 1,555 once on a loaded CI machine, vs scikit-learn
    # 1,526; the sampling is asynchronous, so runs differ. The unigram model is 1,792: a sampler that learns
    # less fails here.
    assert ours <= 1.05 * ref, f"held-out perplexity {ours:.1f} vs scikit-learn {ref:.1f} (bound: 5 % above)"
    assert ours < reference["unigram"], f"{ours:.1f} is no better than the unigram model {reference['unigram']:.1f}"
    assert np.isfinite(metrics["log_likelihood_per_word"]) and metrics["log_likelihood_per_word"] < 0
    assert len((out / "topics.txt").read_text().splitlines()) == K


@pytest.mark.parametrize("layout", ["one_node", "two_nodes"])
def test_lda_matches_sklearn(tmp_path, corpus, reference, layout):
    extra = {"nserver": 1} if layout == "one_node" else {"nserver": 2, "simulate_nodes": 2}
    metrics, out = _run(tmp_path, corpus, nworker=2, **extra)
    _check(metrics, out, corpus, reference)
    assert metrics["nodes"] == (1 if layout == "one_node" else 2)
    assert (metrics["cross_node_bytes"] > 0) == (layout == "two_nodes")


def test_lda_stale_batches_three_workers(tmp_path, corpus, reference):
    """SSP (staleness 2) with several pushes per round: counts stay exact, quality holds."""
    metrics, out = _run(tmp_path, corpus, nworker=3, nserver=1, staleness=2, batch=30)
    _check(metrics, out, corpus, reference)
    assert metrics["staleness"] == 2


def test_lda_refuses_checkpoint_every_before_any_rank_starts(tmp_path, corpus):
    """Its topic assignments are not in tables: checkpoints it could not resume from are a config error."""
    cfg = write_config(tmp_path, output=str(tmp_path / "out"), input=str(corpus["train"]), nworker=2, nserver=1,
                       checkpoint_every=5)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "lda.py")], timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "checkpoint_every" in done.stderr and "lda does not save checkpoints" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
