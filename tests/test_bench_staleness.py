"""Smoke test of ``scripts/bench staleness``: the quick run's JSON has the expected shape and the PNGs exist.

It checks structure, never speed or which mode wins (the machine is shared
and noisy). The helpers that turn a progress log into times to a target are
tested on hand-made records.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import staleness
from benchmarks.staleness_plot import FILES, plot

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "scripts" / "bench"
MODES = ("bsp", "ssp1", "ssp2", "ssp4", "asp")


def _record(rnd: int, seconds: float, rmse: float | None = None) -> dict:
    rec = {"round": rnd, "rounds": 3, "seconds": seconds + 1.0, "train_seconds": seconds, "clock_spread": 0,
           "seconds_left": None, "worker": 0, "train_rmse": 1.0}
    if rmse is not None:
        rec["test_rmse"] = rmse
    return rec


def test_read_log_keeps_the_last_run_and_curve_skips_rounds_without_test_rmse(tmp_path):
    log = tmp_path / "log.jsonl"
    first = [_record(1, 0.5, 0.99), _record(2, 1.0, 0.98)]  # a failed attempt, then the retry
    second = [_record(1, 0.4, 0.97), _record(2, 0.6), _record(3, 0.9, 0.90)]
    log.write_text("".join(json.dumps(r) + "\n" for r in first + second))
    points = staleness.curve(staleness.read_log(log))
    assert points == [[1, 0.4, 0.97], [3, 0.9, 0.90]]
    assert staleness.read_log(tmp_path / "missing.jsonl") == []


def test_time_to_target_is_the_first_report_at_or_below_it():
    points = [[1, 0.5, 0.95], [2, 1.0, 0.91], [3, 1.5, 0.92], [4, 2.0, 0.90]]
    assert staleness.time_to(points, 0.91) == 1.0
    assert staleness.rounds_to(points, 0.91) == 2
    assert staleness.time_to(points, 0.85) is None and staleness.rounds_to(points, 0.85) is None
    assert staleness.median_or_none([1.0, None, 3.0]) == 3.0  # never reached counts as infinitely slow
    assert staleness.median_or_none([1.0, None, None]) is None


def test_plot_writes_both_pngs(tmp_path):
    runs = {m: [{"curve": [[r, r * (1.0 + k / 10), 1.0 - 0.01 * r * (1 + k / 5)] for r in range(1, 6)]}
                for _ in range(2)] for k, m in enumerate(MODES)}
    result = {"params": {"modes": dict(staleness.MODES), "nworker": 4, "straggler": dict(staleness.STRAGGLER),
                         "train_ratings": 100, "k": 8},
              "runs": runs, "targets": {"0.02": 0.96, "0.10": 0.99},
              "time_to_target": {m: {"0.02": {"seconds": [2.0, None]}, "0.10": {"seconds": [1.0, 1.0]}}
                                 for m in MODES},
              "goal": {"headline_margin": 0.02}}
    paths = plot(result, tmp_path)
    assert set(paths) == set(FILES)
    for name, path in paths.items():
        assert path == tmp_path / FILES[name] and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_quick_staleness_json(tmp_path):
    env = dict(os.environ, PARASOL_BENCH_OUTPUT=str(tmp_path))
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "staleness"], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env, start_new_session=True)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    report = json.loads(done.stdout)

    assert report["meta"]["benchmarks"] == ["staleness"] and report["meta"]["quick"] is True
    assert "errors" not in report
    result = report["staleness"]
    params = result["params"]
    assert params["nworker"] == staleness.QUICK["nworker"] and params["straggler"] == staleness.STRAGGLER
    assert params["modes"] == staleness.MODES and params["repeats"] >= 1
    repeats = params["repeats"]

    assert set(result["runs"]) == set(MODES)
    for mode, runs in result["runs"].items():
        assert len(runs) == repeats, mode
        for run in runs:
            assert math.isfinite(run["test_rmse"]) and run["test_rmse"] > 0 and run["seconds"] > 0, mode
            curve = run["curve"]
            assert curve and curve[-1][0] == params["rounds"], (mode, curve)
            assert all(1 <= rnd <= params["rounds"] and t >= 0 and rmse > 0 for rnd, t, rmse in curve), mode
            assert [p[0] for p in curve] == sorted(p[0] for p in curve), mode

    assert set(result["targets"]) == {f"{m:.2f}" for m in staleness.TARGET_MARGINS}
    assert all(t > result["bsp_final_rmse"] for t in result["targets"].values())
    for mode in MODES:
        if mode == "bsp":
            continue
        for key in result["targets"]:
            fig = result["figures"][f"time_{mode}_{key}"]
            assert len(fig["api_samples"]) == len(fig["limit_samples"]) == len(fig["others_cores"]) == repeats
            assert fig["ratio"] is None or fig["ratio"] > 0
            assert fig["met"] in ((None,) if mode == "asp" else (True, False))
        final = result["figures"][f"final_{mode}"]
        assert final["ratio"] > 0 and isinstance(final["met"], bool)
    assert isinstance(result["goal"]["met"], bool)

    out = tmp_path / "staleness"
    assert set(result["plots"]) == set(FILES)
    for name, file in FILES.items():
        png = out / file
        assert result["plots"][name] == str(png)
        assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG", name
    assert json.loads((out / "staleness.json").read_text())["params"] == params
