"""A compiled table of distinct words and their counts, for the tokenisers (:mod:`.words`, :mod:`.documents`).

Open addressing over power-of-two ``slots`` (rows ``(key, word)``, word -1 when empty), probed linearly
from ``key & mask``; ``key`` is :func:`~parasol_hybrid.data.idhash.key63` of the word's
:func:`~parasol_hybrid.data.idhash.hash_bytes` (the tokeniser folds :func:`~parasol_hybrid.data.idhash.fnv_step`
as it scans, so the bytes are read once). Word ``w`` is ``arena[words[w, 0]:words[w, 0] + words[w, 1]]``
and has been seen ``words[w, 2]`` times: a hit reads one slot, one row and the bytes, and counts in the
row it read. Words get codes in order of first appearance.

Unlike :class:`~parasol_hybrid.data.idhash.IdTable` (ids of triples: it keeps each id's hash for its owner
and its integer value), this table keeps a count per word and nothing else. The kernels take the table's
arrays; the class owns them and grows them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from parasol_hybrid.data.bytescan import same_bytes

__all__ = ["WordTable", "count_word"]


@njit(cache=True, nogil=True, inline="always")  # inlined: a call per word costs a third of the count
def count_word(slots, words, arena, n, used, key, src, start, length):
    """Count one more of the word ``src[start:start + length]`` (``key``: see the module docstring), in a
    table of ``n`` words using ``used`` bytes of ``arena`` (a kernel keeps them in locals, and in the
    table's ``state`` when it returns).

    Returns ``(code, n, used)``: the word's code, added if new (its bytes copied to ``arena[used:]``), or
    -1 when it is new and the table has no room (grow it, then call again).
    """
    mask = slots.shape[0] - 1
    slot = key & mask
    while True:
        w = slots[slot, 1]
        if w < 0:
            break
        if slots[slot, 0] == key and words[w, 1] == length and same_bytes(arena, words[w, 0], src, start, length):
            words[w, 2] += 1
            return w, n, used
        slot = (slot + 1) & mask
    if n == words.shape[0] or used + length > arena.shape[0] or 2 * (n + 1) > slots.shape[0]:
        return -1, n, used
    for j in range(length):
        arena[used + j] = src[start + j]
    words[n, 0] = used
    words[n, 1] = length
    words[n, 2] = 1
    slots[slot, 0] = key
    slots[slot, 1] = n
    return n, n + 1, used + length


@njit(cache=True, nogil=True)
def _rehash(slots):
    """The same ``(key, word)`` slots in a table twice as large."""
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


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((size,) + array.shape[1:], dtype=array.dtype)
    out[:len(array)] = array
    return out


class WordTable:
    """The distinct words met so far, with their counts (see the module docstring)."""

    def __init__(self, capacity: int = 1 << 15, arena_bytes: int = 1 << 20):
        self.slots = np.full((2 * capacity, 2), -1, dtype=np.int64)
        self.words = np.empty((capacity, 3), dtype=np.int64)
        self.arena = np.empty(arena_bytes, dtype=np.uint8)
        self.state = np.zeros(2, dtype=np.int64)

    @property
    def arrays(self) -> tuple:
        """``(slots, words, arena, state)``: :func:`count_word` takes the first three, and ``state`` holds
        its ``n`` and ``used`` between calls."""
        return self.slots, self.words, self.arena, self.state

    def __len__(self) -> int:
        return int(self.state[0])

    def grow(self, length: int) -> None:
        """Room for one more word of ``length`` bytes (doubling what is short), keeping every word."""
        n, used = len(self), int(self.state[1])
        if n == len(self.words):
            self.words = _grown(self.words, 2 * n)
        if 2 * (n + 1) > len(self.slots):
            self.slots = _rehash(self.slots)
        if used + length > len(self.arena):
            self.arena = _grown(self.arena, max(2 * len(self.arena), used + length))

    def texts(self) -> list[str]:
        """Each code's word, as a ``str`` (the words are ASCII)."""
        n = len(self)
        text = self.arena[:int(self.state[1])].tobytes().decode("ascii")
        starts = self.words[:n, 0].tolist()
        ends = (self.words[:n, 0] + self.words[:n, 1]).tolist()
        return [text[a:b] for a, b in zip(starts, ends)]

    @property
    def counts(self) -> np.ndarray:
        """How often each code's word was counted (a view)."""
        return self.words[:len(self), 2]
