"""Test job for the lifecycle of a job: runs, fails on purpose, or prints many progress lines.

``mode``:
- ``run``: push, pull and clock until ``max_seconds`` (the master writes ``<output>/ready`` after
  5 clocks), then write ``metrics.json``;
- ``raise``: worker ``fail_worker`` raises ``error`` (InputError, TableError, RuleError or
  RuntimeError) after 3 clocks; the others go on clocking (BSP: they wait for it);
- ``print``: like ``run`` for ``rounds`` rounds, with a progress line each round.

``hold``: every worker also creates a segment named like the job's and never unlinks it.
"""

from __future__ import annotations

import os
import time

import numpy as np
import posix_ipc

from parasol_hybrid import InputError, Option, RuleError, TableError, paralg, run

ERRORS = {"InputError": InputError, "TableError": TableError, "RuleError": RuleError, "RuntimeError": RuntimeError}


class Lifecycle(paralg):
    options = {
        "mode": Option(str, "run", "run, raise or print", choices=("run", "raise", "print")),
        "max_seconds": Option(float, 60.0, "run mode: stop after this long"),
        "fail_worker": Option(int, 0, "raise mode: the worker that raises"),
        "error": Option(str, "RuntimeError", "raise mode: the error", choices=tuple(ERRORS)),
        "sleep": Option(float, 0.01, "seconds between rounds"),
        "hold": Option(bool, False, "each worker also makes a named segment of the job and keeps its name"),
    }

    def solve(self) -> None:
        if self.cfg.hold:  # what a crash inside the short window before segments are unlinked would leave
            name = f"/parasol-{self._rt.job_id}-{os.getpid()}-hold"
            posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=4096).close_fd()
        t = self.table("t", (64, 4), "float32")
        keys = np.arange(64)
        start = time.monotonic()
        n = 0
        rounds = self.cfg.rounds if self.cfg.mode == "print" else 1 << 30
        total = 0.0
        while n < rounds and time.monotonic() - start < self.cfg.max_seconds:
            self.push(t, keys, np.ones((64, 4), np.float32))
            total = float(self.pull(t, keys[:8]).sum())
            self.clock()
            n += 1
            if n == 5 and self.is_master:
                self.output_path("ready").write_text("ready\n")
            if self.cfg.mode == "raise" and n == 3 and self.worker_id == self.cfg.fail_worker:
                raise ERRORS[self.cfg.error](f"deliberate {self.cfg.error} of worker {self.worker_id}")
            if self.cfg.mode == "print":
                self.progress(n, rounds, total=total)
            time.sleep(self.cfg.sleep)
        self.write_metrics({"rounds_done": n, "total": total})


if __name__ == "__main__":
    run(Lifecycle)
