"""Soak: every worker pushes increments as fast as it can for a while; nothing may be lost.

Writes ``soak.json``: the table's final sum per key against the sum of what
every worker says it pushed, and the memory of the node's processes at the
start and at the end.
"""

import os
import time

import numpy as np

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.memory import process_memory


class Soak(paralg):
    options = {
        "seconds": Option(float, 3.0, "how long every worker pushes"),
        "rows": Option(int, 100_000, "rows of the counting table"),
        "batch": Option(int, 2000, "keys per push"),
    }

    def node_memory(self) -> dict:
        pids = list(self._rt.watchdog.peers.values()) + [os.getpid()]
        out = {"rss": 0, "pss": 0, "shm_pss": 0}
        for pid in pids:
            for k, v in process_memory(pid).items():
                out[k] += v
        return out

    def solve(self):
        cfg = self.cfg
        counts = self.table("counts", (cfg.rows, 1), "int64")
        floats = self.table("floats", (cfg.rows, 8), "float32")
        rng = np.random.default_rng([cfg.seed, self.worker_id])
        mine = np.zeros(cfg.rows, dtype=np.int64)
        ones = np.ones(cfg.batch, dtype=np.int64)
        fdelta = np.full((cfg.batch, 8), 0.5, dtype=np.float32)
        # warm up (compile), then measure memory at the start
        counts.push(np.zeros(1, np.int64), np.zeros(1, np.int64))
        self.sync()
        first = self.node_memory() if self._rt.node_role_comm.rank == 0 else None
        start = time.monotonic()
        pushes = 0
        while time.monotonic() - start < cfg.seconds:
            keys = rng.integers(0, cfg.rows, cfg.batch)
            counts.push(keys, ones)
            floats.push(keys, fdelta)
            mine += np.bincount(keys, minlength=cfg.rows)
            pushes += 1
            if pushes % 10 == 0:
                self.clock()
        self.sync()
        last = self.node_memory() if self._rt.node_role_comm.rank == 0 else None
        expected = self.allreduce(mine)
        total_pushes = self.allreduce(pushes)
        table = self.pull_all(counts)[:, 0]
        mems = [m for m in self.allgather((first, last)) if m[0] is not None]
        table_bytes = cfg.rows * 8 + cfg.rows * 8 * 4
        if self.is_master:
            self.write_json("soak.json", {
                "equal": bool(np.array_equal(table, expected)),
                "pushed": int(expected.sum()),
                "in_table": int(table.sum()),
                "pushes": total_pushes,
                "memory": [{"start": a, "end": b} for a, b in mems],
                "table_bytes": table_bytes,
                "nodes": self.nnodes,
            })
        self.sync()


if __name__ == "__main__":
    run(Soak)
