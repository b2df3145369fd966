"""Parse a worker's byte range of ``row col [weight]`` lines with compiled code, straight into arrays.

:func:`scan_ratings` has the semantics of :func:`parasol_hybrid.data.parsers.parse_ratings` over
:func:`~parasol_hybrid.data.lines.read_lines` (separators: runs of tabs, commas and whitespace; blank lines
and lines whose first field starts with ``#`` skipped; a weight must be a finite number; extra fields
ignored; ``on_bad_line`` "error" names ``file:line``, "skip" counts), but it reads whole chunks of bytes
(:mod:`parasol_hybrid.data.chunks`) and a numba kernel turns them into three arrays: the row and column
ids as ``int32`` keys (``int64`` once a key needs it; an id that spells a canonical integer is its value — the fast path, no table; any
other id is interned in an :class:`~parasol_hybrid.data.idhash.IdTable` per column and keyed ``-1 - code``)
and the weight (``float64``). Python sees a line only when it is bad (to name it) or when the kernel cannot
promise Python's exact answer: a byte outside ASCII (decoding, Unicode whitespace) or a number spelled in a
way the exact fast path (:func:`~parasol_hybrid.data.numbers.parse_number`) does not cover (``1_0``,
``0x..``, ``inf``, more than 15 significant digits or an exponent beyond ±22, ...). Those lines go through
the Python parser, one at a time, and land in the same arrays in file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.bytescan import count_newlines, line_end
from parasol_hybrid.data.chunks import Chunk, read_chunks
from parasol_hybrid.data.idhash import IdTable, canonical_int, intern
from parasol_hybrid.data.lines import Line, byte_ranges
from parasol_hybrid.data.numbers import POW10, parse_number
from parasol_hybrid.data.parsers import Ratings, _check_policy, parse_ratings
from parasol_hybrid.errors import InputError

__all__ = ["ScannedRatings", "scan_ratings"]

_DONE, _OUT_FULL, _GROW_ROWS, _GROW_COLS, _SLOW, _BAD, _WIDEN = 0, 1, 2, 3, 4, 5, 6


@dataclass
class ScannedRatings:
    """A worker's triples as parsed: each id as a key (its value when it spells a canonical integer, else
    ``-1 - code`` with ``code`` its local code in ``row_ids`` / ``col_ids``), and the weights."""

    rows: np.ndarray  # keys (int32, int64 if one needs it): the id's value if it is a canonical integer, else
    cols: np.ndarray  # -1 - its code in row_ids / col_ids
    values: np.ndarray  # float64
    row_ids: IdTable
    col_ids: IdTable
    bad_lines: int = 0

    def __len__(self) -> int:
        return len(self.values)

    def as_ratings(self) -> Ratings:
        """The same triples as :class:`~parasol_hybrid.data.parsers.Ratings` (ids as ``str`` objects)."""
        return Ratings(rows=_texts_of(self.rows, self.row_ids), cols=_texts_of(self.cols, self.col_ids),
                       values=self.values, bad_lines=self.bad_lines)


def _texts_of(keys: np.ndarray, ids: IdTable) -> np.ndarray:
    """The id text of each key, as an object array (each distinct text built once)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    names = ids.texts()
    texts = np.empty(len(uniq), dtype=object)
    texts[:] = [names[-1 - k] if k < 0 else str(k) for k in uniq.tolist()]
    return texts[inverse.ravel()] if len(keys) else np.empty(0, dtype=object)


def _byte_classes() -> np.ndarray:
    """0: part of a field, 1: a separator (str.split()'s ASCII whitespace, or a comma), 2: the newline,
    3: outside ASCII (the line goes to Python)."""
    cls = np.zeros(256, dtype=np.uint8)
    for c in (32, 44, 9, 11, 12, 13, 28, 29, 30, 31):
        cls[c] = 1
    cls[10] = 2
    cls[128:] = 3
    return cls


_CLASSES = _byte_classes()


@njit(cache=True, nogil=True)
def _scan(data, pos, need, rows, cols, vals, nout, top, bad, skip, pow10, classes,
          r_slots, r_hashes, r_starts, r_ints, r_blob, r_state,
          c_slots, c_hashes, c_starts, c_ints, c_blob, c_state):
    """Parse lines from ``data[pos:]`` into ``rows[nout[0]:]`` ...; returns ``(pos, status, problem)``.

    Stops at the end (``_DONE``), when an output or id table is full, at a line Python must parse
    (``_SLOW``), or at a bad line when ``skip`` is False (``_BAD``; ``problem`` 1: too few fields, 2: bad
    weight), or at a key above ``top`` (``_WIDEN``: the keys need int64). ``pos`` is then the start of that
    line. One pass over each line: the first three fields are
    delimited and, when they are plain digits, their value taken on the way.
    """
    n = data.shape[0]
    cap = rows.shape[0]
    fs = np.empty(3, dtype=np.int64)
    fe = np.empty(3, dtype=np.int64)
    fv = np.empty(3, dtype=np.int64)  # the value of a field of plain digits, else -1
    while pos < n:
        line = pos
        nf = 0
        j = pos
        while True:
            while j < n and classes[data[j]] == 1:
                j += 1
            if j >= n or data[j] == 10:
                break
            start = j
            v = np.int64(0)
            digits = True
            while j < n:
                c = data[j]
                k = classes[c]
                if k != 0:
                    if k == 3:
                        return line, _SLOW, 0
                    break
                d = np.int64(c) - 48
                if d < 0 or d > 9:
                    digits = False
                else:
                    v = v * 10 + d
                j += 1
            if nf < 3:
                fs[nf] = start
                fe[nf] = j
                fv[nf] = v if digits and j - start <= 18 else -1
            nf += 1
        nxt = j + 1
        if nf == 0 or data[fs[0]] == 35:  # blank, or a comment
            pos = nxt
            continue
        if nf < need:
            if not skip:
                return line, _BAD, 1
            bad[0] += 1
            pos = nxt
            continue
        value = 1.0
        if nf >= 3:
            if fv[2] >= 0 and fe[2] - fs[2] <= 15:
                value = float(fv[2])
            else:
                ok, value = parse_number(data, fs[2], fe[2], pow10)
                if not ok:
                    return line, _SLOW, 0
        if nout[0] >= cap:
            return line, _OUT_FULL, 0
        r = fv[0]
        if r < 0 or (data[fs[0]] == 48 and fe[0] - fs[0] > 1):  # not a canonical integer: intern the text
            r = intern(data, fs[0], fe[0], r_slots, r_hashes, r_starts, r_ints, r_blob, r_state)
            if r < 0:
                return line, _GROW_ROWS, 0
            r = -1 - r
        c = fv[1]
        if c < 0 or (data[fs[1]] == 48 and fe[1] - fs[1] > 1):
            c = intern(data, fs[1], fe[1], c_slots, c_hashes, c_starts, c_ints, c_blob, c_state)
            if c < 0:
                return line, _GROW_COLS, 0
            c = -1 - c
        if r > top or c > top or -1 - r > top or -1 - c > top:  # a key the output dtype cannot hold
            return line, _WIDEN, 0
        k = nout[0]
        rows[k] = r
        cols[k] = c
        vals[k] = value
        nout[0] = k + 1
        pos = nxt
    return pos, _DONE, 0


class _Out:
    """The growing output arrays: keys ``int32`` (16 bytes a triple) until a key needs ``int64``."""

    def __init__(self, capacity: int):
        self.rows = np.empty(capacity, dtype=np.int32)
        self.cols = np.empty(capacity, dtype=np.int32)
        self.vals = np.empty(capacity, dtype=np.float64)
        self.n = np.zeros(1, dtype=np.int64)

    def reserve(self, more: int, growth: float = 1.25) -> None:
        """Room for ``more`` triples after those held (growing by at least ``growth``)."""
        need = int(self.n[0]) + more
        if need <= len(self.vals):
            return
        cap = max(need, int(len(self.vals) * growth))
        n = int(self.n[0])
        for name in ("rows", "cols", "vals"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)
            del old

    @property
    def top(self) -> int:
        """The largest magnitude a key may have in the current dtype."""
        return int(np.iinfo(self.rows.dtype).max) - 1

    def widen(self) -> None:
        """Keys as ``int64`` from now on (only the keys held are copied: the slack stays untouched)."""
        n = int(self.n[0])
        for name in ("rows", "cols"):
            old = getattr(self, name)
            new = np.empty(len(old), dtype=np.int64)
            new[:n] = old[:n]
            setattr(self, name, new)

    def append(self, r: int, c: int, v: float) -> None:
        if max(abs(r), abs(c)) > self.top:
            self.widen()
        self.reserve(1)
        k = int(self.n[0])
        self.rows[k], self.cols[k], self.vals[k] = r, c, v
        self.n[0] = k + 1


def _key(text: str, ids: IdTable) -> int:
    """The key of an id the Python parser read: its value if it is a canonical integer, else ``-1 - code``."""
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    value = canonical_int(raw, 0, len(raw))
    return int(value) if value >= 0 else -1 - ids.add(text)


def _slow_line(chunk: Chunk, pos: int, policy: str, weight_required: bool, out: _Out,
               row_ids: IdTable, col_ids: IdTable) -> int:
    """Parse the line at ``pos`` with the Python parser; returns 1 if it was a bad line (skipped)."""
    text = chunk.line_text(pos)
    try:
        got = parse_ratings([Line(chunk.path, 0, text)], on_bad_line="error", weight_required=weight_required)
    except InputError:
        if policy == "skip":
            return 1
        parse_ratings([Line(chunk.path, chunk.lineno(pos), text)], on_bad_line="error",
                      weight_required=weight_required)
        raise AssertionError("unreachable: the line parsed the second time")  # pragma: no cover
    for r, c, v in zip(got.rows, got.cols, got.values):
        out.append(_key(r, row_ids), _key(c, col_ids), float(v))
    return 0


def scan_ratings(files: Sequence[Path], worker: int, nworker: int, on_bad_line: str = "error",
                 weight_required: bool = True, chunk_bytes: int | None = None) -> ScannedRatings:
    """Parse the lines of ``files`` in ``worker``'s byte range (of ``nworker``) into :class:`ScannedRatings`."""
    skip = _check_policy(on_bad_line)
    need = 3 if weight_required else 2
    out = _Out(1 << 16)
    row_ids, col_ids = IdTable(), IdTable()
    bad = np.zeros(1, dtype=np.int64)
    kw = {"reuse": True} if chunk_bytes is None else {"chunk_bytes": chunk_bytes, "reuse": True}
    range_bytes = sum(end - start for _, start, end in byte_ranges(files, nworker)[worker])
    seen_bytes = 0
    for chunk in read_chunks(files, worker, nworker, **kw):
        data = chunk.data
        lines = count_newlines(data) + (0 if len(data) and data[-1] == 10 else 1)
        seen_bytes += len(data)
        if seen_bytes == len(data) and len(data) >= min(range_bytes, 1 << 20):
            # a first chunk big enough to be typical: room for the whole range at its line length, +3%
            out.reserve(int(lines * max(1.0, range_bytes / max(len(data), 1)) * 1.03) + 1024)
        out.reserve(lines)
        pos = 0
        while pos < len(data):
            pos, status, problem = _scan(data, pos, need, out.rows, out.cols, out.vals, out.n, out.top, bad, skip,
                                         POW10, _CLASSES,
                                         *row_ids.arrays, *col_ids.arrays)
            if status == _DONE:
                break
            if status == _OUT_FULL:
                out.reserve(1 << 16)
            elif status == _WIDEN:
                out.widen()
            elif status == _GROW_ROWS:
                row_ids.grow(line_end(data, pos) - pos)
            elif status == _GROW_COLS:
                col_ids.grow(line_end(data, pos) - pos)
            else:  # _SLOW, or _BAD under "error": the Python parser parses it (and names it)
                bad[0] += _slow_line(chunk, pos, on_bad_line, weight_required, out, row_ids, col_ids)
                pos = line_end(data, pos) + 1
    n = int(out.n[0])  # views: the slack (a few per cent) is not worth a copy of everything
    return ScannedRatings(out.rows[:n], out.cols[:n], out.vals[:n], row_ids, col_ids, int(bad[0]))
