"""A watchdog thread: a rank whose node-mate died, or whose launcher is gone, ends the whole job quickly.

Every rank of a node knows the pids of the others (exchanged at start-up) and
their states on the node's board (running, or finished normally). A peer
whose process is gone while it was running means a crash (SIGKILL, the OOM
killer, a segfault): the watchdog records which rank, role and host it was
in the job folder (so the launcher names it), prints it, and aborts the MPI
job, so nothing waits forever for it. The same thread watches the rank's
:class:`~parasol_hybrid.lifeline.Lifeline` (the launcher and the parent
process): when one is gone, the rank sweeps the job's segments and exits.
Checks are a ``/proc`` read per peer every ``interval`` seconds; the thread
sleeps in between. :meth:`Watchdog.stop` joins it, so nothing it reads can be
unmapped under it.

On the same beat it writes this rank's peak resident set size (:func:`peak_rss_bytes`) into its
slot of the node's board (``Clocks.peak_rss``), so a node's workers can read every rank's of
the node; the workers' collective checks carry the job-wide maximum (``metrics.json``'s
``peak_rss_bytes``).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading

from .. import jobdir
from ..lifeline import Lifeline, end_orphaned

__all__ = ["Watchdog", "RUNNING", "FINISHED", "peak_rss_bytes"]

RUNNING = 1
FINISHED = 2


def peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes (``ru_maxrss``, which Linux gives in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    except OSError:
        return False


def _how_it_died(pid: int) -> str:
    """``died (killed by SIGKILL)`` / ``died (exit code 3)`` while the zombie is there to read, else ``died``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] == "Z" and len(fields) >= 50:
            status = int(fields[49])  # field 52, exit_code as waitpid reports it
            if status & 0x7F:
                try:
                    return f"died (killed by {signal.Signals(status & 0x7F).name})"
                except ValueError:
                    return f"died (killed by signal {status & 0x7F})"
            return f"died (exit code {status >> 8})"
    except (OSError, IndexError, ValueError):
        pass
    return "died"


class Watchdog:
    """Watches the processes of the other ranks of this node and this rank's lifeline; see the module
    docstring. ``on_death(rank, who)`` replaces the abort (tests)."""

    def __init__(self, rt, peers: dict[int, int], interval: float = 0.25, on_death=None,
                 lifeline: Lifeline | None = None):
        self.rt = rt
        self.peers = {r: p for r, p in peers.items() if r != rt.rank}
        self.interval = interval
        self.lifeline = Lifeline() if lifeline is None else lifeline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parasol-watchdog", daemon=True)
        self.on_death = on_death or self._abort
        self.dead: int | None = None

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread and wait (at most ``timeout`` s) until it has ended; returns whether it did."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _describe(self, rank: int) -> str:
        lay = self.rt.layout
        role = "server" if lay.is_server[rank] else "worker"
        return f"rank {rank} ({role} {lay.index_of[rank]}) on host {self.rt.host} (pid {self.peers[rank]})"

    def _run(self) -> None:
        states = self.rt.clocks.states  # a view: it keeps the board mapped while this thread runs
        rss = self.rt.clocks.peak_rss[self.rt.rank:self.rt.rank + 1]
        rss[0] = peak_rss_bytes()
        while not self._stop.wait(self.interval):
            rss[0] = peak_rss_bytes()
            lost = self.lifeline.check()
            if lost is not None and not self._stop.is_set():
                end_orphaned(self.lifeline, (self.rt.rank, self.rt.role, self.rt.index), self.rt.describe(),
                             self.rt.job_id, lost)
            for rank, pid in self.peers.items():
                if states[rank] == FINISHED:
                    continue
                if _gone(pid) and states[rank] != FINISHED and not self._stop.is_set():
                    self.dead = rank
                    self.on_death(rank, self._describe(rank))
                    return

    def _abort(self, rank: int, who: str) -> None:
        lay = self.rt.layout
        jobdir.record_failure(rank, "server" if lay.is_server[rank] else "worker", lay.index_of[rank],
                              _how_it_died(self.peers[rank]), pid=self.peers[rank], host=self.rt.host,
                              noticed_by=self.rt.rank)
        print(f"parasol: {who} died; ending the job (noticed by rank {self.rt.rank})", file=sys.stderr, flush=True)
        try:
            from mpi4py import MPI
            MPI.COMM_WORLD.Abort(1)
        finally:
            os._exit(1)
