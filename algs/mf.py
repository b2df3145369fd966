"""Biased matrix factorisation by SGD on the parameter server.

Input: lines ``user item rating`` (tabs, commas or spaces; ids are any
strings). Every worker trains Hogwild-style, in place, on its part of the
ratings (partitioned by user with ``fmap``), on the user and item factor
tables that the node's workers share. A worker's ratings arrive shuffled;
each round visits them in blocks of ``BLOCK`` consecutive ratings, the
blocks in a new random order (and a new random start), so the rating arrays
are read sequentially and a round costs the same per rating at 1 M or 100 M.

Outputs in ``output``: ``P.npy``, ``Q.npy`` (factors), ``bu.npy``, ``bi.npy``
(biases), ``users.txt``, ``items.txt`` (the ids of the rows, in order),
``metrics.json`` with ``train_rmse``, ``test_rmse`` (with ``test_input``),
``seconds``, ``ratings_per_second``, ``global_mean``, ``cross_node_bytes`` (the
whole job's) and ``cross_node_bytes_per_round`` (measured over the training
rounds: pushes, cache refreshes, acknowledgements and clock notices; 0 on one
node).

    run_parasol --config algs/configs/mf.json python algs/mf.py
"""

from __future__ import annotations

import time

import numpy as np

from common import HeldOutRatings, done_line, load_ratings, write_factors
from mf_kernels import BLOCK, sgd_blocks, sse

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.config import non_negative, positive


#: rows of the ring of per-round training sums; a worker may run at most this many rounds ahead of the
#: rounds the master has shown (SSP bounds the lead by the staleness; a lapped row shows no figure)
STATS_ROWS = 256


class MF(paralg):
    """Biased MF: rating ≈ mu + bu[u] + bi[i] + P[u]·Q[i], trained by SGD."""

    options = {
        "k": Option(int, 16, "number of latent factors", check=positive),
        "alpha": Option(float, 0.01, "learning rate", check=positive),
        "beta": Option(float, 0.05, "L2 regularisation", check=non_negative),
        "init_std": Option(float, 0.1, "std of the initial factors", check=non_negative),
        "pattern": Option(str, "fmap", "how ratings are split over workers", choices=("fmap", "smap", "fsmap")),
    }

    def solve(self) -> None:
        cfg = self.cfg
        data = load_ratings(self, cfg.pattern, shuffle=True)  # in a random order (blocks of it each round)
        users, items = data.users, data.items  # the job's ids, sorted as strings: row r is users[r]
        u, i, r, mu, n_total = data.u, data.i, data.r, data.mean, data.n_total
        self._n_total = n_total

        k = cfg.k
        P, Q, BU, BI = self.model_tables(len(users), len(items))
        # per-round (squared error, ratings) sums, a ring of STATS_ROWS rows: its size does not depend on
        # ``rounds``, so a job resumes with more rounds than it was started with
        stats = self.table("_round_stats", (STATS_ROWS, 2), "float64", exact=True)
        test = HeldOutRatings(self, users, items)

        def test_rmse():
            return test.rmse(sse, (P.shards, Q.shards, BU.shards, BI.shards), mu)

        # compile (or load from numba's cache) before the clock starts: seconds measure training
        sgd_blocks(P.shards, Q.shards, BU.shards, BI.shards, u, i, r, np.zeros(0, np.int64), BLOCK, 0, mu, cfg.alpha,
                   cfg.beta)
        test_rmse()
        if self.start_round and self.is_master:  # rounds the interrupted run had not shown: not shown again
            everything = np.arange(STATS_ROWS)
            stats.push(everything, -stats.pull(everything))
        self.sync()
        wire_before = self.cross_node_bytes()
        start = time.perf_counter()
        shown = self.start_round
        base = self.clocks.clock - self.start_round  # clocks not counted as rounds (a cluster sync() is one)
        for rnd in range(self.start_round, cfg.rounds):
            rng = np.random.default_rng([cfg.seed, self.worker_id, rnd])  # per round: resumable
            blocks = rng.permutation(-(-len(r) // BLOCK)).astype(np.int64, copy=False)
            offset = int(rng.integers(len(r))) if len(r) else 0
            err = sgd_blocks(P.shards, Q.shards, BU.shards, BI.shards, u, i, r, blocks, BLOCK, offset, mu, cfg.alpha,
                             cfg.beta)
            stats.push([rnd % STATS_ROWS], [[err, float(len(r))]])
            self.clock()
            if self.is_master:
                shown = self._show(stats, shown, min(self.clocks.slowest() - base, cfg.rounds), test_rmse, start)
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        trained = cfg.rounds - self.start_round
        # measured: what crossed between the nodes in the training rounds and the closing sync()
        # (pushes, cache refreshes, acknowledgements, clock notices)
        wire_per_round = (self.cross_node_bytes() - wire_before) / trained if trained > 0 else 0.0
        if self.is_master:
            self._show(stats, shown, cfg.rounds, test_rmse, start)

        train_sse = self.allreduce(float(sse(P.shards, Q.shards, BU.shards, BI.shards, u, i, r, mu)))
        metrics = {
            "train_rmse": float(np.sqrt(train_sse / max(n_total, 1))),
            "seconds": seconds,
            "ratings_per_second": n_total * trained / seconds if seconds > 0 else 0.0,
            **data.figures(),
            "rounds": cfg.rounds,
            "start_round": self.start_round,
            "k": k,
            "bad_lines": data.bad_lines,
            "max_clock_lead": self.allreduce(self.clocks.max_lead, op="max"),
            "cross_node_bytes": self.cross_node_bytes(),
            "cross_node_bytes_per_round": wire_per_round,
        }
        if self.is_master:
            rmse = test_rmse()
            metrics.update(test.figures(rmse))
            write_factors(self, (P, Q, BU, BI), users, items)
            self.write_metrics(metrics)
            self.log(done_line(f"done: train_rmse {metrics['train_rmse']:.4f}", rmse,
                               f"  {metrics['ratings_per_second']:,.0f} ratings/s  {seconds:.2f} s"))
        self.sync()

    def model_tables(self, users: int, items: int):
        """Declare the model's tables: factors ``P`` (users × k), ``Q`` (items × k), biases ``bu``, ``bi``."""
        cfg = self.cfg
        return (self.table("P", (users, cfg.k), "float32", "normal", std=cfg.init_std),
                self.table("Q", (items, cfg.k), "float32", "normal", std=cfg.init_std),
                self.table("bu", (users, 1), "float32"),
                self.table("bi", (items, 1), "float32"))

    def _show(self, stats, shown: int, complete: int, test_rmse, start: float) -> int:
        """Print the rounds that every worker has finished (master only); returns the next to show."""
        if complete <= shown:
            return shown
        keys = np.arange(shown, complete) % STATS_ROWS
        rows = stats.pull(keys)
        once = np.unique(keys)
        stats.push(once, -stats.pull(once))  # zero the rows read (exactly: x + -x) for the rounds STATS_ROWS later
        for rnd, (err, n) in zip(range(shown, complete), rows):
            # every worker adds its ratings once per round: another count means the ring was lapped
            figures = {"train_rmse": float(np.sqrt(err / n)) if n == self._n_total and n > 0 else None}
            if rnd == complete - 1:
                rmse = test_rmse()
                if rmse is not None:
                    figures["test_rmse"] = rmse
                elapsed = time.perf_counter() - start
                done = rnd + 1 - self.start_round
                if elapsed > 0 and done > 0:
                    figures["ratings/s"] = done * self._n_total / elapsed
            self.progress(rnd + 1, self.cfg.rounds, **figures)
        return complete


if __name__ == "__main__":
    run(MF)
