"""Assign rating / edge triples to workers (parasol's fmap, smap, fsmap).

- ``linesplit``: no per-triple rule; each worker keeps the lines of its
  byte range (:func:`parasol_hybrid.data.lines.read_lines`).
- ``fmap``: by row id, so all triples of a row land on one worker.
- ``smap``: by column id.
- ``fsmap``: by both, on a ``p x q`` grid of workers (see :func:`grid_shape`).

Hashes are :func:`stable_hash` (FNV-1a of the id's utf-8 text, mixed), which is the same in every process and
run, so all workers agree on the owner of a triple without talking.
"""

from __future__ import annotations

import math

import numpy as np

from parasol_hybrid.data.idhash import hash_texts
from parasol_hybrid.data.lines import _check_worker
from parasol_hybrid.data.parsers import Ratings
from parasol_hybrid.errors import InputError

__all__ = ["PATTERNS", "stable_hash", "grid_shape", "owner", "select", "partition"]

PATTERNS = ("linesplit", "fmap", "smap", "fsmap")


def stable_hash(ids: np.ndarray) -> np.ndarray:
    """The stable 64-bit hash of each id's utf-8 text (:func:`~parasol_hybrid.data.idhash.hash_bytes`), as
    ``uint64``.

    Unlike ``hash()``, which Python salts per process, the result is the same in every process and run;
    it is the hash the compiled loader (:mod:`parasol_hybrid.data.share`) partitions by.
    """
    items = np.asarray(ids, dtype=object).ravel().tolist()
    return hash_texts(items)


def grid_shape(nworker: int) -> tuple[int, int]:
    """``(p, q)`` with ``p * q == nworker`` and ``p`` the largest divisor ``<= sqrt(nworker)``."""
    _check_worker(0, nworker)
    p = math.isqrt(nworker)
    while nworker % p:
        p -= 1
    return p, nworker // p


def owner(ratings: Ratings, pattern: str, nworker: int) -> np.ndarray:
    """The worker (``int64`` in ``[0, nworker)``) of each triple under ``pattern``.

    ``fmap``: ``h(row) % nworker``; ``smap``: ``h(col) % nworker``;
    ``fsmap``: ``(h(row) % p) * q + h(col) % q`` with ``(p, q) = grid_shape(nworker)``.
    ``linesplit`` has no per-triple owner and is rejected here; use
    :func:`partition`, which keeps a worker's lines as they were read.
    """
    _check_worker(0, nworker)
    if pattern == "fmap":
        return (stable_hash(ratings.rows) % np.uint64(nworker)).astype(np.int64)
    if pattern == "smap":
        return (stable_hash(ratings.cols) % np.uint64(nworker)).astype(np.int64)
    if pattern == "fsmap":
        p, q = grid_shape(nworker)
        grid_row = (stable_hash(ratings.rows) % np.uint64(p)).astype(np.int64)
        grid_col = (stable_hash(ratings.cols) % np.uint64(q)).astype(np.int64)
        return grid_row * q + grid_col
    if pattern == "linesplit":
        raise InputError(
            "partition pattern 'linesplit' assigns lines by byte range when they are "
            "read (read_lines), not per triple; owner() handles 'fmap', 'smap', 'fsmap'"
        )
    raise InputError(f"unknown partition pattern {pattern!r} (known patterns: {list(PATTERNS)})")


def select(ratings: Ratings, mask: np.ndarray) -> Ratings:
    """The triples of ``ratings`` picked by ``mask`` (boolean mask or index array).

    ``bad_lines`` is carried over unchanged: it counts lines of the input.
    """
    return Ratings(
        rows=ratings.rows[mask],
        cols=ratings.cols[mask],
        values=ratings.values[mask],
        bad_lines=ratings.bad_lines,
    )


def partition(ratings: Ratings, pattern: str, worker: int, nworker: int) -> Ratings:
    """The triples of ``ratings`` that ``worker`` of ``nworker`` owns under ``pattern``.

    For ``linesplit`` the input is returned as is: the split already
    happened when each worker read its own byte range.
    """
    _check_worker(worker, nworker)
    if pattern == "linesplit":
        return ratings
    return select(ratings, owner(ratings, pattern, nworker) == worker)
