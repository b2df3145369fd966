"""Compiled word count of a worker's byte range, and the words' stable 63-bit keys.

:func:`scan_words` gives exactly what ``count_words(read_lines(files, worker, nworker))`` gives, but
reads the range as whole-line ``uint8`` chunks and counts with a numba kernel: a word is a maximal run
of ``[-a-zA-Z0-9_]`` (bytes >= 0x80 are separators, as the replacement characters of ``count_words``
are), counted in a :class:`~parasol_hybrid.data.wordtable.WordTable`; a Python ``str`` is built once per
distinct word.

:func:`word_keys` keys words for a sparse table: the top 63 bits of
:func:`~parasol_hybrid.data.idhash.hash_bytes` of their utf-8 bytes, the same in every process and run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit

from parasol_hybrid.data.chunks import CHUNK_BYTES, read_chunks
from parasol_hybrid.data.idhash import FNV_OFFSET, finalise, fnv_step, hash_texts, key63
from parasol_hybrid.data.wordtable import WordTable, count_word

__all__ = ["scan_words", "word_keys"]

_WORD_CHAR = np.zeros(256, dtype=np.uint8)  # [-a-zA-Z0-9_]
for _b in b"-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _WORD_CHAR[_b] = 1


@njit(cache=True, nogil=True)
def _count_words(data, pos, slots, words, arena, state):
    """Count the words of ``data[pos:]`` into the table (``slots`` ... ``state``: a :class:`WordTable`'s
    arrays). Returns the end of ``data``, or the start of a new word that does not fit (grow the table and
    call again from there)."""
    N = data.shape[0]
    n = state[0]
    used = state[1]
    i = pos
    while i < N:
        if _WORD_CHAR[data[i]] == 0:
            i += 1
            continue
        s = i
        h = FNV_OFFSET
        while i < N and _WORD_CHAR[data[i]] == 1:
            h = fnv_step(h, data[i])
            i += 1
        w, n, used = count_word(slots, words, arena, n, used, key63(finalise(h)), data, s, i - s)
        if w < 0:
            i = s
            break
    state[0] = n
    state[1] = used
    return i


@njit(cache=True, nogil=True)
def _word_end(data, i):
    """The end of the word that starts at ``data[i]``."""
    while i < data.shape[0] and _WORD_CHAR[data[i]] == 1:
        i += 1
    return i


def scan_words(files: Sequence[Path], worker: int, nworker: int, *, chunk_bytes: int = CHUNK_BYTES) -> Counter[str]:
    """The word counts of ``worker``'s byte range of ``files``, as
    ``count_words(read_lines(files, worker, nworker))`` gives them, counted by compiled code.

    Reads ``chunk_bytes`` at a time; memory is the chunk plus about 60 bytes and the bytes of each
    distinct word. The Counter lists the words in the order they first appear, as count_words does.
    """
    table = WordTable()
    for chunk in read_chunks(files, worker, nworker, chunk_bytes, reuse=True):  # each chunk counted before the next
        data = chunk.data
        pos = 0
        while True:
            pos = _count_words(data, pos, *table.arrays)
            if pos == len(data):
                break
            table.grow(_word_end(data, pos) - pos)
    out: Counter[str] = Counter()
    dict.update(out, zip(table.texts(), table.counts.tolist()))
    return out


def word_keys(words: Sequence[str]) -> np.ndarray:
    """Non-negative 63-bit ``int64`` keys of ``words`` (:func:`~parasol_hybrid.data.idhash.key63` of the
    :func:`~parasol_hybrid.data.idhash.hash_bytes` of their utf-8 bytes, the key the word table used): the
    same in every process and run. Compiled: for millions of words, where ``hash_strings`` (blake2b) is slow."""
    return (hash_texts(words) >> np.uint64(1)).astype(np.int64)
