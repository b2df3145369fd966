"""The job's processes, found by environment variable in ``/proc``, signalled, and tied to the launcher.

Hydra (MPICH's mpiexec) puts every rank in a session of its own, so the job's
processes are found by their ``PARASOL_JOB_ID`` in ``/proc/<pid>/environ``,
not by process group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import Callable

__all__ = ["pids_with_env", "job_pids", "kill", "dies_with_us"]

_PR_SET_PDEATHSIG = 1


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


def kill(pids: list[int], sig: int) -> None:
    """Send ``sig`` to each of ``pids``; one that is gone (or not ours) is skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def dies_with_us() -> Callable[[], None] | None:
    """A ``preexec_fn``: the child (mpiexec) gets SIGTERM when this launcher dies, however it dies.

    mpiexec passes SIGTERM on to the ranks; they also watch the launcher themselves.
    None where ``prctl`` is not available.
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
