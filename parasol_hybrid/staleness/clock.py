"""Bounded staleness: the rule (a pure function) and the clocks shared by a node's workers.

``staleness`` is ``0`` for BSP, ``s > 0`` for SSP and ``-1`` for ASP. A worker
that has finished ``c`` iterations (its clock is ``c``) may run iteration
``c`` while the slowest worker's clock is at least ``c - s``; so no worker is
ever more than ``s`` clocks ahead of the slowest one.

The clocks live in one shared-memory array (one int64 per worker). Each worker
has a POSIX semaphore; a worker that advances its clock posts every other
worker's semaphore, and a worker that must wait blocks on its own semaphore
(``sem_timedwait``) and re-checks the clocks when woken. No polling loop.

A worker that waits in a collective (``sync``, ``allreduce``...) makes no
updates, so it must not hold the others back: :meth:`Clocks.catch_up` raises
its clock to the highest one known on the node (in cluster mode also the
other nodes' ``frontier``, which the node agent publishes) and wakes the others.
"""

from __future__ import annotations

import time

import numpy as np
import posix_ipc

from ..tables.segment import Segment, segment_name

__all__ = ["may_proceed", "Clocks"]


def may_proceed(clock: int, slowest: int, staleness: int) -> bool:
    """Whether a worker at ``clock`` may run while the slowest worker is at ``slowest``."""
    return staleness < 0 or slowest >= clock - staleness


def _board_size(nworker: int, nranks: int) -> int:
    """Slots of the board: clocks, global view, byte counters, rank states, frontier, peak RSS."""
    return nworker + 2 + 3 * nranks


class Clocks:
    """The workers' clocks of a node and their wake-up semaphores.

    One process (the node's first worker) :meth:`create` s them; every worker
    :meth:`attach` es with the names. ``tick()`` advances this worker's clock and
    waits, blocking, until the staleness bound lets it go on.
    """

    def __init__(self, seg: Segment, sems: list[posix_ipc.Semaphore], names: dict, worker: int, staleness: int):
        self._seg = seg
        n = names["nworker"]
        self.board = seg.array
        self.clocks = seg.array[:n]
        #: the clock up to which every node's updates are visible here (cluster mode; set by the node agent)
        self.global_view = seg.array[n:n + 1]
        #: bytes sent across nodes, one slot per world rank (each process writes its own)
        m = names.get("nranks", 0)
        self.sent_bytes = seg.array[n + 1:n + 1 + m]
        #: per world rank: 0 starting, 1 running, 2 finished normally (each process writes its own)
        self.states = seg.array[n + 1 + m:n + 1 + 2 * m]
        #: the highest clock another node has delivered (cluster mode; set by the node agent)
        self.frontier = seg.array[n + 1 + 2 * m:n + 2 + 2 * m]
        #: peak resident set size in bytes, one slot per world rank (each process's watchdog writes its own)
        self.peak_rss = seg.array[n + 2 + 2 * m:n + 2 + 3 * m]
        self.cluster = False
        self.notify = None  # called with the new clock after a tick (cluster mode: tell the node agent)
        self._sems = sems
        self.names = names
        self.worker = worker
        self.staleness = int(staleness)
        self.waited = 0.0  # seconds this worker spent blocked in tick()
        self.max_lead = 0  # the largest lead over the slowest worker seen after a tick

    @staticmethod
    def create(job_id: str, nworker: int, nranks: int = 0) -> dict:
        """Create the clock board and semaphores; returns the names for :meth:`attach`.

        The board is ``nworker`` clocks, the global view, ``nranks`` byte counters,
        ``nranks`` rank states (0 starting, 1 running, 2 finished normally), the frontier and
        ``nranks`` peak resident set sizes (bytes).
        """
        names = {"clocks": segment_name(job_id, "clk"),
                 "sems": [segment_name(job_id, f"clk{w}") for w in range(nworker)],
                 "nworker": nworker, "nranks": nranks}
        seg = Segment.create(names["clocks"], (_board_size(nworker, nranks),), np.int64)
        seg.array[:] = 0
        seg.close()
        for name in names["sems"]:
            posix_ipc.Semaphore(name, posix_ipc.O_CREX, mode=0o600, initial_value=0).close()
        return names

    @classmethod
    def attach(cls, names: dict, worker: int, staleness: int) -> "Clocks":
        """Map the board; ``worker`` is -1 for a process that does not tick (a server)."""
        seg = Segment.attach(names["clocks"], (_board_size(names["nworker"], names["nranks"]),), np.int64)
        sems = [posix_ipc.Semaphore(n) for n in names["sems"]]
        return cls(seg, sems, names, worker, staleness)

    @staticmethod
    def unlink(names: dict) -> None:
        """Remove the names (the processes that mapped them keep them). Idempotent."""
        for name in [names["clocks"]]:
            try:
                posix_ipc.unlink_shared_memory(name)
            except posix_ipc.ExistentialError:
                pass
        for name in names["sems"]:
            try:
                posix_ipc.unlink_semaphore(name)
            except posix_ipc.ExistentialError:
                pass

    # ------------------------------------------------------------------
    @property
    def clock(self) -> int:
        return int(self.clocks[self.worker])

    def slowest(self) -> int:
        """The clock every update of which is visible here: the slowest worker's, in cluster mode
        the global view the node agent published."""
        if self.cluster:
            return int(self.global_view[0])
        return int(self.clocks.min())

    def local_slowest(self, workers) -> int:
        """The slowest clock among the given (node-local) workers."""
        return int(self.clocks[workers].min())

    def wake_all(self) -> None:
        """Post every worker's semaphore (after the global view moved)."""
        for sem in self._sems:
            sem.release()

    def spread(self) -> int:
        """Fastest minus slowest worker clock known here (how stale the job runs right now)."""
        return int(self.clocks.max() - self.slowest()) if self.cluster else int(self.clocks.max() - self.clocks.min())

    def _drain(self, sem) -> None:
        while True:
            try:
                sem.acquire(0)
            except posix_ipc.BusyError:
                return

    def wait_for(self, target: int, timeout: float | None = None) -> bool:
        """Block until every worker's clock is at least ``target``; False on timeout."""
        return self.wait_until(target, 0, timeout)

    def wait_until(self, clock: int, staleness: int, timeout: float | None = None) -> bool:
        """Block until :func:`may_proceed` lets a worker at ``clock`` go on; False on timeout.

        Sleeps on this worker's semaphore and re-checks when another worker posts it.
        """
        sem = self._sems[self.worker]
        deadline = None if timeout is None else time.monotonic() + timeout
        start = time.perf_counter()
        try:
            while True:
                self._drain(sem)
                if may_proceed(clock, self.slowest(), staleness):
                    return True
                wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if wait <= 0:
                    return False
                try:
                    sem.acquire(wait)
                except posix_ipc.BusyError:
                    pass
        finally:
            self.waited += time.perf_counter() - start

    def tick(self, staleness: int | None = None) -> int:
        """Advance this worker's clock by one, wake the others, wait out the staleness bound."""
        s = self.staleness if staleness is None else staleness
        c = int(self.clocks[self.worker]) + 1
        self._publish(c)
        self.wait_until(c, s)
        self.max_lead = max(self.max_lead, c - int(self.clocks.min()) if not self.cluster else c - self.slowest())
        return c

    def catch_up(self) -> int:
        """Raise this worker's clock to the highest known (of this node's workers, and in cluster mode
        the other nodes' frontier), wake the others and tell the agent; returns the clock.

        Only for a worker that waits in a collective: it makes no updates meanwhile, so it may count as
        having finished those clocks, and the others are never held back by it.
        """
        top = int(self.clocks.max())
        if self.cluster:
            top = max(top, int(self.frontier[0]))
        if top > int(self.clocks[self.worker]):
            self._publish(top)
        return top

    def _publish(self, c: int) -> None:
        """Set this worker's clock to ``c``, wake the node's other workers and tell the agent."""
        self.clocks[self.worker] = c
        for w, sem in enumerate(self._sems):
            if w != self.worker:
                sem.release()
        if self.notify is not None:
            self.notify(c)

    def idle(self, timeout: float) -> None:
        """What a worker does while its collective is not complete: :meth:`catch_up`, then sleep on its
        semaphore for at most ``timeout`` seconds (a tick of another worker wakes it)."""
        self.catch_up()
        try:
            self._sems[self.worker].acquire(max(timeout, 0.0))
        except posix_ipc.BusyError:
            pass

    def close(self) -> None:
        self.clocks = self.board = self.global_view = self.sent_bytes = self.states = self.frontier = None
        self.peak_rss = None
        self._seg.close()
        for s in self._sems:
            try:
                s.close()
            except posix_ipc.ExistentialError:
                pass
