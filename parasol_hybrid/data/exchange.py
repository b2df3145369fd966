"""Send arrays to their owner workers once: through shared memory on a node, one ``MPI_Alltoallv`` between nodes.

:class:`Exchange` is built once per load (a collective of the workers' communicator). Each call of
:meth:`Exchange.send` groups a worker's values by destination (a stable counting sort, so each owner gets
them in the sender's order) and delivers them, ordered by sending worker:

- to the workers of the sender's node, through a POSIX shared-memory segment of the job: the sender groups
  straight into it, each receiver copies out its slice (one copy, no message);
- to the workers of other nodes, with one ``MPI_Alltoallv`` (start-up traffic, not parameter traffic).

Without a job id (a bare ``mpiexec`` run, say) every part goes through MPI. Segments are unlinked as soon as
the node's workers have read them; a crash in between leaves names of the job, which the launcher sweeps.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit

from parasol_hybrid.tables.segment import Segment, segment_name

__all__ = ["Exchange"]


@njit(cache=True, nogil=True)
def _group(owner, counts, values, out, runs, run):
    """``values`` grouped by owner into ``out``: a counting sort that visits the values in runs of ``run``
    consecutive ones, the runs in the order ``runs`` (empty: in their own order, so each owner gets them
    in the sender's order). Runs keep the reads sequential: a random order of single values costs a cache
    miss per value and per array, ten times the whole exchange."""
    start = np.zeros(counts.shape[0], dtype=np.int64)
    acc = 0
    for w in range(counts.shape[0]):
        start[w] = acc
        acc += counts[w]
    n = owner.shape[0]
    nruns = runs.shape[0] if runs.shape[0] > 0 else 1
    for b in range(nruns):
        lo = runs[b] * run if runs.shape[0] > 0 else 0
        hi = min(lo + run, n) if runs.shape[0] > 0 else n
        for t in range(lo, hi):
            w = owner[t]
            out[start[w]] = values[t]
            start[w] += 1


_NO_ORDER = np.zeros(0, dtype=np.int64)
#: values a shuffled exchange keeps together (256 bytes of int32): see :func:`_group`
RUN = 64


def _mpi_type(dtype):
    from mpi4py import MPI

    return MPI._typedict[np.dtype(dtype).char]


def _displacements(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


class _Grouped:
    """Values grouped by owner (in a segment of the job when node peers read them), waiting to be delivered."""

    def __init__(self, values: np.ndarray, counts: np.ndarray, segment: Segment | None, call: int):
        self.values, self.counts, self.segment, self.call = values, counts, segment, call


class Exchange:
    """Delivers grouped arrays between the workers of ``comm`` (see the module docstring).

    ``node_of[r]`` is the node of worker ``r`` (None: every worker on a node of its own); ``job_id`` names the
    shared-memory segments (None: MPI only).
    """

    def __init__(self, comm, node_of: list[int] | None = None, job_id: str | None = None):
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        nodes = list(node_of) if node_of is not None and job_id is not None else list(range(self.size))
        self.local = np.array([nodes[r] == nodes[self.rank] for r in range(self.size)])
        self.peers = [r for r in range(self.size) if self.local[r] and r != self.rank]
        self.job_id = job_id
        # Split is a collective of ``comm``: every worker calls it, with node peers or not
        self.node_comm = comm.Split(nodes[self.rank], self.rank) if job_id is not None and node_of is not None else None
        #: world-of-comm rank -> rank in node_comm, and every node peer's pid (names its segments)
        self.node_ranks = self.node_comm.allgather(self.rank) if self.node_comm is not None else [self.rank]
        self.pids = self.node_comm.allgather(os.getpid()) if self.node_comm is not None else [os.getpid()]
        self.calls = 0

    def close(self) -> None:
        if self.node_comm is not None:
            self.node_comm.Free()
            self.node_comm = None

    def send(self, values: np.ndarray, owner: np.ndarray, counts: np.ndarray,
             order: np.ndarray | None = None) -> np.ndarray:
        """``values[t]`` to worker ``owner[t]`` (``counts[w]`` of them go to ``w``); returns what this worker
        receives, by sending worker, each sender's values in its order. (:meth:`group` then :meth:`deliver`,
        for a caller that frees ``values`` in between.)"""
        return self.deliver(self.group(values, owner, counts, order=order))

    def group(self, values: np.ndarray, owner: np.ndarray, counts: np.ndarray,
              out: np.ndarray | None = None, order: np.ndarray | None = None) -> "_Grouped":
        """``values`` grouped by owner, ready for :meth:`deliver` (into ``out`` when it fits and no segment is
        needed). With ``order`` (a permutation of the runs of ``RUN`` consecutive values) each owner gets its
        values run by run in that order."""
        counts = np.asarray(counts, dtype=np.int64)
        self.calls += 1
        seg = None
        if self.peers:
            seg = Segment.create(segment_name(self.job_id, f"xchg{self.calls}"), (len(values),), values.dtype)
            grouped = seg.array
        elif out is not None and out.dtype == values.dtype and len(out) == len(values):
            grouped = out
        else:
            grouped = np.empty_like(values)
        try:
            _group(owner, counts, values, grouped, _NO_ORDER if order is None else order, RUN)
        except BaseException:
            if seg is not None:
                seg.unlink()
                del grouped
                seg.close()
            raise
        return _Grouped(grouped, counts, seg, self.calls)

    def deliver(self, packed: "_Grouped") -> np.ndarray:
        """Send what :meth:`group` prepared; returns what this worker receives (see :meth:`send`)."""
        comm, me = self.comm, self.rank
        grouped, counts, seg = packed.values, packed.counts, packed.segment
        try:
            rcounts = np.empty_like(counts)
            comm.Alltoall(counts, rcounts)
            sdispl, rdispl = _displacements(counts), _displacements(rcounts)
            recv = np.empty(int(rcounts.sum()), dtype=grouped.dtype)
            mcounts, mrcounts = counts.copy(), rcounts.copy()
            mcounts[self.local], mrcounts[self.local] = 0, 0
            mpitype = _mpi_type(grouped.dtype)
            comm.Alltoallv([grouped, (mcounts.tolist(), sdispl.tolist()), mpitype],
                           [recv, (mrcounts.tolist(), rdispl.tolist()), mpitype])
            recv[rdispl[me]:rdispl[me] + rcounts[me]] = grouped[sdispl[me]:sdispl[me] + counts[me]]
            if self.peers:
                self._from_node_peers(recv, rdispl, rcounts, counts, len(grouped), grouped.dtype, packed.call)
        finally:
            if seg is not None:
                seg.unlink()
                packed.values = grouped = None
                seg.close()
        return recv

    def _from_node_peers(self, recv, rdispl, rcounts, counts, n, dtype, call: int) -> None:
        """Copy this worker's slices out of the node peers' segments (each peer grouped its values there)."""
        node = self.node_comm
        sizes = node.allgather(n)  # also: every peer has grouped into its segment
        starts = node.allgather(_displacements(counts).tolist())  # each peer's displacement of each destination
        try:
            for j, sender in enumerate(self.node_ranks):
                if sender == self.rank:
                    continue
                name = segment_name(self.job_id, f"xchg{call}", pid=self.pids[j])
                peer = Segment.attach(name, (sizes[j],), dtype)
                try:
                    lo = starts[j][self.rank]
                    recv[rdispl[sender]:rdispl[sender] + rcounts[sender]] = peer.array[lo:lo + rcounts[sender]]
                finally:
                    peer.close()
        finally:
            node.Barrier()  # every peer has read every segment: each may unlink its own
