"""``metrics.json`` reports the job's peak RSS (largest over every rank) and load time (largest over the workers).

Each test runs ``tests/jobs/metrics_job.py`` under the launcher with 2 workers on 2 simulated nodes
(ranks 0, 1 on node 0: worker 0, the master, and server 0; ranks 2, 3 on node 1: worker 1 and
server 1). One rank of node 1 allocates and touches ``HOG_MIB``; the master's own peak RSS stays
well below it, so only a figure gathered from the other node can reach it. Worker 1 (not the
master) spends ``SLEEP`` seconds inside ``load()`` or ``vocabulary()``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parasol_hybrid import launcher
from parasol_hybrid.testing import run_launcher, shm_leftovers, write_config

JOB = Path(__file__).resolve().parent / "jobs" / "metrics_job.py"
HOG_MIB = 300
SLEEP = 1.5

pytestmark = pytest.mark.timeout(60)


def run_job(tmp_path: Path, **keys) -> dict:
    """Run the job on 2 simulated nodes; returns its metrics.json. Checks nothing was left behind."""
    data = tmp_path / "input.txt"
    data.write_text("".join(f"u{i} i{i % 7} {i % 5}\n" for i in range(200)))
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "cfg.json", output=str(out), input=str(data), nworker=2, nserver=2,
                       simulate_nodes=2, hog_mb=HOG_MIB, seed=0, **keys)
    done = run_launcher(["--config", str(cfg), "python", str(JOB)], timeout=45, cwd=tmp_path)
    assert done.returncode == 0, f"job failed with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    m = re.search(r"run_parasol: job ([0-9a-f]+):", done.stderr)
    assert m, f"the launcher did not say which job it started:\n{done.stderr}"
    assert launcher.job_pids(m.group(1)) == []
    assert shm_leftovers(m.group(1)) == []
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nodes"] == 2 and metrics["node_of_master"] == 0
    assert metrics["master_lines"] > 0 and metrics["vocabulary"] == 2
    # the hog is far above the master's own peak: the figure must come from node 1
    assert metrics["master_peak_rss_bytes"] < HOG_MIB << 20
    return metrics


def test_worker_on_other_node_sets_peak_rss_and_load_seconds(tmp_path):
    m = run_job(tmp_path, hog="worker", load_sleep=SLEEP)
    assert m["peak_rss_bytes"] >= HOG_MIB << 20, m
    assert m["load_seconds"] > SLEEP, m


def test_server_on_other_node_sets_peak_rss_vocabulary_counts_as_loading(tmp_path):
    m = run_job(tmp_path, hog="server", vocab_sleep=SLEEP)
    assert m["peak_rss_bytes"] >= HOG_MIB << 20, m
    # worker 1 waited SLEEP s inside vocabulary() for worker 0
    assert m["load_seconds"] > SLEEP, m


def test_no_hog_reports_the_master_scale(tmp_path):
    m = run_job(tmp_path, hog="none")
    assert m["master_peak_rss_bytes"] <= m["peak_rss_bytes"] < HOG_MIB << 20, m
    assert 0 < m["load_seconds"] < 10 * SLEEP, m  # seconds, not ms; under load even no sleep took 2.7 s
