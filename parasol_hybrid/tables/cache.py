"""Kernels over a node's cache of a remote shard and its snapshot (the rows as the owner last returned them).

``cache - snap`` is what this node changed since; the node agent sends it to the
owner as an addition (:func:`take_delta`) and rebases the cache on the owner's
rows (:func:`rebase`); a worker that had a rule applied at the owner writes the
returned rows in the same way (:func:`rebase_rows`). All three run under the
cache shard's lock, so they never interleave.

The owner numbers the writes that reach it over the network; a copy of a
shard carries the number of the last write it includes, and the rows a rule
returns carry the number of that rule's write (``version``). The cache keeps,
per row, the number of what its snapshot came from (``ver``), so an older copy
or result that arrives late never replaces a newer one: a copy is applied to a
row when its number is at least the row's (a copy numbered N was made after
write N, so it is as new as the result of write N, or newer), a result only
when its number is above the row's.
"""

from __future__ import annotations

from numba import njit

__all__ = ["take_delta", "rebase", "rebase_rows"]


@njit(cache=True, nogil=True)
def take_delta(cache, snap, delta, changed):
    """``delta = cache - snap`` row by row, and ``snap = cache`` (as read); returns the number of changed rows.

    ``changed[i]`` is set to the local row of the i-th changed row; ``delta[i]`` holds its change.
    """
    n = 0
    d = cache.shape[1]
    for r in range(cache.shape[0]):
        any_change = False
        for j in range(d):
            v = cache[r, j]
            w = snap[r, j]
            delta[n, j] = v - w
            snap[r, j] = v
            if v != w:  # not ``v - w != 0``: a row that stays at ±Inf has not changed
                any_change = True
        if any_change:
            changed[n] = r
            n += 1
    return n


@njit(cache=True, nogil=True)
def rebase(cache, snap, fresh, ver, version):
    """``cache = fresh + (cache - snap)`` (exactly ``fresh`` where nothing changed here), ``snap = fresh`` and
    ``ver = version``, for every row but those whose snapshot is newer than ``fresh`` (``ver[r] > version``: a
    worker wrote back a row that the owner returned after it made this copy)."""
    d = cache.shape[1]
    for r in range(cache.shape[0]):
        if ver[r] > version:
            continue
        ver[r] = version
        for j in range(d):
            f = fresh[r, j]
            cache[r, j] = f + (cache[r, j] - snap[r, j])
            snap[r, j] = f


@njit(cache=True, nogil=True)
def rebase_rows(cache, snap, rows, fresh, ver, version):
    """:func:`rebase` of the local rows ``rows`` only, with rows the owner returned at ``version``: row
    ``rows[i]`` becomes ``fresh[i]`` plus this node's change since its snapshot, its snapshot ``fresh[i]``
    and ``ver`` ``version`` (unless its snapshot is as new already: a copy with the same number includes
    this result)."""
    d = cache.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        if ver[r] >= version:
            continue
        ver[r] = version
        for j in range(d):
            f = fresh[i, j]
            cache[r, j] = f + (cache[r, j] - snap[r, j])
            snap[r, j] = f
