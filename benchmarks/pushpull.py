"""The ``pushpull`` benchmark: API pull/push of random rows vs the bare numba kernel.

Starts one real job (1 worker, 1 server) running ``pushpull_job.py``; the
worker times both sides itself (see that file) and this module turns its
samples into figures: batches/s of API and limit (medians) and their ratio.
"""

from __future__ import annotations

from pathlib import Path

from .common import BENCH_DIR, figure, median, run_job, say, verdict

__all__ = ["run", "rows", "GOAL"]

GOAL = 0.8
ORDER = ("pull_unsorted", "push_unsorted", "pull_sorted", "push_sorted")
FULL = {"rows": 1_000_000, "dim": 32, "batch": 1000, "pool": 2048, "repeats": 7, "sample_seconds": 0.2,
        "quiet_wait": 3.0}
QUICK = {"rows": 100_000, "dim": 32, "batch": 1000, "pool": 256, "repeats": 3, "sample_seconds": 0.05,
         "quiet_wait": 0.0}


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None,
        seed: int = 0) -> dict:
    """Run the benchmark; returns ``{"params": ..., "figures": {name: figure}}``."""
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    if quiet_wait is not None:
        params["quiet_wait"] = quiet_wait
    out = workdir / "pushpull-out"
    config = {"nworker": 1, "nserver": 1, "output": str(out), "seed": seed, "_result": "pushpull.json",
              **params}
    say(f"pushpull: one job, {params['rows']:,} × {params['dim']} float32 table, "
        f"batches of {params['batch']:,} keys, {params['repeats']} repeats")
    data, wall = run_job(config, BENCH_DIR / "pushpull_job.py", workdir, "pushpull", direct=direct)
    figures, vs_small_pages = {}, {}
    for name in ORDER:
        res = data["results"].get(name)
        if res is None:
            continue
        fig = figure(res["api"], res["limit"], "batches/s", goal=f">= {GOAL}", others=res["others"])
        fig["met"] = fig["ratio"] >= GOAL
        fig["batches_per_sample"] = res["batches_per_sample"]
        figures[name] = fig
        if "limit_4k" in res:
            small = figure(res["api"], res["limit_4k"], "batches/s", others=res["others"])
            small["met"] = None
            vs_small_pages[name] = small
    overhead = {}
    for op, res in data["one_key"].items():
        fig = figure(res["api"], res["limit"], "calls/s", others=res["others"])
        use = [r for r in range(len(res["api"])) if res["others"][r] <= fig["quiet_threshold_cores"]]
        use = use or list(range(len(res["api"])))
        fig["api_extra_us_per_call"] = median([1e6 / res["api"][r] - 1e6 / res["limit"][r] for r in use])
        fig["met"] = None
        overhead[op] = fig
    params.update(nshards=data["nshards"], pool=data["pool"], chunks=data["chunks"],
                  limit_huge_pages_mib=round(data.get("limit_huge_pages_kib", -1) / 1024), job_seconds=round(wall, 1))
    return {"params": params, "figures": figures, "vs_small_pages": vs_small_pages, "one_key_calls": overhead,
            "notes": {"keys": "random, drawn with replacement; 'sorted' sorts each batch",
                      "limit": "the bare kernel on a 1-tuple of a plain numpy array, in the same worker "
                               "process: gather, and scatter_add without the NaN/Inf check of the API's "
                               "pushes (so the push ratio includes that check's cost)",
                      "ratio": "median over quiet repeats (else all) of api/limit, each pair timed in "
                               "alternating chunks",
                      "vs_small_pages": "API against the same kernel on a plain array kept in 4 KiB pages "
                                        "(MADV_NOHUGEPAGE), as /dev/shm segments are here: the API's own cost "
                                        "without the page-size difference",
                      "one_key_calls": "1-key pull/push calls: the API's fixed cost per call"}}


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, API, limit, ratio, goal, verdict, load of other processes."""
    out = []
    for name in ORDER:
        fig = result["figures"].get(name)
        if fig is None:
            continue
        op, order = name.split("_", 1)
        out.append([f"{op} {order} keys, batches/s", f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}",
                    f"{fig['ratio']:.2f}", fig["goal"], verdict(fig, fig["met"]), _load(fig)])
    for name in ORDER:
        fig = result.get("vs_small_pages", {}).get(name)
        if fig is not None:
            op, order = name.split("_", 1)
            out.append([f"{op} {order}, limit in 4K pages (info)", f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}",
                        f"{fig['ratio']:.2f}", "", "", _load(fig)])
    for op, fig in result.get("one_key_calls", {}).items():
        out.append([f"{op} 1-key calls/s (info)", f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}", f"{fig['ratio']:.2f}",
                    f"+{fig['api_extra_us_per_call']:.1f} us/call", "", _load(fig)])
    return out


def _load(fig: dict) -> str:
    return f"{median(fig['others_cores']):.2f} ({fig['quiet_repeats']}/{fig['repeats']})"
