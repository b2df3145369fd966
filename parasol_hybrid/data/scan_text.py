"""Compiled parsers for the libsvm and words formats, over a worker's byte range.

:func:`scan_libsvm` and :func:`scan_words` give exactly what
``parse_libsvm(read_lines(files, worker, nworker))`` and
``count_words(read_lines(files, worker, nworker))`` give, but read the range as
whole-line ``uint8`` chunks (:func:`parasol_hybrid.data.chunks.read_chunks`) and
parse them with numba kernels: no Python object per line or per word.

libsvm: the kernel handles the plain ASCII spelling of a line (decimal numbers,
ASCII whitespace, ``#`` comments). A line it does not fully understand (a byte
>= 0x80, a number such as ``1_0`` or ``inf``, a bad label or field) goes to the
Python parser for that one line, so results and error messages stay identical.
A value is computed in the kernel only where that is exact (integer mantissa
< 2^53 and decimal exponent within ±22: one IEEE multiply or divide by an exact
power of ten, hence bit-identical to ``float()``); any other decimal value is
converted by Python ``float()`` for that field. With ``labels="real"`` (regression, Lasso's
input) the first field is any finite number, kept as written, and the Python parser of the lines
the kernel does not understand is :func:`parse_regression`, with its rules and messages.

words: a word is a maximal run of ``[-a-zA-Z0-9_]`` (bytes >= 0x80 are
separators, as the replacement characters of ``count_words`` are). Counting
uses an open-addressing hash table over the word bytes (64-bit hash, bytes
compared on a hit); a Python ``str`` is built once per distinct word.

documents (LDA's input, :func:`scan_documents`): one document per non-blank line, its tokens the
runs of letters of the lower-cased line, each token a code into the distinct words of the range.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.chunks import CHUNK_BYTES, Chunk, read_chunks
from parasol_hybrid.data.chunks import count_newlines as _count_newlines
from parasol_hybrid.data.lines import Line
from parasol_hybrid.data.parsers import BAD_LINE_POLICIES, LibSVM, _check_policy, parse_libsvm
from parasol_hybrid.errors import ConfigError, InputError

__all__ = ["scan_libsvm", "parse_regression", "scan_words", "word_keys", "Documents", "scan_documents"]

# ------------------------------------------------------------------ byte classes

_WHITESPACE = np.zeros(256, dtype=np.uint8)  # ASCII bytes str.split() splits on, except "\n" (line end)
for _b in (9, 11, 12, 13, 28, 29, 30, 31, 32):
    _WHITESPACE[_b] = 1
_WORD_CHAR = np.zeros(256, dtype=np.uint8)  # [-a-zA-Z0-9_]
for _b in b"-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _WORD_CHAR[_b] = 1
_POW10 = np.array([10.0 ** j for j in range(23)], dtype=np.float64)  # exact: 10^22 < 2^53 * 2^22
assert all(float(10 ** j) == _POW10[j] for j in range(23))

_NEWLINE, _HASH, _COLON = 10, 35, 58

# number kinds returned by _parse_number
_EXACT = 0  # value computed exactly in the kernel
_PENDING = 1  # a plain decimal, finite, but not exact in the kernel: Python float() converts it
_UNSURE = 2  # anything else (odd spelling, maybe infinite, field not ended): the line goes to Python

# statuses of _libsvm_lines
_DONE, _FALLBACK, _PENDING_FULL = 0, 1, 2

_MANTISSA_LIMIT = 1 << 53
_KEEP_DIGITS = 10 ** 17  # stop accumulating mantissa digits from here (no int64 overflow)
_EXP_CAP = 100_000
_PENDING_BATCH = 1 << 14  # deferred values converted per Python pass
_FINITE_MAGNITUDE = 300  # a decimal below 10^300 is finite


# ------------------------------------------------------------------ libsvm kernels

@njit(cache=True, nogil=True)
def _count_newlines_colons(data):
    """The number of newline and of ``:`` bytes in ``data`` (bounds on rows and non-zeros)."""
    nl = 0
    nc = 0
    for j in range(data.shape[0]):
        c = data[j]
        if c == 10:
            nl += 1
        elif c == 58:
            nc += 1
    return nl, nc


@njit(cache=True, nogil=True)
def _field_ends(data, i, n):
    """True when position ``i`` ends a field: end of data, newline, whitespace or ``#``."""
    if i >= n:
        return True
    c = data[i]
    return c == 10 or c == 35 or _WHITESPACE[c] == 1


@njit(cache=True, nogil=True)
def _parse_number(data, i, n):
    """Parse the decimal number that starts at ``data[i]`` and must end the field.

    Returns ``(kind, value, end)``: kind ``_EXACT`` with the exact float64 value, ``_PENDING`` (a plain
    decimal whose value is finite but needs a correctly rounded conversion), or ``_UNSURE``.
    """
    neg = False
    c = data[i] if i < n else 0
    if c == 43 or c == 45:  # + -
        neg = c == 45
        i += 1
    m = 0  # accumulated significant digits
    scale = 0  # value = m * 10^(scale + exponent) (plus dropped digits)
    mdigits = 0  # digits in m (leading zeros excluded)
    dropped = False  # a non-zero digit not accumulated into m
    ndigits = 0
    while i < n and 48 <= data[i] <= 57:
        d = data[i] - 48
        ndigits += 1
        if m < _KEEP_DIGITS:
            m = m * 10 + d
            if m > 0:
                mdigits += 1
        else:
            scale += 1
            if d != 0:
                dropped = True
        i += 1
    if i < n and data[i] == 46:  # .
        i += 1
        while i < n and 48 <= data[i] <= 57:
            d = data[i] - 48
            ndigits += 1
            if m < _KEEP_DIGITS:
                m = m * 10 + d
                scale -= 1
                if m > 0:
                    mdigits += 1
            elif d != 0:
                dropped = True
            i += 1
    if ndigits == 0:
        return _UNSURE, 0.0, i
    exponent = 0
    if i < n and (data[i] == 101 or data[i] == 69):  # e E
        i += 1
        eneg = False
        if i < n and (data[i] == 43 or data[i] == 45):
            eneg = data[i] == 45
            i += 1
        edigits = 0
        while i < n and 48 <= data[i] <= 57:
            if exponent < _EXP_CAP:
                exponent = exponent * 10 + (data[i] - 48)
            edigits += 1
            i += 1
        if edigits == 0:
            return _UNSURE, 0.0, i
        if eneg:
            exponent = -exponent
    if not _field_ends(data, i, n):
        return _UNSURE, 0.0, i
    if m == 0 and not dropped:
        return _EXACT, -0.0 if neg else 0.0, i
    power = scale + exponent
    if not dropped and m < _MANTISSA_LIMIT and -22 <= power <= 22:
        value = float(m)
        if power >= 0:
            value = value * _POW10[power]
        else:
            value = value / _POW10[-power]
        return _EXACT, -value if neg else value, i
    if mdigits + power <= _FINITE_MAGNITUDE and exponent < _EXP_CAP and exponent > -_EXP_CAP:
        return _PENDING, 0.0, i
    return _UNSURE, 0.0, i


@njit(cache=True, nogil=True)
def _line_end(data, i, n):
    """Index of the newline that ends the line holding ``i`` (``n`` when there is none)."""
    while i < n and data[i] != 10:
        i += 1
    return i


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
        while i < n and _WHITESPACE[data[i]] == 1:
            i += 1
        if i >= n or data[i] == 10 or data[i] == 35:  # blank or comment line
            pos = _line_end(data, i, n) + 1
            continue
        label_start = i
        kind, label, i = _parse_number(data, i, n)
        row_nnz = nnz
        row_pend = npend
        status = _DONE
        if not real:
            ok = kind == _EXACT and (label == 1.0 or label == 0.0 or label == -1.0)
            label = 1.0 if label == 1.0 else 0.0
        else:
            ok = kind != _UNSURE
            if kind == _PENDING:
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
            while i < n and _WHITESPACE[data[i]] == 1:
                i += 1
            if i >= n or data[i] == 10 or data[i] == 35:
                break
            j = i
            idx = 0
            while j < n and 48 <= data[j] <= 57 and j - i < 18:
                idx = idx * 10 + (data[j] - 48)
                j += 1
            if j == i or j >= n or data[j] != 58:
                ok = False
                break
            kind, value, end = _parse_number(data, j + 1, n)
            if kind == _UNSURE:
                ok = False
                break
            if kind == _PENDING:
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
            pos = _line_end(data, i, n) + 1
            continue
        state[0] = rows
        state[1] = row_nnz
        state[2] = row_pend
        state[3] = start
        state[4] = _line_end(data, i, n)
        return _FALLBACK if status == _DONE else status
    state[0] = rows
    state[1] = nnz
    state[2] = npend
    state[3] = n
    state[4] = n
    return _DONE


# ------------------------------------------------------------------ libsvm driver

def _line_text(data: np.ndarray, start: int, end: int) -> str:
    """The text ``read_lines`` gives for the line in ``data[start:end]`` (utf-8, errors replaced, no CR)."""
    text = data[start:end].tobytes().decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text


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
        text = _line_text(data, start, end)
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
    if not np.isfinite(converted).all():  # pragma: no cover - _parse_number only defers finite decimals
        raise AssertionError("a deferred value is not finite")
    k = pending[:, 0]
    label = k < 0
    if label.any():
        labels[-1 - k[label]] = converted[label]
        values[k[~label]] = converted[~label]
    else:
        values[k] = converted


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
    if labels not in _LABEL_KINDS:
        raise ConfigError(f"labels must be one of {list(_LABEL_KINDS)}, got {labels!r}")
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


_LABEL_KINDS = ("binary", "real")


# ------------------------------------------------------------------ regression (real targets), in Python

def parse_regression(lines: Iterable[Line], on_bad_line: str = "error"):
    """Parse ``target idx:val ...`` lines (real targets) into CSR arrays, in Python (the reference of
    ``scan_libsvm(..., labels="real")``, which calls it for the lines its kernel leaves to Python).

    Returns ``(targets, indptr, indices, data, n_features, bad_lines)``. Blank
    lines and text after ``#`` are ignored; a line whose target or features
    are malformed raises :class:`InputError` naming the file and line, or is
    skipped and counted with ``on_bad_line="skip"``.
    """
    if on_bad_line not in BAD_LINE_POLICIES:
        raise InputError(f"on_bad_line must be one of {list(BAD_LINE_POLICIES)}, got {on_bad_line!r}")
    targets, indptr, indices, data = [], [0], [], []
    bad = 0
    for line in lines:
        fields = line.text.split("#", 1)[0].split()
        if not fields:
            continue
        problem = None
        try:
            target = float(fields[0])
            feats = [f.split(":") for f in fields[1:]]
            idx = [int(k) for k, _ in feats]
            val = [float(v) for _, v in feats]
        except ValueError:
            problem = "expected 'target idx:val idx:val ...' with a numeric target and integer indices"
        else:
            if not np.isfinite(target) or not np.all(np.isfinite(val)):
                problem = "the target and the values must be finite numbers"
            elif any(k < 0 for k in idx):
                problem = "feature indices must be non-negative"
        if problem is not None:
            if on_bad_line == "error":
                raise InputError(f"{line.path}:{line.lineno}: {problem} ({line.text[:80]!r})")
            bad += 1
            continue
        targets.append(target)
        indices.extend(idx)
        data.extend(val)
        indptr.append(len(indices))
    indices = np.array(indices, dtype=np.int64)
    return (np.array(targets, dtype=np.float64), np.array(indptr, dtype=np.int64), indices,
            np.array(data, dtype=np.float64), int(indices.max()) + 1 if len(indices) else 0, bad)


def _parse_real(lines: Iterable[Line], on_bad_line: str) -> LibSVM:
    """:func:`parse_regression` as a :class:`LibSVM` (labels: the targets)."""
    targets, indptr, indices, data, n_features, bad = parse_regression(lines, on_bad_line)
    return LibSVM(targets, indptr, indices, data, n_features, bad)


# ------------------------------------------------------------------ words

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True, inline="always")
def _mix(h):
    """murmur3's 64-bit finaliser: spreads FNV-1a's bits over the whole word."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(cache=True, nogil=True)
def _hash_bytes(data, start, end):
    """64-bit hash (FNV-1a, then mixed) of ``data[start:end]``."""
    h = _FNV_OFFSET
    for j in range(start, end):
        h = (h ^ np.uint64(data[j])) * _FNV_PRIME
    return _mix(h)


@njit(cache=True, nogil=True)
def _rehash(slots):
    """The same ``(hash, word)`` slots in a table twice as large."""
    new = np.full((2 * slots.shape[0], 2), -1, dtype=np.int64)
    mask = new.shape[0] - 1
    for k in range(slots.shape[0]):
        w = slots[k, 1]
        if w >= 0:
            s = slots[k, 0] & mask
            while new[s, 1] >= 0:
                s = (s + 1) & mask
            new[s, 0] = slots[k, 0]
            new[s, 1] = w
    return new


@njit(cache=True, nogil=True)
def _count_words(data, pos, slots, words, arena, state):
    """Count the words of ``data[pos:]`` into the table; ``state = [distinct words, arena bytes used]``.

    ``slots`` (power-of-two rows of ``(hash, word)``, word -1 when empty) are probed linearly from
    ``hash & mask``; word ``w`` is ``arena[words[w, 0]:words[w, 0] + words[w, 1]]`` and has been seen
    ``words[w, 2]`` times. Returns the end of ``data``, or the start of a new word that does not fit
    (``words``, ``arena`` or the slots' load limit full: grow them and call again from there).
    """
    n = state[0]
    used = state[1]
    N = data.shape[0]
    mask = slots.shape[0] - 1
    i = pos
    while i < N:
        if _WORD_CHAR[data[i]] == 0:
            i += 1
            continue
        s = i
        h = _FNV_OFFSET
        while i < N and _WORD_CHAR[data[i]] == 1:
            h = (h ^ np.uint64(data[i])) * _FNV_PRIME
            i += 1
        length = i - s
        key = np.int64(_mix(h) >> np.uint64(1))
        slot = key & mask
        while True:
            w = slots[slot, 1]
            if w < 0:
                break
            if slots[slot, 0] == key and words[w, 1] == length:
                a = words[w, 0]
                same = True
                for j in range(length):
                    if arena[a + j] != data[s + j]:
                        same = False
                        break
                if same:
                    break
            slot = (slot + 1) & mask
        if w >= 0:
            words[w, 2] += 1
            continue
        if n == words.shape[0] or used + length > arena.shape[0] or 2 * (n + 1) > slots.shape[0]:
            state[0] = n
            state[1] = used
            return s
        arena[used:used + length] = data[s:i]
        words[n, 0] = used
        words[n, 1] = length
        words[n, 2] = 1
        slots[slot, 0] = key
        slots[slot, 1] = n
        used += length
        n += 1
    state[0] = n
    state[1] = used
    return N


@njit(cache=True, nogil=True)
def _word_end(data, i):
    """The end of the word that starts at ``data[i]``."""
    while i < data.shape[0] and _WORD_CHAR[data[i]] == 1:
        i += 1
    return i


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((size,) + array.shape[1:], dtype=array.dtype)
    out[:len(array)] = array
    return out


def scan_words(files: Sequence[Path], worker: int, nworker: int, *, chunk_bytes: int = CHUNK_BYTES) -> Counter[str]:
    """The word counts of ``worker``'s byte range of ``files``, as
    ``count_words(read_lines(files, worker, nworker))`` gives them, counted by compiled code.

    Reads ``chunk_bytes`` at a time; memory is the chunk plus about 60 bytes and the bytes of each
    distinct word. The Counter lists the words in the order they first appear, as count_words does.
    """
    slots = np.full((1 << 16, 2), -1, dtype=np.int64)
    words = np.empty((1 << 15, 3), dtype=np.int64)
    arena = np.empty(1 << 20, dtype=np.uint8)
    state = np.zeros(2, dtype=np.int64)
    for chunk in read_chunks(files, worker, nworker, chunk_bytes, reuse=True):  # each chunk counted before the next
        data = chunk.data
        pos = 0
        while True:
            pos = _count_words(data, pos, slots, words, arena, state)
            if pos == len(data):
                break
            n, used = int(state[0]), int(state[1])
            if n == len(words):
                words = _grown(words, 2 * n)
            if 2 * (n + 1) > len(slots):
                slots = _rehash(slots)
            length = _word_end(data, pos) - pos
            if used + length > len(arena):
                arena = _grown(arena, max(2 * len(arena), used + length))
    n, used = int(state[0]), int(state[1])
    text = arena[:used].tobytes().decode("ascii")
    del slots, arena
    starts = words[:n, 0].tolist()
    ends = (words[:n, 0] + words[:n, 1]).tolist()
    out: Counter[str] = Counter()
    dict.update(out, zip([text[a:b] for a, b in zip(starts, ends)], words[:n, 2].tolist()))
    return out


@njit(cache=True, nogil=True)
def _keys_of(data, ends, out):
    """``out[w]`` = the 63-bit hash of the bytes ``data[ends[w-1]:ends[w]]``."""
    start = 0
    for w in range(ends.shape[0]):
        out[w] = np.int64(_hash_bytes(data, start, ends[w]) >> np.uint64(1))
        start = ends[w]


def word_keys(words: Sequence[str]) -> np.ndarray:
    """Non-negative 63-bit ``int64`` keys of ``words`` (hash of their utf-8 bytes): the same in every
    process and run. Compiled: for millions of words, where ``hash_strings`` (blake2b) is slow."""
    encoded = [w.encode("utf-8") for w in words] if words else []
    out = np.empty(len(encoded), dtype=np.int64)
    if encoded:
        ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
        _keys_of(np.frombuffer(b"".join(encoded), dtype=np.uint8), ends, out)
    return out


# ------------------------------------------------------------------ documents (LDA's tokens)

_LOWER_LETTER = np.zeros(256, dtype=np.uint8)  # [A-Za-z] -> its lower-case byte, else 0
for _b in b"abcdefghijklmnopqrstuvwxyz":
    _LOWER_LETTER[_b] = _b
    _LOWER_LETTER[_b - 32] = _b


@njit(cache=True, nogil=True, inline="always")
def _folded_letter(data, j, n):
    """The lower-case ASCII letter that ``str.lower()`` makes of the character at ``data[j]``, as
    ``(letter, bytes, ends_run)``; letter 0 when there is none. Besides ``[A-Za-z]`` only two characters
    lower to an ASCII letter: U+212A KELVIN SIGN (``k``) and U+0130 (``i`` and U+0307, which ends the run)."""
    c = data[j]
    if c < 128:
        return _LOWER_LETTER[c], 1, False
    if c == 0xE2 and j + 2 < n and data[j + 1] == 0x84 and data[j + 2] == 0xAA:
        return np.uint8(107), 3, False
    if c == 0xC4 and j + 1 < n and data[j + 1] == 0xB0:
        return np.uint8(105), 2, True
    return np.uint8(0), 1, False


@njit(cache=True, nogil=True)
def _document_tokens(data, pos, min_length, slots, words, arena, codes, doc_ends, unsure, state):
    """Cut the lines of ``data`` from ``pos`` into documents of word codes, until a table is full.

    A token is a maximal run of the letters of ``text.lower()`` (:func:`_folded_letter`) of at least
    ``min_length`` letters; token ``t`` is word ``codes[t]`` of the table (``slots``, ``words``,
    ``arena`` as in :func:`_count_words`, the words' bytes lower-cased). A line holding a non-space
    ASCII byte or a letter is a document (``doc_ends[d]`` = its tokens' end); a line of ASCII spaces
    only is none; any other line (spaces and bytes >= 0x80 only) is a document without tokens that
    Python may find blank: ``unsure[u] = (document, line start, line end)``.
    ``state = [words, arena used, tokens, documents, unsure, line start, line has content]``.
    Returns ``len(data)``, or the start of a token that does not fit (grow, call again from there).
    """
    n = state[0]
    used = state[1]
    ntok = state[2]
    ndoc = state[3]
    nuns = state[4]
    line_start = state[5]
    content = state[6] == 1
    N = data.shape[0]
    mask = slots.shape[0] - 1
    i = pos
    while True:
        if i >= N or data[i] == 10:  # the line ends
            if line_start < N or i < N:
                if content:
                    doc_ends[ndoc] = ntok
                    ndoc += 1
                else:
                    high = False
                    for j in range(line_start, i):
                        if data[j] >= 128:
                            high = True
                            break
                    if high:
                        doc_ends[ndoc] = ntok
                        unsure[nuns, 0] = ndoc
                        unsure[nuns, 1] = line_start
                        unsure[nuns, 2] = i
                        nuns += 1
                        ndoc += 1
            if i >= N:
                break
            i += 1
            line_start = i
            content = False
            if i >= N:
                break
            continue
        c = data[i]
        if c < 128:
            if _LOWER_LETTER[c] == 0:
                if _WHITESPACE[c] == 0:
                    content = True
                i += 1
                continue
        else:
            letter, width, stop = _folded_letter(data, i, N)
            if letter == 0:
                i += 1
                continue
        content = True
        s = i
        length = 0  # pass 1: the run's end and length
        while i < N:
            c = data[i]
            if c < 128:
                if _LOWER_LETTER[c] == 0:
                    break
                length += 1
                i += 1
                continue
            letter, width, stop = _folded_letter(data, i, N)
            if letter == 0:
                break
            length += 1
            i += width
            if stop:
                break
        if length < min_length:
            continue
        if n == words.shape[0] or used + length > arena.shape[0] or 2 * (n + 1) > slots.shape[0]:
            state[0] = n
            state[1] = used
            state[2] = ntok
            state[3] = ndoc
            state[4] = nuns
            state[5] = line_start
            state[6] = 1
            return s
        h = _FNV_OFFSET  # pass 2: the lower-cased bytes at the arena's end, and their hash
        j = s
        for k in range(length):
            c = data[j]
            if c < 128:
                letter = _LOWER_LETTER[c]
                j += 1
            else:
                letter, width, stop = _folded_letter(data, j, N)
                j += width
            arena[used + k] = letter
            h = (h ^ np.uint64(letter)) * _FNV_PRIME
        key = np.int64(_mix(h) >> np.uint64(1))
        slot = key & mask
        while True:
            w = slots[slot, 1]
            if w < 0:
                break
            if slots[slot, 0] == key and words[w, 1] == length:
                a = words[w, 0]
                same = True
                for k in range(length):
                    if arena[a + k] != arena[used + k]:
                        same = False
                        break
                if same:
                    break
            slot = (slot + 1) & mask
        if w >= 0:
            words[w, 2] += 1
        else:
            w = n
            words[n, 0] = used
            words[n, 1] = length
            words[n, 2] = 1
            slots[slot, 0] = key
            slots[slot, 1] = n
            used += length
            n += 1
        codes[ntok] = w
        ntok += 1
    state[0] = n
    state[1] = used
    state[2] = ntok
    state[3] = ndoc
    state[4] = nuns
    state[5] = N
    state[6] = 0
    return N




@njit(cache=True, nogil=True)
def _run_end(data, i):
    """The end of the letter run that starts at ``data[i]`` (an upper bound of its lower-cased bytes)."""
    n = data.shape[0]
    while i < n:
        letter, width, stop = _folded_letter(data, i, n)
        if letter == 0:
            break
        i += width
        if stop:
            break
    return i


@dataclass
class Documents:
    """Documents as word codes: document ``d`` is ``codes[doc_ptr[d]:doc_ptr[d + 1]]``, code ``c`` is
    ``words[c]`` (first appearance order), seen ``counts[c]`` times."""

    doc_ptr: np.ndarray  # int64, documents + 1
    codes: np.ndarray  # int32, one per token
    words: list[str]
    counts: np.ndarray  # int64, one per word

    def __len__(self) -> int:
        return len(self.doc_ptr) - 1

    def lists(self) -> list[list[str]]:
        """The documents as lists of words (slow: for tests)."""
        return [[self.words[c] for c in self.codes[a:b].tolist()]
                for a, b in zip(self.doc_ptr[:-1].tolist(), self.doc_ptr[1:].tolist())]


def scan_documents(files: Sequence[Path], worker: int, nworker: int, *, min_length: int = 3,
                   chunk_bytes: int = CHUNK_BYTES) -> Documents:
    """The documents of ``worker``'s byte range of ``files``, one per non-blank line, tokenised as
    LDA's ``tokenize(text, stopwords=False)`` does: ``[w for w in re.findall("[a-z]+", text.lower())
    if len(w) >= min_length]``, for the lines ``read_lines`` gives whose ``text.strip()`` is not empty.

    Compiled: no Python object per line or token; a ``str`` per distinct word. Memory: the chunk,
    4 bytes a token, and about 60 bytes plus the bytes of each distinct word.
    """
    if min_length < 1:
        raise ConfigError(f"min_length must be at least 1, got {min_length}")
    slots = np.full((1 << 16, 2), -1, dtype=np.int64)
    words = np.empty((1 << 15, 3), dtype=np.int64)
    arena = np.empty(1 << 20, dtype=np.uint8)
    state = np.zeros(7, dtype=np.int64)
    code_parts, end_parts = [], []
    for chunk in read_chunks(files, worker, nworker, chunk_bytes):
        data = chunk.data
        lines = _count_newlines(data) + 1
        codes = np.empty(len(data) // (min_length + 1) + 1, dtype=np.int32)  # a token and its separator
        doc_ends = np.empty(lines, dtype=np.int64)
        unsure = np.empty((lines, 3), dtype=np.int64)
        state[2:] = 0
        pos = 0
        while True:
            pos = _document_tokens(data, pos, min_length, slots, words, arena, codes, doc_ends, unsure, state)
            if pos == len(data):
                break
            n, used = int(state[0]), int(state[1])
            if n == len(words):
                words = _grown(words, 2 * n)
            if 2 * (n + 1) > len(slots):
                slots = _rehash(slots)
            length = _run_end(data, pos) - pos
            if used + length > len(arena):
                arena = _grown(arena, max(2 * len(arena), used + length))
        ntok, ndoc, nuns = int(state[2]), int(state[3]), int(state[4])
        ends = doc_ends[:ndoc]
        if nuns:  # lines of spaces and non-ASCII characters: blank when Python's strip() says so
            blank = [d for d, a, b in unsure[:nuns].tolist() if not _line_text(data, a, b).strip()]
            ends = np.delete(ends, blank)
        code_parts.append(codes[:ntok].copy())
        end_parts.append(ends + sum(len(c) for c in code_parts[:-1]))
        del codes, doc_ends, unsure
    n, used = int(state[0]), int(state[1])
    text = arena[:used].tobytes().decode("ascii")
    starts = words[:n, 0].tolist()
    stops = (words[:n, 0] + words[:n, 1]).tolist()
    doc_ptr = np.zeros(sum(len(e) for e in end_parts) + 1, dtype=np.int64)
    if end_parts:
        np.concatenate(end_parts, out=doc_ptr[1:])
    return Documents(
        doc_ptr=doc_ptr,
        codes=np.concatenate(code_parts) if code_parts else np.zeros(0, np.int32),
        words=[text[a:b] for a, b in zip(starts, stops)],
        counts=words[:n, 2].copy(),
    )
