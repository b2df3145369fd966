"""A watchdog thread: a rank whose node-mate died ends the whole job within a second.

Every rank of a node knows the pids of the others (exchanged at start-up) and
their states on the node's board (running, or finished normally). A peer
whose process is gone while it was running means a crash (SIGKILL, the OOM
killer, a segfault): the watchdog prints which rank, role and host it was,
and aborts the MPI job, so nothing waits forever for it. Checks are a
``kill(pid, 0)`` per peer every ``interval`` seconds; the thread sleeps
in between.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["Watchdog", "RUNNING", "FINISHED"]

RUNNING = 1
FINISHED = 2


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    except OSError:
        return False


class Watchdog:
    """Watches the processes of the other ranks of this node; see the module docstring."""

    def __init__(self, rt, peers: dict[int, int], interval: float = 0.25, on_death=None):
        self.rt = rt
        self.peers = {r: p for r, p in peers.items() if r != rt.rank}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parasol-watchdog", daemon=True)
        self.on_death = on_death or self._abort
        self.dead: int | None = None

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _describe(self, rank: int) -> str:
        lay = self.rt.layout
        role = "server" if lay.is_server[rank] else "worker"
        return f"rank {rank} ({role} {lay.index_of[rank]}) on host {self.rt.host} (pid {self.peers[rank]})"

    def _run(self) -> None:
        states = self.rt.clocks.states
        while not self._stop.wait(self.interval):
            for rank, pid in self.peers.items():
                if states is None or states[rank] == FINISHED:
                    continue
                if _gone(pid) and states[rank] != FINISHED:
                    self.dead = rank
                    self.on_death(rank, self._describe(rank))
                    return

    def _abort(self, rank: int, who: str) -> None:
        print(f"parasol: {who} died; ending the job (noticed by rank {self.rt.rank})", file=sys.stderr, flush=True)
        try:
            from mpi4py import MPI
            MPI.COMM_WORLD.Abort(1)
        finally:
            os._exit(1)
