"""The ``staleness`` benchmark's experiment and figures: its modes, targets and goals, and what they make of
the runs' progress logs (no job is run here: :mod:`benchmarks.staleness` runs them,
:mod:`benchmarks.staleness_plot` draws them and recomputes these figures from saved results).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .common import QUIET_CORES, REPO, median, verdict

__all__ = [
    "HEADLINE_MARGIN",
    "LABELS",
    "MODES",
    "QUALITY_GOAL",
    "STRAGGLER",
    "TARGET_MARGINS",
    "TIME_GOAL",
    "analyse",
    "curve",
    "fmt_seconds",
    "median_or_none",
    "output_dir",
    "read_log",
    "rounds_to",
    "rows",
    "time_to",
    "typical",
]

#: mode name -> staleness
MODES = {"bsp": 0, "ssp1": 1, "ssp2": 2, "ssp4": 4, "asp": -1}
LABELS = {"bsp": "BSP", "ssp1": "SSP s=1", "ssp2": "SSP s=2", "ssp4": "SSP s=4", "asp": "ASP"}
STRAGGLER = {"worker": 0, "slowdown": 2.0}
TARGET_MARGINS = (0.10, 0.05, 0.02, 0.01)
HEADLINE_MARGIN = 0.02  # the "target quality" of the goal, fixed before the full run
TIME_GOAL = 0.7         # SSP time to target / BSP's
QUALITY_GOAL = 1.01     # final test RMSE / BSP's
ENV_OUTPUT = "PARASOL_BENCH_OUTPUT"


def output_dir() -> Path:
    """Where the plots and the JSON go: ``$PARASOL_BENCH_OUTPUT/staleness`` (default ``<repo>/bench-output``)."""
    return Path(os.environ.get(ENV_OUTPUT) or REPO / "bench-output") / "staleness"


def read_log(path: Path) -> list[dict]:
    """The records of the last run in a ``--log-json`` file (a retried job appends a second run)."""
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    starts = [n for n, r in enumerate(recs) if n == 0 or r["round"] <= recs[n - 1]["round"]]
    return recs[starts[-1]:] if starts else []


def curve(records: list[dict]) -> list[list[float]]:
    """``[round, train_seconds, test_rmse]`` of every record that has a test RMSE."""
    return [[r["round"], round(r["train_seconds"], 4), r["test_rmse"]] for r in records if "test_rmse" in r]


def time_to(points: list[list[float]], target: float) -> float | None:
    """``train_seconds`` of the first point with test RMSE at or below ``target`` (None: never)."""
    for _, seconds, rmse in points:
        if rmse <= target:
            return seconds
    return None


def rounds_to(points: list[list[float]], target: float) -> int | None:
    for rnd, _, rmse in points:
        if rmse <= target:
            return int(rnd)
    return None


def _compare(mode: list, base: list, mode_load: list[float], base_load: list[float], goal: str | None) -> dict:
    """A mode's samples against BSP's (None: target never reached, counts as infinitely slow).

    Other sessions' load comes and goes within a minute and slows a run far
    more than the mode does, so the two repeats of a pair rarely share it:
    ``ratio`` is the median of the mode's quiet runs (other processes used at
    most ``QUIET_CORES`` cores meanwhile) over the median of BSP's quiet runs.
    When either side has no quiet run, it is the median over all repeats of
    the per-repeat ratio, and ``quiet_repeats`` is 0 (the verdict gets a '?').
    """
    n = len(base)
    quiet_mode = [r for r in range(n) if mode_load[r] <= QUIET_CORES]
    quiet_base = [r for r in range(n) if base_load[r] <= QUIET_CORES]
    pairs = [r for r in range(n) if base[r] is not None and base[r] > 0]
    paired = median_or_none([None if mode[r] is None else mode[r] / base[r] for r in pairs]) if pairs else None
    if quiet_mode and quiet_base:
        api, limit = typical(mode, mode_load), typical(base, base_load)
        ratio = api / limit if api is not None and limit else None
    else:
        api, limit, ratio = median_or_none(mode), median_or_none(base), paired
    return {"api": api, "limit": limit, "ratio": ratio, "ratio_all_repeats": paired,
            "quiet_repeats": min(len(quiet_mode), len(quiet_base)), "quiet_runs": [len(quiet_mode), len(quiet_base)],
            "repeats": n, "quiet_threshold_cores": QUIET_CORES, "api_samples": mode, "limit_samples": base,
            "others_cores": mode_load, "bsp_others_cores": base_load, "goal": goal}


def analyse(params: dict, runs: dict[str, list[dict]], others: dict[str, list[float]]) -> dict:
    """Targets, times to them, figures and the goal's verdict from the runs' curves (no I/O)."""
    bsp_final = median([r["test_rmse"] for r in runs["bsp"]])
    targets = {f"{m:.2f}": bsp_final * (1.0 + m) for m in TARGET_MARGINS}
    figures: dict[str, dict] = {}
    to_target: dict[str, dict] = {}
    for mode in MODES:
        to_target[mode] = {key: {"seconds": [time_to(r["curve"], t) for r in runs[mode]],
                                 "rounds": [rounds_to(r["curve"], t) for r in runs[mode]]}
                           for key, t in targets.items()}
    for mode in MODES:
        if mode == "bsp":
            continue
        ssp = mode.startswith("ssp")
        for m in TARGET_MARGINS:
            key = f"{m:.2f}"
            fig = _compare(to_target[mode][key]["seconds"], to_target["bsp"][key]["seconds"], others[mode],
                           others["bsp"], f"<= {TIME_GOAL}" if ssp else None)
            fig.update(unit="s to target", target_rmse=targets[key], margin=m,
                       rounds=[median_or_none(to_target[mode][key]["rounds"]),
                               median_or_none(to_target["bsp"][key]["rounds"])],
                       met=(fig["ratio"] is not None and fig["ratio"] <= TIME_GOAL) if ssp else None)
            figures[f"time_{mode}_{key}"] = fig
        calm = [0.0] * len(runs[mode])  # RMSE does not depend on load: every repeat counts
        fig = _compare([r["test_rmse"] for r in runs[mode]], [r["test_rmse"] for r in runs["bsp"]], calm, calm,
                       f"<= {QUALITY_GOAL}")
        fig.update(unit="final test RMSE", met=fig["ratio"] is not None and fig["ratio"] <= QUALITY_GOAL)
        figures[f"final_{mode}"] = fig

    head = f"{HEADLINE_MARGIN:.2f}"
    passing = [m for m in MODES if m.startswith("ssp") and figures[f"time_{m}_{head}"]["met"]
               and figures[f"final_{m}"]["met"]]
    goal = {"met": bool(passing), "modes": passing, "headline_margin": HEADLINE_MARGIN,
            "target_rmse": targets[head], "time_goal": TIME_GOAL, "quality_goal": QUALITY_GOAL,
            "met_at_margins": {f"{m:.2f}": [s for s in MODES if s.startswith("ssp")
                                            and figures[f"time_{s}_{m:.2f}"]["met"] and figures[f"final_{s}"]["met"]]
                               for m in TARGET_MARGINS}}
    return {"params": params, "figures": figures, "targets": targets, "bsp_final_rmse": bsp_final,
            "time_to_target": to_target, "others_cores": others, "quiet_threshold_cores": QUIET_CORES,
            "runs": runs, "goal": goal,
            "seconds_per_round": {m: typical([r["seconds"] / params["rounds"] for r in runs[m]], others[m])
                                  for m in MODES},
            "notes": {
                "data": "synthetic ML-1M-shaped ratings (benchmarks/ratings_data.py), 90/10 split, fixed seed",
                "job": f"algs/mf.py, {params['nworker']} workers + {params['nserver']} server on one node, "
                       f"straggler {STRAGGLER} (worker 0 sleeps (F-1) x its iteration's wall time in clock())",
                "curve": "worker 0's progress log: [round every worker finished, train_seconds, test RMSE "
                         "of the shared parameters at that moment]",
                "targets": "(1 + margin) x the median over repeats of BSP's final test RMSE",
                "time_to_target": "train_seconds of the first report at or below the target (None: never)",
                "ratio": f"median of the mode's quiet runs (others <= {QUIET_CORES} cores) / median of "
                         "BSP's quiet runs; without quiet runs on both sides, median over all repeats of "
                         "mode / BSP in the same repeat; not reached counts as infinitely slow"}}


def median_or_none(values: list) -> float | None:
    """Median, with None (never reached) counted as infinite; None if that median is infinite."""
    vals = [math.inf if v is None else v for v in values]
    m = median(vals) if vals else math.inf
    return None if math.isinf(m) else m


def typical(samples: list, load: list[float]) -> float | None:
    """:func:`median_or_none` of the samples taken while the machine was quiet, or of all if none was."""
    quiet = [x for x, o in zip(samples, load) if o <= QUIET_CORES]
    return median_or_none(quiet if quiet else samples)


def fmt_seconds(x: float | None) -> str:
    return "never" if x is None else f"{x:.2f} s"


def rows(result: dict) -> list[list[str]]:
    """Table rows: time to each target per mode vs BSP, then final test RMSE vs BSP."""
    out = []
    figures = result["figures"]
    for m in TARGET_MARGINS:
        key = f"{m:.2f}"
        target = result["targets"][key]
        for mode in MODES:
            if mode == "bsp":
                continue
            fig = figures[f"time_{mode}_{key}"]
            quiet = fig["quiet_runs"]
            load = f"{median(fig['others_cores']):.2f} ({quiet[0]}/{fig['repeats']}; BSP {quiet[1]}/{fig['repeats']})"
            ratio = "-" if fig["ratio"] is None else f"{fig['ratio']:.2f}"
            rounds = "/".join("never" if x is None else f"{x:g}" for x in fig["rounds"])
            out.append([f"{LABELS[mode]} vs BSP, s to test RMSE {target:.4f} (BSP final +{m:.0%}; rounds {rounds})",
                        fmt_seconds(fig["api"]), fmt_seconds(fig["limit"]), ratio, fig["goal"] or "(info)",
                        verdict(fig, fig["met"]), load])
    for mode in MODES:
        if mode == "bsp":
            continue
        fig = figures[f"final_{mode}"]
        out.append([f"{LABELS[mode]} vs BSP, final test RMSE", f"{fig['api']:.4f}", f"{fig['limit']:.4f}",
                    f"{fig['ratio']:.4f}", fig["goal"], verdict(fig, fig["met"]), ""])
    return out
