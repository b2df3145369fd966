"""Compiled parser of libsvm lines (0/1 labels, or real targets), over a worker's byte range.

:func:`scan_libsvm` gives exactly what ``parse_libsvm(read_lines(files, worker, nworker))`` gives (with
``labels="real"``: what :func:`~parasol_hybrid.data.parsers.parse_regression` gives, Lasso's input), but
reads the range as whole-line ``uint8`` chunks (:func:`~parasol_hybrid.data.chunks.read_chunks`) and
parses them with a numba kernel: no Python object per line or per field.

The kernel handles the plain ASCII spelling of a line (decimal numbers, ASCII whitespace, ``#``
comments). A line it does not fully understand (a byte >= 0x80, a number such as ``1_0`` or ``inf``, a
bad label or field) goes to the Python parser for that one line, so results and error messages stay
identical. A value is computed in the kernel only where that is exact (:mod:`.numbers`); any other
decimal value is converted by Python ``float()`` for that field, in batches. With ``labels="real"`` the
first field is any finite number, kept as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.bytescan import NEWLINE, WHITESPACE, line_end, line_text
from parasol_hybrid.data.chunks import CHUNK_BYTES, Chunk, read_chunks
from parasol_hybrid.data.lines import Line
from parasol_hybrid.data.numbers import EXACT, PENDING, UNSURE, decimal_field
from parasol_hybrid.data.parsers import LibSVM, _check_policy, parse_libsvm, parse_regression
from parasol_hybrid.errors import ConfigError

__all__ = ["scan_libsvm", "LABEL_KINDS"]

LABEL_KINDS = ("binary", "real")  #: the ``labels`` scan_libsvm takes

_HASH, _COLON = 35, 58
_DONE, _FALLBACK, _PENDING_FULL = 0, 1, 2  # statuses of _libsvm_lines
_PENDING_BATCH = 1 << 14  # deferred values converted per Python pass


@njit(cache=True, nogil=True)
def _count_newlines_colons(data):
    """The number of newline and of ``:`` bytes in ``data`` (bounds on rows and non-zeros)."""
    nl = 0
    nc = 0
    for j in range(data.shape[0]):
        c = data[j]
        if c == NEWLINE:
            nl += 1
        elif c == _COLON:
            nc += 1
    return nl, nc


@njit(cache=True, nogil=True)
def _libsvm_lines(data, pos, real, labels, indptr, indices, values, pending, state):
    """Parse libsvm lines of ``data`` from ``pos`` into the CSR arrays, until a line needs Python.

    ``real``: a label is any finite number, kept as it is (else: 0, 1, -1 or +1, normalised to 0/1).
    ``state`` holds ``[rows, nnz, npending, line_start, line_end]``: rows and non-zeros written so far
    (``indptr[rows] == nnz``), pending fields (``pending[j] = (k, start, end)``: ``values[k]``, or
    ``labels[-1 - k]`` when ``k < 0``, is ``float(data[start:end])``), and the bounds of the line that
    stopped the scan. Returns ``_DONE``
    (all lines parsed), ``_FALLBACK`` (the line at ``state[3:5]`` is for the Python parser; nothing of
    it was written), or ``_PENDING_FULL`` (``pending`` is full; the line at ``state[3]`` is not written).
    """
    n = data.shape[0]
    rows = state[0]
    nnz = state[1]
    npend = state[2]
    cap = pending.shape[0]
    while pos < n:
        start = pos
        i = pos
        while i < n and WHITESPACE[data[i]] == 1:
            i += 1
        if i >= n or data[i] == NEWLINE or data[i] == _HASH:  # blank or comment line
            pos = line_end(data, i) + 1
            continue
        label_start = i
        kind, label, i = decimal_field(data, i, n)
        row_nnz = nnz
        row_pend = npend
        status = _DONE
        if not real:
            ok = kind == EXACT and (label == 1.0 or label == 0.0 or label == -1.0)
            label = 1.0 if label == 1.0 else 0.0
        else:
            ok = kind != UNSURE
            if kind == PENDING:
                if npend == cap:
                    status = _PENDING_FULL
                    ok = False
                else:
                    pending[npend, 0] = -1 - rows
                    pending[npend, 1] = label_start
                    pending[npend, 2] = i
                    npend += 1
                    label = np.nan
        while ok:
            while i < n and WHITESPACE[data[i]] == 1:
                i += 1
            if i >= n or data[i] == NEWLINE or data[i] == _HASH:
                break
            j = i
            idx = 0
            while j < n and 48 <= data[j] <= 57 and j - i < 18:
                idx = idx * 10 + (data[j] - 48)
                j += 1
            if j == i or j >= n or data[j] != _COLON:
                ok = False
                break
            kind, value, end = decimal_field(data, j + 1, n)
            if kind == UNSURE:
                ok = False
                break
            if kind == PENDING:
                if npend == cap:
                    status = _PENDING_FULL
                    ok = False
                    break
                pending[npend, 0] = nnz
                pending[npend, 1] = j + 1
                pending[npend, 2] = end
                npend += 1
                value = np.nan
            indices[nnz] = idx
            values[nnz] = value
            nnz += 1
            i = end
        if ok:
            labels[rows] = label
            rows += 1
            indptr[rows] = nnz
            pos = line_end(data, i) + 1
            continue
        state[0] = rows
        state[1] = row_nnz
        state[2] = row_pend
        state[3] = start
        state[4] = line_end(data, i)
        return _FALLBACK if status == _DONE else status
    state[0] = rows
    state[1] = nnz
    state[2] = npend
    state[3] = n
    state[4] = n
    return _DONE


@njit(cache=True, nogil=True)
def _gather_fields(data, pending):
    """The texts ``data[start:end]`` of the ``pending`` rows ``(k, start, end)``, joined by spaces."""
    size = 0
    for j in range(pending.shape[0]):
        size += pending[j, 2] - pending[j, 1] + 1
    out = np.empty(size, dtype=np.uint8)
    at = 0
    for j in range(pending.shape[0]):
        length = pending[j, 2] - pending[j, 1]
        out[at:at + length] = data[pending[j, 1]:pending[j, 2]]
        out[at + length] = 32
        at += length + 1
    return out


def _resolve(data: np.ndarray, labels: np.ndarray, values: np.ndarray, pending: np.ndarray) -> None:
    """``values[k]`` (``labels[-1 - k]`` when ``k < 0``) ``= float(data[start:end])`` for each pending
    ``(k, start, end)`` (Python's rounding)."""
    texts = _gather_fields(data, pending).tobytes().split()
    converted = np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    if not np.isfinite(converted).all():  # pragma: no cover - decimal_field only defers finite decimals
        raise AssertionError("a deferred value is not finite")
    k = pending[:, 0]
    label = k < 0
    if label.any():
        labels[-1 - k[label]] = converted[label]
        values[k[~label]] = converted[~label]
    else:
        values[k] = converted


def _parse_real(lines: Iterable[Line], on_bad_line: str) -> LibSVM:
    """:func:`parse_regression` as a :class:`LibSVM` (labels: the targets)."""
    targets, indptr, indices, data, n_features, bad = parse_regression(lines, on_bad_line)
    return LibSVM(targets, indptr, indices, data, n_features, bad)


def _scan_libsvm_chunk(chunk: Chunk, skip: bool, real: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(labels, indptr, indices, values, bad lines) of one chunk (``real``: real-valued labels)."""
    data = chunk.data
    newlines, colons = _count_newlines_colons(data)
    max_rows = newlines + 1
    labels = np.empty(max_rows, dtype=np.float64)
    indptr = np.zeros(max_rows + 1, dtype=np.int64)
    indices = np.empty(colons, dtype=np.int64)
    values = np.empty(colons, dtype=np.float64)
    pending = np.empty((_PENDING_BATCH, 3), dtype=np.int64)
    state = np.zeros(5, dtype=np.int64)
    bad = 0
    pos = 0
    while True:
        status = _libsvm_lines(data, pos, real, labels, indptr, indices, values, pending, state)
        rows, nnz, npend, start, end = (int(v) for v in state)
        if status == _PENDING_FULL or (status == _DONE and npend):
            _resolve(data, labels, values, pending[:npend])
            state[2] = 0
            if status == _PENDING_FULL and npend == 0:  # one line has more such fields than the buffer
                pending = np.empty((2 * len(pending), 3), dtype=np.int64)
            pos = start
            continue
        if status == _DONE:
            break
        # _FALLBACK: the Python parser decides this one line
        text = line_text(data, start, end)
        python = _parse_real if real else parse_libsvm
        one = python([Line(chunk.path, 0, text)], on_bad_line="skip")
        if one.bad_lines:
            if not skip:
                python([Line(chunk.path, chunk.lineno(start), text)], on_bad_line="error")
                raise AssertionError("unreachable: the line was bad")  # pragma: no cover
            bad += 1
        elif len(one):
            k = len(one.indices)
            labels[rows] = one.labels[0]
            indices[nnz:nnz + k] = one.indices
            values[nnz:nnz + k] = one.data
            state[0] = rows + 1
            state[1] = nnz + k
            indptr[rows + 1] = nnz + k
        pos = end + 1
    for array, size in ((labels, rows), (indptr, rows + 1), (indices, nnz), (values, nnz)):
        array.resize(size, refcheck=False)  # shrink in place: the bounds were from a byte count
    return labels, indptr, indices, values, bad


def scan_libsvm(files: Sequence[Path], worker: int, nworker: int, on_bad_line: str = "error", *,
                labels: str = "binary", chunk_bytes: int = CHUNK_BYTES) -> LibSVM:
    """The libsvm rows of ``worker``'s byte range of ``files``, as
    ``parse_libsvm(read_lines(files, worker, nworker), on_bad_line)`` gives them, parsed by compiled code.

    ``labels="real"``: the first field is a real-valued target (regression), as
    :func:`parse_regression` reads it: any finite number, kept as written, and its rules and messages
    for a bad line. Reads ``chunk_bytes`` at a time; memory is about the input chunk plus twice the
    CSR arrays.
    """
    skip = _check_policy(on_bad_line)
    if labels not in LABEL_KINDS:
        raise ConfigError(f"labels must be one of {list(LABEL_KINDS)}, got {labels!r}")
    real = labels == "real"
    parts = [_scan_libsvm_chunk(chunk, skip, real) for chunk in read_chunks(files, worker, nworker, chunk_bytes)]
    bad = sum(p[4] for p in parts)
    if len(parts) == 1:
        labels, indptr, indices, values, _ = parts[0]
    elif not parts:
        labels, indptr = np.zeros(0, np.float64), np.zeros(1, np.int64)
        indices, values = np.zeros(0, np.int64), np.zeros(0, np.float64)
    else:
        labels = np.concatenate([p[0] for p in parts])
        offsets = np.cumsum([0] + [len(p[2]) for p in parts])
        indptr = np.concatenate([np.zeros(1, np.int64)] + [p[1][1:] + off for p, off in zip(parts, offsets)])
        indices = np.concatenate([p[2] for p in parts])
        values = np.concatenate([p[3] for p in parts])
    del parts
    return LibSVM(
        labels=labels,
        indptr=indptr,
        indices=indices,
        data=values,
        n_features=int(indices.max()) + 1 if len(indices) else 0,
        bad_lines=bad,
    )
