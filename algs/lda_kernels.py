"""LDA by collapsed Gibbs sampling: the tokenizer, the numba sampling kernels, and the evaluation.

Pure numpy and numba (no MPI), so that tests and benchmarks import the same
tokenizer and the same held-out estimator the job uses, and apply the
estimator to other models (scikit-learn's) unchanged.

Tokens: the text is lower-cased and cut into maximal runs of ASCII letters
``[a-z]``; runs shorter than 3 letters are dropped, and so are the English
stop words of :data:`STOP_WORDS` when asked.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

__all__ = ["STOP_WORDS", "tokenize", "index_words", "seed_sampler", "sample_docs", "doc_log_likelihood",
           "phi_of", "completion_log_likelihood"]

_TOKEN = re.compile(r"[a-z]+")

#: a short list of English function words (and a few very common verbs), removed with ``stopwords: true``
STOP_WORDS = frozenset("""
a about above after again against all almost also although always am among an and another any are around as at
be became because been before being below between both but by can cannot could did do does doing done down during
each either else even ever every few for from further get gets got had has have having he her here hers herself him
himself his how however if in into is it its itself just least less like made make many may me might more most much
must my myself neither never no nor not now of off often on once one only or other others our ours ourselves out over
own per perhaps put rather said same say says see seen shall she should since so some still such than that the their
theirs them themselves then there these they this those though through thus to too took under until up upon us use
used very was we well were what when where whether which while who whom whose why will with within without would yet
you your yours yourself yourselves
""".split())


def tokenize(text: str, stopwords: bool = True) -> list[str]:
    """The tokens of ``text``: lower-case runs of ``[a-z]`` of length >= 3, stop words removed when asked."""
    words = [w for w in _TOKEN.findall(text.lower()) if len(w) >= 3]
    if stopwords:
        words = [w for w in words if w not in STOP_WORDS]
    return words


def index_words(vocab: np.ndarray, words: list[str]) -> np.ndarray:
    """Row of each word in the sorted ``vocab``; words not in it are dropped."""
    if not len(words) or not len(vocab):
        return np.zeros(0, dtype=np.int64)
    w = np.asarray(words, dtype=str)
    v = np.asarray(vocab, dtype=str)
    pos = np.minimum(np.searchsorted(v, w), len(v) - 1)
    return pos[v[pos] == w].astype(np.int64)


@njit(cache=True, nogil=True)
def seed_sampler(seed):
    """Seed numba's random generator in this process (the one :func:`sample_docs` draws from)."""
    np.random.seed(seed)


@njit(cache=True, nogil=True)
def sample_docs(lo, hi, doc_ptr, words, z, ndk, nwk, dwk, alpha, beta, vbeta, p):
    """One collapsed-Gibbs sweep over the tokens of documents ``lo .. hi-1``, in place.

    ``words[i]`` is the local row of token ``i``'s word in ``nwk``/``dwk``, whose
    last row holds the topic totals. For each token: its count leaves ``ndk``,
    ``nwk`` (word and totals rows) and enters ``dwk`` as -1, a topic is drawn with
    probability ∝ ``(n_dk + alpha)(n_wk + beta)/(n_k + V·beta)`` (``vbeta = V·beta``;
    counts read from a stale table are clipped at 0), and the +1 goes back to the
    same places. ``p`` is scratch of length K.
    """
    K = ndk.shape[1]
    tot = nwk.shape[0] - 1
    for d in range(lo, hi):
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            w = words[i]
            t = z[i]
            ndk[d, t] -= 1
            nwk[w, t] -= 1
            nwk[tot, t] -= 1
            dwk[w, t] -= 1
            dwk[tot, t] -= 1
            acc = 0.0
            for k in range(K):
                a = nwk[w, k]
                b = nwk[tot, k]
                if a < 0:
                    a = 0
                if b < 0:
                    b = 0
                acc += (ndk[d, k] + alpha) * (a + beta) / (b + vbeta)
                p[k] = acc
            u = np.random.random() * acc
            t = 0
            while t < K - 1 and p[t] <= u:
                t += 1
            z[i] = t
            ndk[d, t] += 1
            nwk[w, t] += 1
            nwk[tot, t] += 1
            dwk[w, t] += 1
            dwk[tot, t] += 1


@njit(cache=True, nogil=True)
def doc_log_likelihood(doc_ptr, words, ndk, nwk, alpha, beta, vbeta):
    """Sum over tokens of ``log Σ_k θ_dk φ_kw`` (θ, φ: smoothed count estimates; last ``nwk`` row: totals)."""
    K = ndk.shape[1]
    tot = nwk.shape[0] - 1
    total = 0.0
    for d in range(doc_ptr.shape[0] - 1):
        n = doc_ptr[d + 1] - doc_ptr[d]
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            w = words[i]
            s = 0.0
            for k in range(K):
                s += (ndk[d, k] + alpha) / (n + K * alpha) * (nwk[w, k] + beta) / (nwk[tot, k] + vbeta)
            total += np.log(s)
    return total


def phi_of(word_topic: np.ndarray, beta: float) -> np.ndarray:
    """Topic-word distributions ``K × V`` from ``V × K`` counts: ``(n_wk + β) / (n_k + Vβ)``."""
    counts = np.asarray(word_topic, dtype=np.float64).T
    return (counts + beta) / (counts.sum(1, keepdims=True) + beta * counts.shape[1])


def completion_log_likelihood(phi: np.ndarray, docs: list[np.ndarray], alpha: float, iters: int = 100
                              ) -> tuple[float, int]:
    """Held-out log-likelihood by document completion, for any model given as ``phi`` (``K × V``, rows sum to 1).

    Each document (word ids, in order) is cut in two halves: θ is inferred from
    the first by ``iters`` fixed-point steps with ``phi`` fixed,
    ``θ_k ← (Σ_i r_ik + α) / (n + Kα)``, ``r_ik ∝ θ_k φ_k,w_i``, from uniform θ;
    the second half is scored by ``Σ_i log Σ_k θ_k φ_k,w_i``. Returns (that sum,
    the number of scored tokens); documents of fewer than 2 tokens are skipped.
    Deterministic, so two models are compared by the very same estimator.
    """
    K = phi.shape[0]
    total, count = 0.0, 0
    for doc in docs:
        doc = np.asarray(doc, dtype=np.int64)
        if len(doc) < 2:
            continue
        half = len(doc) // 2
        seen, held = phi[:, doc[:half]], phi[:, doc[half:]]
        theta = np.full(K, 1.0 / K)
        for _ in range(iters):
            r = theta[:, None] * seen
            r /= r.sum(0, keepdims=True)
            theta = (r.sum(1) + alpha) / (half + K * alpha)
        total += float(np.log(theta @ held).sum())
        count += held.shape[1]
    return total, count
