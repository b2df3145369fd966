"""Smoke test of ``scripts/bench peers``: the quick run's JSON has the expected shape.

Ray is an optional extra (``pip install '.[bench]'``): without it the MF-vs-Ray
test is skipped with the reason, and the LR-vs-scikit-learn part must still
run. It checks structure, never who is faster (the machine is shared and
noisy). The search for the rounds that reach a target is tested on a
made-up loss curve.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import peers, peers_ray

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "scripts" / "bench"
HAVE_RAY = peers_ray.available()  # as the benchmark decides
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None
BENCH_TIMEOUT = 840


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def report():
    if not (HAVE_RAY or HAVE_SKLEARN):
        pytest.skip("neither ray nor scikit-learn is installed (pip install '.[bench]')")
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "peers"], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=BENCH_TIMEOUT, env=dict(os.environ),
                          start_new_session=True)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    rep = json.loads(done.stdout)
    assert rep["meta"]["benchmarks"] == ["peers"] and rep["meta"]["quick"] is True
    assert "errors" not in rep
    assert rep["peers"]["errors"] == []
    return rep["peers"]


@pytest.mark.timeout(BENCH_TIMEOUT + 60)
def test_quick_peers_lr_against_scikit_learn(report):
    if not HAVE_SKLEARN:
        pytest.skip("scikit-learn is not installed (pip install '.[bench]')")
    lr = report["lr"]["breast_cancer"]
    assert lr["train_rows"] > 0 and lr["features"] == 30
    assert set(lr["peers"]) == set(peers.PEERS)
    for peer in lr["peers"].values():
        for key in ("full_fit_seconds", "test_logloss", "threshold"):
            assert _positive(peer[key]), (key, peer)
        assert peer["reach"]["reached"] and 1 <= peer["reach"]["rounds"] <= peer["full_iterations"]
        assert _positive(peer["reach"]["seconds"]) and _positive(peer["reach"]["wall_seconds"])
    assert set(lr["ours"]) == set(peers.LR_METHODS)
    for method, ours in lr["ours"].items():
        assert ours["jobs"], method
        for job in ours["jobs"].values():
            assert _positive(job["seconds"]) and _positive(job["wall_seconds"]) and _positive(job["test_logloss"])
        assert set(ours["reach"]) == set(peers.PEERS)
        for peer, reach in ours["reach"].items():
            assert isinstance(reach["reached"], bool) and reach["rounds"] >= 1, (method, peer)
            assert _positive(reach["seconds"]) and reach["wall_seconds"] >= reach["seconds"]
    rows = peers.rows(report)
    assert any(r[0].startswith("LR breast_cancer: s to logloss") for r in rows)


@pytest.mark.timeout(BENCH_TIMEOUT + 60)
def test_quick_peers_mf_against_ray(report):
    if not HAVE_RAY:
        assert "ray is not installed" in report["skipped"]["mf"]
        pytest.skip("ray is not installed (optional: pip install '.[bench]'); the MF-vs-Ray part was skipped")
    mf = report["mf"]["ml100k"]
    assert mf["ratings"]["train"] > 0 and mf["rounds"] == peers.QUICK["mf_rounds"]
    for name in ("speed", "rmse", "wall", "vs_loop"):
        fig = mf["figures"][name]
        for key in ("api", "limit", "ratio"):
            assert _positive(fig[key]), (name, key, fig[key])
        assert fig["repeats"] == len(fig["api_samples"]) == len(fig["others_cores"])
    assert isinstance(mf["figures"]["speed"]["met"], bool) and isinstance(mf["goal_met"], bool)
    assert mf["ray_batch"] in peers.QUICK["ray_batches"]
    assert set(mf["runs"]["ray"]) == set(mf["by_batch"]) == {str(b) for b in peers.QUICK["ray_batches"]}
    for runs in mf["runs"]["ray"].values():
        assert len(runs) == mf["figures"]["speed"]["repeats"]
        for run in runs:
            assert _positive(run["ratings_per_second"]) and _positive(run["init_seconds"])
            assert 0.5 < run["test_rmse"] < 2.0  # MovieLens ratings: far below the spread of 1..5
    for run in mf["runs"]["ours"]:
        assert 0.5 < run["test_rmse"] < 2.0
    assert any(r[0].startswith("MF ml100k: ratings/s, ours vs Ray") for r in peers.rows(report))


def test_reach_finds_the_fewest_rounds_on_a_made_up_curve():
    calls = []

    def get(rounds):  # log-loss falls as 1/rounds towards 0.1; one second per round
        calls.append(rounds)
        return {"test_logloss": 0.1 + 1.0 / rounds, "seconds": float(rounds), "wall_seconds": rounds + 2.0}

    got = peers._reach(get, threshold=0.1 + 1.0 / 40 + 1e-12, first=1, cap=256)
    assert got["reached"] and 40 <= got["rounds"] <= 40 + 40 // 8
    assert got["seconds"] == float(got["rounds"]) and got["wall_seconds"] == got["rounds"] + 2.0
    assert calls[:7] == [1, 2, 4, 8, 16, 32, 64]

    missed = peers._reach(get, threshold=0.05, first=1, cap=16)
    assert not missed["reached"] and missed["rounds"] == 16
    first_hit = peers._reach(get, threshold=10.0, first=4, cap=4)
    assert first_hit["reached"] and first_hit["rounds"] == 4
