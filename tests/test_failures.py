"""A dead rank ends the job: quickly, with a message naming it, leaving no process and no segment.

Each case kills a worker or a server with SIGKILL, or makes a worker raise in
``solve()``, on one node and on two simulated nodes, through the launcher.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from parasol_hybrid.launcher import pids_with_env
from parasol_hybrid.testing import alive_pids, shm_leftovers, start_launcher, stop_launcher, write_config

JOB = Path(__file__).resolve().parent / "jobs" / "failure_job.py"
pytestmark = pytest.mark.timeout(120)

# rank -> role for the two layouts (servers are the highest ranks of each node)
LAYOUTS = {
    1: {"nworker": 2, "nserver": 1, "worker": 1, "server": 2},
    2: {"nworker": 2, "nserver": 2, "worker": 2, "server": 3},
}


def _rank_pid(launcher_pid: int, rank: int) -> int:
    for pid in pids_with_env("PARASOL_LAUNCHER_PID", str(launcher_pid)):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env and comm.startswith("python"):
            return pid
    raise AssertionError(f"no process for rank {rank}")


def _wait_for(path: Path, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the job ended before it was ready"
        assert time.monotonic() < deadline, "the job did not get ready"
        time.sleep(0.05)


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("victim", ["worker", "server", "raise"])
def test_dead_rank_ends_the_job(tmp_path, nodes, victim):
    lay = LAYOUTS[nodes]
    out = tmp_path / "out"
    cfg = write_config(tmp_path, nworker=lay["nworker"], nserver=lay["nserver"], simulate_nodes=nodes,
                       output=str(out), staleness=1, fail="raise" if victim == "raise" else "none")
    proc = start_launcher(["--config", str(cfg), "python", str(JOB)])
    try:
        _wait_for(out / "ready", proc)
        job_pids = pids_with_env("PARASOL_LAUNCHER_PID", str(proc.pid))
        start = time.monotonic()
        if victim != "raise":
            rank = lay[victim]
            os.kill(_rank_pid(proc.pid, rank), signal.SIGKILL)
        proc.wait(timeout=30)
        elapsed = time.monotonic() - start
        stdout, stderr = stop_launcher(proc, grace=1)
    finally:
        if proc.poll() is None:
            stop_launcher(proc, grace=1)
    assert proc.returncode != 0
    assert elapsed < (10 if victim == "raise" else 5), f"the job took {elapsed:.1f} s to end"
    if victim == "raise":
        assert "worker 1" in stderr and "deliberate failure" in stderr, stderr
    else:
        assert f"rank {lay[victim]} ({victim} " in stderr and "on host" in stderr, stderr
    assert alive_pids(job_pids, wait=5.0) == []
    assert [n for n in shm_leftovers() if any(str(p) in n for p in job_pids)] == []
