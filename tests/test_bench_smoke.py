"""Smoke test of scripts/bench: the quick pushpull benchmark runs and its JSON has the expected shape;
the ``scale`` benchmark's data generators write what they drew.

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

import pytest

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


def test_scale_data_files_hold_the_generated_draws(tmp_path, monkeypatch):
    """The ``scale`` bench's fast formatters write exactly the drawn data, parsed back by numpy and scikit-learn
    (independent readers); the LR labels' probabilities match the true weights by index; files are reused."""
    import numpy as np

    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from benchmarks import scale_data as sd

    monkeypatch.setenv("PARASOL_BENCH_CACHE", str(tmp_path))

    files = sd.netflix(3000)
    got = np.loadtxt(files.train, dtype=np.int64, ndmin=2)
    model = sd._RatingModel(sd.NETFLIX["users"], sd.NETFLIX["items"], 0)
    u, i, r, _ = sd.netflix_block(model, 3000, np.random.default_rng([0, 1, 3000, 0]))
    np.testing.assert_array_equal(got, np.column_stack([u + 1, i + 1, r]))
    assert got[:, 0].min() >= 1 and got[:, 0].max() <= sd.NETFLIX["users"]
    assert set(np.unique(got[:, 2])) <= {1, 2, 3, 4, 5}
    assert len(np.loadtxt(files.test, ndmin=2)) == files.meta["test"]["ratings"] == 2000
    assert 0.5 < files.meta["test"]["oracle_rmse"] < 0.9
    stamp = files.train.stat().st_mtime_ns
    assert sd.netflix(3000).train.stat().st_mtime_ns == stamp  # reused, not written again

    bits = 12
    lr = sd.hashed_lr(500, bits=bits)
    X, y = sklearn_datasets.load_svmlight_file(str(lr.train), n_features=2**bits, zero_based=True)
    lm = sd._LRModel(bits, 0)
    labels, idx, counts, p, nnz = sd.lr_block(lm, 500, np.random.default_rng([0, 11, 500, 0]), True)
    np.testing.assert_array_equal(y, labels)
    assert X.nnz == nnz == lr.meta["train"]["nonzeros"]
    for row in range(500):
        assert X[row].indices.tolist() == sorted(set(idx[row, :counts[row]].tolist())), row
    assert X[0, 2**bits - 1] == 1.0 and X.data.min() == X.data.max() == 1.0
    margin = X @ lm.weights() + lm.bias
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-margin)), rtol=1e-12)
