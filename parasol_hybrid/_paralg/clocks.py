"""Clocks in :class:`~parasol_hybrid.paralg`: ``clock`` (the end of an iteration, within the staleness
bound), ``sync`` (every worker at the same clock), ``round`` and ``clocks``.

``clock`` runs the clock hooks first (each gets the wall time of the iteration that ends: the config key
``straggler`` installs one, :mod:`parasol_hybrid._straggler`), then ticks, and every ``checkpoint_every``
rounds has the workers meet and save a checkpoint. An algorithm whose class sets ``bulk_synchronous``
follows every ``clock`` with a ``sync`` when the config's ``staleness`` is not 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..cluster.collectives import allreduce, barrier

if TYPE_CHECKING:
    from ..cluster.runtime import Runtime
    from ..config import Config
    from ..staleness.clock import Clocks

__all__ = ["ClockMixin"]


class ClockMixin:
    """``clock`` (any worker), ``sync`` (collective), and the round count."""

    _rt: Runtime
    cfg: Config
    bulk_synchronous: bool
    _clocks: Clocks
    _round: int                                    # clock() calls done, counting those before a resume
    _last_clock: float                             # perf_counter() at the end of the last clock() or sync()
    _progress_start: tuple[float, int] | None      # (start of the first round, its round), for progress()
    _clock_hooks: list[Callable[[float], None]]    # called first in clock(), with the iteration's seconds

    def clock(self) -> int:
        """End an iteration: advance this worker's clock and wait out the staleness bound.

        Every ``checkpoint_every`` rounds, the workers also wait for each other
        and save a checkpoint (numbered by the highest round of any worker, as
        :meth:`checkpoint` is).
        """
        if self._progress_start is None:  # rounds are timed from the start of the first one
            self._progress_start = (self._last_clock, self._round)
        if self._clock_hooks:
            elapsed = time.perf_counter() - self._last_clock
            for hook in self._clock_hooks:
                hook(elapsed)
        self._round += 1
        every = self.cfg.checkpoint_every
        if every and self._round % every == 0:
            c = self._clocks.tick(staleness=0)
            self._round = self._collective(f"clock() saving a checkpoint (checkpoint_every: {every})")
            self._save_checkpoint()
        else:
            c = self._clocks.tick()
        self._last_clock = time.perf_counter()
        if self.bulk_synchronous and self.staleness != 0:  # the algorithm's rounds are BSP whatever the config says
            self.sync()
        return c

    @property
    def round(self) -> int:
        """How many rounds (``clock()`` calls) are done, counting those before a resume."""
        return self._round

    @property
    def clocks(self) -> Clocks:
        """The job's worker clocks (``.clock``, ``.slowest()``, ``.spread()``, ``.waited``, ``.max_lead``)."""
        return self._clocks

    def sync(self) -> None:
        """Barrier over all workers (sleeps while it waits).

        Workers may have made different numbers of ``clock()`` calls (ASP, or
        loops that stop on time): ``sync`` first brings every clock to the
        highest one. In cluster mode it is then also a clock with staleness 0:
        every node's updates are sent and every cache is refreshed before it returns.
        """
        self._collective("sync()")
        self._last_clock = time.perf_counter()
        self._align_clocks()
        barrier(self._rt.role_comm)

    def _align_clocks(self) -> None:
        """Inside a collective, after its check: every worker's clock to the highest, and in cluster mode
        one more clock with staleness 0, so every node's updates reach their owners and every cache is
        refreshed.

        The clock it ends at is the same on every worker (the agreed highest, plus one). A plain
        ``tick()`` here would not be: a worker still waiting in the check may have caught up
        (:meth:`Clocks.catch_up`) to a worker that already ticked, and its own tick would then take it
        one clock past the others, which would wait for it for good.
        """
        rt = self._rt
        top = int(allreduce(rt.role_comm, self._clocks.clock, op="max"))
        if self._clocks.clock < top:
            self._clocks.clocks[self.worker_id] = top
            self._clocks.wake_all()
        if rt.cluster:
            self._clocks.tick(staleness=0)
