"""Test job: one rank of node 1 uses much more memory than the master, one worker is slow to load.

Config keys (beside the common ones):

- ``hog``: ``worker`` (worker 1, on node 1 of 2 simulated nodes), ``server`` (the server of node 1,
  before it serves) or ``none``: that rank allocates and touches ``hog_mb`` MiB and keeps them;
- ``load_sleep``: seconds worker 1's ``load()`` sleeps, inside the call (its input path sleeps the
  first time it is turned into a string: the time is in ``load`` whatever its body reads);
- ``vocab_sleep``: seconds worker 0 sleeps before ``vocabulary()``, so worker 1 waits that long inside it.

The workers ``load()`` the config's ``input``, ``sync()``, call ``vocabulary()`` and ``sync()``; the master writes
``metrics.json`` through ``write_metrics``, with its own peak RSS as ``master_peak_rss_bytes``.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.cluster import server as _server

_kept: list[np.ndarray] = []  # the hog's memory, alive until the process ends


def _hog(mib: int) -> None:
    block = np.ones(mib << 17, dtype=np.float64)  # 8 bytes each, every page written
    _kept.append(block)


def _own_peak_rss() -> int:
    """This process's peak RSS in bytes, read here (not through parasol)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class SlowPath(os.PathLike):
    """A path that sleeps ``delay`` seconds the first time it is used as a path."""

    def __init__(self, path: str, delay: float):
        self.path, self.delay, self.used = str(path), delay, False

    def __fspath__(self) -> str:
        if not self.used:
            self.used = True
            time.sleep(self.delay)
        return self.path


_serve = _server.Server.serve


def _hog_then_serve(self, done) -> None:
    if self.rt.cfg.hog == "server" and self.rt.node == 1:
        _hog(self.rt.cfg.hog_mb)
    _serve(self, done)


_server.Server.serve = _hog_then_serve


class MetricsJob(paralg):
    options = {"hog": Option(str, "none", "worker, server or none: which rank of node 1 allocates hog_mb"),
               "hog_mb": Option(int, 300, "MiB the hog allocates and touches"),
               "load_sleep": Option(float, 0.0, "seconds worker 1's load() sleeps"),
               "vocab_sleep": Option(float, 0.0, "seconds worker 0 sleeps before vocabulary()")}

    def solve(self) -> None:
        cfg = self.cfg
        if cfg.hog == "worker" and self.worker_id == 1:
            _hog(cfg.hog_mb)
        path = SlowPath(cfg.input, cfg.load_sleep) if self.worker_id == 1 and cfg.load_sleep > 0 else cfg.input
        lines = self.load(path)
        self.sync()  # the wait for a slow load is here, not in vocabulary()
        if self.worker_id == 0 and cfg.vocab_sleep > 0:
            time.sleep(cfg.vocab_sleep)
        vocab = self.vocabulary([f"w{self.worker_id}"])
        self.sync()
        if self.is_master:
            self.write_metrics({"master_peak_rss_bytes": _own_peak_rss(), "vocabulary": len(vocab),
                                "master_lines": len(lines), "node_of_master": self.node_id})


if __name__ == "__main__":
    run(MetricsJob)
