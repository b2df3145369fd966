"""Exact word count on the parameter server.

A word is a maximal run of ``[-a-zA-Z0-9_]`` (the original parasol's rule),
case-sensitive. Each worker counts the words of its byte range of the input
files (compiled: ``load(format="words")``), then pushes its counts into a
sparse int64 table keyed by the words' 63-bit hashes (exact: inserts and adds
hold the shard locks).

Outputs in ``output``: ``topk.tsv`` (``word<TAB>count``, by count descending,
ties by word; every word when ``topk`` is 0) and ``metrics.json`` with
``total_words``, ``distinct_words``, ``seconds``.

    run_parasol --config algs/configs/wordcount.json python algs/wordcount.py
"""

from __future__ import annotations

import time

import numpy as np

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.config import non_negative
from parasol_hybrid.data.scan_text import word_keys


def top_words(words: list[str], counts: np.ndarray, k: int) -> list[tuple[str, int]]:
    """The ``k`` (all when 0) distinct ``words`` with the largest counts, ties broken by the word.

    Only the words whose count reaches the k-th largest are sorted: by word (strings), then stably
    by count (numpy), which is the order of ``sorted(key=(-count, word))`` without a tuple per word.
    """
    counts = np.asarray(counts, dtype=np.int64)
    candidates = range(len(words))
    if 0 < k < len(words):
        kth = np.partition(counts, len(counts) - k)[len(counts) - k]
        candidates = np.flatnonzero(counts >= kth).tolist()
    order = np.array(sorted(candidates, key=words.__getitem__), dtype=np.int64)
    order = order[np.argsort(-counts[order], kind="stable")]
    if k:
        order = order[:k]
    return [(words[i], int(c)) for i, c in zip(order.tolist(), counts[order].tolist())]


class WordCount(paralg):
    """Counts every word of the input; writes the top ``topk`` and the totals."""

    options = {
        "topk": Option(int, 100, "how many of the most frequent words to write (0: all)", check=non_negative),
        "batch": Option(int, 100_000, "words pushed per push call", check=lambda v: None if v > 0 else "must be positive"),
    }

    def solve(self) -> None:
        start = time.perf_counter()
        local = self.load(format="words")
        words = list(local)
        keys = word_keys(words)  # compiled 63-bit hash: the same in every process
        counts = np.fromiter(local.values(), dtype=np.int64, count=len(words))
        del local

        capacity = max(self.allreduce(len(words)), 1)
        table = self.sparse_table("counts", capacity=capacity, dim=1, dtype="int64")
        for lo in range(0, len(words), self.cfg.batch):
            table.push(keys[lo:lo + self.cfg.batch], counts[lo:lo + self.cfg.batch])
        self.clock()
        self.sync()

        global_counts = table.pull(keys)[:, 0] if len(words) else np.zeros(0, np.int64)
        candidates = top_words(words, global_counts, self.cfg.topk)
        merged = {}
        for part in self.allgather(candidates):
            merged.update(part)
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        present, values = table.items() if self.is_master else (None, None)
        cross = self.cross_node_bytes()
        if self.is_master:
            top = top_words(list(merged), np.array(list(merged.values()), dtype=np.int64), self.cfg.topk)
            path = self.output_path("topk.tsv")
            path.write_text("".join(f"{w}\t{c}\n" for w, c in top))
            metrics = {
                "cross_node_bytes": cross,
                "total_words": int(values.sum()),
                "distinct_words": int(len(present)),
                "seconds": seconds,
                "topk": self.cfg.topk,
            }
            self.write_metrics(metrics)
            self.log(f"{metrics['total_words']:,} words, {metrics['distinct_words']:,} distinct, {seconds:.2f} s; "
                     f"top {len(top)} in {path}")
        self.sync()


if __name__ == "__main__":
    run(WordCount)
