"""Cluster test job: one slow worker; after every ``clock()`` each worker records its lead over the global
view and what it reads of every worker's progress row.

Worker w adds 1 to row w of an exact float64 table before each of its clocks, so after clock c of the
loop a worker must read at least ``c - s`` in every row. The master writes ``<output>/staleness.json``:
``{"staleness": s, "workers": [{"leads": [...], "seen": [[row values after clock 1], ...], "final": [...]}]}``.
"""

from __future__ import annotations

import time

import numpy as np

from parasol_hybrid import Option, paralg, run


class ClusterStaleness(paralg):
    options = {
        "clocks": Option(int, 10, "iterations"),
        "slow_worker": Option(int, 3, "the worker that sleeps every iteration"),
        "slow_sleep": Option(float, 0.05, "seconds the slow worker sleeps per iteration"),
    }

    def solve(self) -> None:
        w, n = self.worker_id, self.nworker
        progress = self.table("progress", (n, 1), "float64", exact=True)
        self.sync()  # in cluster mode a clock: the loop's clocks are counted from here
        base = self.clocks.clock
        leads, seen, returned = [], [], []
        one = np.ones((1, 1))
        for _ in range(self.cfg.clocks):
            if w == self.cfg.slow_worker:
                time.sleep(self.cfg.slow_sleep)
            self.push(progress, [w], one)
            returned.append(self.clock() - base)
            leads.append(self.clocks.clock - self.clocks.slowest())
            seen.append(self.pull_all(progress)[:, 0].tolist())
        self.sync()
        rec = {"worker": w, "node": self.node_id, "leads": leads, "seen": seen, "returned": returned,
               "final": self.pull_all(progress)[:, 0].tolist(), "max_lead": self.clocks.max_lead}
        everyone = self.allgather(rec)
        self.write_json("staleness.json", {"staleness": self.staleness, "nnodes": self.nnodes, "workers": everyone})
        self.sync()


if __name__ == "__main__":
    run(ClusterStaleness)
