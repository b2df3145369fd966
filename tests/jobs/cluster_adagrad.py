"""Cluster test job: adagrad (a stateful rule) pushed by workers on every node, BSP.

Table ``ada``: each worker pulls its own rows and pushes ``pulled - target`` (the next pull must see the
owner's update); every worker pushes the same gradient to the shared rows (so the order of the pushes
does not matter, but the optimiser state must be in one place); the workers take turns at the shared rows,
so the result is the same with or without ``exact``. Table ``ada_lr``: the same shared
gradients pushed with a per-push ``lr`` override. The master writes ``<output>/adagrad.json`` with every
worker's ``pull_all`` of both tables after the final ``sync()``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_data import (ADA_DIM, ADA_EPS, ADA_INIT, ADA_LR, ADA_LR_OVERRIDE, ADA_ROWS, own_rows,  # noqa: E402
                          shared_gradient, shared_rows, targets)

from parasol_hybrid import Option, paralg, run  # noqa: E402


class ClusterAdagrad(paralg):
    options = {"steps": Option(int, 6, "clocks"),
               "exact": Option(bool, True, "declare the tables exact=True (pushes hold the shard locks)")}

    def solve(self) -> None:
        w, n = self.worker_id, self.nworker
        hyper = {"lr": ADA_LR, "eps": ADA_EPS}
        ada = self.table("ada", (ADA_ROWS, ADA_DIM), "float64", "constant", value=ADA_INIT, rule="adagrad",
                         hyper=hyper, exact=self.cfg.exact)
        ada_lr = self.table("ada_lr", (ADA_ROWS, ADA_DIM), "float64", "constant", value=ADA_INIT,
                            rule="adagrad", hyper=hyper, exact=self.cfg.exact)
        mine, shared, target = own_rows(w, n), shared_rows(n), targets()
        self.sync()
        for step in range(self.cfg.steps):
            self.push(ada, mine, self.pull(ada, mine) - target[mine])
            for turn in range(n):  # one worker after another, so unlocked tables are deterministic too
                if turn == w:
                    self.push(ada, shared, shared_gradient(shared, step))
                    self.push(ada_lr, shared, shared_gradient(shared, step), lr=ADA_LR_OVERRIDE)
                self.allreduce(0)
            self.clock()
        self.sync()
        everyone = self.allgather({"worker": w, "node": self.node_id, "ada": self.pull_all(ada).tolist(),
                                   "ada_lr": self.pull_all(ada_lr).tolist()})
        self.write_json("adagrad.json", {"nnodes": self.nnodes, "workers": everyone})
        self.sync()


if __name__ == "__main__":
    run(ClusterAdagrad)
