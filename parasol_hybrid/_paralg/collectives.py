"""The collectives of :class:`~parasol_hybrid.paralg`: the check that starts each of them, and ``allreduce``,
``allgather``, ``cross_node_bytes``, ``vocabulary``.

Every collective starts with :meth:`CollectivesMixin._collective`, a cheap check that every worker is at the
same call (:func:`~parasol_hybrid.cluster.collectives.agree_max`), which also carries the job-wide maxima of
peak RSS and load time that ``write_metrics`` reports.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from ..cluster.collectives import agree_max, allgather_obj, allreduce
from ..cluster.watchdog import peak_rss_bytes
from ..errors import CollectiveError
from .input import input_time

if TYPE_CHECKING:
    from ..cluster.runtime import Runtime
    from ..staleness.clock import Clocks

__all__ = ["CollectivesMixin"]


class CollectivesMixin:
    """Collectives over the workers, each checked first to be the same call on every worker."""

    _rt: Runtime
    _clocks: Clocks
    _seq: int               # collectives started by this worker (the same on every worker)
    _load_seconds: float
    _job_peak_rss: int      # the job-wide maxima the last collective check agreed on: peak RSS (bytes),
    _job_load_us: int       # load time (µs)

    def _end_solve(self) -> None:
        """After ``solve()`` returned: the last collective, so that a worker left in a collective
        that this one never called gets a CollectiveError instead of waiting for good."""
        self._collective("end of solve()")

    def _collective(self, call: str) -> int:
        """Start the collective ``call`` (e.g. ``"table('P')"``): check that every worker is at the same
        call, keeping this worker's clock caught up while it waits; raise CollectiveError if not.

        Returns the highest :attr:`round` of any worker. The same message carries the job-wide maxima
        of peak RSS (this node's board: every rank of the node, servers too) and of load time, which
        :meth:`write_metrics` reports."""
        self._seq += 1
        code = zlib.crc32(call.encode())
        rss = max(int(self._clocks.peak_rss.max()), peak_rss_bytes())
        ok, top = agree_max(self._rt.role_comm, self._seq, code,
                            [rss, int(self._load_seconds * 1e6), self._round], idle=self._clocks.idle)
        self._job_peak_rss = max(self._job_peak_rss, int(top[0]))
        self._job_load_us = max(self._job_load_us, int(top[1]))
        if ok:
            return int(top[2])
        calls = allgather_obj(self._rt.role_comm, (self._seq, call))
        raise CollectiveError(_mismatch(calls))

    def allreduce(self, value, op: str = "sum"):
        """Sum (or ``max``, ``min``, ``prod``) a number or array over the workers."""
        if isinstance(value, np.ndarray):
            kind = f"{value.dtype}{list(value.shape)}"
        else:
            kind = "int" if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else "float"
        self._collective(f"allreduce({kind}, op={op!r})")
        return allreduce(self._rt.role_comm, value, op)

    def allgather(self, obj) -> list:
        """Every worker's ``obj``, by worker id. For small results, not parameter traffic."""
        self._collective("allgather()")
        return allgather_obj(self._rt.role_comm, obj)

    def cross_node_bytes(self) -> int:
        """Bytes sent over ZeroMQ between nodes so far, by every process of the job (collective)."""
        self._collective("cross_node_bytes()")
        mine = int(self._clocks.sent_bytes.sum()) if self._rt.node_role_comm.rank == 0 else 0
        return int(allreduce(self._rt.role_comm, mine))

    @input_time
    def vocabulary(self, ids) -> np.ndarray:
        """The sorted union of every worker's ``ids`` (strings): a consistent id → row map."""
        self._collective("vocabulary()")
        from ..data.vocab import vocabulary_of_strings

        local = set(np.asarray(ids, dtype=object).ravel().tolist())
        strings = int(all(type(x) is str and _utf8(x) for x in local))
        if int(allreduce(self._rt.role_comm, strings, op="min")):  # each distinct id crosses once per worker
            return vocabulary_of_strings(self._rt.role_comm, local)
        merged = set()
        for part in allgather_obj(self._rt.role_comm, sorted(local)):
            merged.update(part)
        return np.array(sorted(merged), dtype=object)


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as utf-8 (a lone surrogate does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mismatch(calls: list[tuple[int, str]]) -> str:
    """The message of a CollectiveError from every worker's (collective number, call), by worker id."""
    same_seq = len({seq for seq, _ in calls}) == 1
    groups: dict[tuple[int, str], list[int]] = {}
    for w, key in enumerate(calls):
        groups.setdefault(tuple(key), []).append(w)
    parts = []
    for (seq, call), workers in groups.items():
        who = (f"worker {workers[0]}" if len(workers) == 1
               else "workers " + ", ".join(str(w) for w in workers))
        what = "had already finished solve()" if call == "end of solve()" else f"called {call}"
        parts.append(f"{who} {what}" + ("" if same_seq else f" (its collective call {seq})"))
    where = f"at collective call {calls[0][0]}: " if same_seq else ""
    return (f"the workers are not at the same collective {where}{', '.join(parts)} "
            f"(every worker makes the same collective calls in the same order)")
