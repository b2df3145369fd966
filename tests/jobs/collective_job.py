"""Test job: workers that reach collectives at different clocks, or call different collectives.

``scenario`` (config key) picks what the 2 workers do; several, parted by commas, run one after
another in one job, each from equal clocks (a ``sync()``) and with its own table, its clocks counted
from there:

- ``uneven_sync``: worker 0 clocks 3 times, worker 1 clocks 10 times, then both ``sync()`` and
  ``round_done()`` (which counts one round past the highest: 11 on both);
- ``late_allreduce``: worker 0 calls ``allreduce`` after 3 clocks, worker 1 after 10, then both clock
  twice more and ``sync()``;
- ``table_on_one``: only worker 0 declares table ``x``, then both ``sync()``;
- ``sync_vs_allreduce``: worker 0 calls ``sync()``, worker 1 ``allreduce(1)``;
- ``allreduce_count``: worker 0 calls ``allreduce`` 3 times, worker 1 twice, then both return;
- ``sync_checkpoint``: 15 times: each worker pushes, ``sync()``, ``checkpoint()`` (on two nodes a worker
  that caught up in the checkpoint's check used to tick one clock past the other and wait for good);
- ``ahead_checkpoint``: after a ``sync()`` worker 1's clock is raised by one on the board, as
  ``Clocks.catch_up`` does to a worker that waits in a collective check, then both ``checkpoint()``:
  the race above, made certain.

The master writes ``<output>/collective.json`` (``{scenario: result}``) when the job gets that far.
"""

from __future__ import annotations

import time

from parasol_hybrid import Option, paralg, run


class CollectiveJob(paralg):
    options = {"scenario": Option(str, "uneven_sync", "what the workers do (see the module docstring)")}

    def solve(self) -> None:
        results = {}
        for k, scenario in enumerate(self.cfg.scenario.split(",")):
            if k:
                self.sync()
            results[scenario] = self.scenario(scenario, self.table(f"t_{scenario}", (4, 1), "float32"))
        self.write_json("collective.json", results)

    def scenario(self, scenario: str, t) -> dict:
        """Run one scenario on table ``t``; its result, with clocks counted from its start."""
        w = self.worker_id
        start, first_round = self.clocks.clock, self.round
        if scenario == "uneven_sync":
            for _ in range(3 if w == 0 else 10):
                self.push(t, [w], [[1.0]])
                self.clock()
            before = self.clocks.clock
            self.sync()
            self.round_done()
            result = {"before": self.allgather(before - start), "after": self.allgather(self.clocks.clock - start),
                      "rounds": self.allgather(self.round - first_round), "rows": self.pull(t, [0, 1]).ravel().tolist()}
        elif scenario == "late_allreduce":
            for _ in range(3 if w == 0 else 10):
                self.push(t, [w], [[1.0]])
                self.clock()
            total = self.allreduce(w + 1)
            for _ in range(2):
                self.clock()
            self.sync()
            result = {"total": total, "after": self.allgather(self.clocks.clock - start),
                      "rows": self.pull(t, [0, 1]).ravel().tolist()}
        elif scenario == "table_on_one":
            if w == 0:
                self.table("x", (8, 2), "float32")
            self.sync()
            result = {}
        elif scenario == "sync_vs_allreduce":
            if w == 0:
                self.sync()
            else:
                self.allreduce(1)
            result = {}
        elif scenario == "allreduce_count":
            for _ in range(3 if w == 0 else 2):
                self.allreduce(1.0)
            result = {}
        elif scenario == "sync_checkpoint":
            for i in range(15):
                self.push(t, [w], [[1.0]])
                if w == i % 2:  # one worker comes late to the sync, as a master writing outputs does
                    time.sleep(0.05)
                self.sync()
                self.checkpoint()
            result = {"after": self.allgather(self.clocks.clock - start), "rows": self.pull(t, [0, 1]).ravel().tolist()}
        elif scenario == "ahead_checkpoint":
            self.push(t, [w], [[1.0]])
            self.sync()
            if w == 1:
                self.clocks.clocks[w] += 1
                self.clocks.wake_all()
            self.checkpoint()
            result = {"after": self.allgather(self.clocks.clock - start), "rows": self.pull(t, [0, 1]).ravel().tolist()}
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        return result


if __name__ == "__main__":
    run(CollectiveJob)
