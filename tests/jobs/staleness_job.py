"""Test job: worker 0 is slow, the others fast; every worker records its lead after each clock().

The master writes ``<output>/staleness.json``: ``{"staleness": s, "leads": [[lead after clock 1, ...] per worker]}``.
"""

from __future__ import annotations

import time

from parasol_hybrid import Option, paralg, run


class StalenessJob(paralg):
    options = {
        "clocks": Option(int, 12, "iterations"),
        "slow_sleep": Option(float, 0.05, "seconds worker 0 sleeps per iteration"),
    }

    def solve(self) -> None:
        self.sync()
        leads = []
        for _ in range(self.cfg.clocks):
            if self.worker_id == 0:
                time.sleep(self.cfg.slow_sleep)
            self.clock()
            leads.append(self.clocks.clock - self.clocks.slowest())
        everyone = self.allgather(leads)
        max_lead = self.allreduce(self.clocks.max_lead, op="max")
        self.write_json("staleness.json", {"staleness": self.staleness, "leads": everyone, "max_lead": max_lead,
                                           "final_clocks": self.allgather(self.clocks.clock)})


if __name__ == "__main__":
    run(StalenessJob)
