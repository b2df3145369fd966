"""Sparse tables: rows addressed by arbitrary non-negative 64-bit keys (hashed strings, sparse ids).

A sparse table is two dense tables striped the same way: ``keys`` (int64,
``-1`` for an empty slot) and ``values`` (the rows). A key lives in shard
``key % S``; inside a shard it is placed by open addressing (linear probing)
from slot ``(key // S) % slots_per_shard``. Slot ``l`` of shard ``s`` is row
``l * S + s`` of the dense value table, so the dense kernels do the rest.

Inserts take the shard locks (exact, whatever the number of writers);
look-ups of present keys run without locks.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit

from ..errors import TableError
from ..transport.wire import Op
from .table import Table

__all__ = ["SparseTable", "hash_strings", "EMPTY"]

EMPTY = -1
_MASK = (1 << 63) - 1


def hash_strings(words) -> np.ndarray:
    """63-bit keys of strings (blake2b); equal in every process and run."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(), "little") & _MASK for w in words),
        dtype=np.int64,
        count=len(words),
    )


@njit(cache=True, nogil=True)
def _slots(key_shards, keys, insert, out):
    """Slot (dense row) of every key; inserts missing keys when ``insert``.

    Returns -1 when done, ``-(i + 2)`` when key i is negative, and ``i`` when
    the shard of key i is full. Missing keys without ``insert`` get slot -1.
    """
    S = len(key_shards)
    for i in range(keys.shape[0]):
        if keys[i] < 0:
            return -(i + 2)
    for i in range(keys.shape[0]):
        k = keys[i]
        s = k % S
        ks = key_shards[s]
        n = ks.shape[0]
        pos = (k // S) % n
        out[i] = -1
        for _ in range(n):
            cur = ks[pos, 0]
            if cur == k:
                out[i] = pos * S + s
                break
            if cur == -1:
                if insert:
                    ks[pos, 0] = k
                    out[i] = pos * S + s
                break
            pos += 1
            if pos == n:
                pos = 0
        if insert and out[i] < 0:
            return i
    return -1


class SparseTable:
    """A table keyed by arbitrary non-negative int64 keys, with room for ``capacity`` keys."""

    def __init__(self, keys: Table, values: Table, capacity: int, link=None):
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
        keys = np.ascontiguousarray(np.asarray(keys).reshape(-1))
        if keys.size and not np.issubdtype(keys.dtype, np.integer):
            raise TableError(f"sparse table {self.name!r}: keys must be integers, got {keys.dtype}")
        return keys.astype(np.int64, copy=False)

    def _locate(self, keys: np.ndarray, insert: bool) -> np.ndarray:
        slots = np.empty(keys.shape[0], dtype=np.int64)
        status = _slots(self._keys.shards, keys, insert, slots)
        if status <= -2:
            i = -status - 2
            raise TableError(f"sparse table {self.name!r}: key {int(keys[i])} at position {i} is negative")
        if status >= 0:
            raise TableError(f"sparse table {self.name!r} is full (room for {self.capacity} keys); declare a larger capacity")
        return slots

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

    def push(self, keys, deltas, rule: str | None = None, **hyper) -> None:
        """Insert missing keys and add ``deltas`` to their rows (exact: under the shard locks, or by the owner)."""
        if rule not in (None, "add"):
            raise TableError(f"sparse table {self.name!r}: pushes add; rule {rule!r} is not supported")
        keys = self._check(keys)
        deltas = self.values._values(keys, deltas, "deltas")
        local, remote = self._split(keys)
        for s, pos in remote:
            if pos.size:
                self._link.request(s, Op.SPARSE_PUSH, table=self.values.spec.index, shard=s,
                                   keys=keys[pos], values=deltas[pos])
        if local is not None:
            keys, deltas = np.ascontiguousarray(keys[local]), np.ascontiguousarray(deltas[local])
        with self.values.locked():
            slots = self._locate(keys, insert=True)
            self.values._push_unlocked(slots, deltas, None)

    def pull(self, keys) -> np.ndarray:
        """Rows of ``keys`` (zeros for keys never pushed)."""
        keys = self._check(keys)
        out = np.zeros((keys.shape[0], self.dim), dtype=self.dtype)
        local, remote = self._split(keys)
        for s, pos in remote:
            if pos.size:
                out[pos] = self._link.request(s, Op.SPARSE_PULL, table=self.values.spec.index, shard=s,
                                              keys=keys[pos]).values
        lkeys = keys if local is None else np.ascontiguousarray(keys[local])
        slots = self._locate(lkeys, insert=False)
        found = slots >= 0
        if found.any():
            rows = self.values.pull(slots[found])
            if local is None:
                out[found] = rows
            else:
                out[np.flatnonzero(local)[found]] = rows
        return out

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Every present key and its row: ``(keys, values)``."""
        S = self.values.nshards
        ks, vs = [], []
        for s in range(S):
            if s in self.remote:
                msg = self._link.request(s, Op.SPARSE_ITEMS, table=self.values.spec.index, shard=s)
                ks.append(np.array(msg.keys))
                vs.append(np.array(msg.values))
            else:
                kk = self._keys.shards[s][:, 0]
                present = kk >= 0
                ks.append(kk[present].copy())
                vs.append(self.values.shards[s][present].copy())
        return (np.concatenate(ks) if ks else np.zeros(0, np.int64),
                np.concatenate(vs) if vs else np.zeros((0, self.dim), self.dtype))

    def __len__(self) -> int:
        """The number of keys present."""
        return int(len(self.items()[0]))

    def close(self) -> None:
        self._keys.close()
        self.values.close()
