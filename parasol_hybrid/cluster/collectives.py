"""MPI collectives that wait by sleeping, not by spinning.

MPICH ranks busy-wait inside blocking calls and steal a core from the ranks
that compute (see NOTES). Every collective here starts the non-blocking form
and then polls ``Test()`` with a short sleep that backs off to a few
milliseconds, so a waiting rank costs ~3% of a core. A caller may pass ``idle``,
called instead of the sleep with its length (a worker keeps its clock caught up
there and sleeps on its semaphore: see ``Clocks.idle``).

:func:`agree` is the cheap check that starts every collective of the
algorithm API: whether every rank is at the same call. :func:`agree_max` is the
same check carrying a few job-wide maxima in the same message (the algorithm API
carries peak memory and load time there, for ``metrics.json``).
"""

from __future__ import annotations

import pickle
import time
from typing import Callable

import numpy as np
from mpi4py import MPI

__all__ = ["wait", "barrier", "allreduce", "allgather_obj", "bcast_obj", "agree", "agree_max"]

Idle = Callable[[float], None]

_OPS = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "prod": MPI.PROD}


def wait(req: MPI.Request, max_sleep: float = 0.002, idle: Idle | None = None) -> None:
    """Complete ``req`` without spinning: Test() with sleeps from 20 µs up to ``max_sleep``
    (``idle(seconds)`` instead of the sleep when given)."""
    sleep = 2e-5
    pause = time.sleep if idle is None else idle
    while not req.Test():
        pause(sleep)
        sleep = min(sleep * 2, max_sleep)


def barrier(comm: MPI.Comm, idle: Idle | None = None) -> None:
    """A barrier over ``comm`` that sleeps while it waits."""
    wait(comm.Ibarrier(), idle=idle)


def agree(comm: MPI.Comm, seq: int, code: int, idle: Idle | None = None) -> bool:
    """Whether every rank of ``comm`` passed the same ``(seq, code)`` (non-negative ints): one tiny
    MAX-allreduce of ``[seq, code, -seq, -code]``. Every rank gets the same answer."""
    return agree_max(comm, seq, code, (), idle)[0]


def agree_max(comm: MPI.Comm, seq: int, code: int, values, idle: Idle | None = None) -> tuple[bool, np.ndarray]:
    """:func:`agree`, and the maxima over the ranks of ``values`` (int64s, as many on every rank of
    ``comm``) in the same MAX-allreduce: ``(agreed, maxima)``, the same on every rank."""
    send = np.concatenate([np.array([seq, code, -seq, -code], dtype=np.int64),
                           np.asarray(values, dtype=np.int64).ravel()])
    recv = np.empty_like(send)
    wait(comm.Iallreduce(send, recv, MPI.MAX), idle=idle)
    return bool(recv[0] == -recv[2] and recv[1] == -recv[3]), recv[4:]


def allreduce(comm: MPI.Comm, value, op: str = "sum"):
    """Reduce a number or numpy array over ``comm``; every rank gets the result.

    Python numbers come back as float (or int for int inputs); arrays keep their dtype and shape.
    """
    try:
        mpi_op = _OPS[op]
    except KeyError:
        raise ValueError(f"unknown reduction {op!r} (known: {', '.join(_OPS)})") from None
    if isinstance(value, np.ndarray):
        send = np.ascontiguousarray(value)
        recv = np.empty_like(send)
        wait(comm.Iallreduce(send, recv, mpi_op))
        return recv
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    send = np.array([value], dtype=np.int64 if is_int else np.float64)
    recv = np.empty_like(send)
    wait(comm.Iallreduce(send, recv, mpi_op))
    return int(recv[0]) if is_int else float(recv[0])


def allgather_obj(comm: MPI.Comm, obj) -> list:
    """Every rank's ``obj`` (pickled), in rank order, on every rank. For start-up and results only."""
    data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)
    sizes = np.empty(comm.size, dtype=np.int64)
    wait(comm.Iallgather(np.array([data.size], dtype=np.int64), sizes))
    displs = np.zeros(comm.size, dtype=np.int64)
    np.cumsum(sizes[:-1], out=displs[1:])
    buf = np.empty(int(sizes.sum()), dtype=np.uint8)
    wait(comm.Iallgatherv(data, [buf, sizes, displs, MPI.BYTE]))
    return [pickle.loads(buf[displs[i] : displs[i] + sizes[i]].tobytes()) for i in range(comm.size)]


def bcast_obj(comm: MPI.Comm, obj, root: int = 0):
    """``obj`` of ``root`` on every rank of ``comm`` (pickled)."""
    if comm.rank == root:
        data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)
        size = np.array([data.size], dtype=np.int64)
    else:
        size = np.empty(1, dtype=np.int64)
    wait(comm.Ibcast(size, root=root))
    if comm.rank != root:
        data = np.empty(int(size[0]), dtype=np.uint8)
    wait(comm.Ibcast(data, root=root))
    return obj if comm.rank == root else pickle.loads(data.tobytes())
