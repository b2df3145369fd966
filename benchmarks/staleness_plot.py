"""Plots of the ``staleness`` benchmark: test RMSE against rounds and against seconds, one line per mode.

Thin lines are the single repeats, thick lines their median (per round; per
instant for the time plot, each repeat read as a step function that holds
its last reported RMSE). The time plot shows, as the table's ratios use,
only the runs during which the machine was quiet (other processes used at
most ``QUIET_CORES``), or all of a mode's runs if none was. Dotted horizontal lines are the targets; on the time
plot, a marker shows each mode's median time to the headline target.

    .venv/bin/python -m benchmarks.staleness_plot [--out DIR] [RESULT_JSON ...]

recomputes the figures from the raw runs of saved results (default: the
last run's ``staleness.json`` in :func:`benchmarks.staleness_figures.output_dir`),
pooling the repeats of several invocations of the same experiment, redraws
the PNGs and prints the table rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .staleness_figures import LABELS, analyse, output_dir, rows

__all__ = ["FILES", "main", "plot", "pool"]

FILES = {"rmse_vs_round": "staleness_rmse_vs_round.png", "rmse_vs_seconds": "staleness_rmse_vs_seconds.png"}
COLORS = {"bsp": "black", "ssp1": "#9ecae1", "ssp2": "#4292c6", "ssp4": "#08519c", "asp": "#d62728"}


def _median_by_round(curves: list[list[list[float]]]) -> tuple[np.ndarray, np.ndarray]:
    by_round: dict[int, list[float]] = {}
    for points in curves:
        for rnd, _, rmse in points:
            by_round.setdefault(int(rnd), []).append(rmse)
    rounds = np.array(sorted(by_round))
    return rounds, np.array([np.median(by_round[r]) for r in rounds])


def _median_in_time(curves: list[list[list[float]]], steps: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Median over repeats of step functions (last reported RMSE at each instant), where all have started."""
    start = max(points[0][1] for points in curves)
    end = max(points[-1][1] for points in curves)
    grid = np.linspace(start, end, steps)
    values = []
    for points in curves:
        t = np.array([p[1] for p in points])
        y = np.array([p[2] for p in points])
        idx = np.searchsorted(t, grid, side="right") - 1
        values.append(y[np.clip(idx, 0, len(y) - 1)])
    return grid, np.median(np.array(values), axis=0)


def _shown(result: dict, mode: str, quiet_only: bool) -> list[int]:
    """Indices of the runs to draw: on the time axis only the quiet ones (as the table's ratios), if any."""
    n = len(result["runs"][mode])
    if not quiet_only:
        return list(range(n))
    limit = result.get("quiet_threshold_cores", 0.3)
    quiet = [i for i, o in enumerate(result.get("others_cores", {}).get(mode, [])) if o <= limit]
    return quiet or list(range(n))


def plot(result: dict, out: Path) -> dict[str, Path]:
    """Write the two PNGs into ``out``; returns ``{name: path}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    params = result["params"]
    runs = result["runs"]
    modes = sorted((m for m in params["modes"] if runs.get(m)),  # BSP first, then by staleness, ASP last
                   key=lambda m: (params["modes"][m] < 0, params["modes"][m]))
    targets = result["targets"]
    head = f"{result['goal']['headline_margin']:.2f}"
    straggler = params["straggler"]
    title = (f"MF, {params['nworker']} workers, worker {straggler['worker']} slowed "
             f"{straggler['slowdown']:g}x; {params['train_ratings']:,} ratings, k={params['k']}")
    everything = [p[2] for m in modes for r in runs[m] for p in r["curve"]]
    low, high = min(everything), max(everything)
    pad = 0.03 * (high - low or 1.0)
    paths = {}

    for name, xkey in (("rmse_vs_round", 0), ("rmse_vs_seconds", 1)):
        fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
        for mode in modes:
            pick = _shown(result, mode, quiet_only=xkey == 1)
            curves = [runs[mode][i]["curve"] for i in pick]
            color = COLORS.get(mode, None)
            label = LABELS.get(mode, mode) + (f" ({len(pick)} of {len(runs[mode])} runs)" if xkey == 1 else "")
            for points in curves:
                x = [p[xkey] for p in points]
                y = [p[2] for p in points]
                ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8,
                        drawstyle="steps-post" if xkey == 1 else "default")
            if xkey == 0:
                x, y = _median_by_round(curves)
                ax.plot(x, y, color=color, linewidth=2.0, marker="o", markersize=3, label=label)
            else:
                x, y = _median_in_time(curves)
                ax.plot(x, y, color=color, linewidth=2.0, drawstyle="steps-post", label=label)
                t = [result["time_to_target"][mode][head]["seconds"][i] for i in pick]
                if sum(v is not None for v in t) * 2 > len(t):
                    ax.plot([float(np.median([v if v is not None else np.inf for v in t]))],
                            [targets[head]], marker="v", markersize=9, color=color, linestyle="none")
        for key, value in targets.items():
            if not low - pad <= value <= high + pad:
                continue
            ax.axhline(value, color="grey", linestyle=":", linewidth=0.9)
            ax.annotate(f"BSP final +{float(key):.0%}", (1.0, value), xycoords=("axes fraction", "data"),
                        xytext=(-4, 2), textcoords="offset points", ha="right", va="bottom", fontsize=7,
                        color="grey")
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel("test RMSE")
        if xkey == 0:
            ax.set_xlabel("round (finished by every worker)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.set_xlabel("seconds since the first round started")
        ax.set_title(title if xkey == 0 else
                     f"{title}\nquiet runs only (others used <= {result.get('quiet_threshold_cores', 0.3):g} cores; "
                     f"all runs of a mode with none); ▼ median time to BSP final +{float(head):.0%}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=9)
        fig.tight_layout()
        path = out / FILES[name]
        fig.savefig(path)
        plt.close(fig)
        paths[name] = path
    return paths


#: params that must agree for runs of several invocations to be pooled
SAME = ("nworker", "nserver", "rounds", "straggler", "modes", "users", "items", "ratings", "k", "alpha", "beta",
        "init_std", "seed", "quiet_wait")


def pool(results: list[dict]) -> tuple[dict, dict, dict]:
    """(params, runs, others) of several saved results of the same experiment, their repeats concatenated."""
    first = results[0]["params"]
    for res in results[1:]:
        differ = [k for k in SAME if res["params"].get(k) != first.get(k)]
        if differ:
            raise ValueError(f"cannot pool results whose {', '.join(differ)} differ")
    params = dict(first, repeats=sum(r["params"]["repeats"] for r in results), pooled_runs=len(results))
    runs = {m: [run for r in results for run in r["runs"][m]] for m in first["modes"]}
    others = {m: [x for r in results for x in r["others_cores"][m]] for m in first["modes"]}
    return params, runs, others


def main(argv: list[str] | None = None) -> int:
    """Recompute the figures from the raw runs of saved results (pooled when several), redraw the PNGs,
    print the table rows."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.staleness_plot",
                                description="Redraw the staleness plots and recompute the figures from saved "
                                            "results (staleness.json, or scripts/bench --json reports); several "
                                            "results of the same experiment are pooled.")
    p.add_argument("results", nargs="*", type=Path, metavar="RESULT_JSON",
                   help="default: staleness.json in the output folder")
    p.add_argument("--out", type=Path, help="folder for the PNGs (default: the first result's folder)")
    args = p.parse_args(argv)
    sources = args.results or [output_dir() / "staleness.json"]
    saved = []
    for src in sources:
        res = json.loads(src.read_text())
        saved.append(res["staleness"] if "staleness" in res and "params" not in res else res)
    try:
        params, runs, others = pool(saved)
    except ValueError as exc:
        p.error(str(exc))
    result = analyse(params, runs, others)
    out = args.out or sources[0].parent
    out.mkdir(parents=True, exist_ok=True)
    for path in plot(result, out).values():
        print(path)
    table = rows(result)
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    goal = result["goal"]
    print(f"goal (SSP time to BSP final +{goal['headline_margin']:.0%} <= {goal['time_goal']} x BSP's, final RMSE "
          f"<= {goal['quality_goal']} x BSP's): {'met by ' + ', '.join(goal['modes']) if goal['met'] else 'missed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
