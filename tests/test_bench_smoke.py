"""Smoke test of scripts/bench: the quick pushpull benchmark runs and its JSON has the expected shape.

It checks that figures are produced and positive, never how fast anything is
(the machine is shared and noisy).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "scripts" / "bench"
FIGURES = ("pull_unsorted", "push_unsorted", "pull_sorted", "push_sorted")


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_bench_quick_pushpull_json():
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "pushpull"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ),
                          start_new_session=True)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    report = json.loads(done.stdout)

    assert report["meta"]["benchmarks"] == ["pushpull"]
    assert report["meta"]["quick"] is True
    assert "errors" not in report
    result = report["pushpull"]
    assert result["params"]["rows"] > 0 and result["params"]["repeats"] >= 1
    assert set(result["figures"]) == set(FIGURES)
    for name, fig in result["figures"].items():
        for key in ("api", "limit", "ratio", "ratio_all_repeats"):
            assert _positive(fig[key]), (name, key, fig[key])
        assert 0 <= fig["quiet_repeats"] <= fig["repeats"] == result["params"]["repeats"]
        assert len(fig["others_cores"]) == fig["repeats"]
        assert fig["unit"] == "batches/s"
        assert len(fig["api_samples"]) == len(fig["limit_samples"]) == result["params"]["repeats"]
        assert all(_positive(x) for x in fig["api_samples"] + fig["limit_samples"]), name
        assert isinstance(fig["met"], bool)
    assert set(result["vs_small_pages"]) == set(FIGURES)
    for name, fig in result["vs_small_pages"].items():
        assert _positive(fig["api"]) and _positive(fig["limit"]) and _positive(fig["ratio"]), name
    for op in ("pull", "push"):
        calls = result["one_key_calls"][op]
        assert _positive(calls["api"]) and _positive(calls["limit"]), op
        assert math.isfinite(calls["api_extra_us_per_call"]), op
