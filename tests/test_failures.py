"""A dead rank ends the job: quickly, with a message naming it, leaving no process and no segment.

Each case kills a worker (worker 0, the master, too) or a server with SIGKILL,
or makes a worker raise in ``solve()``, on one node and on two simulated
nodes, through the launcher. The launcher's summary line names the rank whose
failure started the end and repeats its message, every time.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from parasol_hybrid._layout import assign_roles, simulated_nodes
from parasol_hybrid.launcher import pids_with_env
from parasol_hybrid.testing import (alive_pids, run_launcher, shm_leftovers, start_launcher, stop_launcher,
                                    write_config)

JOB = Path(__file__).resolve().parent / "jobs" / "failure_job.py"
LIFECYCLE = Path(__file__).resolve().parent / "jobs" / "lifecycle_job.py"
pytestmark = pytest.mark.timeout(120)

# rank -> role for the two layouts (servers are the highest ranks of each node)
LAYOUTS = {
    1: {"nworker": 2, "nserver": 1, "worker": 1, "server": 2, "master": 0},
    2: {"nworker": 2, "nserver": 2, "worker": 2, "server": 3, "master": 0},
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
@pytest.mark.parametrize("victim", ["worker", "master", "server", "raise"])
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
        role = "server" if victim == "server" else "worker"
        assert f"rank {lay[victim]} ({role} " in stderr and "on host" in stderr, stderr
        summary = [ln for ln in stderr.splitlines() if ln.startswith("run_parasol: job ") and " failed " in ln]
        assert len(summary) == 1 and f"rank {lay[victim]} ({role} " in summary[0], stderr
    assert alive_pids(job_pids, wait=5.0) == []
    assert [n for n in shm_leftovers() if any(str(p) in n for p in job_pids)] == []


# (error, worker that raises, nworker, nserver, simulated nodes)
RAISES = {
    "InputError-master": ("InputError", 0, 2, 1, 1),
    "RuleError-rank1": ("RuleError", 1, 2, 1, 1),
    "TableError-2nodes": ("TableError", 1, 2, 2, 2),
    "worker-error-servers": ("RuntimeError", 1, 2, 2, 1),
}


@pytest.mark.parametrize("case", list(RAISES))
def test_summary_names_the_rank_that_failed(tmp_path, case):
    """The summary line is there and names the failing rank and its message."""
    error, worker, nworker, nserver, nodes = RAISES[case]
    lay = assign_roles(simulated_nodes(nworker + nserver, nodes), nworker, nserver)
    rank = [r for r in range(nworker + nserver) if not lay.is_server[r] and lay.index_of[r] == worker][0]
    cfg = write_config(tmp_path, nworker=nworker, nserver=nserver, simulate_nodes=nodes, staleness=0,
                       output=str(tmp_path / "out"), mode="raise", fail_worker=worker, error=error)
    done = run_launcher(["--config", str(cfg), "python", str(LIFECYCLE)], 90)
    assert done.returncode == 1, done.stderr
    summary = [ln for ln in done.stderr.splitlines() if ln.startswith("run_parasol: job ") and " failed " in ln]
    assert len(summary) == 1, f"no summary line:\n{done.stderr}"
    expect = (rf"failed \(exit 1\): rank {rank} \(worker {worker}\) on host \S+ \(pid \d+\) failed: "
              rf"{error}: deliberate {error} of worker {worker}$")
    assert re.search(expect, summary[0]), summary[0]


def test_summary_names_a_start_up_error(tmp_path):
    """A server that cannot bind (its interface does not exist) is named with its error, even though hydra
    may end the job before it forwards the rank's own line."""
    cfg = write_config(tmp_path, nworker=2, nserver=1, output=str(tmp_path / "out"), mode="run", max_seconds=5)
    env = dict(os.environ, PARASOL_INTERFACE="nosuch0")
    done = run_launcher(["--config", str(cfg), "python", str(LIFECYCLE)], 90, env=env)
    assert done.returncode == 2, done.stderr
    summary = [ln for ln in done.stderr.splitlines() if ln.startswith("run_parasol: job ") and " failed " in ln]
    assert len(summary) == 1, done.stderr
    assert re.search(r"failed \(exit 2\): rank 2 on host \S+ \(pid \d+\) failed at start-up: ConfigError: "
                     r"config key 'interface': no IPv4 address on interface 'nosuch0'", summary[0]), summary[0]


def test_the_first_failure_record_wins(tmp_path, monkeypatch):
    from parasol_hybrid import jobdir

    monkeypatch.setenv(jobdir.ENV, str(tmp_path))
    assert jobdir.read_failure(str(tmp_path)) is None
    assert jobdir.record_failure(1, "worker", 1, "failed: RuleError: no rule 'x'", host="h", pid=11)
    assert not jobdir.record_failure(0, "worker", 0, "died", host="h", pid=10, noticed_by=2)
    record = jobdir.read_failure(str(tmp_path))
    assert jobdir.describe_failure(record) == "rank 1 (worker 1) on host h (pid 11) failed: RuleError: no rule 'x'"
    assert sorted(p.name for p in tmp_path.iterdir()) == [jobdir.FAILURE]  # no temporary file left
    try:
        raise ValueError("bad\nvalue")
    except ValueError as exc:
        assert jobdir.error_line(exc) == "ValueError: bad / value"


def test_watchdog_says_how_a_node_mate_died():
    """While the dead process is a zombie, its exit status is readable: the record says which signal."""
    import subprocess
    import sys

    from parasol_hybrid.cluster.watchdog import _how_it_died

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert _how_it_died(child.pid) == "died (killed by SIGKILL)"
    finally:
        child.wait()
    assert _how_it_died(child.pid) == "died"  # reaped: nothing left to read


def test_ranks_seen_ending_together_are_all_named(tmp_path):
    """A launcher that looks late sees the killed rank and those mpiexec then killed end at once: it cannot
    tell which was first, so its summary names them all (it used to name the lowest rank alone)."""
    import json
    import select
    import subprocess

    from parasol_hybrid._launcher.ranks import RankWatch

    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    try:
        for rank, p in enumerate(procs):
            role, index = ("server", 0) if rank == 2 else ("worker", rank)
            (tmp_path / f"rank-{rank}.json").write_text(json.dumps(
                {"rank": rank, "role": role, "index": index, "host": "h", "pid": p.pid}))
        poll = select.poll()
        watch = RankWatch(str(tmp_path), poll)
        watch.read_registrations()
        for p in (procs[2], procs[0]):  # the server, then worker 0, before the launcher looks
            p.kill()
            p.wait()
        watch.ended([fd for fd, _ in poll.poll(5000) if watch.owns(fd)])
        said = watch.describe_death()
        assert said == (f"rank 0 (worker 0) on host h (pid {procs[0].pid}), rank 2 (server 0) on host h "
                        f"(pid {procs[2].pid}) ended at the same time"), said
        assert not watch.watching
    finally:
        for p in procs:
            p.kill()
            p.wait()
