"""A job that runs until it is killed (or, with ``fail: raise``, until worker 1 raises)."""

import time

import numpy as np

from parasol_hybrid import Option, paralg, run


class Forever(paralg):
    options = {
        "fail": Option(str, "none", "none, or raise (worker 1 raises after a few clocks)", choices=("none", "raise")),
        "max_seconds": Option(float, 60.0, "stop after this long"),
    }

    def solve(self):
        t = self.table("t", (64, 4), "float32")
        c = self.table("c", (64, 1), "int64")
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < self.cfg.max_seconds:
            keys = np.arange(64)
            t.push(keys, np.ones((64, 4), np.float32))
            c.push(keys, np.ones(64, np.int64))
            self.clock()
            n += 1
            if n == 5 and self.is_master:
                self.output_path("ready").write_text("ready\n")
            if self.cfg.fail == "raise" and self.worker_id == 1 and n == 20:
                raise RuntimeError("deliberate failure in solve()")
            time.sleep(0.01)


if __name__ == "__main__":
    run(Forever)
