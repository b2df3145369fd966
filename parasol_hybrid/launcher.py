"""run_parasol: check a job's config, start its ranks with mpiexec, tear it down, sweep its memory.

Usage::

    run_parasol --config mf.json python algs/mf.py [args...]   # nworker + nserver ranks
    run_parasol --config mf.json --dry-run python algs/mf.py   # print the mpiexec command
    run_parasol --cleanup                                      # remove dead jobs' segments

The config is validated before anything starts (with the algorithm's own keys
when the entry script defines a ``paralg`` subclass); an error exits with 2.
Each rank gets ``PARASOL_JOB_ID``, ``PARASOL_CONFIG``, ``PARASOL_JOB_DIR`` and
``PARASOL_LAUNCHER_PID`` with ``PARASOL_LAUNCHER_ID`` (what proves the pid is
still this launcher: see :mod:`parasol_hybrid.lifeline`). If the launcher is
killed (``kill -9``, the OOM killer), mpiexec gets SIGTERM from the kernel
(``PR_SET_PDEATHSIG``) and every rank, which watches the launcher, sweeps the
job's segments and exits: nothing of the job is left.

When the job fails, the summary line names the rank whose failure started
the end (the first one recorded in the job folder, see :mod:`parasol_hybrid.jobdir`)
and repeats its message.

When the launcher's stdout or stderr is a pipe (``run_parasol ... | head``),
mpiexec writes into a pipe of the launcher's, which forwards it; if the
reader goes away, that stream is dropped (and still drained) and the job
runs to its end: a closed pipe cannot kill it.

Hydra (MPICH's mpiexec) puts every rank in a session of its own, so the job's
processes are found by their ``PARASOL_JOB_ID`` in ``/proc/<pid>/environ``,
not by process group. On SIGINT/SIGTERM the launcher sends SIGINT to mpiexec
(which passes it to the ranks), waits ``--grace`` seconds, then SIGKILLs what
is left; in every case it ends with removing the job's shared-memory segments.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import json
import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import jobdir, lifeline
from .config import Config, Option, load_config
from .errors import JobError, ParasolError
from .lifeline import mpich_files
from .tables import segment

__all__ = ["main", "build_argv", "find_mpiexec", "entry_script", "algorithm_options", "job_pids",
           "pids_with_env", "mpich_files"]

PROG = "run_parasol"
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_PYTHON_RE = re.compile(r"^python(3(\.\d+)?)?$")
_PY_OPTS_WITH_VALUE = ("-W", "-X", "--check-hash-based-pycs")


def find_mpiexec(explicit: str | None = None) -> str:
    """The mpiexec to use: ``explicit``, else the one next to this Python, else the one on PATH."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise JobError(f"mpiexec {explicit!r} (from --mpiexec) is not an executable file")
        return found
    beside = Path(sys.executable).parent / "mpiexec"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise JobError("no mpiexec found next to the Python interpreter nor on PATH: run `pip install mpich`")
    return found


def build_argv(cfg: Config | dict, command: list[str], mpiexec: str) -> list[str]:
    """The mpiexec argv that starts ``nworker + nserver`` ranks of ``command``.

    A leading ``python``/``python3`` becomes this interpreter; a leading
    ``X.py`` is run with this interpreter.
    """
    if not command:
        raise JobError("no command to run")
    first, rest = command[0], list(command[1:])
    if _PYTHON_RE.match(first):
        command = [sys.executable, *rest]
    elif first.endswith(".py"):
        command = [sys.executable, first, *rest]
    nranks = int(cfg["nworker"]) + int(cfg["nserver"])
    return [mpiexec, "-n", str(nranks), *command]


def entry_script(command: list[str]) -> Path | None:
    """The ``.py`` file that ``command`` runs (``python [opts] X.py ...`` or ``X.py ...``), if any."""
    if not command:
        return None
    if command[0].endswith(".py"):
        return Path(command[0])
    if not (_PYTHON_RE.match(os.path.basename(command[0])) or command[0] == sys.executable):
        return None
    args = iter(command[1:])
    for arg in args:
        if arg in ("-m", "-c", "-"):
            return None
        if arg in _PY_OPTS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return Path(arg) if arg.endswith(".py") else None
    return None


@contextlib.contextmanager
def _mpi_not_initialized():
    """While importing code in the launcher, keep ``from mpi4py import MPI`` from calling MPI_Init."""
    try:
        import mpi4py
    except ImportError:
        yield
        return
    if "mpi4py.MPI" in sys.modules:
        yield
        return
    saved = mpi4py.rc.initialize
    mpi4py.rc.initialize = False
    try:
        yield
    finally:
        mpi4py.rc.initialize = saved


def _import_entry(entry: Path):
    path = entry.resolve()
    name = f"_parasol_entry_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise JobError(f"cannot import entry script {entry}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    sys.path.insert(0, directory)
    sys.modules[name] = module
    try:
        with _mpi_not_initialized():
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise JobError(f"cannot import entry script {entry}: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)
    return module


def algorithm_options(entry: Path) -> dict[str, Option]:
    """The config keys declared by the ``paralg`` subclasses of ``entry`` (``{}`` if none).

    The file is imported only when its text mentions ``paralg`` or
    ``parasol_hybrid``, so a plain MPI script is never run in the launcher.
    """
    if not entry.is_file():
        raise JobError(f"entry script {entry} does not exist")
    try:
        with _mpi_not_initialized():
            from parasol_hybrid.algorithm import paralg
    except ImportError:
        return {}
    source = entry.read_text(errors="replace")
    if "paralg" not in source and "parasol_hybrid" not in source:
        return {}
    module = _import_entry(entry)
    options: dict[str, Option] = {}
    for obj in list(vars(module).values()):
        if isinstance(obj, type) and issubclass(obj, paralg) and obj is not paralg:
            options.update(getattr(obj, "options", None) or {})
    return options


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids of the live processes (not this one) started with environment variable ``name=value``."""
    tag = f"{name}={value}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def job_pids(job_id: str) -> list[int]:
    """Pids of the live processes of job ``job_id`` (mpiexec, proxies, ranks)."""
    return pids_with_env("PARASOL_JOB_ID", job_id)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


_PR_SET_PDEATHSIG = 1


def _dies_with_us():
    """A ``preexec_fn``: the child (mpiexec) gets SIGTERM when this launcher dies, however it dies.

    mpiexec passes SIGTERM on to the ranks; they also watch the launcher themselves.
    """
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os._exit(1)
    return preexec


def _is_pipe(fd: int) -> bool:
    """Whether ``fd`` is a pipe or socket (writing to it can fail with EPIPE once its reader is gone)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _quiet_fd(fd: int) -> None:
    """Point ``fd`` at /dev/null (its reader is gone), so nothing at exit fails writing to it."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


def emit(line: str, fd: int = 2) -> bool:
    """Write one line of the launcher's own to ``fd``; a closed pipe is not an error (returns False)."""
    stream = sys.stderr if fd == 2 else sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
        return True
    except (BrokenPipeError, ValueError):
        _quiet_fd(fd)
        return False
    except OSError:
        return False


class _Forward:
    """mpiexec's stdout or stderr, read from a pipe (non-blocking) and written to ours.

    When writing to ours fails (its reader is gone), forwarding stops but the
    pipe is still drained, so mpiexec and the ranks never block nor die on it.
    """

    def __init__(self, read_fd: int, out_fd: int):
        self.fd, self.out_fd = read_fd, out_fd
        os.set_blocking(read_fd, False)
        self.broken = False
        self.open = True

    def pump(self) -> bool:
        """Move what is readable now (at most 1 MiB, so other events are not starved); returns False
        at end of file."""
        for _ in range(16):
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                return False
            if not self.broken:
                self._write(data)
        return True

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.out_fd, view):]
        except BlockingIOError:
            pass  # our own output is non-blocking and full: drop this chunk rather than stall the job
        except OSError:  # EPIPE (the reader went away), EIO...: stop forwarding, keep draining
            self.broken = True
            _quiet_fd(self.out_fd)


class _Job:
    """One mpiexec run: start, forward signals, end every process of the job."""

    def __init__(self, argv: list[str], env: dict[str, str], job_id: str, grace: float, say):
        self.argv, self.env, self.job_id, self.grace, self.say = argv, env, job_id, grace, say
        self.proc: subprocess.Popen | None = None
        self.signum: int | None = None
        self.deadline: float | None = None
        self.mpich_files: set[str] = set()
        self._next_scan = self._started = 0.0
        self.ranks: dict[int, dict] = {}   # rank -> what it registered in PARASOL_JOB_DIR
        self.first_death: tuple[dict, float] | None = None
        self._pidfds: dict[int, dict] = {}
        self._streams: dict[int, _Forward] = {}
        self._poll = select.poll()

    def _on_signal(self, signum, frame) -> None:
        if self.signum is not None:  # a second signal: no more grace
            self.say(f"{signal.Signals(signum).name} again: killing the job")
            self.deadline = 0.0
            return
        self._scan()
        self.signum = signum
        self.deadline = time.monotonic() + self.grace
        self.say(f"{signal.Signals(signum).name}: stopping the job (SIGKILL in {self.grace:g} s)")
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)

    def run(self) -> int:
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        saved = {s: signal.signal(s, self._on_signal) for s in sigs}
        try:
            piped = [fd for fd in (1, 2) if _is_pipe(fd)]
            try:
                self.proc = subprocess.Popen(
                    self.argv, env=self.env, start_new_session=True, preexec_fn=_dies_with_us(),
                    stdout=subprocess.PIPE if 1 in piped else None, stderr=subprocess.PIPE if 2 in piped else None)
            except OSError as exc:
                raise JobError(f"cannot start {self.argv[0]}: {exc}") from exc
            for out_fd, pipe in ((1, self.proc.stdout), (2, self.proc.stderr)):
                if pipe is not None:
                    fwd = _Forward(os.dup(pipe.fileno()), out_fd)
                    pipe.close()
                    self._streams[fwd.fd] = fwd
                    self._poll.register(fwd.fd, select.POLLIN)
            self._started = time.monotonic()
            if self.signum is not None:
                self.proc.send_signal(signal.SIGINT)
            self._wait_mpiexec()
            # mpiexec is now a zombie, so its process group id cannot be reused yet
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self._end_stragglers():
                self._remove_mpich_files()
            self._drain(time.monotonic() + 2.0)
            rc = self.proc.wait()
        finally:
            for fwd in list(self._streams.values()):
                self._unregister_stream(fwd)
            for s, handler in saved.items():
                signal.signal(s, handler)
        if self.signum is not None:
            return 128 + self.signum
        return 128 - rc if rc < 0 else rc

    def _scan(self) -> None:
        """Note the MPICH files the job maps, to remove them if its ranks die without doing so."""
        self.mpich_files |= mpich_files(job_pids(self.job_id))

    def _watch_ranks(self, timeout: float) -> None:
        """Read the ranks' registrations, then wait up to ``timeout`` s for one of them to end.

        Each registered rank's process is watched through a pidfd, so the rank
        that ends first is seen as it ends, before mpiexec takes the others down.
        """
        folder = self.env.get("PARASOL_JOB_DIR")
        if folder and self.first_death is None:
            with contextlib.suppress(OSError):
                for entry in os.scandir(folder):
                    if entry.name.startswith("rank-") and entry.name.endswith(".json"):
                        rank = int(entry.name[5:-5])
                        if rank not in self.ranks:
                            with contextlib.suppress(OSError, ValueError):
                                with open(entry.path) as fh:
                                    info = json.load(fh)
                                self.ranks[rank] = info
                                with contextlib.suppress(OSError):
                                    fd = os.pidfd_open(info["pid"])
                                    self._pidfds[fd] = info
                                    self._poll.register(fd, select.POLLIN)
        if not self._pidfds and not self._streams:
            time.sleep(timeout)
            return
        ready = self._poll.poll(timeout * 1000)
        dead = []
        for fd, _ in ready:
            if fd in self._streams:
                self._pump(self._streams[fd])
            elif fd in self._pidfds:
                dead.append(self._pidfds[fd])
        if dead and self.first_death is None:
            info = min(dead, key=lambda i: i["rank"])
            self.first_death = (info, time.monotonic())
            self._close_pidfds()

    def _pump(self, fwd: _Forward) -> None:
        if not fwd.pump():
            self._unregister_stream(fwd)

    def _unregister_stream(self, fwd: _Forward) -> None:
        self._streams.pop(fwd.fd, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._poll.unregister(fwd.fd)
        if fwd.open:
            with contextlib.suppress(OSError):
                os.close(fwd.fd)
            fwd.open = False

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, forwarding mpiexec's output meanwhile."""
        if not self._streams:
            time.sleep(seconds)
            return
        for fd, _ in self._poll.poll(seconds * 1000):
            if fd in self._streams:
                self._pump(self._streams[fd])

    def _drain(self, deadline: float) -> None:
        """Forward what is left in mpiexec's pipes, until they end or ``deadline``."""
        while self._streams and time.monotonic() < deadline:
            self._pause(0.05)

    def _close_pidfds(self) -> None:
        for fd in list(self._pidfds):
            with contextlib.suppress(OSError):
                self._poll.unregister(fd)
                os.close(fd)
        self._pidfds.clear()

    def describe_death(self) -> str | None:
        """Which rank ended first, if one did while the job ran."""
        if self.first_death is None:
            return None
        info, _ = self.first_death
        return (f"rank {info['rank']} ({info['role']} {info['index']}) on host {info['host']} "
                f"(pid {info['pid']}) ended first")

    def describe_failure(self) -> str | None:
        """Why the job failed: the first failure a rank recorded in the job folder (the rank whose
        failure started the end, and its message), else mpiexec's death by a signal, else the rank
        that ended first, else (if ranks of a parasol job had registered) that none said why."""
        record = jobdir.read_failure(self.env.get(jobdir.ENV))
        if record is not None:
            return jobdir.describe_failure(record)
        rc = self.proc.returncode if self.proc is not None else None
        if rc is not None and rc < 0:  # mpiexec itself was killed; its proxies then kill the ranks
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return f"mpiexec (pid {self.proc.pid}) was killed by {name}"
        death = self.describe_death()
        if death is not None:
            return death
        if self.ranks:
            return "no rank recorded why (see the ranks' messages above)"
        return None

    def _exited(self) -> bool:
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _wait_mpiexec(self) -> None:
        killed = False
        while not self._exited():
            if time.monotonic() >= self._next_scan:  # often while ranks start, then rarely
                self._scan()
                self._next_scan = time.monotonic() + (0.05 if time.monotonic() < self._started + 10 else 0.5)
            if not killed and self.deadline is not None and time.monotonic() >= self.deadline:
                self.say(f"job {self.job_id} did not stop within the grace period: SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                _kill(job_pids(self.job_id), signal.SIGKILL)
                killed = True
            self._watch_ranks(0.02)
        self._close_pidfds()
        for fwd in list(self._streams.values()):  # what mpiexec wrote last
            self._pump(fwd)

    def _end_stragglers(self) -> bool:
        """Ranks still running after mpiexec: wait out the grace period if stopping, then SIGKILL.

        Returns whether every process of the job has ended."""
        while (pids := job_pids(self.job_id)) and time.monotonic() < (self.deadline or 0.0):
            self._pause(0.02)
        give_up = time.monotonic() + 5.0
        while pids and time.monotonic() < give_up:
            self.mpich_files |= mpich_files(pids)
            _kill(pids, signal.SIGKILL)
            self._pause(0.02)
            pids = job_pids(self.job_id)
        if pids:
            self.say(f"processes of job {self.job_id} survived SIGKILL: {pids}")
        return not pids

    def _remove_mpich_files(self) -> None:
        removed = []
        for path in sorted(self.mpich_files):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(os.path.basename(path))
        if removed:
            self.say(f"removed {len(removed)} MPICH segment(s) of job {self.job_id}: {' '.join(removed)}")


def unused_mpich_files(min_age: float = 60.0) -> list[str]:
    """MPICH's /dev/shm/mpich_shm_* files that no process maps and that are older than ``min_age`` s
    (an aborted job leaves them)."""
    shm = Path("/dev/shm")
    try:
        candidates = [p for p in shm.iterdir() if p.name.startswith("mpich_shm_")]
    except OSError:
        return []
    if not candidates:
        return []
    pids = [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]
    mapped = mpich_files(pids)
    now = time.time()
    unused = []
    for path in candidates:
        with contextlib.suppress(OSError):
            if str(path) not in mapped and now - path.stat().st_mtime > min_age:
                unused.append(str(path))
    return sorted(unused)


def _cleanup() -> int:
    removed = segment.sweep()
    for name in removed:
        print(f"removed /dev/shm/{name}")
    for path in unused_mpich_files():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            print(f"removed {path} (MPICH's, of an ended job: no process maps it)")
    kept = len(segment.leftovers())
    print(f"{PROG}: removed {len(removed)} leftover segment(s) of ended jobs; {kept} of running jobs kept")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Start a parasol_hybrid job: nworker + nserver ranks under mpiexec.",
        usage=f"{PROG} --config CFG [options] python ENTRY.py [args...]\n       {PROG} --cleanup")
    p.add_argument("--config", help="the job's JSON config file")
    p.add_argument("--cleanup", action="store_true",
                   help="remove shared-memory segments of jobs whose creator process is dead, then exit")
    p.add_argument("--dry-run", action="store_true", help="print the mpiexec command instead of running it")
    p.add_argument("--mpiexec", metavar="PATH", help="the mpiexec to use (default: the one next to python)")
    p.add_argument("--grace", type=float, default=5.0, metavar="SECONDS",
                   help="after Ctrl-C/SIGTERM, how long ranks may take to stop before SIGKILL (default 5)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (no progress lines either)")
    p.add_argument("--log-json", metavar="FILE",
                   help="append one JSON object per round (worker 0's progress) to FILE")
    p.add_argument("--resume", metavar="DIR",
                   help="resume from the last complete checkpoint in DIR (sets PARASOL_RESUME for the ranks)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command each rank runs")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``run_parasol`` command; returns its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.cleanup:
        if command or args.config:
            parser.error("--cleanup takes no config and no command")
        return _cleanup()
    if not args.config:
        parser.error("--config is required")
    if not command:
        parser.error("no command given (e.g. python ENTRY.py)")
    if args.grace < 0:
        parser.error(f"--grace must be at least 0, got {args.grace:g}")

    def say(msg: str) -> None:
        if not args.quiet:
            emit(f"{PROG}: {msg}")

    if args.log_json:
        os.environ["PARASOL_LOG_JSON"] = os.path.abspath(args.log_json)
    if args.quiet:
        os.environ["PARASOL_QUIET"] = "1"
    if sys.stdout.isatty():
        os.environ["PARASOL_TTY"] = "1"
    if args.resume:
        if not os.path.isdir(args.resume):
            print(f"{PROG}: error: --resume {args.resume}: no such folder", file=sys.stderr)
            return 2
        os.environ["PARASOL_RESUME"] = os.path.abspath(args.resume)
    try:
        entry = entry_script(command)
        cfg = load_config(args.config, algorithm_options(entry) if entry else None)
        run_argv = build_argv(cfg, command, find_mpiexec(args.mpiexec))
    except ParasolError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(run_argv))
        return 0

    stale = segment.sweep()
    if stale:
        say(f"removed {len(stale)} segment(s) left by dead jobs: {' '.join(stale)}")
    job_id = segment.new_job_id()
    job_dir = tempfile.mkdtemp(prefix=f"parasol-job-{job_id}-")
    env = dict(os.environ, PARASOL_JOB_ID=job_id, PARASOL_CONFIG=str(cfg.path), **lifeline.launcher_env())
    env[jobdir.ENV] = job_dir
    for var in BLAS_THREAD_VARS:  # one BLAS thread per rank: the ranks already fill the cores
        env.setdefault(var, "1")
    say(f"job {job_id}: {shlex.join(run_argv)}")
    job = _Job(run_argv, env, job_id, args.grace, say)
    try:
        rc = job.run()
        why = job.describe_failure() if rc != 0 and job.signum is None else None
        if why is not None:
            emit(f"{PROG}: job {job_id} failed (exit {rc}): {why}")
        return rc
    except JobError as exc:
        emit(f"{PROG}: error: {exc}")
        return 2
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
        removed = segment.sweep(job_id)
        if removed:
            say(f"removed {len(removed)} segment(s) of job {job_id}: {' '.join(removed)}")
