"""Compiled tokeniser of LDA's input: one document per non-blank line, its tokens as word codes.

:func:`scan_documents` gives the documents LDA's Python tokeniser finds in ``worker``'s byte range: the
runs of letters of the lower-cased line, each token a code into the distinct words of the range (a
:class:`~parasol_hybrid.data.wordtable.WordTable`), with no Python object per line or token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.bytescan import NEWLINE, WHITESPACE, count_newlines, line_text
from parasol_hybrid.data.chunks import CHUNK_BYTES, read_chunks
from parasol_hybrid.data.idhash import FNV_OFFSET, finalise, fnv_step, key63
from parasol_hybrid.data.wordtable import WordTable, count_word
from parasol_hybrid.errors import ConfigError

__all__ = ["Documents", "scan_documents"]

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


@njit(cache=True, nogil=True, inline="always")
def _keep(docs, ntok, ndoc, nuns, line_start, content, state, n, used):
    """Store the scan's position and the table's size for the next call (see :func:`_document_tokens`)."""
    state[0] = n
    state[1] = used
    docs[0] = ntok
    docs[1] = ndoc
    docs[2] = nuns
    docs[3] = line_start
    docs[4] = content


@njit(cache=True, nogil=True)
def _document_tokens(data, pos, min_length, codes, doc_ends, unsure, docs, slots, words, arena, state):
    """Cut the lines of ``data`` from ``pos`` into documents of word codes, until the table is full.

    A token is a maximal run of the letters of ``text.lower()`` (:func:`_folded_letter`) of at least
    ``min_length`` letters; token ``t`` is word ``codes[t]`` of the table (``slots`` ... ``state``: a
    :class:`WordTable`'s arrays; a token's lower-cased bytes are written after the arena's used bytes and
    counted from there). A line holding a non-space ASCII byte or a letter is a document
    (``doc_ends[d]`` = its tokens' end); a line of ASCII spaces only is none; any other line (spaces and
    bytes >= 0x80 only) is a document without tokens that Python may find blank:
    ``unsure[u] = (document, line start, line end)``.
    ``docs = [tokens, documents, unsure, line start, line has content]``.
    Returns ``len(data)``, or the start of a token that does not fit (grow, call again from there).
    """
    n = state[0]
    used = state[1]
    ntok = docs[0]
    ndoc = docs[1]
    nuns = docs[2]
    line_start = docs[3]
    content = docs[4] == 1
    N = data.shape[0]
    i = pos
    while True:
        if i >= N or data[i] == NEWLINE:  # the line ends
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
                if WHITESPACE[c] == 0:
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
        w = -1
        if used + length <= arena.shape[0]:
            h = FNV_OFFSET  # pass 2: the lower-cased bytes after the arena's used ones, and their hash
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
                h = fnv_step(h, letter)
            w, n, used = count_word(slots, words, arena, n, used, key63(finalise(h)), arena, used, length)
        if w < 0:  # in the middle of a line with content
            _keep(docs, ntok, ndoc, nuns, line_start, 1, state, n, used)
            return s
        codes[ntok] = w
        ntok += 1
    _keep(docs, ntok, ndoc, nuns, N, 0, state, n, used)
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
    table = WordTable()
    docs = np.zeros(5, dtype=np.int64)
    code_parts, end_parts = [], []
    tokens = 0
    for chunk in read_chunks(files, worker, nworker, chunk_bytes):
        data = chunk.data
        lines = count_newlines(data) + 1
        codes = np.empty(len(data) // (min_length + 1) + 1, dtype=np.int32)  # a token and its separator
        doc_ends = np.empty(lines, dtype=np.int64)
        unsure = np.empty((lines, 3), dtype=np.int64)
        docs[:] = 0
        pos = 0
        while True:
            pos = _document_tokens(data, pos, min_length, codes, doc_ends, unsure, docs, *table.arrays)
            if pos == len(data):
                break
            table.grow(_run_end(data, pos) - pos)
        ntok, ndoc, nuns = int(docs[0]), int(docs[1]), int(docs[2])
        ends = doc_ends[:ndoc]
        if nuns:  # lines of spaces and non-ASCII characters: blank when Python's strip() says so
            blank = [d for d, a, b in unsure[:nuns].tolist() if not line_text(data, a, b).strip()]
            ends = np.delete(ends, blank)
        code_parts.append(codes[:ntok].copy())
        end_parts.append(ends + tokens)
        tokens += ntok
        del codes, doc_ends, unsure
    doc_ptr = np.zeros(sum(len(e) for e in end_parts) + 1, dtype=np.int64)
    if end_parts:
        np.concatenate(end_parts, out=doc_ptr[1:])
    codes = np.concatenate(code_parts) if code_parts else np.zeros(0, np.int32)
    return Documents(doc_ptr=doc_ptr, codes=codes, words=table.texts(), counts=table.counts.copy())
