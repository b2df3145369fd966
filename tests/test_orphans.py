"""Killing the launcher, mpiexec or the hydra proxy ends the whole job: no process, no segment left.

A batch system or the OOM killer ends a job's launcher with SIGKILL: nothing
can then clean up but the job itself. Each case starts a job whose workers
hold a named segment (what a crash in the short window before segments are
unlinked would leave), kills one process of the job's tree with SIGKILL, and
checks that every process of the job is gone within 10 s and that no
``/dev/shm`` name of the job is left. The job's processes are found by
``PARASOL_LAUNCHER_PID`` in their environment and by their parent links.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import signal
import time
from pathlib import Path

import pytest

from parasol_hybrid.launcher import pids_with_env
from parasol_hybrid.testing import alive_pids, shm_leftovers, start_launcher, stop_launcher, write_config

JOB = Path(__file__).resolve().parent / "jobs" / "lifecycle_job.py"
pytestmark = pytest.mark.timeout(120)


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, command name) of ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    return int(text.rsplit(")", 1)[1].split()[1]), comm


def job_tree(launcher: int) -> dict[str, list[int]]:
    """The job's mpiexec, proxies and ranks, by parent links below the launcher."""
    procs = {pid: _stat(pid) for pid in pids_with_env("PARASOL_LAUNCHER_PID", str(launcher))}
    procs = {pid: st for pid, st in procs.items() if st is not None}
    mpiexec = [p for p, (pp, _) in procs.items() if pp == launcher]
    proxies = [p for p, (pp, _) in procs.items() if pp in mpiexec]
    ranks = [p for p, (pp, _) in procs.items() if pp in proxies]
    return {"mpiexec": mpiexec, "proxy": proxies, "rank": ranks}


def _job_id(pid: int) -> str:
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    return env[b"PARASOL_JOB_ID"].decode()


def _start(tmp_path: Path):
    out = tmp_path / "out"
    cfg = write_config(tmp_path, nworker=2, nserver=1, output=str(out), mode="run", max_seconds=90, hold=True)
    proc = start_launcher(["--config", str(cfg), "python", str(JOB)])
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the job ended before it was ready: {proc.communicate()}"
        assert time.monotonic() < deadline, "the job did not get ready"
        if (out / "ready").exists():
            tree = job_tree(proc.pid)
            if len(tree["mpiexec"]) == 1 and len(tree["proxy"]) == 1 and len(tree["rank"]) == 3:
                job = _job_id(tree["rank"][0])
                if len([n for n in shm_leftovers(job) if n.endswith("-hold")]) == 2:
                    return proc, tree, job
        time.sleep(0.05)


def job_dirs(job: str) -> list[Path]:
    """The launcher's job folders of job ``job`` (``$PARASOL_JOB_DIR``)."""
    return list(Path(tempfile.gettempdir()).glob(f"parasol-job-{job}-*"))


def _kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("victim", ["launcher", "mpiexec", "proxy"])
def test_sigkill_in_the_process_tree_ends_the_job(tmp_path, victim):
    proc, tree, job = _start(tmp_path)
    everything = [proc.pid, *tree["mpiexec"], *tree["proxy"], *tree["rank"]]
    try:
        target = proc.pid if victim == "launcher" else tree[victim][0]
        start = time.monotonic()
        os.kill(target, signal.SIGKILL)
        if victim == "launcher":
            proc.wait(timeout=5)  # reap it, as its parent (a shell, a batch system) would
        left = alive_pids(everything, wait=10.0)
        elapsed = time.monotonic() - start
        leftover = shm_leftovers(job)
        if victim == "launcher":
            stderr = ""
        else:
            proc.wait(timeout=10)
            stderr = stop_launcher(proc, grace=1)[1]
    finally:
        _kill_all(alive_pids(everything))
        if proc.poll() is None:
            stop_launcher(proc, grace=1)
    assert left == [], f"still running {elapsed:.1f} s after SIGKILL of the {victim}: {left} of {tree}"
    assert leftover == [], f"the job's segments are left after SIGKILL of the {victim}: {leftover}"
    if victim != "launcher":
        assert proc.returncode != 0, stderr
        summary = [ln for ln in stderr.splitlines() if ln.startswith("run_parasol: job ") and " failed " in ln]
        assert len(summary) == 1, stderr
        if victim == "mpiexec":
            assert f"mpiexec (pid {target}) was killed by SIGKILL" in summary[0], summary[0]
        else:  # the ranks saw their parent go (their own lines went with the proxy; the summary says it)
            assert re.search(r"\(exit \d+\): rank \d \((worker|server) \d\) on host \S+ \(pid \d+\) ended: its parent "
                             r"process hydra_pmi_proxy \(pid \d+\) is gone", summary[0]), summary[0]
    else:
        assert not job_dirs(job), "the job's folder is left"


def test_ranks_watch_the_launcher_not_a_reused_pid(monkeypatch):
    """The launcher's identity is its pid and start time on this boot and pid namespace: a live process
    with another start time under the same pid is not the launcher."""
    from parasol_hybrid import lifeline

    env = lifeline.launcher_env()
    assert lifeline.Lifeline(env).check() is None
    boot, ns, start = env[lifeline.ENV_ID].split("/", 2)
    reused = dict(env, **{lifeline.ENV_ID: f"{boot}/{ns}/{int(start) + 1}"})
    assert "the launcher (pid" in lifeline.Lifeline(reused).check()
    elsewhere = dict(env, **{lifeline.ENV_ID: f"another-boot/{ns}/{start}"})
    assert lifeline.Lifeline(elsewhere).launcher_pid is None  # another host: not watched
    managed = dict(env, PMI_RANK="0")
    line = lifeline.Lifeline(managed)
    assert line.parent_pid == os.getppid() and line.check() is None
    line.parent_pid += 1  # as if re-parented
    assert "its parent process" in line.check()
