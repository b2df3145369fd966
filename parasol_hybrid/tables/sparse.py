"""Sparse tables: rows addressed by arbitrary non-negative 64-bit keys (hashed strings, sparse ids).

A sparse table is two dense tables striped the same way: ``keys`` (int64,
``-1`` for an empty slot) and ``values`` (the rows). A key lives in shard
``key % S``; inside a shard it is placed by open addressing (linear probing)
from slot ``(key // S) % slots_per_shard``. Slot ``l`` of shard ``s`` is row
``l * S + s`` of the dense value table, so the dense kernels do the rest.

Inserts take the shard locks (exact, whatever the number of writers);
look-ups of present keys run without locks. A push that finds no free slot
for a key takes back the keys it inserted and raises a TableError naming the
table and its capacity.

The work on one shard's arrays (:func:`insert_rows`, :func:`lookup_rows`,
:func:`shard_items`) is the same for a worker on the owner's node and for the
owning server answering another node: both call these functions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit

from ..errors import TableError
from .kernels import BAD_KEY, BAD_VALUE, gather, refusal, row_not_finite, scatter_add
from .remote import RemoteShards
from .rules import get_rule
from .table import Table, _save_atomic, int64_keys

__all__ = ["SparseTable", "hash_strings", "EMPTY", "MESSAGE_BYTES", "find_slots", "insert_slots", "insert_rows",
           "lookup_rows", "shard_items"]

EMPTY = -1
_MASK = (1 << 63) - 1
#: the most bytes of keys and values a push or pull puts in one message to another node's server
MESSAGE_BYTES = 64 << 20


def hash_strings(words) -> np.ndarray:
    """63-bit keys of strings (blake2b); equal in every process and run."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(), "little") & _MASK for w in words),
        dtype=np.int64,
        count=len(words),
    )


@njit(cache=True, nogil=True)
def _probe(ks, k, S):
    """Position of key ``k`` in its shard's key array ``ks``, else of the empty slot that ends its probe
    sequence (``ks[pos, 0] == -1``), else -1 (the shard is full and ``k`` is not in it)."""
    n = ks.shape[0]
    pos = (k // S) % n
    for _ in range(n):
        cur = ks[pos, 0]
        if cur == k or cur == -1:
            return pos
        pos += 1
        if pos == n:
            pos = 0
    return -1


@njit(cache=True, nogil=True)
def find_slots(key_shards, keys, out):
    """``out[i]`` = the slot (dense row) of key i, or -1 when it is not present.

    Returns -1, or the refusal code (kind BAD_KEY) of the first negative key.
    """
    S = len(key_shards)
    for i in range(keys.shape[0]):
        if keys[i] < 0:
            return i
    for i in range(keys.shape[0]):
        k = keys[i]
        s = k % S
        ks = key_shards[s]
        pos = _probe(ks, k, S)
        out[i] = pos * S + s if pos >= 0 and ks[pos, 0] == k else -1
    return -1


@njit(cache=True, nogil=True)
def insert_slots(key_shards, keys, values, out):
    """``out[i]`` = the slot of key i, inserting the missing keys (to be called under the shard locks).

    Returns -1, or a refusal code with nothing changed: the first negative key
    or row of ``values`` holding NaN/±Inf (first pass, kinds BAD_KEY and
    BAD_VALUE), or the first key whose shard has no free slot (kind FULL; the
    keys this call inserted before it are taken out again, in reverse order,
    which restores the probe sequences exactly).
    """
    S = len(key_shards)
    n = keys.shape[0]
    for i in range(n):
        if keys[i] < 0:
            return i
        if row_not_finite(values, i):
            return n + i
    inserted = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        k = keys[i]
        s = k % S
        ks = key_shards[s]
        pos = _probe(ks, k, S)
        if pos < 0:
            for t in range(m - 1, -1, -1):
                slot = inserted[t]
                key_shards[slot % S][slot // S, 0] = -1
            return 2 * n + i
        if ks[pos, 0] == -1:
            ks[pos, 0] = k
            inserted[m] = pos * S + s
            m += 1
        out[i] = pos * S + s
    return -1


def insert_rows(key_shards: tuple, value_shards: tuple, rows: int, keys: np.ndarray, values: np.ndarray) -> int:
    """Insert the missing ``keys`` and add ``values`` to their rows (call it under the shard locks).

    ``key_shards`` and ``value_shards`` are the two tables' shard arrays by shard
    index (only the shards of ``keys`` need be real), ``rows`` the value table's
    row count. Returns -1, or the refusal code of :func:`insert_slots` with
    nothing written.
    """
    slots = np.empty(keys.shape[0], dtype=np.int64)
    code = insert_slots(key_shards, keys, values, slots)
    if code < 0:
        scatter_add(value_shards, rows, slots, values)  # slots and values were checked by insert_slots
    return code


def lookup_rows(key_shards: tuple, value_shards: tuple, rows: int, keys: np.ndarray, out: np.ndarray) -> int:
    """Write the row of every present key of ``keys`` into ``out`` (other rows of ``out`` are left as they
    are); returns -1, or the refusal code (kind BAD_KEY) of the first negative key, with nothing written."""
    slots = np.empty(keys.shape[0], dtype=np.int64)
    code = find_slots(key_shards, keys, slots)
    if code >= 0:
        return code
    found = np.flatnonzero(slots >= 0)
    if found.size:
        got = np.empty((found.size, out.shape[1]), dtype=out.dtype)
        gather(value_shards, rows, slots[found], got)
        out[found] = got
    return -1


def shard_items(key_shard: np.ndarray, value_shard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of every present key of one shard and its row, in slot order."""
    present = key_shard[:, 0] >= 0
    return key_shard[present, 0].copy(), value_shard[present].copy()


class SparseTable:
    """A table keyed by arbitrary non-negative int64 keys, with room for ``capacity`` keys.

    It answers the table protocol of :class:`~parasol_hybrid.tables.table.Table`
    (``pull(keys, out=None)``, ``push``, ``pull_all``, ``save``): keys never
    pushed read as zeros; ``pull_all()`` is ``(keys, values)`` of every present
    key, sorted by key (``items()`` sorted); ``save(path)`` writes them as an
    ``.npz`` with arrays ``keys`` and ``values``. Pushes add (rule ``add``).
    """

    def __init__(self, keys: Table, values: Table, capacity: int, link: RemoteShards | None = None):
        self._keys = keys
        self.values = values
        self.capacity = capacity
        self.name = values.name
        self.remote = values.remote
        self._link = link
        self._remote_ids = np.array(sorted(self.remote), dtype=np.int64)

    @property
    def dim(self) -> int:
        return self.values.dim

    @property
    def dtype(self):
        return self.values.dtype

    def __repr__(self) -> str:
        return f"SparseTable({self.name!r}, capacity={self.capacity}, dim={self.dim}, dtype={self.dtype})"

    def _check(self, keys) -> np.ndarray:
        return int64_keys(keys, f"sparse table {self.name!r}", flat=True)

    def _refused(self, keys: np.ndarray, code: int):
        kind, i = refusal(code, keys.shape[0])
        if kind == BAD_KEY:
            raise TableError(f"sparse table {self.name!r}: key {int(keys[i])} at position {i} is negative")
        if kind == BAD_VALUE:
            raise TableError(f"sparse table {self.name!r}: the deltas of key {int(keys[i])} (position {i}) "
                             f"hold NaN or ±Inf; nothing was written")
        raise TableError(f"sparse table {self.name!r} is full (room for {self.capacity} keys): no free slot "
                         f"for key {int(keys[i])} in shard {int(keys[i]) % self.values.nshards}; nothing was "
                         f"written; declare a larger capacity")

    def _split(self, keys: np.ndarray):
        """A mask of the keys whose shard is on this node, and the remote shards with their keys' positions."""
        if not self.remote:
            return None, []
        if keys.size and keys.min() < 0:
            i = int(np.argmax(keys < 0))
            raise TableError(f"sparse table {self.name!r}: key {int(keys[i])} at position {i} is negative")
        shard_of = keys % self.values.nshards
        local = ~np.isin(shard_of, self._remote_ids)
        return local, [(int(s), np.flatnonzero(shard_of == s)) for s in self._remote_ids]

    def _ask(self, request, s: int, *args):
        """``request(spec, s, *args)`` of the link to the owner of shard ``s``; its refusal is a TableError
        naming this table."""
        try:
            return request(self.values.spec, s, *args)
        except TableError as exc:
            raise TableError(f"sparse table {self.name!r} (room for {self.capacity} keys): {exc}") from None

    def _step(self) -> int:
        """Keys per message to another node: a message stays within :data:`MESSAGE_BYTES` (the servers
        drop messages over ``MAX_MESSAGE_BYTES``)."""
        return max(1, MESSAGE_BYTES // (8 + self.dim * self.dtype.itemsize))

    def push(self, keys, deltas, rule: str | None = None, **hyper) -> None:
        """Insert missing keys and add ``deltas`` to their rows (exact: under the shard locks, or by the owner).

        Nothing is written on this node when a key is negative, a delta holds
        NaN or ±Inf, or a shard is full (then a TableError names the table and
        its capacity). In cluster mode the deltas are checked before anything
        is sent; the part of a push for shards of other nodes is applied by
        their owners, in messages of at most :data:`MESSAGE_BYTES`, each
        refused as a whole when their shard is full.
        """
        if rule not in (None, "add"):
            raise TableError(f"sparse table {self.name!r}: pushes add; rule {rule!r} is not supported")
        if hyper:
            get_rule("add").hyper_array(hyper)  # add has none: names the first one
        keys = self._check(keys)
        deltas = self.values._values(keys, deltas, "deltas")
        local, remote = self._split(keys)
        step = self._step()
        for s, pos in remote:
            for lo in range(0, pos.size, step):
                part = pos[lo:lo + step]
                self._ask(self._link.sparse_push, s, keys[part], deltas[part])
        if local is not None:
            keys, deltas = np.ascontiguousarray(keys[local]), np.ascontiguousarray(deltas[local])
        with self.values.locked() as values:
            code = insert_rows(self._keys._rw[0], values, self.values.rows, keys, deltas)
        if code >= 0:
            self._refused(keys, code)

    def pull(self, keys, out: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``keys`` as a ``len(keys) × dim`` array (into ``out`` when given); zeros for keys never pushed."""
        keys = self._check(keys)
        if out is None:
            out = np.zeros((keys.shape[0], self.dim), dtype=self.dtype)
        elif out.shape != (keys.shape[0], self.dim) or out.dtype != self.dtype:
            raise TableError(f"sparse table {self.name!r}: out must be a {self.dtype} array of shape "
                             f"({keys.shape[0]}, {self.dim}), got {out.dtype} {out.shape}")
        else:
            out[...] = 0
        local, remote = self._split(keys)
        step = self._step()
        for s, pos in remote:
            for lo in range(0, pos.size, step):
                part = pos[lo:lo + step]
                out[part] = self._ask(self._link.sparse_pull, s, keys[part])
        if local is None:
            code = lookup_rows(self._keys.shards, self.values.shards, self.values.rows, keys, out)
            if code >= 0:
                self._refused(keys, code)
            return out
        lkeys = np.ascontiguousarray(keys[local])
        rows = np.zeros((lkeys.shape[0], self.dim), dtype=self.dtype)
        code = lookup_rows(self._keys.shards, self.values.shards, self.values.rows, lkeys, rows)
        if code >= 0:
            self._refused(lkeys, code)
        out[local] = rows
        return out

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Every present key and its row: ``(keys, values)``, in shard and slot order."""
        S = self.values.nshards
        ks, vs = [], []
        for s in range(S):
            keys, values = (self._ask(self._link.sparse_items, s) if s in self.remote
                            else shard_items(self._keys.shards[s], self.values.shards[s]))
            ks.append(keys)
            vs.append(values)
        return (np.concatenate(ks) if ks else np.zeros(0, np.int64),
                np.concatenate(vs) if vs else np.zeros((0, self.dim), self.dtype))

    def pull_all(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, values)`` of every present key, sorted by key (:meth:`items` sorted)."""
        keys, values = self.items()
        order = np.argsort(keys, kind="stable")
        return keys[order], values[order]

    def save(self, path) -> Path:
        """Write :meth:`pull_all` to ``path`` as an ``.npz`` with arrays ``keys`` and ``values``
        (atomically, at exactly ``path``)."""
        keys, values = self.pull_all()
        return _save_atomic(Path(path), lambda f: np.savez(f, keys=keys, values=values))

    def __len__(self) -> int:
        """The number of keys present."""
        return int(len(self.items()[0]))

    def close(self) -> None:
        self._keys.close()
        self.values.close()
