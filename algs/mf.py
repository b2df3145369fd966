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
``seconds``, ``ratings_per_second``, ``global_mean``.

    run_parasol --config algs/configs/mf.json python algs/mf.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mf_kernels import BLOCK, index_of, sgd_blocks, sse  # noqa: E402

from parasol_hybrid.config import positive, non_negative  # noqa: E402
from parasol_hybrid import Option, paralg, run  # noqa: E402
from parasol_hybrid import data as loaders  # noqa: E402


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
        part = self.load(pattern=cfg.pattern, shuffle=True)  # in a random order (blocks of it each round)
        users, items = part.row_ids, part.col_ids  # the job's ids, sorted as strings: row r is users[r]
        bad = self.allreduce(int(part.bad_lines))
        u, i, r = part.u, part.i, part.values
        del part
        n_total = self.allreduce(len(r))
        mu = self.allreduce(float(r.sum())) / max(n_total, 1)
        self._n_total = n_total

        k = cfg.k
        P = self.table("P", (len(users), k), "float32", "normal", std=cfg.init_std)
        Q = self.table("Q", (len(items), k), "float32", "normal", std=cfg.init_std)
        BU = self.table("bu", (len(users), 1), "float32")
        BI = self.table("bi", (len(items), 1), "float32")
        # per-round (squared error, ratings) sums, a ring of STATS_ROWS rows: its size does not depend on
        # ``rounds``, so a job resumes with more rounds than it was started with
        stats = self.table("_round_stats", (STATS_ROWS, 2), "float64", exact=True)

        test = None
        if self.is_master and cfg.test_input:
            t = loaders.parse_ratings(loaders.read_all_lines(loaders.expand_inputs(cfg.test_input)),
                                      on_bad_line=cfg.on_bad_line)
            test = (index_of(users, t.rows), index_of(items, t.cols), t.values.astype(np.float64))

        def test_rmse():
            if test is None or len(test[2]) == 0:
                return None
            return float(np.sqrt(sse(P.shards, Q.shards, BU.shards, BI.shards, *test, mu) / len(test[2])))

        # compile (or load from numba's cache) before the clock starts: seconds measure training
        sgd_blocks(P.shards, Q.shards, BU.shards, BI.shards, u, i, r, np.zeros(0, np.int64), BLOCK, 0, mu, cfg.alpha,
                   cfg.beta)
        test_rmse()
        if self.start_round and self.is_master:  # rounds the interrupted run had not shown: not shown again
            everything = np.arange(STATS_ROWS)
            stats.push(everything, -stats.pull(everything))
        self.sync()
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
        if self.is_master:
            self._show(stats, shown, cfg.rounds, test_rmse, start)

        train_sse = self.allreduce(float(sse(P.shards, Q.shards, BU.shards, BI.shards, u, i, r, mu)))
        metrics = {
            "train_rmse": float(np.sqrt(train_sse / max(n_total, 1))),
            "seconds": seconds,
            "ratings_per_second": n_total * (cfg.rounds - self.start_round) / seconds if seconds > 0 else 0.0,
            "global_mean": mu,
            "ratings": n_total,
            "users": len(users),
            "items": len(items),
            "rounds": cfg.rounds,
            "start_round": self.start_round,
            "k": k,
            "bad_lines": bad,
            "max_clock_lead": self.allreduce(self.clocks.max_lead, op="max"),
            "cross_node_bytes": self.cross_node_bytes(),
            **self._traffic_model(u, i, k),
        }
        if self.is_master:
            rmse = test_rmse()
            if rmse is not None:
                metrics["test_rmse"] = rmse
                metrics["test_ratings"] = int(len(test[2]))
            for t in (P, Q, BU, BI):
                self.save_table(t)
            self.output_path("users.txt").write_text("".join(f"{x}\n" for x in users))
            self.output_path("items.txt").write_text("".join(f"{x}\n" for x in items))
            self.write_metrics(metrics)
            line = f"done: train_rmse {metrics['train_rmse']:.4f}"
            if rmse is not None:
                line += f"  test_rmse {rmse:.4f}"
            self.log(line + f"  {metrics['ratings_per_second']:,.0f} ratings/s  {seconds:.2f} s")
        self.sync()

    def _traffic_model(self, u: np.ndarray, i: np.ndarray, k: int) -> dict:
        """Per round, the bytes of the rows of remote shards that the workers update, counted per node
        (what the node agents send: the union of the node's workers' rows) and per worker (what
        workers sending their own updates would send). Collective; empty on one node."""
        if self.nnodes == 1:
            return {}
        S = self.nserver
        local = {self._rt.layout.index_of[r] for r in self._rt.layout.servers_on(self.node_id)}
        remote_u = np.unique(u[~np.isin(u % S, list(local))])
        remote_i = np.unique(i[~np.isin(i % S, list(local))])
        parts = self.allgather((self.node_id, remote_u, remote_i))
        row = 8 + 4 * k + 8 + 4  # a factor row and a bias row, each with its key
        per_worker = sum(len(ru) + len(ri) for _, ru, ri in parts) * row
        per_node = 0
        for node in {n for n, _, _ in parts}:
            us = np.unique(np.concatenate([ru for n, ru, _ in parts if n == node]))
            its = np.unique(np.concatenate([ri for n, _, ri in parts if n == node]))
            per_node += (len(us) + len(its)) * row
        return {"push_bytes_per_round_node_aggregated": per_node,
                "push_bytes_per_round_per_worker": per_worker}

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
