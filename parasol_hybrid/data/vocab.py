"""The job's vocabulary of ids, built once, in parallel, from each worker's distinct ids (a collective).

Every worker passes the ids it parsed (:class:`~parasol_hybrid.data.scan_ratings.ScannedRatings` keys);
each distinct id goes once to the worker responsible for it (by its value or hash, ``Alltoallv``), which
drops the duplicates; the distinct pieces are then gathered by everyone (``Allgatherv``), so each id crosses
the network once per worker, not once per worker that holds it. The vocabulary is sorted as strings (the
order ``users.txt`` and friends have always had), and every worker maps its keys to rows with it.

Integer ids (every id of the column, on every worker, spells a canonical integer) never become Python
objects on the hot path: distinct values come from a flag array (or ``np.unique``), their order as strings
from a compiled key, and rows from a direct table (or ``searchsorted``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.idhash import FNV_OFFSET, IdTable, finalise, fnv_step, hash_texts

__all__ = ["Vocabulary", "build_vocabulary", "vocabulary_of_strings", "int_text_order", "int_text_hash"]

#: a direct value -> row table is used when the largest id is below this (and not far above the data size)
_DIRECT_LIMIT = 1 << 27
_POW10_INT = np.array([10 ** k for k in range(19)], dtype=np.int64)


@njit(cache=True, nogil=True, inline="always")
def _digits(v, pow10):
    """The number of decimal digits of ``v`` (0 <= v < 10^18)."""
    nd = 1
    while nd < 18 and v >= pow10[nd]:
        nd += 1
    return nd


@njit(cache=True, nogil=True)
def int_text_order(values, pow10):
    """A key per non-negative integer (< 10^18) whose numeric order is the order of the decimal texts."""
    out = np.empty(values.shape[0], dtype=np.int64)
    for k in range(values.shape[0]):
        v = values[k]
        nd = _digits(v, pow10)
        key = 0
        for p in range(18):  # digit p (from the left) counts d + 1; past the last digit, 0
            key *= 11
            if p < nd:
                key += (v // pow10[nd - 1 - p]) % 10 + 1
        out[k] = key
    return out


@njit(cache=True, nogil=True)
def int_text_hash(values, pow10):
    """:func:`~parasol_hybrid.data.idhash.hash_bytes` of each non-negative integer's decimal text."""
    out = np.empty(values.shape[0], dtype=np.uint64)
    for k in range(values.shape[0]):
        v = values[k]
        nd = _digits(v, pow10)
        h = FNV_OFFSET
        for p in range(nd):
            h = fnv_step(h, 48 + (v // pow10[nd - 1 - p]) % 10)
        out[k] = finalise(h)
    return out


@njit(cache=True, nogil=True)
def _mark(keys, flags):
    for k in range(keys.shape[0]):
        flags[keys[k]] = True


@njit(cache=True, nogil=True)
def _lookup(keys, table, out):
    for k in range(keys.shape[0]):
        out[k] = table[keys[k]]


@njit(cache=True, nogil=True)
def _lookup_codes(keys, code_rows, out):
    """Rows of string-coded keys (``-1 - code``)."""
    for k in range(keys.shape[0]):
        out[k] = code_rows[-1 - keys[k]]


class Vocabulary:
    """Sorted (as strings) distinct ids of the job, the same on every worker.

    ``ids``: the ids as an object array of ``str`` (built on first use for integer ids). ``hashes``: the
    stable hash of each id's text, by row (owners of triples).
    """

    def __init__(self, ints: np.ndarray | None, strings: np.ndarray | None):
        self.ints = ints  # int64 values in row order, for integer ids
        self._strings = strings
        if ints is not None:
            self.hashes = int_text_hash(ints, _POW10_INT)
        else:
            self.hashes = hash_texts(strings) if len(strings) else np.zeros(0, np.uint64)

    def __len__(self) -> int:
        return len(self.ints) if self.ints is not None else len(self._strings)

    @property
    def ids(self) -> np.ndarray:
        if self._strings is None:
            strings = np.empty(len(self.ints), dtype=object)
            strings[:] = [str(v) for v in self.ints.tolist()]
            self._strings = strings
        return self._strings


def _mpi_type(dtype):
    """The MPI datatype of a numpy dtype (mpi4py is imported on use: importing the loaders does not start MPI)."""
    from mpi4py import MPI

    return MPI._typedict[np.dtype(dtype).char]


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique`` by sorting: numpy's hash-based unique is far slower here)."""
    v = np.sort(values)
    if len(v) == 0:
        return v
    keep = np.empty(len(v), dtype=np.bool_)
    keep[0] = True
    np.not_equal(v[1:], v[:-1], out=keep[1:])
    return v[keep]


def _alltoallv(comm, send: np.ndarray, counts: np.ndarray, dtype) -> np.ndarray:
    """Exchange ``send`` (grouped by destination, ``counts`` per destination); returns what arrived, by source."""
    send = np.ascontiguousarray(send, dtype=dtype)  # MPI reads the buffer as ``dtype``: never reinterpret
    counts = np.asarray(counts, dtype=np.int64)
    rcounts = np.empty_like(counts)
    comm.Alltoall(counts, rcounts)
    sdispl = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rdispl = np.concatenate([[0], np.cumsum(rcounts)[:-1]])
    recv = np.empty(int(rcounts.sum()), dtype=dtype)
    mpitype = _mpi_type(dtype)
    comm.Alltoallv([send, (counts.tolist(), sdispl.tolist()), mpitype],
                   [recv, (rcounts.tolist(), rdispl.tolist()), mpitype])
    return recv


def _allgatherv(comm, mine: np.ndarray, dtype) -> np.ndarray:
    counts = np.array(comm.allgather(len(mine)), dtype=np.int64)
    displ = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.empty(int(counts.sum()), dtype=dtype)
    mpitype = _mpi_type(dtype)
    comm.Allgatherv([np.ascontiguousarray(mine, dtype=dtype), mpitype],
                    [out, (counts.tolist(), displ.tolist()), mpitype])
    return out


def _by_owner(values: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(owner, kind="stable")
    return values[order], np.bincount(owner, minlength=n)


def _int_vocabulary(comm, key_arrays: Sequence[np.ndarray], high: int) -> tuple[Vocabulary, object]:
    """The vocabulary of integer ids and a function mapping keys to rows."""
    n = comm.size
    total = comm.allreduce(sum(len(k) for k in key_arrays))
    direct = high < _DIRECT_LIMIT and high <= 4 * total + (1 << 22)
    if direct:
        flags = np.zeros(high + 1, dtype=np.bool_)
        for keys in key_arrays:
            _mark(keys, flags)
        local = np.flatnonzero(flags).astype(np.int64)
        del flags
    else:
        local = _distinct(np.concatenate([k.astype(np.int64, copy=False) for k in key_arrays]))
    send, counts = _by_owner(local, (local % n).astype(np.int64), n)
    mine = _distinct(_alltoallv(comm, send, counts, np.int64))
    everyone = _allgatherv(comm, mine, np.int64)
    ints = everyone[np.argsort(int_text_order(everyone, _POW10_INT), kind="stable")]
    rowtype = np.int32 if len(ints) < 2 ** 31 else np.int64
    if direct:
        table = np.full(high + 1, -1, dtype=rowtype)
        table[ints] = np.arange(len(ints), dtype=rowtype)

        def rows_of(keys):
            out = np.empty(len(keys), dtype=rowtype)
            _lookup(keys, table, out)
            return out
    else:
        numeric = np.argsort(ints, kind="stable")
        sorted_ints = ints[numeric]

        def rows_of(keys):
            return numeric[np.searchsorted(sorted_ints, keys)].astype(rowtype)
    return Vocabulary(ints, None), rows_of


def _string_vocabulary(comm, key_arrays: Sequence[np.ndarray], tables: Sequence[IdTable]):
    """The vocabulary of string ids (integer-looking ones included as their text) and a key -> row map."""
    n = comm.size
    merged = IdTable()  # every local id, as text, once
    code_of_table = []
    for keys, table in zip(key_arrays, tables):
        code_of_table.append(np.array([merged.add(t) for t in table.texts()], dtype=np.int64))
    int_codes = {}
    for keys in key_arrays:
        ints = np.unique(keys[keys >= 0])
        for v in ints.tolist():
            if v not in int_codes:
                int_codes[v] = merged.add(str(v))
    texts = merged.texts()
    owner = (merged.codes_hashes % np.uint64(n)).astype(np.int64) if len(texts) else np.zeros(0, np.int64)
    # the distinct texts to their responsible workers (lengths, then the bytes)
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n)
    encoded = [texts[c].encode("utf-8") for c in order.tolist()]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    byte_counts = np.zeros(n, dtype=np.int64)
    np.add.at(byte_counts, owner[order], lengths)
    got_lengths = _alltoallv(comm, lengths, counts, np.int64)
    got_blob = _alltoallv(comm, blob, byte_counts, np.uint8).tobytes()
    bounds = np.concatenate([[0], np.cumsum(got_lengths)]).tolist()
    mine = sorted({got_blob[bounds[k]:bounds[k + 1]].decode("utf-8") for k in range(len(got_lengths))})
    mine_enc = [m.encode("utf-8") for m in mine]
    all_lengths = _allgatherv(comm, np.array([len(e) for e in mine_enc], dtype=np.int64), np.int64)
    all_blob = _allgatherv(comm, np.frombuffer(b"".join(mine_enc), dtype=np.uint8) if mine_enc
                           else np.zeros(0, np.uint8), np.uint8).tobytes()
    bounds = np.concatenate([[0], np.cumsum(all_lengths)]).tolist()
    words = sorted(all_blob[bounds[k]:bounds[k + 1]].decode("utf-8") for k in range(len(all_lengths)))
    strings = np.empty(len(words), dtype=object)
    strings[:] = words
    row_of_text = {w: r for r, w in enumerate(words)}
    rowtype = np.int32 if len(words) < 2 ** 31 else np.int64
    merged_rows = np.array([row_of_text[t] for t in texts], dtype=rowtype)
    int_rows = {v: merged_rows[c] for v, c in int_codes.items()}
    code_rows_of_table = [merged_rows[c] if len(c) else np.zeros(0, rowtype) for c in code_of_table]

    def rows_of(keys, t):
        out = np.empty(len(keys), dtype=rowtype)
        neg = keys < 0
        coded = np.empty(int(neg.sum()), dtype=rowtype)
        _lookup_codes(keys[neg], code_rows_of_table[t], coded)
        out[neg] = coded
        if not neg.all():
            pos_keys = keys[~neg]
            uniq, inverse = np.unique(pos_keys, return_inverse=True)
            out[~neg] = np.array([int_rows[v] for v in uniq.tolist()], dtype=rowtype)[inverse]
        return out
    return Vocabulary(None, strings), rows_of


def build_vocabulary(comm, key_arrays: Sequence[np.ndarray], tables: Sequence[IdTable]):
    """One vocabulary over the ids in ``key_arrays`` (each with its :class:`IdTable` in ``tables``), the
    same on every worker of ``comm`` (a collective); returns it and each key array mapped to rows."""
    local_int = all(len(t) == 0 for t in tables)
    from mpi4py import MPI

    all_int = comm.allreduce(int(local_int), op=MPI.MIN) == 1
    if all_int:
        high = comm.allreduce(max([int(k.max()) for k in key_arrays if len(k)] or [0]), op=MPI.MAX)
        vocab, rows_of = _int_vocabulary(comm, key_arrays, high)
        return vocab, [rows_of(k) for k in key_arrays]
    vocab, rows_of = _string_vocabulary(comm, key_arrays, tables)
    return vocab, [rows_of(k, t) for t, k in enumerate(key_arrays)]


def vocabulary_of_strings(comm, texts) -> np.ndarray:
    """The sorted union (object array of ``str``) of every worker's ``texts``; a collective of ``comm``."""
    table = IdTable()
    for t in texts:
        table.add(t)
    keys = -1 - np.arange(len(table), dtype=np.int64)
    vocab, _ = _string_vocabulary(comm, [keys], [table])
    return vocab.ids
