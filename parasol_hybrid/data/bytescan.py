"""Byte-level pieces the compiled scanners share: a byte class, line ends, newline counts, a line's text.

The scanners (:mod:`.scan_ratings`, :mod:`.libsvm`, :mod:`.words`, :mod:`.documents`) and
the chunk reader (:mod:`.chunks`) work on ``uint8`` arrays of whole lines; these kernels and tables are
what they have in common. :func:`line_text` gives a line the text :func:`~parasol_hybrid.data.lines.read_lines`
would give it, for the Python parser of a line the kernels leave to it and for error messages.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["WHITESPACE", "NEWLINE", "line_end", "last_newline", "count_newlines", "same_bytes", "line_text"]

NEWLINE = 10

#: 1 for the ASCII bytes ``str.split()`` splits on, except the newline (which ends a line), else 0
WHITESPACE = np.zeros(256, dtype=np.uint8)
for _b in (9, 11, 12, 13, 28, 29, 30, 31, 32):
    WHITESPACE[_b] = 1


@njit(cache=True, nogil=True)
def line_end(data, start):
    """Index of the first newline at or after ``start``: the end of the line holding ``start``
    (``len(data)`` when no newline follows)."""
    n = data.shape[0]
    i = start
    while i < n and data[i] != NEWLINE:
        i += 1
    return i


@njit(cache=True, nogil=True)
def last_newline(data):
    """Index of the last newline (-1: none)."""
    for j in range(data.shape[0] - 1, -1, -1):
        if data[j] == NEWLINE:
            return j
    return -1


@njit(cache=True, nogil=True)
def count_newlines(data):
    """The number of newline bytes in ``data`` (the parsers size their outputs by it)."""
    k = 0
    for j in range(data.shape[0]):
        if data[j] == NEWLINE:
            k += 1
    return k


@njit(cache=True, nogil=True, inline="always")
def same_bytes(a, i, b, j, n):
    """Whether ``a[i:i + n]`` and ``b[j:j + n]`` hold the same bytes (the hash tables' check of a hit)."""
    for k in range(n):
        if a[i + k] != b[j + k]:
            return False
    return True


def line_text(data: np.ndarray, start: int, end: int) -> str:
    """The text ``read_lines`` gives for the line in ``data[start:end]`` (utf-8, errors replaced, no CR)."""
    text = data[start:end].tobytes().decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text
