"""The job's ranks as the launcher sees them: who registered, which one ended first, why the job failed.

Each rank registers in the job folder (``rank-<n>.json``, see
:mod:`parasol_hybrid.jobdir`); the launcher watches each registered rank's
process through a pidfd, so the rank that ends first is seen as it ends,
before mpiexec takes the others down. When the job fails, the summary names
the rank whose failure started the end (the first one recorded in the job
folder) and repeats its message.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time

from .. import jobdir

__all__ = ["RankWatch", "describe_failure"]


class RankWatch:
    """The ranks registered in job folder ``folder``, each watched through a pidfd registered in ``poll``."""

    def __init__(self, folder: str | None, poll: select.poll):
        self.folder = folder
        self._poll = poll
        self.ranks: dict[int, dict] = {}   # rank -> what it registered
        self.first_death: tuple[list[dict], float] | None = None   # (registrations, when seen)
        self._pidfds: dict[int, dict] = {}

    @property
    def watching(self) -> bool:
        """Whether a rank's pidfd is in the poll."""
        return bool(self._pidfds)

    def owns(self, fd: int) -> bool:
        """Whether ``fd`` (ready in the poll) is one of the ranks' pidfds."""
        return fd in self._pidfds

    def read_registrations(self) -> None:
        """Watch the ranks that registered since the last call (none once one has ended)."""
        if not self.folder or self.first_death is not None:
            return
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if entry.name.startswith("rank-") and entry.name.endswith(".json"):
                    rank = int(entry.name[5:-5])
                    if rank not in self.ranks:
                        self._register(rank, entry.path)

    def _register(self, rank: int, path: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            with open(path) as fh:
                info = json.load(fh)
            self.ranks[rank] = info
            with contextlib.suppress(OSError):
                fd = os.pidfd_open(info["pid"])
                self._pidfds[fd] = info
                self._poll.register(fd, select.POLLIN)

    def ended(self, fds: list[int]) -> None:
        """The pidfds ``fds`` became ready: their ranks are the first deaths (if none was seen before).

        Several at once (a launcher slow to look, and mpiexec quick to kill the rest) cannot be
        ordered: all of them are named.
        """
        dead = sorted((self._pidfds[fd] for fd in fds), key=lambda i: i["rank"])
        if dead and self.first_death is None:
            self.first_death = (dead, time.monotonic())
            self.close()

    def close(self) -> None:
        """Stop watching: unregister and close every pidfd."""
        for fd in list(self._pidfds):
            with contextlib.suppress(OSError):
                self._poll.unregister(fd)
                os.close(fd)
        self._pidfds.clear()

    def describe_death(self) -> str | None:
        """Which rank ended first, if one did while the job ran."""
        if self.first_death is None:
            return None
        dead, _ = self.first_death
        names = ", ".join(f"rank {info['rank']} ({info['role']} {info['index']}) on host {info['host']} "
                          f"(pid {info['pid']})" for info in dead)
        return f"{names} ended first" if len(dead) == 1 else f"{names} ended at the same time"


def describe_failure(watch: RankWatch, mpiexec: subprocess.Popen | None) -> str | None:
    """Why the job failed: the first failure a rank recorded in the job folder (the rank whose
    failure started the end, and its message), else mpiexec's death by a signal, else the rank
    that ended first, else (if ranks of a parasol job had registered) that none said why."""
    record = jobdir.read_failure(watch.folder)
    if record is not None:
        return jobdir.describe_failure(record)
    rc = mpiexec.returncode if mpiexec is not None else None
    if rc is not None and rc < 0:  # mpiexec itself was killed; its proxies then kill the ranks
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"mpiexec (pid {mpiexec.pid}) was killed by {name}"
    death = watch.describe_death()
    if death is not None:
        return death
    if watch.ranks:
        return "no rank recorded why (see the ranks' messages above)"
    return None
