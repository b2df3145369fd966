"""A worker's share of rating or edge triples: parsed from its byte range, sent to their owners once.

:func:`load_share` is the compiled path behind ``paralg.load(pattern="fmap" | "smap" | "fsmap")``:

1. each worker parses only its byte range of the input (:func:`~parasol_hybrid.data.scan_ratings.scan_ratings`);
2. the ids become rows of the job's vocabulary (:func:`~parasol_hybrid.data.vocab.build_vocabulary`, built once
   from the distinct ids, the same on every worker);
3. each triple goes to its owner (``fmap``: the stable hash of its row id modulo ``nworker``; ``smap``: of its
   column id; ``fsmap``: a ``p × q`` grid of both, :func:`~parasol_hybrid.data.partition.grid_shape`) in one
   ``MPI_Alltoallv`` of 16 bytes a triple (MPICH moves it through shared memory between the workers of a node
   and over the network between nodes). An owner keeps what it receives in the order of the files.

So every line is parsed once, in parallel; the result does not depend on how the files are cut or how many
nodes there are, and matches ``partition(parse_ratings(read_all_lines(files)), pattern, worker, nworker)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.partition import PATTERNS, grid_shape
from parasol_hybrid.data.scan_ratings import scan_ratings
from parasol_hybrid.data.vocab import Vocabulary, _alltoallv, build_vocabulary
from parasol_hybrid.errors import InputError

__all__ = ["RatingsShare", "load_share"]


@dataclass
class RatingsShare:
    """A worker's triples with dense rows: ``row_ids[u[t]]``, ``col_ids[i[t]]``, ``values[t]``.

    ``row_ids`` / ``col_ids`` are the job's sorted (as strings) distinct ids, the same on every worker
    (for ``shared_ids`` loads one vocabulary serves both). ``bad_lines`` counts the bad lines of this
    worker's byte range (their sum over the workers is the input's count). ``rows`` / ``cols`` give the
    ids of each triple, as :class:`~parasol_hybrid.data.parsers.Ratings` has them (built on use).
    """

    u: np.ndarray  # int32 (int64 past 2^31 ids)
    i: np.ndarray
    values: np.ndarray  # float64
    row_vocab: Vocabulary = field(repr=False)
    col_vocab: Vocabulary = field(repr=False)
    bad_lines: int = 0

    def __len__(self) -> int:
        return len(self.values)

    @property
    def row_ids(self) -> np.ndarray:
        return self.row_vocab.ids

    @property
    def col_ids(self) -> np.ndarray:
        return self.col_vocab.ids

    @property
    def rows(self) -> np.ndarray:
        return self.row_ids[self.u]

    @property
    def cols(self) -> np.ndarray:
        return self.col_ids[self.i]


@njit(cache=True, nogil=True)
def _owners(u, i, row_hashes, col_hashes, pattern, nworker, p, q, out):
    nw = np.uint64(nworker)
    up = np.uint64(p)
    uq = np.uint64(q)
    for t in range(u.shape[0]):
        if pattern == 1:
            out[t] = row_hashes[u[t]] % nw
        elif pattern == 2:
            out[t] = col_hashes[i[t]] % nw
        else:
            out[t] = (row_hashes[u[t]] % up) * uq + col_hashes[i[t]] % uq


@njit(cache=True, nogil=True)
def _group(owner, counts, values, out):
    """``values`` grouped by owner into ``out`` (a stable counting sort: file order within each owner)."""
    start = np.zeros(counts.shape[0], dtype=np.int64)
    acc = 0
    for w in range(counts.shape[0]):
        start[w] = acc
        acc += counts[w]
    for t in range(owner.shape[0]):
        w = owner[t]
        out[start[w]] = values[t]
        start[w] += 1


def _send_to_owners(comm, values: np.ndarray, owner: np.ndarray, counts: np.ndarray) -> np.ndarray:
    grouped = np.empty_like(values)
    _group(owner, counts, values, grouped)
    return _alltoallv(comm, grouped, counts, values.dtype)


def load_share(comm, files: Sequence[Path], pattern: str, on_bad_line: str = "error",
               weight_required: bool = True, shared_ids: bool = False) -> RatingsShare:
    """This worker's share (``comm.rank`` of ``comm.size`` workers) of the triples in ``files`` under
    ``pattern``; a collective of ``comm``. See the module docstring."""
    if pattern not in PATTERNS or pattern == "linesplit":
        raise InputError(f"load_share partitions by id: pattern must be 'fmap', 'smap' or 'fsmap', got {pattern!r}")
    worker, nworker = comm.rank, comm.size
    scanned = scan_ratings(files, worker, nworker, on_bad_line, weight_required)
    if shared_ids:
        vocab, (u, i) = build_vocabulary(comm, [scanned.rows, scanned.cols], [scanned.row_ids, scanned.col_ids])
        row_vocab = col_vocab = vocab
    else:
        row_vocab, (u,) = build_vocabulary(comm, [scanned.rows], [scanned.row_ids])
        col_vocab, (i,) = build_vocabulary(comm, [scanned.cols], [scanned.col_ids])
    values, bad = scanned.values, scanned.bad_lines
    del scanned  # the int64 keys: the rows replace them
    rowtype = np.result_type(u.dtype, i.dtype)
    u, i = u.astype(rowtype, copy=False), i.astype(rowtype, copy=False)
    p, q = grid_shape(nworker)
    owner = np.empty(len(values), dtype=np.uint16 if nworker <= 1 << 16 else np.uint32)
    _owners(u, i, row_vocab.hashes, col_vocab.hashes, {"fmap": 1, "smap": 2, "fsmap": 3}[pattern], nworker, p, q,
            owner)
    counts = np.bincount(owner, minlength=nworker)
    # one array at a time, each freed once sent: at most one extra copy of one array is alive
    got_u = _send_to_owners(comm, u, owner, counts)
    del u
    got_i = _send_to_owners(comm, i, owner, counts)
    del i
    got_v = _send_to_owners(comm, values, owner, counts)
    del values, owner
    return RatingsShare(got_u, got_i, got_v, row_vocab, col_vocab, bad)
