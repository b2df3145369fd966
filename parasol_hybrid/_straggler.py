"""The config key ``straggler``: one worker slowed down on purpose, for benchmarks and tests.

``{"worker": W, "slowdown": F}`` makes every iteration of worker W take F times as long: at the start
of each :meth:`~parasol_hybrid.paralg.clock` the worker sleeps ``(F - 1)`` times the wall time since
its previous clock ended. The algorithm base class installs :func:`clock_hook`'s hook when the key is
set; the clock itself knows nothing of it. ``benchmarks/staleness.py`` measures SSP against BSP with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["check_straggler", "straggler_worker_problem", "clock_hook"]


def check_straggler(value: dict) -> str | None:
    """The config check of the key (see :class:`~parasol_hybrid.config.Option`): None, or the rule broken."""
    if set(value) != {"worker", "slowdown"}:
        return 'must be {"worker": W, "slowdown": F}'
    w, f = value["worker"], value["slowdown"]
    if not isinstance(w, int) or isinstance(w, bool) or w < 0:
        return "worker must be a non-negative integer"
    if not isinstance(f, (int, float)) or isinstance(f, bool) or not f >= 1.0:
        return "slowdown must be a number >= 1"
    return None


def straggler_worker_problem(straggler: dict | None, nworker: int) -> str | None:
    """The error message if ``straggler`` names a worker the job does not have, else None."""
    if straggler and straggler["worker"] >= nworker:
        return f"config key 'straggler': worker {straggler['worker']} does not exist (nworker is {nworker})"
    return None


def clock_hook(cfg: Mapping[str, Any], worker_id: int) -> Callable[[float], None] | None:
    """The hook that slows worker ``worker_id`` down as ``cfg["straggler"]`` asks, or None for the others
    (and for every worker when the key is not set). The hook is called with the wall time of the
    iteration that is ending, in seconds."""
    straggler = cfg.get("straggler")
    if not straggler or straggler["worker"] != worker_id or float(straggler["slowdown"]) <= 1.0:
        return None
    stretch = float(straggler["slowdown"]) - 1.0

    def sleep_out(iteration_seconds: float) -> None:
        time.sleep(stretch * iteration_seconds)

    return sleep_out
