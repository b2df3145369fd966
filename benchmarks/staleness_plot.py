"""Plots of the ``staleness`` benchmark: test RMSE against rounds and against seconds, one line per mode.

Thin lines are the single repeats, thick lines their median (per round; per
instant for the time plot, each repeat read as a step function that holds
its last reported RMSE). Dotted horizontal lines are the targets; on the time
plot, a marker shows each mode's median time to the headline target.

    .venv/bin/python -m benchmarks.staleness_plot [RESULT_JSON [OUT_DIR]]

redraws the PNGs from a saved result (default: the last run's
``staleness.json`` in :func:`benchmarks.staleness.output_dir`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["plot", "main", "FILES"]

FILES = {"rmse_vs_round": "staleness_rmse_vs_round.png", "rmse_vs_seconds": "staleness_rmse_vs_seconds.png"}
COLORS = {"bsp": "black", "ssp1": "#9ecae1", "ssp2": "#4292c6", "ssp4": "#08519c", "asp": "#d62728"}
LABELS = {"bsp": "BSP", "ssp1": "SSP s=1", "ssp2": "SSP s=2", "ssp4": "SSP s=4", "asp": "ASP"}


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
            curves = [r["curve"] for r in runs[mode]]
            color = COLORS.get(mode, None)
            for points in curves:
                x = [p[xkey] for p in points]
                y = [p[2] for p in points]
                ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8,
                        drawstyle="steps-post" if xkey == 1 else "default")
            if xkey == 0:
                x, y = _median_by_round(curves)
                ax.plot(x, y, color=color, linewidth=2.0, marker="o", markersize=3, label=LABELS.get(mode, mode))
            else:
                x, y = _median_in_time(curves)
                ax.plot(x, y, color=color, linewidth=2.0, label=LABELS.get(mode, mode))
                t = result["time_to_target"][mode][head]["seconds"]
                reached = sorted(v for v in t if v is not None)
                if len(reached) * 2 > len(t):
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
            ax.text(0.01, 0.01, f"▼ median time to BSP final +{float(head):.0%}", transform=ax.transAxes,
                    ha="left", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=9)
        fig.tight_layout()
        path = out / FILES[name]
        fig.savefig(path)
        plt.close(fig)
        paths[name] = path
    return paths


def main(argv: list[str] | None = None) -> int:
    from .staleness import output_dir

    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) > 2 or any(a.startswith("-") for a in argv):
        print("usage: python -m benchmarks.staleness_plot [RESULT_JSON [OUT_DIR]]", file=sys.stderr)
        return 2
    src = Path(argv[0]) if argv else output_dir() / "staleness.json"
    result = json.loads(src.read_text())
    if "staleness" in result and "params" not in result:  # a whole `scripts/bench --json` report
        result = result["staleness"]
    out = Path(argv[1]) if len(argv) > 1 else src.parent
    out.mkdir(parents=True, exist_ok=True)
    for path in plot(result, out).values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
