"""The ``pushpull`` benchmark: API pull/push of random rows vs the bare numba kernel.

Starts one real job (1 worker, 1 server) running ``pushpull_job.py``; the
worker times both sides itself (see that file) and this module turns its
samples into figures: batches/s of API and limit (medians) and their ratio.
"""

from __future__ import annotations

from pathlib import Path

from .common import BENCH_DIR, figure, run_job, say

__all__ = ["run", "rows", "GOAL"]

GOAL = 0.8
FULL = {"rows": 1_000_000, "dim": 32, "batch": 1000, "repeats": 7, "sample_seconds": 0.2}
QUICK = {"rows": 100_000, "dim": 32, "batch": 1000, "repeats": 3, "sample_seconds": 0.05}


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, seed: int = 0) -> dict:
    """Run the benchmark; returns ``{"params": ..., "figures": {name: figure}}``."""
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    out = workdir / "pushpull-out"
    config = {"nworker": 1, "nserver": 1, "output": str(out), "seed": seed, "_result": "pushpull.json",
              **params}
    say(f"pushpull: one job, {params['rows']:,} × {params['dim']} float32 table, "
        f"batches of {params['batch']:,} keys, {params['repeats']} repeats")
    data, wall = run_job(config, BENCH_DIR / "pushpull_job.py", workdir, "pushpull", direct=direct)
    figures = {}
    for name, res in data["results"].items():
        fig = figure(res["api"], res["limit"], "batches/s", goal=f">= {GOAL}")
        fig["met"] = fig["ratio"] >= GOAL
        fig["batches_per_sample"] = res["batches_per_sample"]
        figures[name] = fig
    params.update(nshards=data["nshards"], pool=data["pool"], job_seconds=round(wall, 2),
                  keys="random with replacement; 'sorted' sorts each batch",
                  limit="same kernel (gather / scatter_add) on a 1-tuple of a plain numpy array, "
                        "same process")
    return {"params": params, "figures": figures}


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, API, limit, ratio, goal, verdict."""
    out = []
    for name, fig in result["figures"].items():
        op, order = name.split("_", 1)
        out.append([f"{op} {order} (batches/s)", f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}",
                    f"{fig['ratio']:.2f}", fig["goal"], "met" if fig["met"] else "MISSED"])
    return out

