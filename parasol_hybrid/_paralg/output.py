"""Output of :class:`~parasol_hybrid.paralg`: the output folder and the files in it (``write_json``,
``write_metrics``, ``save_table``, on the master), and what the master prints (``log``, ``progress``, and
the ``--log-json`` records).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ..cluster.watchdog import peak_rss_bytes
from ..config import ENV_LOG_JSON, ENV_QUIET, ENV_TTY, environment_value
from ..tables.sparse import SparseTable

if TYPE_CHECKING:
    from ..cluster.runtime import Runtime
    from ..config import Config
    from ..staleness.clock import Clocks

__all__ = ["OutputMixin", "open_progress_log"]


def open_progress_log(runtime: Runtime) -> IO[str] | None:
    """The ``--log-json`` file (``$PARASOL_LOG_JSON``), opened for appending on worker 0; None elsewhere
    or when it is not set."""
    path = environment_value(ENV_LOG_JSON)
    return open(path, "a") if path and runtime.index == 0 and runtime.role == "worker" else None


class OutputMixin:
    """``output_dir``, ``output_path``, ``write_json``, ``write_metrics``, ``save_table``, ``log``, ``progress``."""

    _rt: Runtime
    cfg: Config
    _clocks: Clocks | None
    _log_json: IO[str] | None                   # the --log-json file (worker 0 only)
    _t0: float                                  # perf_counter() when the worker started
    _progress_start: tuple[float, int] | None   # (start of the first round, its round)
    _job_peak_rss: int
    _job_load_us: int
    _load_seconds: float

    @property
    def output_dir(self) -> Path:
        out = Path(self.cfg.output)
        out.mkdir(parents=True, exist_ok=True)
        return out

    def output_path(self, name: str) -> Path:
        """``<output>/<name>``, the folder created if needed."""
        return self.output_dir / name

    def write_json(self, name: str, obj: Any) -> Path | None:
        """Write ``obj`` as JSON to ``<output>/<name>`` atomically (on the master only)."""
        if not self.is_master:
            return None
        path = self.output_path(name)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    def write_metrics(self, metrics: dict) -> Path | None:
        """Write ``<output>/metrics.json`` (master only) with ``metrics``, the job's shape, and:

        ``peak_rss_bytes``: the largest peak RSS of any rank of the job (workers and servers, every
        node), as of the last collective (this node's ranks and this worker: as of now);
        ``load_seconds``: the largest wall time a worker spent in :meth:`load` and :meth:`vocabulary`,
        as of the last collective (this worker's: as of now).
        """
        rss = max(self._job_peak_rss, int(self._clocks.peak_rss.max()), peak_rss_bytes())
        load = max(self._job_load_us / 1e6, self._load_seconds)
        full = {"nworker": self.nworker, "nserver": self.nserver, "nodes": self.nnodes,
                "staleness": self.staleness, "peak_rss_bytes": rss, "load_seconds": round(load, 6)}
        full.update(metrics)
        return self.write_json("metrics.json", full)

    def save_table(self, table, name: str | None = None) -> Path | None:
        """Save the whole table (master only): a dense table as ``<output>/<name>.npy`` (its
        ``pull_all()``), a sparse one as ``<output>/<name>.npz`` with arrays ``keys`` (sorted) and
        ``values``. Returns the path (None on other workers)."""
        t = self._table(table)
        if not self.is_master:
            return None
        suffix = ".npz" if isinstance(t, SparseTable) else ".npy"
        return t.save(self.output_path((name or t.name) + suffix))

    def log(self, message: str) -> None:
        """Print a line on the master (flushed)."""
        if self.is_master:
            print(message, flush=True)

    def progress(self, round_: int, rounds: int, **figures) -> None:
        """Report a finished round on the master: one line (a bar when the launcher's output is a
        terminal), and one JSON object in the ``--log-json`` file.

        The line shows the round, the algorithm's ``figures`` (loss, quality,
        updates per second...), the spread of worker clocks (how stale the job
        runs) and the time left, estimated from the rounds so far.
        ``run_parasol --quiet`` silences the line, not the JSON log.
        """
        if not self.is_master:
            return
        now = time.perf_counter()
        t0, r0 = self._progress_start or (self._t0, 0)
        left = (now - t0) / (round_ - r0) * (rounds - round_) if round_ > r0 and rounds >= round_ else None
        spread = self._clocks.spread() if self._clocks is not None else 0
        if self._log_json is not None:
            record = {"round": round_, "rounds": rounds, "seconds": now - self._t0,
                      "train_seconds": now - t0, "clock_spread": spread,
                      "seconds_left": left, "worker": self.worker_id}
            record.update({k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
                           for k, v in figures.items()})
            self._log_json.write(json.dumps(record) + "\n")
            self._log_json.flush()
        if environment_value(ENV_QUIET):
            return
        parts = [f"round {round_:>3}/{rounds}"]
        for key, val in figures.items():
            parts.append(f"{key} {_fmt(val)}")
        parts.append(f"clock spread {spread}")
        parts.append(f"{now - self._t0:.1f} s")
        if left is not None:
            parts.append(f"~{left:.1f} s left")
        line = "  ".join(parts)
        if environment_value(ENV_TTY) and rounds > 0:
            filled = int(20 * min(round_, rounds) / rounds)
            line = f"[{'#' * filled}{'.' * (20 - filled)}] " + line
        print(line, flush=True, file=sys.stdout)


def _fmt(value) -> str:
    """A figure for a progress line: 4 significant digits, thousands separators for big numbers."""
    if isinstance(value, (bool, str)) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"
