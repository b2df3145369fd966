"""A rank's lifeline: the job ends when the launcher or the rank's parent (hydra proxy, srun step) is gone.

The launcher passes its pid (``PARASOL_LAUNCHER_PID``) and what proves that a
pid is still the same process (``PARASOL_LAUNCHER_ID``: the kernel's boot id,
the pid namespace and the process's start time). A rank that runs on the
launcher's host, in its pid namespace, watches that process; a rank on
another host does not (the pid means nothing there). Every rank started by a
process manager also watches its parent: ``getppid()`` changing means the
parent died and the rank was re-parented.

When either is gone nobody will end the rank (a killed launcher cannot sweep
nor kill): :func:`end_orphaned` removes the job's leftover segments on this
host, says so in one line and exits at once, without ``MPI_Abort`` (which can
hang once mpiexec is gone). Plain stdlib, ``jobdir`` and ``tables.segment``: the launcher
imports it too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading

from . import jobdir
from .config import ENV_LAUNCHER_ID, ENV_LAUNCHER_PID, environment_value
from .tables import segment

__all__ = ["ENV_PID", "ENV_ID", "start_ticks", "process_name", "process_identity", "launcher_env", "Lifeline",
           "end_orphaned", "mpich_files"]

ENV_PID = ENV_LAUNCHER_PID
ENV_ID = ENV_LAUNCHER_ID
#: set in a rank's environment by the process managers we know (hydra, Slurm, Open MPI, PMIx)
_MANAGED = ("PMI_RANK", "PMI_FD", "PMI_PORT", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")

_ending = threading.Lock()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _host_identity() -> tuple[str | None, str | None]:
    """(boot id, pid namespace) of this process: two processes with the same pair see the same pids."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = None
    return boot, ns


def start_ticks(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()
    except IndexError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of stat; fields[0] is field 3


def process_identity(pid: int) -> str | None:
    """``boot_id/pid namespace/start time`` of ``pid`` as seen from this process, or None if gone."""
    boot, ns = _host_identity()
    start = start_ticks(pid)
    if boot is None or ns is None or start is None:
        return None
    return f"{boot}/{ns}/{start}"


def launcher_env() -> dict[str, str]:
    """What the launcher puts into the ranks' environment so that they can watch it."""
    env = {ENV_PID: str(os.getpid())}
    ident = process_identity(os.getpid())
    if ident is not None:
        env[ENV_ID] = ident
    return env


def process_name(pid: int) -> str:
    """The command name of ``pid`` (``/proc/<pid>/comm``), or ``"?"``."""
    return _read(f"/proc/{pid}/comm") or "?"


class Lifeline:
    """What this rank watches: the launcher (if on this host) and its parent (if a process manager
    started it). :meth:`check` says which one is gone, or None."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.launcher_pid: int | None = None
        self._launcher_start: str | None = None
        pid, ident = environment_value(ENV_PID, env), environment_value(ENV_ID, env)
        if pid and pid.isdigit() and ident:
            boot, ns, start = (ident.split("/", 2) + [None, None])[:3]
            if (boot, ns) == _host_identity():  # the same host and pid namespace: the pid is meaningful
                self.launcher_pid, self._launcher_start = int(pid), start
        self.parent_pid: int | None = None
        self.parent_name = "?"
        if any(k in env for k in _MANAGED):
            self.parent_pid = os.getppid()
            self.parent_name = process_name(self.parent_pid)

    @property
    def watching(self) -> bool:
        return self.launcher_pid is not None or self.parent_pid is not None

    def launcher_gone(self) -> bool:
        return self.launcher_pid is not None and start_ticks(self.launcher_pid) != self._launcher_start

    def parent_gone(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def check(self) -> str | None:
        """None while the launcher and the parent are there; else which one is gone (for a message)."""
        if self.launcher_gone():
            return f"the launcher (pid {self.launcher_pid}) is gone"
        if self.parent_gone():
            return f"its parent process {self.parent_name} (pid {self.parent_pid}) is gone"
        return None


def mpich_files(pids) -> set[str]:
    """The /dev/shm/mpich_shm_* files (MPICH's own, left behind when a rank dies) that ``pids`` map."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as f:
            for line in f:
                at = line.find("/dev/shm/mpich_shm_")
                if at >= 0 and not line.rstrip().endswith("(deleted)"):
                    found.add(line[at:].rstrip())
    return found


def end_orphaned(line: Lifeline, rank: tuple[int, str, int], who: str, job_id: str | None, reason: str) -> None:
    """Remove the job's leftovers on this host, print one line, and exit with status 1 (never returns).

    Every rank of the job is ending, so every segment of ``job_id`` may go;
    so may the MPICH files this process maps. If the launcher is gone, so
    may its job folder; if it is there (only the parent is gone), this rank
    records why it ended there, for the launcher's summary. ``rank`` is
    (rank, role, index). Called from the watchdog thread or the main thread;
    the first caller does it, a second one just waits.
    """
    _ending.acquire()
    try:
        if job_id:
            segment.sweep(job_id)
        for path in mpich_files([os.getpid()]):
            with contextlib.suppress(OSError):
                os.unlink(path)
        folder = jobdir.folder()
        if folder is not None and line.launcher_gone():
            shutil.rmtree(folder, ignore_errors=True)
        elif folder is not None:
            jobdir.record_failure(*rank, f"ended: {reason}")
        with contextlib.suppress(Exception):
            print(f"parasol: {who}: {reason}; ending the job", file=sys.stderr, flush=True)
    finally:
        os._exit(1)
