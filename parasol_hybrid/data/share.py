"""A worker's share of rating or edge triples: parsed from its byte range, sent to their owners once.

:func:`load_share` is the compiled path behind ``paralg.load(pattern="fmap" | "smap" | "fsmap")``:

1. each worker parses only its byte range of the input (:func:`~parasol_hybrid.data.scan_ratings.scan_ratings`);
2. the ids become rows of the job's vocabulary (:func:`~parasol_hybrid.data.vocab.build_vocabulary`, built once
   from the distinct ids, the same on every worker);
3. each triple goes to its owner (``fmap``: the stable hash of its row id modulo ``nworker``; ``smap``: of its
   column id; ``fsmap``: a ``p × q`` grid of both, :func:`~parasol_hybrid.data.partition.grid_shape`), 16 bytes
   a triple: through shared memory to the workers of the same node, in one ``MPI_Alltoallv`` to the others
   (:class:`~parasol_hybrid.data.exchange.Exchange`). An owner keeps what it receives in the order of the files.

So every line is parsed once, in parallel; the result does not depend on how the files are cut or how many
nodes there are, and matches ``partition(parse_ratings(read_all_lines(files)), pattern, worker, nworker)``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit

from parasol_hybrid.config import ENV_TRACE_LOAD, environment_value
from parasol_hybrid.data.partition import PATTERNS, grid_shape
from parasol_hybrid.data.scan_ratings import scan_ratings
from parasol_hybrid.data.exchange import RUN, Exchange
from parasol_hybrid.data.vocab import Vocabulary, build_vocabulary
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
def _owners(u, i, row_part, col_part, q, out):
    """The owner of each triple: ``row_part[u] * q + col_part[i]`` (one of the parts is all zeros for
    ``fmap`` / ``smap``)."""
    for t in range(u.shape[0]):
        out[t] = row_part[u[t]] * q + col_part[i[t]]


class _Trace:
    """With ``PARASOL_TRACE_LOAD=1`` in the environment, print the seconds of each phase (stderr)."""

    def __init__(self, worker: int):
        self.on = environment_value(ENV_TRACE_LOAD) == "1"
        self.worker = worker
        self.t = time.perf_counter()

    def __call__(self, phase: str) -> None:
        if self.on:
            now = time.perf_counter()
            print(f"load_share worker {self.worker}: {phase} {now - self.t:.3f} s", file=sys.stderr, flush=True)
            self.t = now


def load_share(comm, files: Sequence[Path], pattern: str, on_bad_line: str = "error",
               weight_required: bool = True, shared_ids: bool = False, node_of: list[int] | None = None,
               job_id: str | None = None, shuffle_seed=None) -> RatingsShare:
    """This worker's share (``comm.rank`` of ``comm.size`` workers) of the triples in ``files`` under
    ``pattern``; a collective of ``comm``. See the module docstring. ``node_of`` (the node of each worker)
    and ``job_id`` let the workers of a node exchange through shared memory (:mod:`.exchange`). With
    ``shuffle_seed`` (a seed of ``np.random.default_rng``) the triples a worker receives from each sender
    come in a random order of runs of ``RUN`` (64) consecutive triples (the same for the same seed and
    input) instead of the files' order: a shuffle for SGD without a second copy of the share."""
    if pattern not in PATTERNS or pattern == "linesplit":
        raise InputError(f"load_share partitions by id: pattern must be 'fmap', 'smap' or 'fsmap', got {pattern!r}")
    worker, nworker = comm.rank, comm.size
    trace = _Trace(worker)
    failure = None
    try:
        scanned = scan_ratings(files, worker, nworker, on_bad_line, weight_required)
    except InputError as exc:  # every worker learns of it: none waits in the exchange for good
        failure = exc
    errors = comm.allgather(None if failure is None else str(failure))
    if failure is not None:
        raise failure
    for k, text in enumerate(errors):
        if text is not None:  # the same words on every worker, whichever the launcher reports first
            raise InputError(f"{text} (met by worker {k})")
    trace("parse")
    if shared_ids:
        vocab, (u, i) = build_vocabulary(comm, [scanned.rows, scanned.cols], [scanned.row_ids, scanned.col_ids])
        row_vocab = col_vocab = vocab
    else:
        row_vocab, (u,) = build_vocabulary(comm, [scanned.rows], [scanned.row_ids])
        col_vocab, (i,) = build_vocabulary(comm, [scanned.cols], [scanned.col_ids])
    values, bad = scanned.values, scanned.bad_lines
    del scanned  # the keys: the rows replace them
    trace("vocabulary")
    rowtype = np.result_type(u.dtype, i.dtype)
    u, i = u.astype(rowtype, copy=False), i.astype(rowtype, copy=False)
    p, q = grid_shape(nworker)
    small = np.uint16 if nworker <= 1 << 16 else np.uint32
    if pattern == "fmap":
        row_part, col_part, q = (row_vocab.hashes % np.uint64(nworker)).astype(small), np.zeros(len(col_vocab), small), 1
    elif pattern == "smap":
        row_part, col_part, q = np.zeros(len(row_vocab), small), (col_vocab.hashes % np.uint64(nworker)).astype(small), 1
    else:
        row_part = (row_vocab.hashes % np.uint64(p)).astype(small)
        col_part = (col_vocab.hashes % np.uint64(q)).astype(small)
    owner = np.empty(len(values), dtype=small)
    _owners(u, i, row_part, col_part, q, owner)
    counts = np.bincount(owner, minlength=nworker)
    trace("owners")
    # one array at a time, the largest first, each freed once grouped: at most 8 bytes a triple more than the
    # triples themselves are alive (the grouped copy of one array and what has arrived of it)
    order = None
    if shuffle_seed is not None:  # runs of RUN consecutive triples in a random order
        order = np.random.default_rng(shuffle_seed).permutation(-(-len(values) // RUN)).astype(np.int64)
    exchange = Exchange(comm, node_of, job_id)
    try:
        packed = exchange.group(values, owner, counts, order=order)
        del values
        got_v = exchange.deliver(packed)
        packed = exchange.group(u, owner, counts, order=order)
        del u
        got_u = exchange.deliver(packed)
        packed = exchange.group(i, owner, counts, out=packed.values, order=order)  # the rows' buffer again
        del i
        got_i = exchange.deliver(packed)
        del packed, owner, order
    finally:
        exchange.close()
    trace("exchange")
    return RatingsShare(got_u, got_i, got_v, row_vocab, col_vocab, bad)
