"""Rows of a striped table, for numba kernels that read and write a table in place.

A table of ``rows`` rows is striped over ``S`` shards: global row ``k`` lives
in shard ``k % S`` at local row ``k // S``, and ``table.shards`` is the tuple
of the ``S`` shard arrays (``local rows × dim``). The helpers below are the
one place an algorithm's kernel needs that rule: pass ``table.shards`` to the
kernel and reach row ``k`` with :func:`striped_row`::

    from numba import njit
    from parasol_hybrid.tables.striped import striped_row

    @njit(cache=True, nogil=True)
    def scale_rows(shards, keys, factor):
        for t in range(keys.shape[0]):
            row = striped_row(shards, keys[t])   # a view: writes go into the shard
            for j in range(row.shape[0]):
                row[j] *= factor

The jitted helpers are ``inline="always"``: numba pastes them into the
calling kernel, so they cost what the spelled-out ``shards[k % S][k // S]``
costs. A row view is worth keeping in a variable within one stretch of code
(as above); where the row is used inside an ``if``, look it up there
(``striped_row(shards, k)[j]``): a view kept across the branch made a
test-error kernel 2x slower here.
A 1-tuple holding one plain ``rows × dim`` array is a table of one shard, so
the same kernels run on ordinary numpy arrays (``(array,)``).

Write in place only into a table that is not exact, or inside
``with table.locked() as shards:`` (the shards of an exact table are
read-only arrays outside it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["striped_row", "shard_of", "local_row", "shard_keys"]


@njit(inline="always", nogil=True)
def shard_of(k, nshards):
    """The shard that holds global row ``k`` of a table striped over ``nshards`` shards."""
    return k % nshards


@njit(inline="always", nogil=True)
def local_row(k, nshards):
    """The position of global row ``k`` inside its shard (see :func:`shard_of`)."""
    return k // nshards


@njit(inline="always", nogil=True)
def striped_row(shards, k):
    """Row ``k`` of the striped table whose shard arrays are ``shards``: a 1-D view of its ``dim`` values."""
    S = len(shards)
    return shards[k % S][k // S]


def shard_keys(shard: int, rows: int, nshards: int) -> np.ndarray:
    """The global rows (``int64``, ascending) that shard ``shard`` of a ``rows``-row table holds."""
    return np.arange(shard, rows, nshards, dtype=np.int64)
