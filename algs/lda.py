"""Latent Dirichlet allocation by collapsed Gibbs sampling on the parameter server.

Input: text, one document per line (blank lines are no documents); each
worker reads its byte range of the files (``linesplit``). Tokens are
lower-case runs of ASCII letters of length >= 3, English stop words removed
unless ``stopwords`` is false (see ``lda_kernels.tokenize``); words seen
fewer than ``min_count`` times in the whole input are dropped. The
vocabulary is the sorted union of the kept words.

The counts live in one int64 table ``word_topic`` of ``V + 1`` rows × ``K``:
row ``w`` holds the topic counts of word ``w``, the last row the topic
totals, so that one push updates both under the same shard locks (int64
pushes are exact). Each worker keeps its documents' topic assignments and
document-topic counts to itself. Per round (per ``batch`` documents when
``batch > 0``) it pulls the rows of its words and the totals into a local
copy, runs a numba Gibbs sweep that updates the copy in place and records
the +1/-1 changes, pushes the changed rows, and calls ``clock()`` once per
round: the approximate distributed LDA of Newman et al. (2009), whose
reads may be ``staleness`` rounds old.

The topic-word distributions φ are the mean of ``(n_wk + β)/(n_k + Vβ)``
over the samples of the last ``average`` rounds (read by the master after
each of those rounds' clock), or the final counts' when ``average`` is 0.

Keys: ``topics``, ``alpha``, ``beta`` (symmetric priors), ``rounds``
(sweeps), ``average``, ``batch``, ``stopwords``, ``min_count``,
``top_words``, ``eval_iters``.

Outputs in ``output``: ``word_topic.npy`` (``V × K`` int64 final counts),
``topic_counts.npy`` (``K``), ``phi.npy`` (``K × V`` float64, rows sum to 1),
``vocab.txt`` (the word of each row), ``topics.txt`` (``topic<TAB>its
top_words words`` by φ, most probable first) and ``metrics.json`` with
``perplexity`` of φ (held-out, by document completion, when ``test_input`` is
set; else on the training tokens), ``perplexity_kind``,
``perplexity_final_counts`` (the same from the final counts alone),
``log_likelihood_per_word`` (training tokens, under the final counts' θ and
φ), ``tokens``, ``counts_consistent``, ``seconds``, ``tokens_per_second``,
``cross_node_bytes``.

    run_parasol --config algs/configs/lda.json python algs/lda.py
"""

from __future__ import annotations

import time

import numpy as np

from lda_kernels import (STOP_WORDS, completion_log_likelihood, doc_log_likelihood, index_words, phi_of,
                         sample_docs, seed_sampler, tokenize)

from parasol_hybrid import ConfigError, InputError, Option, paralg, run
from parasol_hybrid import data as loaders
from parasol_hybrid.checkpoint import refuse_option
from parasol_hybrid.config import non_negative, positive
from parasol_hybrid.data.scan_text import Documents, scan_documents


def read_documents(lines, stopwords: bool) -> list[list[str]]:
    """The token lists of the non-blank lines (the Python spelling of :func:`scan_documents` plus
    the stop words; the job uses the compiled one)."""
    return [tokenize(ln.text, stopwords) for ln in lines if ln.text.strip()]


def kept_words(docs: Documents, stopwords: bool) -> np.ndarray:
    """Which of ``docs.words`` are tokens (not stop words, when they are dropped)."""
    if not stopwords:
        return np.ones(len(docs.words), dtype=bool)
    return np.fromiter((w not in STOP_WORDS for w in docs.words), dtype=bool, count=len(docs.words))


def document_rows(docs: Documents, vocab: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(doc_ptr, rows)``: the documents as rows of the sorted ``vocab`` (``index_words`` of each
    document's tokens: words not in it, or not kept, dropped)."""
    rows_of = np.full(len(docs.words), -1, dtype=np.int64)
    if len(docs.words) and len(vocab):
        w = np.asarray(docs.words, dtype=str)
        pos = np.minimum(np.searchsorted(vocab, w), len(vocab) - 1)
        found = (vocab[pos] == w) & keep
        rows_of[found] = pos[found]
    rows = rows_of[docs.codes]
    hit = rows >= 0
    kept_before = np.zeros(len(hit) + 1, dtype=np.int64)
    np.cumsum(hit, out=kept_before[1:])
    return kept_before[docs.doc_ptr], rows[hit]


def split_documents(doc_ptr: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """The documents' rows as one array each."""
    return np.split(rows, doc_ptr[1:-1]) if len(doc_ptr) > 1 else []


class LDA(paralg):
    """Collapsed Gibbs LDA; word-topic counts and topic totals in one int64 table."""

    options = {
        "topics": Option(int, 10, "number of topics K", check=lambda v: None if v >= 2 else "must be at least 2"),
        "alpha": Option(float, 0.1, "symmetric document-topic prior", check=positive),
        "beta": Option(float, 0.01, "symmetric topic-word prior", check=positive),
        "average": Option(int, 50, "average φ over the samples of this many last rounds (0: final counts only)",
                          check=non_negative),
        "batch": Option(int, 0, "documents per pull/push (0: all of a worker's documents, once per round)",
                        check=non_negative),
        "stopwords": Option(bool, True, "drop English stop words"),
        "min_count": Option(int, 2, "drop words seen fewer times in the whole input", check=non_negative),
        "top_words": Option(int, 10, "words per topic in topics.txt", check=positive),
        "eval_iters": Option(int, 100, "fixed-point steps of the held-out estimator", check=positive),
        # the topic assignment of every token lives in its worker's memory, not in tables
        "checkpoint_every": refuse_option("lda", "the topic assignments of the tokens are kept by the workers, "
                                          "not in tables, so a checkpoint could not resume the sampler"),
    }

    def solve(self) -> None:
        cfg = self.cfg
        if self.start_round:
            raise ConfigError("lda cannot resume: the topic assignments are not part of a checkpoint")
        K = cfg.topics
        mine = self.load(format="documents")
        keep = kept_words(mine, cfg.stopwords)
        vocab = self._vocabulary(mine, keep)
        V = len(vocab)
        if V == 0:
            raise InputError("no word of the input is in the vocabulary (check min_count and the input)")
        doc_ptr, gwords = document_rows(mine, vocab, keep)
        del mine
        D = len(doc_ptr) - 1  # this worker's documents
        keys = np.unique(gwords)
        words = np.searchsorted(keys, gwords).astype(np.int64)  # local rows
        keys = np.append(keys, V).astype(np.int64)  # + the totals row
        n_tokens = len(gwords)
        tokens = self.allreduce(n_tokens)
        n_docs = self.allreduce(D)

        table = self.table("word_topic", (V + 1, K), "int64")
        stats = self.table("_lda_rounds", (max(cfg.rounds, 1), 2), "float64", exact=True)

        rng = np.random.default_rng([cfg.seed, self.worker_id])
        z = rng.integers(0, K, size=n_tokens).astype(np.int64)
        ndk = np.zeros((D, K), dtype=np.int64)
        np.add.at(ndk, (np.repeat(np.arange(D), np.diff(doc_ptr)), z), 1)
        delta = np.zeros((len(keys), K), dtype=np.int64)
        np.add.at(delta, (words, z), 1)
        delta[-1] = np.bincount(z, minlength=K)
        self._push_changes(table, keys, delta)
        p = np.empty(K)
        vbeta = V * cfg.beta
        self._warm_up(K)
        self.sync()

        start = time.perf_counter()
        base = self.clocks.clock
        shown = 0
        step = cfg.batch or max(D, 1)
        phi_sum, samples = np.zeros((K, V)), 0
        for rnd in range(cfg.rounds):
            seed_sampler((cfg.seed * 1_000_003 + self.worker_id * 7_919 + rnd) % (2**32))
            for lo in range(0, D, step):
                local = table.pull(keys)
                delta[:] = 0
                sample_docs(lo, min(lo + step, D), doc_ptr, words, z, ndk, local, delta, cfg.alpha,
                            cfg.beta, vbeta, p)
                self._push_changes(table, keys, delta)
            if (rnd + 1) % cfg.log_every == 0 or rnd + 1 == cfg.rounds:
                ll = doc_log_likelihood(doc_ptr, words, ndk, table.pull(keys), cfg.alpha, cfg.beta, vbeta)
                stats.push([rnd], [[ll, float(n_tokens)]])
            self.clock()
            if self.is_master and rnd >= cfg.rounds - cfg.average:
                phi_sum += phi_of(table.pull_all()[:V], cfg.beta)
                samples += 1
            if self.is_master:
                shown = self._show(stats, shown, min(self.clocks.slowest() - base, cfg.rounds))
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        if self.is_master:
            self._show(stats, shown, cfg.rounds)

        final = table.pull(keys)
        train_ll = self.allreduce(float(doc_log_likelihood(doc_ptr, words, ndk, final, cfg.alpha, cfg.beta, vbeta)))
        assigned = np.zeros((V, K), dtype=np.int64)
        np.add.at(assigned, (gwords, z), 1)
        assigned = self.allreduce(assigned)
        cross = self.cross_node_bytes()
        if self.is_master:
            counts = self.pull_all(table)
            word_topic, totals = counts[:V], counts[V]
            consistent = bool(np.array_equal(word_topic, assigned) and np.array_equal(totals, word_topic.sum(0))
                              and int(word_topic.sum()) == tokens and word_topic.min() >= 0)
            ll_word = train_ll / max(tokens, 1)
            final_phi = phi_of(word_topic, cfg.beta)
            phi = phi_sum / samples if samples else final_phi
            metrics = {"log_likelihood_per_word": ll_word, "tokens": int(tokens), "documents": int(n_docs),
                       "vocabulary": V, "topics": K, "rounds": cfg.rounds, "counts_consistent": consistent,
                       "seconds": seconds, "tokens_per_second": tokens * cfg.rounds / seconds if seconds > 0 else 0.0,
                       "cross_node_bytes": cross}
            if cfg.test_input:
                held = self._held_out(vocab)
                ll, n = completion_log_likelihood(phi, held, cfg.alpha, cfg.eval_iters)
                ll_final, _ = completion_log_likelihood(final_phi, held, cfg.alpha, cfg.eval_iters)
                metrics.update(perplexity_kind="held-out document completion", heldout_tokens=n,
                               heldout_documents=len(held))
            else:
                train_docs = self._master_train_docs(vocab)
                ll, n = completion_log_likelihood(phi, train_docs, cfg.alpha, cfg.eval_iters)
                ll_final, _ = completion_log_likelihood(final_phi, train_docs, cfg.alpha, cfg.eval_iters)
                metrics.update(perplexity_kind="train document completion")
            metrics.update(perplexity=float(np.exp(-ll / max(n, 1))),
                           perplexity_final_counts=float(np.exp(-ll_final / max(n, 1))), phi_samples=samples)
            np.save(self.output_path("word_topic.npy"), word_topic)
            np.save(self.output_path("topic_counts.npy"), totals)
            np.save(self.output_path("phi.npy"), phi)
            self.output_path("vocab.txt").write_text("".join(f"{w}\n" for w in vocab))
            self.output_path("topics.txt").write_text(self._topics_text(phi, vocab))
            self.write_metrics(metrics)
            self.log(f"done: perplexity ({metrics['perplexity_kind']}) {metrics['perplexity']:.2f}  "
                     f"train log-likelihood/word {ll_word:.4f}  {tokens:,} tokens  consistent {consistent}  "
                     f"{seconds:.2f} s")
        self.sync()

    def _vocabulary(self, docs: Documents, keep: np.ndarray) -> np.ndarray:
        """The sorted words of the whole input seen at least ``min_count`` times (collective)."""
        mine = [w for w, k in zip(docs.words, keep.tolist()) if k]
        everyone = self.vocabulary(mine)
        counts = np.zeros(len(everyone), dtype=np.int64)
        if mine:
            counts[index_words(everyone, mine)] = docs.counts[keep]
        counts = self.allreduce(counts)
        return np.asarray(everyone[counts >= self.cfg.min_count], dtype=str)

    @staticmethod
    def _push_changes(table, keys: np.ndarray, delta: np.ndarray) -> None:
        rows = np.flatnonzero(np.any(delta != 0, axis=1))
        if len(rows):
            table.push(keys[rows], delta[rows])

    @staticmethod
    def _warm_up(K: int) -> None:
        """Load the kernels (numba start-up) before the clock starts."""
        ptr, w = np.zeros(2, np.int64), np.zeros(0, np.int64)
        counts = np.zeros((1, K), np.int64)
        sample_docs(0, 1, ptr, w, w, counts, np.zeros((2, K), np.int64), np.zeros((2, K), np.int64), 0.1, 0.1, 1.0,
                    np.empty(K))
        doc_log_likelihood(ptr, w, counts, np.zeros((2, K), np.int64), 0.1, 0.1, 1.0)

    def _held_out(self, vocab: np.ndarray) -> list[np.ndarray]:
        """The word ids of the ``test_input`` documents (words outside the vocabulary dropped)."""
        return self._all_docs(self.cfg.test_input, vocab)

    def _master_train_docs(self, vocab: np.ndarray) -> list[np.ndarray]:
        """The word ids of every training document (the master reads the whole ``input``)."""
        return self._all_docs(self.cfg.input, vocab)

    def _all_docs(self, spec, vocab: np.ndarray) -> list[np.ndarray]:
        docs = scan_documents(loaders.expand_inputs(spec), 0, 1)
        return split_documents(*document_rows(docs, vocab, kept_words(docs, self.cfg.stopwords)))

    def _topics_text(self, phi: np.ndarray, vocab: np.ndarray) -> str:
        """``topic<TAB>words``: the ``top_words`` most probable words of each topic (ties by word)."""
        out = []
        for k in range(phi.shape[0]):
            order = np.argsort(-phi[k], kind="stable")[: self.cfg.top_words]
            out.append(f"{k}\t" + " ".join(str(vocab[i]) for i in order) + "\n")
        return "".join(out)

    def _show(self, stats, shown: int, complete: int) -> int:
        """Print the logged rounds that every worker has finished (master only); returns the next to show."""
        if complete <= shown:
            return shown
        rows = stats.pull(np.arange(shown, complete))
        for rnd, (ll, n) in zip(range(shown, complete), rows):
            if n > 0:
                self.progress(rnd + 1, self.cfg.rounds, train_llh_per_word=float(ll / n))
        return complete


if __name__ == "__main__":
    run(LDA)
