"""Tests of run_parasol (parasol_hybrid.launcher): argv, config errors, real runs, teardown, cleanup."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

import posix_ipc
import pytest

REPO = Path(__file__).resolve().parent.parent

from parasol_hybrid import launcher  # noqa: E402
from parasol_hybrid._launcher import cleanup  # noqa: E402
from parasol_hybrid.errors import JobError  # noqa: E402
from parasol_hybrid.testing import (  # noqa: E402
    alive_pids, pid_alive, run_launcher, shm_leftovers, start_launcher, stop_launcher, write_config)

MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
GRACE = 2.0

# Each rank creates a segment named like the library's, records "<pid> <job id>", then sleeps.
HOLD_SCRIPT = """
import os, signal, sys, time
import posix_ipc
from mpi4py import MPI

rank = MPI.COMM_WORLD.rank
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
job = os.environ["PARASOL_JOB_ID"]
shm = posix_ipc.SharedMemory(f"/parasol-{job}-{os.getpid()}-x", posix_ipc.O_CREX, size=4096)
tmp = os.path.join(sys.argv[1], f".pid.{rank}")
with open(tmp, "w") as f:
    f.write(f"{os.getpid()} {job}")
os.rename(tmp, os.path.join(sys.argv[1], f"pid.{rank}"))
time.sleep(120)
"""


def creator_alive(name: str) -> bool:
    m = re.match(r"^(?:sem\.)?parasol-[0-9a-f]+-(\d+)-", name)
    return bool(m) and pid_alive(int(m.group(1)))


def orphans(before: set[str]) -> list[str]:
    """New parasol names in /dev/shm whose creator is gone, after giving their launcher 3 s to sweep them.

    Other jobs may run on this machine meanwhile: their live segments are not leftovers.
    """
    deadline = time.monotonic() + 3.0
    while True:
        left = sorted(n for n in set(shm_leftovers()) - before if not creator_alive(n))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def orphan_mpich_files(before: set[str] = frozenset()) -> set[str]:
    """New /dev/shm/mpich_shm_* files that no process maps (what a killed MPICH job leaves)."""
    deadline = time.monotonic() + 3.0
    while True:
        files = {str(p) for p in Path("/dev/shm").glob("mpich_shm_*")} - before
        if files:
            files -= launcher.mpich_files([int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()])
        if not files or time.monotonic() > deadline:
            return files
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def no_new_shm():
    """Every test leaves /dev/shm without parasol names of its own."""
    before = set(shm_leftovers())
    yield
    assert orphans(before) == []


@pytest.fixture
def no_new_mpich_files():
    """The test leaves no MPICH file behind (the launcher removes those of the ranks it had to kill)."""
    before = {str(p) for p in Path("/dev/shm").glob("mpich_shm_*")}
    yield
    assert orphan_mpich_files(before) == set()


def script(tmp_path: Path, text: str, name: str = "entry.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def wait_for_ranks(tmp_path: Path, n: int, proc: subprocess.Popen, timeout: float = 60.0):
    """Wait until the n ranks of HOLD_SCRIPT have their segments; return (pids, job id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"launcher ended early: {proc.communicate()}"
        files = sorted(tmp_path.glob("pid.*"))
        if len(files) == n:
            pairs = [f.read_text().split() for f in files]
            job = pairs[0][1]
            if len(shm_leftovers(job)) == n:
                return [int(pid) for pid, _ in pairs], job
        time.sleep(0.05)
    raise AssertionError(f"ranks did not start in {timeout} s: {stop_launcher(proc, GRACE)}")


@pytest.mark.timeout(120)
def test_build_argv():
    cfg = {"nworker": 2, "nserver": 3}
    assert launcher.build_argv(cfg, ["python", "a.py", "--x", "1"], "/m/mpiexec") == [
        "/m/mpiexec", "-n", "5", sys.executable, "a.py", "--x", "1"]
    assert launcher.build_argv(cfg, ["python3", "-u", "a.py"], "mpiexec")[3:] == [sys.executable, "-u", "a.py"]
    assert launcher.build_argv(cfg, ["a.py"], "mpiexec")[3:] == [sys.executable, "a.py"]
    assert launcher.build_argv({"nworker": 1, "nserver": 1}, ["./prog", "python"], "mpiexec") == [
        "mpiexec", "-n", "2", "./prog", "python"]
    with pytest.raises(JobError):
        launcher.build_argv(cfg, [], "mpiexec")
    assert launcher.entry_script(["python", "-X", "dev", "-u", "d/a.py", "b.py"]) == Path("d/a.py")
    assert launcher.entry_script(["python", "-m", "pkg"]) is None
    assert launcher.entry_script(["./prog"]) is None
    assert launcher.find_mpiexec() == MPIEXEC


@pytest.mark.timeout(120)
def test_dry_run_prints_argv_and_starts_nothing(tmp_path):
    entry = script(tmp_path, "open('ran', 'w').close()\n")
    cfg = write_config(tmp_path, nworker=2, nserver=1)
    done = run_launcher(["--config", str(cfg), "--dry-run", "python", str(entry), "--k", "v"], 60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == shlex.join([MPIEXEC, "-n", "3", sys.executable, str(entry), "--k", "v"])
    assert not (tmp_path / "ran").exists()


@pytest.mark.timeout(120)
def test_dry_run_names_the_environment_overrides(tmp_path, monkeypatch, capsys):
    entry = script(tmp_path, "open('ran', 'w').close()\n")
    cfg = write_config(tmp_path, nworker=1, nserver=1)
    monkeypatch.setenv("PARASOL_QUIET", "1")
    assert launcher.main(["--config", str(cfg), "--dry-run", "python", str(entry)]) == 0
    first, *rest = capsys.readouterr().out.splitlines()
    assert first == shlex.join([MPIEXEC, "-n", "2", sys.executable, str(entry)])
    assert any(line.startswith("environment: PARASOL_QUIET=1  (") for line in rest), rest
    assert not (tmp_path / "ran").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", ["unknown key", "wrong type", "bad input", "no entry", "no mpiexec"])
def test_config_error_exits_2_before_starting(tmp_path, case):
    entry = script(tmp_path, "open('ran', 'w').close()\n")
    keys, args, expect = {"nworker": 1, "nserver": 1}, [], ""
    if case == "unknown key":
        keys["stalenes"], expect = 1, "did you mean 'staleness'"
    elif case == "wrong type":
        keys["rounds"], expect = "10", "config key 'rounds' must be an integer, got '10' (str)"
    elif case == "bad input":
        keys["input"], expect = "data/*.txt", "'input': input path 'data/*.txt' matches no file"
    elif case == "no entry":
        entry, expect = tmp_path / "missing.py", "missing.py does not exist"
    else:
        args, expect = ["--mpiexec", str(tmp_path / "nompiexec")], "nompiexec"
    cfg = write_config(tmp_path, **keys)
    done = run_launcher(["--config", str(cfg), *args, "python", str(entry)], 60, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("run_parasol: error: ") and expect in done.stderr, done.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.timeout(120)
def test_an_entry_that_calls_run_without_a_main_guard_is_not_run_by_the_launcher(tmp_path):
    """``run(MyAlg)`` at module level, as in the original parasol: the launcher reads MyAlg's keys and stops there."""
    entry = tmp_path / "unguarded.py"
    entry.write_text(textwrap.dedent("""
        import sys
        from parasol_hybrid import Option, paralg, run

        class Hello(paralg):
            options = {"greeting": Option(int, 1, "a positive number", lambda v: None if v > 0 else "must be > 0")}

            def solve(self):
                t = self.table("w", (4, 2))
                t.push([1], [[1.0, 1.0]])
                self.clock()
                self.sync()
                if self.is_master:
                    print("solved", float(t.pull([1])[0, 0]), flush=True)

        run(Hello)
        print("after run()", file=sys.stderr, flush=True)
    """))
    bad = write_config(tmp_path / "bad.json", nworker=2, nserver=1, greeting=0)
    done = run_launcher(["--config", str(bad), "--dry-run", "python", str(entry)], timeout=30)
    assert done.returncode == 2 and "greeting" in done.stderr, done.stdout + done.stderr
    assert "after run()" not in done.stderr
    good = write_config(tmp_path / "good.json", nworker=2, nserver=1, greeting=3)
    done = run_launcher(["--config", str(good), "python", str(entry)], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "solved 2.0" in done.stdout and done.stderr.count("after run()") == 3, done.stdout + done.stderr


def test_a_config_that_fails_on_one_rank_only_ends_the_job_naming_it(tmp_path):
    """A config can fail on one rank alone (say, a file missing on its host): that rank says why and every rank
    exits with status 2 (the others used to wait for it in the first collective for good)."""
    entry = tmp_path / "entry.py"
    entry.write_text("from parasol_hybrid import paralg, run\n\nclass A(paralg):\n    def solve(self):\n"
                     "        self.sync()\n\nrun(A)\n")
    good = write_config(tmp_path / "good.json", nworker=1, nserver=1)
    bad = write_config(tmp_path / "bad.json", nworker=1, nserver=1, no_such_key=1)
    cmd = [str(launcher.find_mpiexec()), "-n", "1", sys.executable, str(entry), "--config", str(good), ":",
           "-n", "1", sys.executable, str(entry), "--config", str(bad)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(r"parasol: rank 1 on host \S+: error: .*no_such_key", done.stderr), done.stderr
    assert "rank 0 on host" not in done.stderr, done.stderr


def test_algorithm_options_from_entry(tmp_path, monkeypatch):
    base = type("paralg", (), {"options": {}})
    monkeypatch.setitem(sys.modules, "parasol_hybrid.algorithm", types.SimpleNamespace(paralg=base))
    entry = script(tmp_path, """
        from parasol_hybrid.config import Option
        from parasol_hybrid.algorithm import paralg
        import helper  # from the entry's directory

        class MF(paralg):
            options = {"rank": Option(int, 8, "latent dimension", helper.positive)}

        if __name__ == "__main__":
            raise SystemExit("must not run in the launcher")
    """)
    script(tmp_path, "def positive(v):\n    return None if v > 0 else 'must be positive'\n", "helper.py")
    assert set(launcher.algorithm_options(entry)) == {"rank"}
    for rank, rc in [(4, 0), (0, 2), ("x", 2)]:
        cfg = write_config(tmp_path, nworker=1, nserver=1, rank=rank)
        assert launcher.main(["--config", str(cfg), "--dry-run", "python", str(entry)]) == rc
    assert str(tmp_path) not in sys.path
    monkeypatch.delitem(sys.modules, "helper")
    broken = script(tmp_path, "import parasol_hybrid\nraise RuntimeError('boom')\n", "broken.py")
    with pytest.raises(JobError, match=r"broken\.py: RuntimeError: boom"):
        launcher.algorithm_options(broken)


@pytest.mark.timeout(120)
def test_real_paralg_options_are_checked_before_start(tmp_path):
    entry = script(tmp_path, """
        from parasol_hybrid import Option, paralg, run

        class Count(paralg):
            options = {"bins": Option(int, 10, "number of bins")}

            def solve(self):
                pass

        if __name__ == "__main__":
            run(Count)
    """)
    cfg = write_config(tmp_path, nworker=1, nserver=1, bins="ten")
    done = run_launcher(["--config", str(cfg), "--dry-run", "python", str(entry)], 60, cwd=tmp_path)
    assert done.returncode == 2 and "config key 'bins' must be an integer" in done.stderr, done.stderr
    cfg = write_config(tmp_path, nworker=1, nserver=1, bins=3)
    done = run_launcher(["--config", str(cfg), "--dry-run", "python", str(entry)], 60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(120)
def test_real_run_starts_nworker_plus_nserver_ranks(tmp_path):
    script(tmp_path, """
        import os
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        with open(f"rank.{comm.rank}", "w") as f:
            f.write(f"rank {comm.rank} of {comm.size} {os.environ['PARASOL_JOB_ID']} "
                    f"{os.environ['PARASOL_CONFIG']} {os.environ['PARASOL_LAUNCHER_PID']}")
    """)
    cfg = write_config(tmp_path, nworker=3, nserver=2)
    done = run_launcher(["--config", "config.json", "python", "entry.py"], 90, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [p.read_text().split() for p in tmp_path.glob("rank.*")]
    assert sorted(int(ln[1]) for ln in lines) == [0, 1, 2, 3, 4]
    assert {ln[3] for ln in lines} == {"5"}
    job = re.search(r"job ([0-9a-f]+):", done.stderr).group(1)
    assert {ln[4] for ln in lines} == {job} and {ln[5] for ln in lines} == {str(cfg)}
    assert len({ln[6] for ln in lines}) == 1


@pytest.mark.timeout(120)
def test_exit_code_of_a_rank_propagates(tmp_path):
    entry = script(tmp_path, """
        import sys
        from mpi4py import MPI
        if MPI.COMM_WORLD.rank == 1:
            sys.exit(3)
    """)
    cfg = write_config(tmp_path, nworker=2, nserver=1)
    done = run_launcher(["--config", str(cfg), "--quiet", "python", str(entry)], 90, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "run_parasol:" not in done.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig, ranks", [(signal.SIGINT, "polite"), (signal.SIGINT, "stubborn"),
                                        (signal.SIGTERM, "polite")],
                         ids=["sigint-polite", "sigint-stubborn", "sigterm-polite"])
def test_signal_to_launcher_ends_job_and_sweeps(tmp_path, sig, ranks, no_new_mpich_files):
    entry = script(tmp_path, HOLD_SCRIPT)
    cfg = write_config(tmp_path, nworker=2, nserver=1)
    proc = start_launcher(["--config", str(cfg), "--grace", str(GRACE), "python", str(entry), str(tmp_path), ranks],
                          cwd=tmp_path)
    try:
        pids, job = wait_for_ranks(tmp_path, 3, proc)
        start = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=GRACE + 5)
        assert time.monotonic() - start < GRACE + 5
    finally:
        if proc.returncode is None:
            stop_launcher(proc, GRACE)
    assert proc.returncode == 128 + sig, err  # 130 for Ctrl-C
    assert alive_pids(pids, wait=2.0) == []
    assert shm_leftovers(job) == []
    assert f"segment(s) of job {job}" in err  # the launcher said what it swept


@pytest.mark.timeout(120)
def test_sigkill_of_one_rank_ends_job_and_sweeps(tmp_path, no_new_mpich_files):
    entry = script(tmp_path, HOLD_SCRIPT)
    cfg = write_config(tmp_path, nworker=2, nserver=2)
    proc = start_launcher(["--config", str(cfg), "--grace", str(GRACE), "python", str(entry), str(tmp_path), "polite"],
                          cwd=tmp_path)
    try:
        pids, job = wait_for_ranks(tmp_path, 4, proc)
        time.sleep(1.0)  # the launcher notes MPICH's own /dev/shm file by polling, every 250 ms at first
        os.kill(pids[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.returncode is None:
            stop_launcher(proc, GRACE)
    assert proc.returncode != 0, err
    assert alive_pids(pids, wait=2.0) == []
    assert shm_leftovers(job) == []


def _unlink(shm_name: str = "", sem_name: str = "") -> None:
    for unlink, name in ((posix_ipc.unlink_shared_memory, shm_name), (posix_ipc.unlink_semaphore, sem_name)):
        if name:
            try:
                unlink(name)
            except posix_ipc.ExistentialError:
                pass


@pytest.mark.timeout(120)
def test_cleanup_removes_only_dead_creators_segments(capsys):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead, alive = finished.pid, os.getpid()
    dead_shm, dead_sem = f"/parasol-deadbeef01-{dead}-x", f"/parasol-deadbeef01-{dead}-s"
    alive_shm = f"/parasol-deadbeef02-{alive}-x"
    posix_ipc.SharedMemory(alive_shm, posix_ipc.O_CREX, size=4096).close_fd()
    try:
        # Other jobs starting on this machine sweep dead segments too: retry if one got there first.
        for _ in range(5):
            posix_ipc.SharedMemory(dead_shm, posix_ipc.O_CREX, size=4096).close_fd()
            posix_ipc.Semaphore(dead_sem, posix_ipc.O_CREX).close()
            assert launcher.main(["--cleanup"]) == 0
            out = capsys.readouterr().out
            if dead_shm[1:] in out and f"sem.{dead_sem[1:]}" in out:
                break
            _unlink(dead_shm, dead_sem)
        else:
            pytest.fail(f"--cleanup did not report removing {dead_shm}: {out}")
        assert shm_leftovers("deadbeef01") == []
        assert shm_leftovers("deadbeef02") == [alive_shm[1:]]
        done = run_launcher(["--cleanup"], 60)  # the command line, end to end
        assert done.returncode == 0 and "leftover segment(s) of ended jobs" in done.stdout, done
        assert shm_leftovers("deadbeef02") == [alive_shm[1:]]
    finally:
        _unlink(dead_shm, dead_sem)
        _unlink(alive_shm)


@pytest.mark.timeout(120)
def test_cleanup_removes_topology_files_of_ended_mpiexec_runs(capsys):
    """mpiexec leaves /tmp/hydra_hwloc_xmlfile_* behind when a rank calls MPI_Abort (MPICH's own doing):
    a file older than every running mpiexec is removed, a new one (a run may be starting) is kept."""
    old = tempfile.NamedTemporaryFile(prefix="hydra_hwloc_xmlfile_", dir="/tmp", delete=False)
    new = tempfile.NamedTemporaryFile(prefix="hydra_hwloc_xmlfile_", dir="/tmp", delete=False)
    try:
        two_hours_ago = time.time() - 7200
        os.utime(old.name, (two_hours_ago, two_hours_ago))
        assert launcher.main(["--cleanup"]) == 0
        out = capsys.readouterr().out
        # another test's launcher may have swept it first, in silence
        assert not os.path.exists(old.name) and (old.name in out or "topology" not in out), out
        assert os.path.exists(new.name) and new.name not in out, out

        # a file a running mpiexec may own is kept, however old: here one started an hour ago
        half_hour_ago = time.time() - 1800
        os.utime(new.name, (half_hour_ago, half_hour_ago))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cleanup, "_mpiexec_start_times", lambda: [time.time() - 3600])
            assert new.name not in cleanup.unused_hydra_files()
            mp.setattr(cleanup, "_mpiexec_start_times", lambda: [time.time() - 60])
            assert new.name in cleanup.unused_hydra_files()
        # and a running mpiexec is seen, with its start time
        proc = subprocess.Popen([MPIEXEC, "-n", "1", "sleep", "10"], start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not (starts := cleanup._mpiexec_start_times()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert any(abs(t - time.time()) < 15 for t in starts), starts
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finally:
        for f in (old, new):
            f.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f.name)


@pytest.mark.timeout(120)
def test_closed_output_pipe_loses_nothing(tmp_path):
    """``run_parasol ... | head -5``: the reader goes away after 5 progress lines, the job runs to its end."""
    job = REPO / "tests" / "jobs" / "lifecycle_job.py"
    out = tmp_path / "out"
    cfg = write_config(tmp_path, nworker=2, nserver=1, output=str(out), mode="print", rounds=150, sleep=0.01)
    proc = start_launcher(["--config", str(cfg), "python", str(job)], cwd=tmp_path)
    try:
        head = [proc.stdout.readline() for _ in range(5)]
        proc.stdout.close()  # what head does after 5 lines
        err = proc.stderr.read()
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            stop_launcher(proc, GRACE)
    assert all(line.startswith("round ") for line in head), head
    assert rc == 0, err
    metrics = (out / "metrics.json").read_text()
    assert '"rounds_done": 150' in metrics, metrics
    assert "BrokenPipeError" not in err and "Exception ignored" not in err, err


@pytest.mark.timeout(120)
def test_a_warm_launcher_behaves_as_a_fresh_one(tmp_path):
    """``run_launcher`` forks launchers from a warm server: the same exit code and output as a fresh
    ``python -m parasol_hybrid``, with the test's working folder and PYTHONPATH, for a job and a refusal."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "greeting_mod.py").write_text("GREETING = 'hello from lib'\n")
    script(tmp_path, """
        import os
        import greeting_mod  # from PYTHONPATH, in the launcher's import of this file and in every rank
        from parasol_hybrid import paralg, run

        class A(paralg):
            def solve(self):
                if self.is_master:
                    print(greeting_mod.GREETING, "in", os.path.basename(os.getcwd()), flush=True)

        if __name__ == "__main__":
            run(A)
    """, "greet.py")
    env = dict(os.environ, PYTHONPATH=str(lib))

    def same_run(keys: dict) -> subprocess.CompletedProcess:
        cfg = write_config(tmp_path / "cfg.json", **keys)
        argv = ["--config", "cfg.json", "python", "greet.py"]
        warm = run_launcher(argv, 60, cwd=tmp_path, env=env)
        fresh = run_launcher(argv, 60, cwd=tmp_path, env=env, fresh=True)
        assert cfg.exists() and warm.returncode == fresh.returncode, (warm, fresh)
        unjob = re.compile(r"job [0-9a-f]{12}")
        assert unjob.sub("job J", warm.stderr) == unjob.sub("job J", fresh.stderr) and warm.stdout == fresh.stdout
        return warm

    done = same_run({"nworker": 1, "nserver": 1})
    assert done.returncode == 0 and done.stdout == f"hello from lib in {tmp_path.name}\n", done
    done = same_run({"nworker": 1, "nserver": 1, "stalenes": 1})
    assert done.returncode == 2 and "did you mean 'staleness'" in done.stderr, done
