"""The ``shutdown`` benchmark: many short jobs in a row, and how many of them did not exit 0.

A stress run of the end of a job (issue 9: no crash at shutdown). Each job is
the tiny ``tests/jobs/lifecycle_job.py`` in print mode (2 workers push, pull
and clock a few rounds, worker 0 writes ``metrics.json``), through the
launcher; every third job runs on 2 simulated nodes (2 workers, 2 servers),
the others on one node (2 workers, 1 server). The figure is the number of
jobs that exited non-zero or wrote no ``metrics.json`` (goal: 0), with the
first lines of each failure's log. ``--repeats N`` sets the number of jobs
(default 200; 10 with ``--quick``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, say

__all__ = ["run", "rows"]

JOB = REPO / "tests" / "jobs" / "lifecycle_job.py"
FULL_JOBS, QUICK_JOBS = 200, 10


def _one(workdir: Path, i: int, direct: bool, env: dict) -> tuple[int | str, bool, float, str]:
    nodes = 2 if i % 3 == 2 else 1
    out = workdir / f"shutdown-out-{i}"
    cfg = {"nworker": 2, "nserver": nodes, "simulate_nodes": nodes, "output": str(out), "mode": "print",
           "rounds": 5, "sleep": 0.0}
    path = workdir / "shutdown.json"
    path.write_text(json.dumps(cfg) + "\n")
    if direct:
        argv = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(2 + nodes), sys.executable, str(JOB),
                "--config", str(path)]
    else:
        argv = [sys.executable, "-m", "parasol_hybrid", "--quiet", "--config", str(path), "python", str(JOB)]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        code, log = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, log = "timeout", f"timeout after 120 s: {exc.stderr or ''}"
    wall = time.perf_counter() - t0
    written = (out / "metrics.json").exists()
    return code, written, wall, log


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    n = repeats or (QUICK_JOBS if quick else FULL_JOBS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    say(f"shutdown: {n} short jobs (every third on 2 simulated nodes)")
    failures, walls = [], []
    t0 = time.perf_counter()
    for i in range(n):
        code, written, wall, log = _one(workdir, i, direct, env)
        walls.append(wall)
        if code != 0 or not written:
            tail = "\n".join(log.strip().splitlines()[-8:])
            failures.append({"job": i, "exit": code, "metrics_written": written, "log_tail": tail})
            say(f"shutdown: job {i} failed (exit {code}, metrics.json {'written' if written else 'missing'}):\n{tail}")
        if (i + 1) % 20 == 0:
            say(f"shutdown: {i + 1}/{n} jobs, {len(failures)} failed, {time.perf_counter() - t0:.0f} s")
    total = time.perf_counter() - t0
    walls.sort()
    return {"params": {"jobs": n, "layouts": "2w+1s on 1 node; every third 2w+2s on 2 simulated nodes",
                       "job": "tests/jobs/lifecycle_job.py mode=print rounds=5"},
            "figures": {"failed": len(failures), "jobs": n, "wall_seconds": round(total, 1),
                        "median_job_seconds": round(walls[len(walls) // 2], 2) if walls else 0.0,
                        "max_job_seconds": round(walls[-1], 2) if walls else 0.0},
            "failures": failures}


def rows(result: dict) -> list[list[str]]:
    fig = result["figures"]
    return [[f"jobs with a non-zero exit or no metrics.json (of {fig['jobs']})", str(fig["failed"]), "-", "-", "0",
             "met" if fig["failed"] == 0 else "MISSED", "-"],
            ["seconds per job (median / max)", f"{fig['median_job_seconds']:.2f}", f"{fig['max_job_seconds']:.2f}",
             "-", "", "", "-"]]
