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
repeat; see :func:`benchmarks.staleness_figures.analyse`):

- targets: ``(1 + m) ×`` BSP's final test RMSE (median over repeats), for
  ``m`` in ``TARGET_MARGINS``; the time to a target is the ``train_seconds``
  of the first report at or below it (so it is late by up to one round),
  and the rounds to it are kept too (they do not depend on the load);
- time to each target of each mode vs BSP's (goal for SSP: ``<= TIME_GOAL``
  at the headline margin ``HEADLINE_MARGIN``): the median of the mode's
  quiet runs over the median of BSP's quiet runs;
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
import os
import time
from pathlib import Path

from . import ratings_data
from .common import REPO, BenchError, interleave, run_job, say
from .mf_bench import HYPER
from .staleness_figures import (LABELS, MODES, STRAGGLER, TARGET_MARGINS, analyse, curve, fmt_seconds, output_dir,
                                read_log, typical)
from .staleness_figures import (HEADLINE_MARGIN, QUALITY_GOAL, TIME_GOAL, median_or_none,  # noqa: F401 - re-exported:
                                rounds_to, rows, time_to)  # the benchmark CLI calls rows(), tests read these here
from .staleness_plot import plot

__all__ = ["FULL", "QUICK", "run"]

FULL = {"rounds": 20, "repeats": 5, "nworker": 4, "nserver": 1, "quiet_wait": 20.0, **ratings_data.ML1M}
#: a smoke run of every mode (its figures mean nothing): 2 workers, so that its five jobs start quickly
QUICK = {"rounds": 4, "repeats": 1, "nworker": 2, "nserver": 1, "quiet_wait": 0.0, **ratings_data.QUICK}


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
        times = "  ".join(f"+{float(k):.0%}: " + fmt_seconds(typical(v["seconds"], others[mode]))
                          for k, v in result["time_to_target"][mode].items())
        say(f"staleness {LABELS[mode]:8s} time to test RMSE target (median of quiet runs, else all) {times}")
    return result


def _write_outputs(result: dict) -> dict:
    """Write the JSON and the PNGs into :func:`output_dir`; returns ``{plot name: path}``."""
    out = output_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "staleness.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    paths = {name: str(p) for name, p in plot(result, out).items()}
    say(f"staleness: plots in {out}")
    return paths
