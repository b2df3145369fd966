"""The segments of one shard: values, optimiser state and the lock that makes pushes exact."""

from __future__ import annotations

import numpy as np
import posix_ipc

from ..errors import TableError
from .kernels import INIT_KINDS, fill_init, shard_rows
from .segment import Segment, segment_name
from .spec import TableSpec

__all__ = ["Shard", "shard_names"]


def shard_names(job_id: str, spec: TableSpec, shard: int, pid: int | None = None, cache: bool = False) -> dict[str, str]:
    """POSIX names of the shard's value segment, state segment and lock semaphore.

    ``cache``: a node's cache of the shard, which also has a ``snap`` segment (the rows as the owner
    last returned them) and a ``ver`` segment (per row, the owner's write count of that copy).
    """
    base = f"t{spec.index}{'c' if cache else 's'}{shard}"
    names = {
        "data": segment_name(job_id, base, pid),
        "state": segment_name(job_id, base + "st", pid),
        "lock": segment_name(job_id, base + "lk", pid),
    }
    if cache:
        names["snap"] = segment_name(job_id, base + "sn", pid)
        names["ver"] = segment_name(job_id, base + "vr", pid)
    return names


class Shard:
    """One shard of a table on this node: ``data`` (rows_local × dim), ``state`` and ``lock``.

    The owner (a server) creates it with :meth:`create`; workers on the node
    :meth:`attach` by the names the owner returned. A node's cache of a remote
    shard also has ``snap`` (same shape as ``data``): the rows as the owner
    last returned them, so that ``data - snap`` is what this node changed
    since, and ``ver`` (``rows_local`` int64): per row, the owner's write
    count of that copy. Both are read and written only under ``lock``.
    """

    def __init__(self, spec: TableSpec, shard: int, names: dict, data: Segment, state: Segment,
                 lock: posix_ipc.Semaphore, snap: Segment | None = None, ver: Segment | None = None):
        self.spec = spec
        self.shard = shard
        self.names = names
        self.data = data
        self.state = state
        self.lock = lock
        self.snap = snap
        self.ver = ver

    def _segments(self) -> list:
        return [seg for seg in (self.data, self.state, self.snap, self.ver) if seg is not None]

    @staticmethod
    def _shapes(spec: TableSpec, shard: int):
        n = shard_rows(spec.rows, spec.nshards, shard)
        return (n, spec.dim), (n, spec.state_slots, spec.dim)

    @classmethod
    def create(cls, job_id: str, spec: TableSpec, shard: int, cache: bool = False) -> "Shard":
        """Create and initialise the shard's segments (a ``zeros`` table is not written: a new segment
        reads as zeros, and its pages are allocated as they are first written).

        ``cache``: a node's copy of a shard that another node owns (same initial values).
        """
        names = shard_names(job_id, spec, shard, cache=cache)
        dshape, sshape = cls._shapes(spec, shard)
        made: list[Segment] = []
        try:
            made.append(Segment.create(names["data"], dshape, spec.dtype))
            made.append(Segment.create(names["state"], sshape, spec.dtype))
            if cache:
                made.append(Segment.create(names["snap"], dshape, spec.dtype))
                made.append(Segment.create(names["ver"], (dshape[0],), np.int64))
            lock = posix_ipc.Semaphore(names["lock"], posix_ipc.O_CREX, mode=0o600, initial_value=1)
        except BaseException:
            for seg in made:
                seg.unlink()
                seg.close()
            raise
        data, state = made[0], made[1]
        snap, ver = (made[2], made[3]) if cache else (None, None)
        try:
            # A new segment reads as zeros (and takes memory only where written): a ``zeros`` table,
            # the state and ``ver`` are left as they are, so a big table costs its pages as they are used.
            if spec.init != "zeros":
                fill_init(data.array, shard, spec.nshards, INIT_KINDS[spec.init], spec.a, spec.b, spec.seed)
                if snap is not None:
                    snap.array[...] = data.array
        except BaseException:
            for seg in made:
                seg.unlink()
                seg.close()
            lock.unlink()
            lock.close()
            raise
        return cls(spec, shard, names, data, state, lock, snap, ver)

    @classmethod
    def attach(cls, spec: TableSpec, shard: int, names: dict) -> "Shard":
        """Map a shard that the owning server created."""
        dshape, sshape = cls._shapes(spec, shard)
        made: list[Segment] = []
        try:
            made.append(Segment.attach(names["data"], dshape, spec.dtype))
            made.append(Segment.attach(names["state"], sshape, spec.dtype))
            if "snap" in names:
                made.append(Segment.attach(names["snap"], dshape, spec.dtype))
                made.append(Segment.attach(names["ver"], (dshape[0],), np.int64))
            try:
                lock = posix_ipc.Semaphore(names["lock"])
            except posix_ipc.ExistentialError:
                raise TableError(f"lock semaphore {names['lock']} of table {spec.name!r} does not exist") from None
        except BaseException:
            for seg in made:
                seg.close()
            raise
        cached = len(made) > 2
        return cls(spec, shard, names, made[0], made[1], lock, made[2] if cached else None,
                   made[3] if cached else None)

    def unlink(self) -> None:
        """Remove the names (the memory stays mapped where it is mapped). Idempotent."""
        for seg in self._segments():
            seg.unlink()
        try:
            posix_ipc.unlink_semaphore(self.names["lock"])
        except posix_ipc.ExistentialError:
            pass

    def close(self) -> None:
        for seg in self._segments():
            seg.close()
        try:
            self.lock.close()
        except posix_ipc.ExistentialError:
            pass

    @property
    def array(self) -> np.ndarray:
        return self.data.array
