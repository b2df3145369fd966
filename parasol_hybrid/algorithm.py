"""The algorithm base class: declare tables, pull before learning, push after, clock once per iteration.

Subclass :class:`paralg`, implement :meth:`paralg.solve`, and start it with
:func:`parasol_hybrid.run`::

    from parasol_hybrid import paralg, run, Option

    class Count(paralg):
        options = {"bins": Option(int, 10, "number of bins")}

        def solve(self):
            hist = self.table("hist", shape=(self.cfg.bins, 1), dtype="int64")
            for _ in range(self.cfg.rounds):
                keys = np.random.randint(0, self.cfg.bins, 1000)
                self.push(hist, keys, np.ones(1000, dtype=np.int64))
                self.clock()
            if self.is_master:
                print(self.pull_all(hist).ravel())

    if __name__ == "__main__":
        run(Count)

Every method here is called by every worker (collectives: ``table``, ``sync``,
``allreduce``, ``allgather``, ``vocabulary``) or by any worker on its own
(``pull``, ``push``, ``pull_all``, ``clock``, ``load``).

Every collective starts with a cheap check that every worker is at the same
call (:func:`~parasol_hybrid.cluster.collectives.agree`); a worker whose
``solve()`` returned takes part as "end of solve". On a mismatch every worker
raises :class:`~parasol_hybrid.errors.CollectiveError` naming each worker's call.
While a worker waits there, it keeps its clock caught up with the others
(:meth:`~parasol_hybrid.staleness.clock.Clocks.catch_up`), so a collective never
holds back the workers that are still clocking.
"""

from __future__ import annotations

import time
from pathlib import Path

from ._paralg.checkpoints import CheckpointMixin
from ._paralg.clocks import ClockMixin
from ._paralg.collectives import CollectivesMixin
from ._paralg.identity import IdentityMixin
from ._paralg.input import InputMixin
from ._paralg.output import OutputMixin, open_progress_log
from ._paralg.tables import TablesMixin
from ._straggler import clock_hook
from .cluster.collectives import barrier
from .cluster.control import ControlClient
from .cluster.link import NodeLink
from .config import Config, Option
from .staleness.clock import Clocks
from .tables.sparse import SparseTable
from .tables.spec import TableSpec
from .tables.table import Table

__all__ = ["paralg"]


class paralg(IdentityMixin, TablesMixin, ClockMixin, CheckpointMixin, CollectivesMixin, InputMixin,  # noqa: N801
             OutputMixin):  # the original parasol's name, kept on purpose; the parts are in parasol_hybrid._paralg
    """Base class of a parameter-server algorithm. Override :meth:`solve`.

    ``options`` declares the algorithm's own config keys (beside the common
    ones: ``nworker``, ``nserver``, ``input``, ``test_input``, ``output``,
    ``rounds``, ``staleness``, ``seed``...); the launcher validates them before
    any rank starts.
    """

    options: dict[str, Option] = {}

    bulk_synchronous: bool = False
    """Set it True in a subclass whose rounds must be bulk-synchronous. With a config ``staleness`` other
    than 0, worker 0 then logs once at the start ``note: <class name in lower case> runs bulk-synchronously;
    staleness <s> is not used``, and every :meth:`clock` is followed by a :meth:`sync` (as if the algorithm
    called ``self.clock(); self.sync()``). :attr:`staleness` still reads the config's value."""

    def __init__(self, runtime):
        self._rt = runtime
        self.cfg: Config = runtime.cfg
        # tables (_paralg.tables)
        self._tables: dict[str, Table | SparseTable] = {}
        self._specs: list[TableSpec] = []
        self._clients: dict[int, ControlClient] = {}
        self._net: NodeLink | None = None
        # clocks and checkpoints (_paralg.clocks, _paralg.checkpoints)
        self._clocks: Clocks | None = None
        self._resume: Path | None = None
        self._manifest: dict | None = None
        self._round = 0
        #: the first round to run: 0, or the round of the checkpoint the job resumes from
        self.start_round = 0
        self._last_clock = time.perf_counter()
        hook = clock_hook(self.cfg, runtime.index)  # the config key 'straggler' (_straggler)
        self._clock_hooks = [hook] if hook is not None else []
        # collectives and input (_paralg.collectives, _paralg.input)
        self._seq = 0  # collectives started by this worker (the same on every worker)
        self._load_seconds = 0.0  # this worker's wall time in load() and vocabulary()
        self._in_input = False
        #: the job-wide maxima the last collective check agreed on: peak RSS (bytes), load time (µs)
        self._job_peak_rss = self._job_load_us = 0
        # output and progress (_paralg.output)
        self._t0 = time.perf_counter()
        self._progress_start: tuple[float, int] | None = None
        self._log_json = open_progress_log(runtime)

    # ------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        rt = self._rt
        self._clocks = rt.clocks
        self._resolve_resume()
        if rt.node_role_comm.rank == 0:
            self._clients = {rt.layout.index_of[r]: ControlClient(rt.ctx, rt.endpoints[rt.layout.index_of[r]], r, rt.keys)
                             for r in rt.layout.servers_on(rt.node)}
        if rt.cluster:
            self._net = NodeLink(rt)
            self._clocks.notify = self._net.worker_clock
        barrier(rt.node_role_comm)
        if self.bulk_synchronous and self.staleness != 0:
            name = type(self).__name__.lower()
            self.log(f"note: {name} runs bulk-synchronously; staleness {self.staleness} is not used")

    def _stop(self) -> None:
        if self._log_json is not None:
            self._log_json.close()
            self._log_json = None
        for t in self._tables.values():
            t.close()
        self._tables.clear()
        for c in self._clients.values():
            c.close()
        self._clients = {}
        if self._net is not None:
            self._net.close()
            self._net = None

    def solve(self) -> None:
        """The algorithm. Runs on every worker."""
        raise NotImplementedError(f"{type(self).__name__} must implement solve()")
