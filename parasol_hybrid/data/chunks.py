"""A worker's byte range of the input, as whole-line chunks of bytes (for the compiled parsers).

:func:`read_chunks` yields the same lines as :func:`parasol_hybrid.data.lines.read_lines` (a line belongs
to the worker whose range holds its first byte), but as ``uint8`` arrays of many whole lines each,
read with one ``readinto`` per chunk: no per-line Python object. A chunk knows where it came from
(file and byte offset), so a parser that meets a bad line can name ``file:line``; the line number is
counted only then (:meth:`Chunk.lineno`), so the normal path never reads the bytes before its range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from parasol_hybrid.data.bytescan import last_newline, line_end, line_text
from parasol_hybrid.data.lines import _check_worker, byte_ranges
from parasol_hybrid.errors import ConfigError, InputError

__all__ = ["Chunk", "read_chunks", "CHUNK_BYTES"]

#: bytes read at a time (a chunk is this long, plus the tail of its last line)
CHUNK_BYTES = 64 << 20


@dataclass
class Chunk:
    """Whole lines of one file: ``data[j]`` is the file's byte ``offset + j``; ``data`` ends with a newline
    unless it holds the file's last line and that line has none."""

    path: Path
    offset: int
    data: np.ndarray  # uint8

    def lineno(self, pos: int) -> int:
        """The 1-based line number of the line holding byte ``pos`` of ``data`` (reads the file up to it)."""
        target = self.offset + int(pos)
        n = 0
        with open(self.path, "rb") as f:
            done = 0
            while done < target:
                block = f.read(min(1 << 24, target - done))
                if not block:
                    break
                n += block.count(b"\n")
                done += len(block)
        return n + 1

    def line_text(self, start: int) -> str:
        """The text of the line starting at byte ``start`` of ``data`` (decoded, no newline)."""
        return line_text(self.data, start, line_end(self.data, start))


def _line_start_at_or_after(f, pos: int) -> int | None:
    """File offset of the first line that starts at or after ``pos`` (None: no line does)."""
    if pos == 0:
        return 0
    f.seek(pos - 1)
    if f.read(1) == b"\n":
        return pos
    while True:
        block = f.read(1 << 16)
        if not block:
            return None
        cut = block.find(b"\n")
        if cut >= 0:
            return f.tell() - len(block) + cut + 1


def _read_block(f, n: int, buf: np.ndarray | None = None) -> np.ndarray:
    """Up to ``n`` bytes from ``f`` (into ``buf`` when given: it is at least ``n`` long)."""
    if buf is None:
        buf = np.empty(n, dtype=np.uint8)
    got = f.readinto(memoryview(buf)[:n])
    return buf[:got or 0]


def _to_line_end(f, block: np.ndarray) -> np.ndarray:
    """``block`` (no newline where it must end) extended up to and with the next newline, or to EOF."""
    parts = [block]
    while True:
        more = _read_block(f, 1 << 20)
        if len(more) == 0:
            break
        cut = line_end(more, 0)
        if cut < len(more):
            parts.append(more[:cut + 1])
            break
        parts.append(more)
    return np.concatenate(parts)


def _read_piece(path: Path, start: int, end: int, chunk_bytes: int, buf: np.ndarray | None) -> Iterator[Chunk]:
    """The lines of ``path`` that start in ``[start, end)``, in chunks of about ``chunk_bytes`` (read into
    ``buf`` when given)."""
    with open(path, "rb", buffering=0) as f:
        pos = _line_start_at_or_after(f, start)
        if pos is None or pos >= end:
            return
        f.seek(pos)
        while pos < end:
            block = _read_block(f, chunk_bytes, buf)
            if len(block) == 0:
                return
            last = end - 1 - pos  # the index in ``block`` of the range's last byte
            if last < len(block):  # the range ends here: through the end of the line holding ``last``
                cut = line_end(block, last)
                yield Chunk(path, pos, block[:cut + 1] if cut < len(block) else _to_line_end(f, block))
                return
            cut = last_newline(block)
            if cut < 0:  # one line longer than the chunk
                block = _to_line_end(f, block)
            else:
                block = block[:cut + 1]
            yield Chunk(path, pos, block)
            pos += len(block)
            f.seek(pos)


def read_chunks(files: Sequence[Path], worker: int, nworker: int,
                chunk_bytes: int = CHUNK_BYTES, reuse: bool = False) -> Iterator[Chunk]:
    """The lines of ``files`` that belong to ``worker`` of ``nworker``, as :class:`Chunk` s in file order.

    With ``reuse``, every chunk is read into the same buffer: a chunk's ``data`` is valid only until the
    next chunk is asked for (a consumer that parses each chunk before the next saves the page faults of a
    fresh buffer per chunk, which on a VM cost as much as the parsing).
    """
    _check_worker(worker, nworker)
    if chunk_bytes < 1:
        raise ConfigError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
    pieces = byte_ranges(files, nworker)[worker]
    return _chunks_of(pieces, chunk_bytes, reuse)


def _chunks_of(pieces, chunk_bytes: int, reuse: bool) -> Iterator[Chunk]:
    buf = np.empty(chunk_bytes, dtype=np.uint8) if reuse and pieces else None  # pages touched only as read
    for path, start, end in pieces:
        try:
            yield from _read_piece(path if isinstance(path, Path) else Path(path), start, end, chunk_bytes, buf)
        except OSError as exc:
            raise InputError(f"cannot read input file {str(path)!r}: {exc.strerror}") from exc
