"""The ``pushpull`` benchmark: API pull/push of random rows vs the bare numba kernel.

Starts one real job (1 worker, 1 server) running ``pushpull_job.py``; the
worker times both sides itself (see that file) and this module turns its
samples into figures: batches/s of API and limit (medians) and their ratio.
"""

from __future__ import annotations

from pathlib import Path

from .common import BENCH_DIR, figure, median, run_job, say

__all__ = ["run", "rows", "GOAL"]

GOAL = 0.8
ORDER = ("pull_unsorted", "push_unsorted", "pull_sorted", "push_sorted")
FULL = {"rows": 1_000_000, "dim": 32, "batch": 1000, "pool": 2048, "repeats": 7, "sample_seconds": 0.2}
QUICK = {"rows": 100_000, "dim": 32, "batch": 1000, "pool": 256, "repeats": 3, "sample_seconds": 0.05}


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
    for name in ORDER:
        res = data["results"].get(name)
        if res is None:
            continue
        fig = figure(res["api"], res["limit"], "batches/s", goal=f">= {GOAL}")
        fig["met"] = fig["ratio"] >= GOAL
        fig["batches_per_sample"] = res["batches_per_sample"]
        fig["others_cores"] = res["others"]
        figures[name] = fig
    overhead = {}
    for op, res in data["one_key"].items():
        per_call = [1e6 / a - 1e6 / b for a, b in zip(res["api"], res["limit"])]
        overhead[op] = {"api_calls_per_s": median(res["api"]), "limit_calls_per_s": median(res["limit"]),
                        "api_extra_us_per_call": median(per_call)}
    params.update(nshards=data["nshards"], pool=data["pool"], chunks=data["chunks"],
                  job_seconds=round(wall, 1))
    return {"params": params, "figures": figures, "one_key_calls": overhead,
            "notes": {"keys": "random, drawn with replacement; 'sorted' sorts each batch",
                      "limit": "the same kernel (gather / scatter_add) on a 1-tuple of a plain numpy "
                               "array, in the same worker process",
                      "ratio": "median over repeats of api/limit, each pair timed in alternating chunks"}}


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, API, limit, ratio, goal, verdict."""
    out = []
    for name, fig in result["figures"].items():
        op, order = name.split("_", 1)
        out.append([f"{op} {order} keys, batches/s", f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}",
                    f"{fig['ratio']:.2f}", fig["goal"], "met" if fig["met"] else "MISSED",
                    f"{median(fig['others_cores']):.2f}"])
    for op, o in result.get("one_key_calls", {}).items():
        out.append([f"{op} 1-key calls/s (info)", f"{o['api_calls_per_s']:,.0f}", f"{o['limit_calls_per_s']:,.0f}",
                    f"{o['api_calls_per_s'] / o['limit_calls_per_s']:.2f}",
                    f"+{o['api_extra_us_per_call']:.1f} us/call", "", ""])
    return out

