"""Test job: update rules on rows of remote shards give the one-node result (issue 9, items 5 and 9).

``cases`` (comma-separated) picks the experiments, run one after the other; the master writes
``<output>/rules.json`` with, per worker, a record per case:

* ``assign``: every worker assigns 5.0 to every row of a table initialised to 1.0 (clock, sync); then the
  workers take turns, worker ``w`` assigning ``10 + w`` and pulling right after (read-my-writes).
* ``sgd``: every worker pushes ``sgd`` steps of known gradients (``rules_data.sgd_gradient``) over clocks.
* ``box``: the workers take turns pushing a clipped step (``test_box_sgd``: the row is kept in
  ``[-clip, clip]``, a stateless rule that is not additive), pulling right after each push.
* ``momentum``: linear-regression gradient descent with the user rule ``test_momentum`` (one state slot):
  each worker computes the gradient of ``rules_data.regression()`` at the weights it pulls, pushes it,
  and calls ``clock()`` every ``steps_per_clock`` steps (every worker uses all the data, so the fixed point
  is exactly the least-squares solution, whatever the order of the pushes).

Every record has each worker's ``pull_all`` after the final ``sync()``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from rules_data import (BOX_CLIP, BOX_DIM, BOX_LR, BOX_ROWS, MOMENTUM_LR, MOMENTUM_MU, SGD_DIM, SGD_LR,  # noqa: E402
                        SGD_ROWS, box_delta, regression, sgd_gradient)

from parasol_hybrid import Option, paralg, run, update_rule  # noqa: E402


@update_rule("test_box_sgd", hyper={"lr": BOX_LR, "clip": BOX_CLIP}, replace=True)
def test_box_sgd(param, state, delta, hp):
    for j in range(param.shape[0]):
        param[j] = min(max(param[j] - hp[0] * delta[j], -hp[1]), hp[1])


@update_rule("test_momentum", hyper={"lr": MOMENTUM_LR, "mu": MOMENTUM_MU}, state_slots=1, replace=True)
def test_momentum(param, state, delta, hp):
    for j in range(param.shape[0]):
        state[0, j] = hp[1] * state[0, j] + delta[j]
        param[j] -= hp[0] * state[0, j]


class RulesJob(paralg):
    options = {"cases": Option(str, "assign", "experiments to run: assign, sgd, box, momentum (comma-separated)"),
               "steps": Option(int, 4, "steps (turns) of the assign, sgd and box experiments"),
               "momentum_steps": Option(int, 600, "momentum: gradient steps per worker"),
               "steps_per_clock": Option(int, 30, "momentum: steps between clock() calls")}

    def solve(self) -> None:
        rec = {case: getattr(self, "case_" + case)() for case in self.cfg.cases.split(",")}
        everyone = self.allgather({"worker": self.worker_id, "node": self.node_id, **rec})
        self.write_json("rules.json", {"nnodes": self.nnodes, "workers": everyone})
        self.sync()

    def case_assign(self) -> dict:
        rows, w, n = 6, self.worker_id, self.nworker
        t = self.table("a", (rows, 2), "float64", "constant", value=1.0, rule="assign")
        keys = np.arange(rows)
        self.sync()
        self.push(t, keys, np.full((rows, 2), 5.0))
        self.clock()
        self.sync()
        after_all = self.pull_all(t).tolist()
        self.allreduce(0)  # everyone has read before the first turn writes
        seen = []
        for turn in range(n):
            if turn == w:
                self.push(t, keys, np.full((rows, 2), 10.0 + w))
                seen = self.pull(t, keys).tolist()
            self.allreduce(0)
        self.clock()
        self.sync()
        return {"after_all_assign_5": after_all, "seen_after_own_assign": seen, "final": self.pull_all(t).tolist()}

    def case_sgd(self) -> dict:
        t = self.table("s", (SGD_ROWS, SGD_DIM), "float64", "constant", value=0.5, rule="sgd", hyper={"lr": SGD_LR})
        keys = np.arange(SGD_ROWS)
        self.sync()
        for step in range(self.cfg.steps):
            self.push(t, keys, sgd_gradient(self.worker_id, step))
            self.clock()
        self.sync()
        return {"final": self.pull_all(t).tolist()}

    def case_box(self) -> dict:
        t = self.table("b", (BOX_ROWS, BOX_DIM), "float64", "constant", value=0.0, rule="test_box_sgd")
        keys = np.arange(BOX_ROWS)
        self.sync()
        seen = []
        for step in range(self.cfg.steps):
            for turn in range(self.nworker):
                if turn == self.worker_id:
                    self.push(t, keys, box_delta(self.worker_id, step))
                    seen.append(self.pull(t, keys).tolist())
                self.allreduce(0)
            self.clock()
        self.sync()
        return {"seen": seen, "final": self.pull_all(t).tolist()}

    def case_momentum(self) -> dict:
        Xw, yw = regression()
        t = self.table("w", (Xw.shape[1], 1), "float64", "zeros", rule="test_momentum")
        keys = np.arange(Xw.shape[1])
        self.sync()
        for step in range(self.cfg.momentum_steps):
            b = self.pull(t, keys)[:, 0]
            grad = Xw.T @ (Xw @ b - yw) / Xw.shape[0]
            self.push(t, keys, grad[:, None])
            if (step + 1) % self.cfg.steps_per_clock == 0:
                self.clock()
        self.clock()
        self.sync()
        return {"final": self.pull_all(t)[:, 0].tolist()}


if __name__ == "__main__":
    run(RulesJob)
