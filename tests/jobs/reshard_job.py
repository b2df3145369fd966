"""Test job: tables (with optimiser state) saved by a checkpoint, then read back on another layout.

A fresh run declares the tables and pushes seeded updates for ``rounds`` clocks (a checkpoint every
``checkpoint_every``). A resumed run (``--resume``) declares the same tables, and the master
writes ``<output>/<table>.npy`` (its ``pull_all``: node-local shards and, on several nodes, the caches
of the others) and ``<output>/sparse.npy`` (the sparse table's rows of ``SPARSE_KEYS``); then (with
``checkpoint_every: 1``) the job saves a checkpoint of the restored tables into the config's
``checkpoint_dir`` (the new layout).
"""

from __future__ import annotations

import numpy as np


from parasol_hybrid import Option, paralg, run

#: keys of the sparse table (hashed-looking, spread over every shard)
SPARSE_KEYS = np.array([3, 10, 11, 12, 99, 1000, 12345, 2**40 + 7, 2**62 + 5], dtype=np.int64)


class ReshardJob(paralg):
    options = {"sparse": Option(bool, False, "also declare a sparse table")}

    def solve(self) -> None:
        emb = self.table("emb", (23, 3), "float32", "normal", std=0.1, rule="adagrad", hyper={"lr": 0.05})
        cnt = self.table("cnt", (17, 2), "int64")
        w = self.table("w", (7, 1), "float64", "uniform", low=-1.0, high=1.0)
        sparse = self.sparse_table("sp", capacity=32, dim=2) if self.cfg.sparse else None
        if not self.start_round:
            for rnd in range(self.start_round, self.cfg.rounds):
                rng = np.random.default_rng([self.cfg.seed, self.worker_id, rnd])
                keys = rng.choice(23, 9, replace=False).astype(np.int64)
                self.push(emb, keys, rng.standard_normal((9, 3)).astype(np.float32))
                ckeys = rng.integers(0, 17, 12).astype(np.int64)
                self.push(cnt, ckeys, rng.integers(1, 5, (12, 2)).astype(np.int64))
                self.push(w, np.arange(7, dtype=np.int64), rng.standard_normal((7, 1)))
                if sparse is not None:
                    sparse.push(SPARSE_KEYS, np.tile(np.arange(1, 10, dtype=np.int64)[:, None], (1, 2)) * (rnd + 1))
                self.clock()
            self.sync()
            return
        if self.is_master:
            for t in (emb, cnt, w):
                np.save(self.output_path(f"{t.name}.npy"), self.pull_all(t))
            if sparse is not None:
                np.save(self.output_path("sparse.npy"), sparse.pull(SPARSE_KEYS))
        self.sync()
        self.round_done()  # with checkpoint_every 1: a checkpoint of the restored tables, on this layout


if __name__ == "__main__":
    run(ReshardJob)
