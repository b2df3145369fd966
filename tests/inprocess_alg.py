"""``paralg``'s verbs for one worker thread of an :class:`~inprocess.InProcessJob`, so that a test job's
methods (``tests/jobs/*.py``) run unchanged in one process.

:func:`run_workers` starts one thread per worker and calls ``fn(alg)`` with an :class:`InProcessAlg`:
``table``, ``sparse_table``, ``push``, ``pull``, ``pull_all``, ``clock``, ``sync``, ``allreduce``,
``allgather`` and the facts (``worker_id``, ``nworker``, ``node_id``, ``nnodes``, ``cfg``, ``clocks``)
behave as ``paralg``'s do. Collectives meet at a :class:`threading.Barrier` (which fails after
``timeout`` s rather than hang); a declaration is made once, by the thread that completes the barrier,
through worker ``node``'s control clients.
"""

from __future__ import annotations

import threading
import zlib
from types import SimpleNamespace

from inprocess import InProcessJob, InProcessWorker

__all__ = ["InProcessAlg", "run_workers"]

_OPS = {"sum": sum, "max": max, "min": min}


class _Meeting:
    """Every worker's collective calls, met in order at one barrier."""

    def __init__(self, n: int, timeout: float):
        self.values: list = [None] * n
        self.result = None
        self._fn = None
        self.barrier = threading.Barrier(n, action=self._act, timeout=timeout)

    def _act(self) -> None:
        self.result = self._fn(list(self.values))

    def meet(self, worker: int, value, fn):
        """Give ``value``; when every worker has, ``fn(values)`` runs once; returns its result to all."""
        self.values[worker] = value
        self._fn = fn
        self.barrier.wait()
        result = self.result
        self.barrier.wait()  # nobody starts the next meeting before everyone has read this one's result
        return result


class InProcessAlg:
    """What a test job's ``solve`` reads of ``paralg``, for worker ``worker`` of ``job``."""

    def __init__(self, job: InProcessJob, worker: InProcessWorker, meeting: _Meeting, **options):
        self._job, self._w, self._meeting = job, worker, meeting
        self.cfg = SimpleNamespace(**{**job.cfg.as_dict(), **options})
        self.staleness = job.cfg.staleness
        self.clocks = worker.clocks

    worker_id = property(lambda self: self._w.id)
    nworker = property(lambda self: len(self._job.workers))
    node_id = property(lambda self: self._w.rt.node)
    nnodes = property(lambda self: self._job.layout.nnodes)
    is_master = property(lambda self: self._w.id == 0)
    nserver = property(lambda self: len(self._job.servers))
    _net = property(lambda self: self._w.link)  # the worker's NodeLink (None on one node), as paralg's

    # ------------------------------------------------------------ collectives
    def _meet(self, value, fn):
        return self._meeting.meet(self._w.id, value, fn)

    def allgather(self, value) -> list:
        return self._meet(value, lambda values: values)

    def allreduce(self, value, op: str = "sum"):
        return self._meet(value, _OPS[op])

    def table(self, name: str, shape, dtype: str = "float32", init: str = "zeros", *, value: float = 0.0,
              low: float = 0.0, high: float = 1.0, mean: float = 0.0, std: float = 1.0, seed: int | None = None,
              rule: str = "add", hyper: dict | None = None, exact: bool | None = None):
        a, b = {"constant": (value, 0.0), "uniform": (low, high), "normal": (mean, std)}.get(init, (0.0, 0.0))
        if seed is None:
            seed = (int(self.cfg.seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**62)
        tables = self._meet(None, lambda _: self._job.table(name, shape, dtype, init, rule=rule, exact=exact,
                                                            a=a, b=b, seed=seed, hyper=hyper))
        return tables[self._w.id]

    def sparse_table(self, name: str, capacity: int, dim: int = 1, dtype: str = "int64"):
        return self._meet(None, lambda _: self._job.sparse_table(name, capacity, dim, dtype))[self._w.id]

    def sync(self) -> None:
        """paralg.sync's clocks: everyone to the highest clock, then a clock with staleness 0."""
        top = self._meet(self.clocks.clock, max)
        if self.clocks.clock < top:
            self._w.advance(top)
        self._w.tick(staleness=0)
        self._meet(None, lambda _: None)

    # ------------------------------------------------------------ tables and clocks
    def clock(self) -> int:
        return self._w.tick()

    @staticmethod
    def push(table, keys, deltas, rule: str | None = None, **hyper) -> None:
        table.push(keys, deltas, rule, **hyper)

    @staticmethod
    def pull(table, keys, out=None):
        return table.pull(keys, out=out)

    @staticmethod
    def pull_all(table):
        return table.pull_all()


def run_workers(job: InProcessJob, fn, timeout: float = 60.0, **options) -> list:
    """``fn(alg)`` on every worker of ``job`` at once (one thread each); the results by worker id."""
    meeting = _Meeting(len(job.workers), timeout)
    algs = {w.id: InProcessAlg(job, w, meeting, **options) for w in job.workers}

    def run(w: InProcessWorker):
        try:
            return fn(algs[w.id])
        except BaseException:
            meeting.barrier.abort()  # the others stop waiting for this one
            raise
    return job.each_worker(run, timeout)
