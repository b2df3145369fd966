"""The ``staleness`` benchmark: MF with one slowed worker under BSP, SSP (s = 1, 2, 4) and ASP.

Each job is ``algs/mf.py`` with 4 workers and 1 server on synthetic
MovieLens-1M-shaped ratings (``ratings_data``), the hyper-parameters of the
``mf`` benchmark, and the config key ``straggler: {"worker": 0, "slowdown": 2}``:
every iteration of worker 0 is stretched to twice its wall time (it sleeps in
``clock()``). The modes differ only in ``staleness`` (0, 1, 2, 4, -1).

Worker 0 is the slowed one on purpose: it is also the worker that reports
progress. ``MF._show`` reports round ``r`` once every worker has finished it,
with the test RMSE of the shared parameters *at that moment*; with the
straggler on worker 0 that moment is right after worker 0's own ``clock()``
in every mode, so the curves are sampled at the same pace. (With a fast
worker 0, ASP would stop reporting once worker 0 ran out of rounds and then
report every remaining round at once at the end.)

The per-round log is worker 0's ``progress()`` (what ``run_parasol
--log-json FILE`` writes; the job gets the same ``PARASOL_LOG_JSON``
variable). Time is its ``train_seconds``: from the start of the first round,
so loading and compiling do not count.

Figures (modes interleaved within a repeat, order reversed every other
repeat; see :func:`analyse`):

- targets: ``(1 + m) ×`` BSP's final test RMSE (median over repeats), for
  ``m`` in ``TARGET_MARGINS``; the time to a target is the ``train_seconds``
  of the first report at or below it (so it is late by up to one round),
  and the rounds to it are kept too (they do not depend on the load);
- time to each target of each mode vs BSP's (goal for SSP: ``<= TIME_GOAL``
  at the headline margin ``HEADLINE_MARGIN``): the median of the mode's
  quiet runs over the median of BSP's quiet runs (see :func:`_compare`);
- final test RMSE (``metrics.json``, after every worker's last round) vs
  BSP's (goal ``<= QUALITY_GOAL``).

Plots (matplotlib, Agg): ``staleness_rmse_vs_round.png`` and
``staleness_rmse_vs_seconds.png`` in the output folder, ``$PARASOL_BENCH_OUTPUT``
(default ``bench-output/`` in the checkout) ``/staleness/``, with the result
as ``staleness.json`` (``python -m benchmarks.staleness_plot`` recomputes the
figures from it, pooling several runs, and redraws the plots).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

from . import ratings_data
from .common import QUIET_CORES, REPO, BenchError, interleave, median, run_job, say, verdict
from .mf_bench import HYPER

__all__ = [
    "HEADLINE_MARGIN",
    "MODES",
    "QUALITY_GOAL",
    "STRAGGLER",
    "TARGET_MARGINS",
    "TIME_GOAL",
    "analyse",
    "output_dir",
    "rows",
    "run",
]

#: mode name -> staleness
MODES = {"bsp": 0, "ssp1": 1, "ssp2": 2, "ssp4": 4, "asp": -1}
LABELS = {"bsp": "BSP", "ssp1": "SSP s=1", "ssp2": "SSP s=2", "ssp4": "SSP s=4", "asp": "ASP"}
STRAGGLER = {"worker": 0, "slowdown": 2.0}
TARGET_MARGINS = (0.10, 0.05, 0.02, 0.01)
HEADLINE_MARGIN = 0.02  # the "target quality" of the goal, fixed before the full run
TIME_GOAL = 0.7         # SSP time to target / BSP's
QUALITY_GOAL = 1.01     # final test RMSE / BSP's
FULL = {"rounds": 20, "repeats": 5, "nworker": 4, "nserver": 1, "quiet_wait": 20.0, **ratings_data.ML1M}
QUICK = {"rounds": 4, "repeats": 1, "nworker": 4, "nserver": 1, "quiet_wait": 0.0, **ratings_data.QUICK}
ENV_OUTPUT = "PARASOL_BENCH_OUTPUT"


def output_dir() -> Path:
    """Where the plots and the JSON go: ``$PARASOL_BENCH_OUTPUT/staleness`` (default ``<repo>/bench-output``)."""
    return Path(os.environ.get(ENV_OUTPUT) or REPO / "bench-output") / "staleness"


@contextlib.contextmanager
def _log_json(path: Path):
    """Have the job's worker 0 append its per-round progress to ``path`` (as ``run_parasol --log-json``)."""
    old = os.environ.get("PARASOL_LOG_JSON")
    os.environ["PARASOL_LOG_JSON"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PARASOL_LOG_JSON", None)
        else:
            os.environ["PARASOL_LOG_JSON"] = old


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
        api, limit = _typical(mode, mode_load), _typical(base, base_load)
        ratio = api / limit if api is not None and limit else None
    else:
        api, limit, ratio = median_or_none(mode), median_or_none(base), paired
    return {"api": api, "limit": limit, "ratio": ratio, "ratio_all_repeats": paired,
            "quiet_repeats": min(len(quiet_mode), len(quiet_base)), "quiet_runs": [len(quiet_mode), len(quiet_base)],
            "repeats": n, "quiet_threshold_cores": QUIET_CORES, "api_samples": mode, "limit_samples": base,
            "others_cores": mode_load, "bsp_others_cores": base_load, "goal": goal}


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    """Run the benchmark; returns ``{"params", "figures", "targets", "runs", "plots", "goal", "notes"}``."""
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    if quiet_wait is not None:
        params["quiet_wait"] = quiet_wait
    hyper = dict(HYPER)
    t0 = time.perf_counter()
    data = ratings_data.synthetic(params["users"], params["items"], params["ratings"], seed=hyper["seed"])
    train, test = ratings_data.split(data, 0.1)
    train_tsv = ratings_data.write_tsv(train, workdir / "staleness-train.tsv")
    test_tsv = ratings_data.write_tsv(test, workdir / "staleness-test.tsv")
    say(f"staleness: {len(train):,} train + {len(test):,} test ratings written in {time.perf_counter() - t0:.1f} s; "
        f"{params['repeats']} repeats of {', '.join(MODES)} ({params['nworker']} workers, {params['rounds']} rounds, "
        f"worker {STRAGGLER['worker']} slowed {STRAGGLER['slowdown']:g}x)")

    runs: dict[str, list[dict]] = {m: [] for m in MODES}

    def job(mode: str):
        def side() -> float:
            n = len(runs[mode])
            out = workdir / f"staleness-out-{mode}"
            log = workdir / f"staleness-{mode}-{n}.jsonl"
            cfg = {"nworker": params["nworker"], "nserver": params["nserver"], "input": str(train_tsv),
                   "test_input": str(test_tsv), "output": str(out), "rounds": params["rounds"],
                   "staleness": MODES[mode], "straggler": dict(STRAGGLER), **hyper}
            with _log_json(log):
                metrics, wall = run_job(cfg, REPO / "algs" / "mf.py", workdir, f"staleness-{mode}", direct=direct,
                                        timeout=300.0 if quick else 900.0)
            points = curve(read_log(log))
            if not points:
                raise BenchError(f"no per-round test RMSE in {log} (did the job get PARASOL_LOG_JSON?)")
            runs[mode].append({"seconds": metrics["seconds"], "test_rmse": metrics["test_rmse"],
                               "train_rmse": metrics["train_rmse"], "max_clock_lead": metrics["max_clock_lead"],
                               "ratings_per_second": metrics["ratings_per_second"], "wall_seconds": round(wall, 2),
                               "curve": points})
            return params["rounds"] / metrics["seconds"]
        return side

    _, others = interleave({m: job(m) for m in MODES}, params["repeats"], label="staleness rounds",
                           quiet_wait=params["quiet_wait"])
    params.update(hyper, straggler=dict(STRAGGLER), modes=dict(MODES), train_ratings=len(train),
                  test_ratings=len(test), target_margins=list(TARGET_MARGINS))
    result = analyse(params, runs, others)
    result["plots"] = _write_outputs(result)
    for mode in MODES:
        times = "  ".join(f"+{float(k):.0%}: " + _fmt_s(_typical(v["seconds"], others[mode]))
                          for k, v in result["time_to_target"][mode].items())
        say(f"staleness {LABELS[mode]:8s} time to test RMSE target (median of quiet runs, else all) {times}")
    return result


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
            "seconds_per_round": {m: _typical([r["seconds"] / params["rounds"] for r in runs[m]], others[m])
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


def _typical(samples: list, load: list[float]) -> float | None:
    """:func:`median_or_none` of the samples taken while the machine was quiet, or of all if none was."""
    quiet = [x for x, o in zip(samples, load) if o <= QUIET_CORES]
    return median_or_none(quiet if quiet else samples)


def _fmt_s(x: float | None) -> str:
    return "never" if x is None else f"{x:.2f} s"


def _write_outputs(result: dict) -> dict:
    """Write the JSON and the PNGs into :func:`output_dir`; returns ``{plot name: path}``."""
    from .staleness_plot import plot

    out = output_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "staleness.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    paths = {name: str(p) for name, p in plot(result, out).items()}
    say(f"staleness: plots in {out}")
    return paths


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
                        _fmt_s(fig["api"]), _fmt_s(fig["limit"]), ratio, fig["goal"] or "(info)",
                        verdict(fig, fig["met"]), load])
    for mode in MODES:
        if mode == "bsp":
            continue
        fig = figures[f"final_{mode}"]
        out.append([f"{LABELS[mode]} vs BSP, final test RMSE", f"{fig['api']:.4f}", f"{fig['limit']:.4f}",
                    f"{fig['ratio']:.4f}", fig["goal"], verdict(fig, fig["met"]), ""])
    return out
