"""The stable 64-bit hash of an id's text, and a compiled table of distinct ids.

:func:`hash_bytes` (FNV-1a over the utf-8 bytes, then the splitmix64 finaliser) is the same in every
process, run and machine, so every worker agrees on the owner of a triple (``hash % nworker``) without
talking, and it does not depend on how the files are cut. It is the library's one hash of text: the
ids of triples, the words of a word count (:func:`key63` of it) and the tokenisers' tables use it; a
kernel that hashes while it scans folds :func:`fnv_step` and ends with :func:`finalise`.

:class:`IdTable` interns ids as they are parsed: each distinct text gets a dense local code (in order of
first appearance) and is stored once, as bytes in one blob; an id that spells a canonical non-negative
integer (digits, no leading zero, at most 18 digits) also records its value, for the integer fast path of
the vocabulary. The kernels take the table's arrays; the class owns them and grows them. (The tokenisers count
words in a table of their own, :class:`~parasol_hybrid.data.wordtable.WordTable`.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from parasol_hybrid.data.bytescan import same_bytes

__all__ = ["hash_bytes", "hash_texts", "fnv_step", "finalise", "key63", "FNV_OFFSET", "IdTable", "NOT_INT"]

NOT_INT = -1  #: ``IdTable.ints`` of an id that is not a canonical integer
FNV_OFFSET = np.uint64(0xCBF29CE484222325)  #: the FNV-1a state before the first byte
_FNV_PRIME = np.uint64(0x100000001B3)
_EMPTY = -1


@njit(cache=True, nogil=True, inline="always")
def fnv_step(h, byte):
    """The FNV-1a state ``h`` after one more byte (for a kernel that hashes as it scans)."""
    return (h ^ np.uint64(byte)) * _FNV_PRIME


@njit(cache=True, nogil=True, inline="always")  # inlined: the tokenisers call it once per token
def finalise(h):
    """splitmix64's finaliser: the hash of the bytes whose FNV-1a state is ``h`` (spreads its bits)."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@njit(cache=True, nogil=True, inline="always")
def key63(h):
    """A hash as a non-negative ``int64`` key (its top 63 bits)."""
    return np.int64(h >> np.uint64(1))


@njit(cache=True, nogil=True)
def hash_bytes(data, start, end):
    """The stable 64-bit hash (``uint64``) of ``data[start:end]``: FNV-1a, then :func:`finalise`."""
    h = FNV_OFFSET
    for j in range(start, end):
        h = fnv_step(h, data[j])
    return finalise(h)


@njit(cache=True, nogil=True)
def _hash_many(blob, starts, out):
    for k in range(out.shape[0]):
        out[k] = hash_bytes(blob, starts[k], starts[k + 1])


def hash_texts(texts) -> np.ndarray:
    """:func:`hash_bytes` of the utf-8 text of each item (``str(item)``), as ``uint64`` (``texts``: a
    sequence; it is read twice when an item is not a ``str``)."""
    try:
        encoded = list(map(str.encode, texts))  # utf-8; the common case: every item is a str
    except TypeError:
        encoded = [str(t).encode("utf-8") for t in texts]
    starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=starts[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    out = np.empty(len(encoded), dtype=np.uint64)
    _hash_many(blob, starts, out)
    return out


@njit(cache=True, nogil=True)
def canonical_int(data, start, end):
    """The value of ``data[start:end]`` if it spells a canonical non-negative integer, else NOT_INT."""
    n = end - start
    if n < 1 or n > 18 or (n > 1 and data[start] == 48):
        return -1
    v = 0
    for j in range(start, end):
        c = data[j]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


@njit(cache=True, nogil=True)
def intern(data, start, end, slots, hashes, starts, ints, blob, state):
    """The local code of the id ``data[start:end]``, adding it if new; -2 if the table must grow first.

    ``state[0]`` is the number of distinct ids, ``state[1]`` the bytes of ``blob`` in use; ``starts[c]`` is
    where id ``c``'s bytes begin in ``blob`` (``starts[c + 1]`` where they end).
    """
    h = hash_bytes(data, start, end)
    mask = slots.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    n = end - start
    while True:
        c = slots[s]
        if c == _EMPTY:
            break
        if hashes[c] == h and starts[c + 1] - starts[c] == n and same_bytes(blob, starts[c], data, start, n):
            return c
        s = (s + 1) & mask
    count = state[0]
    used = state[1]
    if count + 1 >= hashes.shape[0] or used + n > blob.shape[0] or 2 * (count + 1) > slots.shape[0]:
        return -2
    for j in range(n):
        blob[used + j] = data[start + j]
    hashes[count] = h
    ints[count] = canonical_int(data, start, end)
    starts[count + 1] = used + n
    slots[s] = count
    state[0] = count + 1
    state[1] = used + n
    return count


@njit(cache=True, nogil=True)
def _rehash(slots, hashes, count):
    mask = slots.shape[0] - 1
    for c in range(count):
        s = np.int64(hashes[c] & np.uint64(mask))
        while slots[s] != _EMPTY:
            s = (s + 1) & mask
        slots[s] = c


class IdTable:
    """The distinct ids of one column, met so far, with dense local codes (see the module docstring)."""

    def __init__(self, capacity: int = 1 << 12, blob_bytes: int = 1 << 16):
        self.slots = np.full(2 * capacity, _EMPTY, dtype=np.int64)
        self.hashes = np.zeros(capacity, dtype=np.uint64)
        self.starts = np.zeros(capacity + 1, dtype=np.int64)
        self.ints_ = np.zeros(capacity, dtype=np.int64)
        self.blob = np.zeros(blob_bytes, dtype=np.uint8)
        self.state = np.zeros(2, dtype=np.int64)

    @property
    def arrays(self) -> tuple:
        """The arrays :func:`intern` takes after the id's bytes."""
        return self.slots, self.hashes, self.starts, self.ints_, self.blob, self.state

    def __len__(self) -> int:
        return int(self.state[0])

    def grow(self, min_bytes: int = 0) -> None:
        """Double what is short (codes, slots, blob), keeping every id and code."""
        count, used = int(self.state[0]), int(self.state[1])
        if count + 1 >= len(self.hashes) or 2 * (count + 1) > len(self.slots):
            cap = 2 * len(self.hashes)
            for name in ("hashes", "ints_"):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=old.dtype)
                new[:count] = old[:count]
                setattr(self, name, new)
            starts = np.zeros(cap + 1, dtype=np.int64)
            starts[:count + 1] = self.starts[:count + 1]
            self.starts = starts
            self.slots = np.full(2 * cap, _EMPTY, dtype=np.int64)
            _rehash(self.slots, self.hashes, count)
        if used + max(min_bytes, 1) > len(self.blob) // 2:
            blob = np.zeros(max(2 * len(self.blob), 2 * (used + min_bytes)), dtype=np.uint8)
            blob[:used] = self.blob[:used]
            self.blob = blob

    def add(self, text: str) -> int:
        """The code of ``text`` (its utf-8 bytes), added if new."""
        data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        while True:
            code = intern(data, 0, len(data), *self.arrays)
            if code >= 0:
                return int(code)
            self.grow(len(data))

    # ------------------------------------------------------------ results
    @property
    def codes_hashes(self) -> np.ndarray:
        """The hash of each code's id."""
        return self.hashes[:len(self)]

    @property
    def ints(self) -> np.ndarray:
        """Each code's integer value (NOT_INT where the id is not a canonical integer)."""
        return self.ints_[:len(self)]

    def all_ints(self) -> bool:
        """Whether every id is a canonical integer."""
        return bool(len(self) == 0 or self.ints.min() >= 0)

    def texts_blob(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lengths int64, blob uint8)``: the bytes of each code's id, concatenated in code order."""
        n = len(self)
        return np.diff(self.starts[:n + 1]), self.blob[:int(self.state[1])]

    def texts(self) -> list[str]:
        """Each code's id, as a ``str``."""
        n = len(self)
        raw = self.blob[:int(self.state[1])].tobytes()
        st = self.starts[:n + 1].tolist()
        return [raw[st[c]:st[c + 1]].decode("utf-8") for c in range(n)]
