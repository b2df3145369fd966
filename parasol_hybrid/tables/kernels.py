"""numba kernels over table shards.

A table of ``rows`` rows is striped over ``S`` shards: global row ``k`` lives
in shard ``k % S`` at local row ``k // S``. ``shards`` is a tuple of 2-D
arrays (one per shard, all of the table's dtype); every kernel here is a pure
function over those arrays and the key/value buffers it is given.

Kernels that take keys (and values) check them in their first pass and
return ``-1`` when done, or a *refusal code* when they wrote nothing:
``kind * n + i`` for the first refused entry ``i`` of the ``n`` keys, where
``kind`` is :data:`BAD_KEY` (key ``i`` is outside ``[0, rows)``),
:data:`BAD_VALUE` (row ``i`` of the values holds NaN or ±Inf) or :data:`FULL`
(a sparse table has no free slot for key ``i``). :func:`refusal` decodes it.
A value ``x`` is bad exactly when ``x - x != 0`` (NaN and ±Inf), which
compiles for integer tables too (where it is never true).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "shard_rows",
    "check_keys",
    "check_push",
    "first_bad_row",
    "refusal",
    "BAD_KEY",
    "BAD_VALUE",
    "FULL",
    "gather",
    "scatter_add",
    "scatter_assign",
    "gather_all",
    "fill_init",
    "INIT_KINDS",
]

#: initialiser names understood by :func:`fill_init`, and their codes
INIT_KINDS = {"zeros": 0, "constant": 1, "uniform": 2, "normal": 3}

#: kinds of refusal codes (see the module docstring)
BAD_KEY, BAD_VALUE, FULL = 0, 1, 2


def refusal(code: int, n: int) -> tuple[int, int]:
    """``(kind, position)`` of a kernel's refusal code ``code >= 0`` for a call with ``n`` keys."""
    return divmod(int(code), max(int(n), 1))


def shard_rows(rows: int, nshards: int, shard: int) -> int:
    """Number of rows of ``shard`` when ``rows`` rows are striped over ``nshards``."""
    return (rows - shard + nshards - 1) // nshards if rows > shard else 0


@njit(cache=True, nogil=True)
def check_keys(keys, rows):
    """Index of the first key outside ``[0, rows)``, or -1."""
    for i in range(keys.shape[0]):
        k = keys[i]
        if k < 0 or k >= rows:
            return i
    return -1


@njit(inline="always", nogil=True)
def row_not_finite(values, i):
    """Whether row ``i`` of ``values`` (2-D) holds NaN or ±Inf (``x - x != 0``; never for ints)."""
    bad = False
    for j in range(values.shape[1]):
        x = values[i, j]
        bad |= x - x != 0
    return bad


@njit(cache=True, nogil=True)
def check_push(keys, rows, values):
    """The first pass of a push: -1, or the refusal code of the first key out of range or row of
    ``values`` holding NaN/±Inf (kinds :data:`BAD_KEY`, :data:`BAD_VALUE`)."""
    n = keys.shape[0]
    for i in range(n):
        k = keys[i]
        if k < 0 or k >= rows:
            return i
        if row_not_finite(values, i):
            return n + i
    return -1


@njit(cache=True, nogil=True)
def first_bad_row(values):
    """Index of the first row of ``values`` (2-D) holding NaN or ±Inf, or -1."""
    for i in range(values.shape[0]):
        if row_not_finite(values, i):
            return i
    return -1


@njit(cache=True, nogil=True)
def gather(shards, rows, keys, out):
    """``out[i, :] = row keys[i]`` for every i; returns the first bad key's position or -1."""
    bad = check_keys(keys, rows)
    if bad >= 0:
        return bad
    S = len(shards)
    d = out.shape[1]
    for i in range(keys.shape[0]):
        k = keys[i]
        sh = shards[k % S]
        r = k // S
        for j in range(d):
            out[i, j] = sh[r, j]
    return -1


@njit(cache=True, nogil=True)
def scatter_add(shards, rows, keys, deltas):
    """``row keys[i] += deltas[i, :]``; repeated keys add up. Returns -1 or a refusal code (nothing written)."""
    bad = check_push(keys, rows, deltas)
    if bad >= 0:
        return bad
    S = len(shards)
    d = deltas.shape[1]
    for i in range(keys.shape[0]):
        k = keys[i]
        sh = shards[k % S]
        r = k // S
        for j in range(d):
            sh[r, j] += deltas[i, j]
    return -1


@njit(cache=True, nogil=True)
def scatter_assign(shards, rows, keys, values):
    """``row keys[i] = values[i, :]`` (the last one wins for repeated keys).

    Returns -1 or a refusal code (nothing written)."""
    bad = check_push(keys, rows, values)
    if bad >= 0:
        return bad
    S = len(shards)
    d = values.shape[1]
    for i in range(keys.shape[0]):
        k = keys[i]
        sh = shards[k % S]
        r = k // S
        for j in range(d):
            sh[r, j] = values[i, j]
    return -1


@njit(cache=True, nogil=True)
def gather_all(shards, out):
    """Copy every row of the striped table into ``out`` (``rows × dim``)."""
    S = len(shards)
    d = out.shape[1]
    for k in range(out.shape[0]):
        sh = shards[k % S]
        r = k // S
        for j in range(d):
            out[k, j] = sh[r, j]


@njit(cache=True, nogil=True)
def _splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15))
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _unit(seed, counter):
    """A uniform double in (0, 1) that depends only on (seed, counter)."""
    h = _splitmix64(np.uint64(seed) * np.uint64(0x632BE59BD9B4E019) ^ _splitmix64(np.uint64(counter)))
    return ((h >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def fill_init(arr, shard, nshards, kind, a, b, seed):
    """Fill a shard with its initial values; element (k, j) depends only on (seed, k, j).

    kind: 0 zeros, 1 constant ``a``, 2 uniform on ``[a, b)``, 3 normal(mean ``a``, std ``b``).
    The values are the same whatever the number of shards.
    """
    d = arr.shape[1]
    for r in range(arr.shape[0]):
        k = r * nshards + shard
        for j in range(d):
            if kind == 0:
                arr[r, j] = 0
            elif kind == 1:
                arr[r, j] = a
            elif kind == 2:
                arr[r, j] = a + (b - a) * _unit(seed, k * d + j)
            else:
                u1 = _unit(seed, 2 * (k * d + j))
                u2 = _unit(seed, 2 * (k * d + j) + 1)
                arr[r, j] = a + b * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
