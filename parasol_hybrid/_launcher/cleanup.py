"""Removing what jobs leave behind: MPICH's files, parasol segments, the job folder.

``run_parasol --cleanup`` removes the segments of jobs whose creator process
is dead, MPICH's ``/dev/shm/mpich_shm_*`` files that no process maps and the
topology files of mpiexec runs that ended (:func:`unused_hydra_files`); a
launcher sweeps dead jobs' segments before it starts, and its own job's
segments and folder (and ended runs' topology files) when the job ends,
however it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Callable

from ..lifeline import mpich_files, process_name, start_ticks
from ..tables import segment
from .output import PROG

__all__ = ["unused_mpich_files", "unused_hydra_files", "remove_files", "cleanup_command", "sweep_dead_jobs", "sweep_job"]


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


#: where MPICH's mpiexec (hydra) writes the machine's topology for its proxies
HYDRA_TOPOLOGY_PREFIX = "/tmp/hydra_hwloc_xmlfile_"


def _mpiexec_start_times() -> list[float]:
    """When each running mpiexec (hydra) process started, in seconds since the epoch."""
    try:
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return [0.0]  # unknown: treat every file as possibly in use
    ticks = os.sysconf("SC_CLK_TCK")
    starts = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and process_name(int(entry.name)).startswith("mpiexec"):
            start = start_ticks(int(entry.name))
            if start is not None:
                starts.append(boot + int(start) / ticks)
    return starts


def unused_hydra_files(min_age: float = 60.0) -> list[str]:
    """Topology files (``/tmp/hydra_hwloc_xmlfile_*``) that no running mpiexec can own.

    mpiexec writes one when it starts and removes it when it ends, except when
    a rank called ``MPI_Abort`` (MPICH 4.x leaves it then, also without
    parasol). A file older than ``min_age`` s and older than every running
    mpiexec was written by one that has ended.
    """
    folder, prefix = os.path.split(HYDRA_TOPOLOGY_PREFIX)
    try:
        candidates = [e.path for e in os.scandir(folder) if e.name.startswith(prefix)]
    except OSError:
        return []
    if not candidates:
        return []
    oldest_run = min(_mpiexec_start_times(), default=float("inf"))
    limit = min(time.time() - min_age, oldest_run - 1.0)
    unused = []
    for path in candidates:
        with contextlib.suppress(OSError):
            if os.stat(path).st_mtime < limit:
                unused.append(path)
    return sorted(unused)


def remove_files(paths: Iterable[str]) -> list[str]:
    """Unlink each of ``paths`` (in sorted order); returns those that were there and are now gone."""
    removed = []
    for path in sorted(paths):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    return removed


def cleanup_command() -> int:
    """``run_parasol --cleanup``: remove ended jobs' segments and unused MPICH files, say what; returns 0."""
    removed = segment.sweep()
    for name in removed:
        print(f"removed /dev/shm/{name}")
    for path in remove_files(unused_mpich_files()):
        print(f"removed {path} (MPICH's, of an ended job: no process maps it)")
    for path in remove_files(unused_hydra_files()):
        print(f"removed {path} (mpiexec's topology file, of a run that ended)")
    kept = len(segment.leftovers())
    print(f"{PROG}: removed {len(removed)} leftover segment(s) of ended jobs; {kept} of running jobs kept")
    return 0


def sweep_dead_jobs(say: Callable[[str], None]) -> None:
    """Before a job starts: remove the segments of jobs whose creator is dead."""
    stale = segment.sweep()
    if stale:
        say(f"removed {len(stale)} segment(s) left by dead jobs: {' '.join(stale)}")


def sweep_job(job_id: str, job_dir: str, say: Callable[[str], None]) -> None:
    """After job ``job_id`` ended, however it ended: remove its folder and its segments."""
    shutil.rmtree(job_dir, ignore_errors=True)
    removed = segment.sweep(job_id)
    if removed:
        say(f"removed {len(removed)} segment(s) of job {job_id}: {' '.join(removed)}")
    remove_files(unused_hydra_files())  # left by aborted runs, ours of a minute ago or others' (in silence)
