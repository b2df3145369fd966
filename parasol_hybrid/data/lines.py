"""Split input files into lines across workers by byte range ("linesplit").

The concatenated bytes of all files are cut into ``nworker`` equal ranges,
and a line belongs to the worker whose range holds the line's first byte.
So every line of every file goes to exactly one worker, in file order, and
each worker reads only its own range (plus the newline count of the bytes
before it, to number its lines).
"""

from __future__ import annotations

import os
from itertools import count, repeat
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple, Sequence

from parasol_hybrid.errors import ConfigError, InputError

__all__ = ["Line", "ByteRange", "byte_ranges", "read_lines", "read_all_lines"]

DEFAULT_CHUNK_SIZE = 1 << 22  # 4 MiB


class Line(NamedTuple):
    """One line of an input file: where it came from and its text."""

    path: Path
    lineno: int  # 1-based
    text: str  # decoded utf-8 (errors replaced), without "\n" or "\r\n"


ByteRange = tuple[Path, int, int]  # (file, start, end): bytes [start, end) of file


def _check_worker(worker: int, nworker: int) -> None:
    if nworker < 1:
        raise ConfigError(f"nworker must be at least 1, got {nworker}")
    if not 0 <= worker < nworker:
        raise ConfigError(f"worker must be in [0, nworker={nworker}), got {worker}")


def _file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise InputError(f"cannot read input file {str(path)!r}: {exc.strerror}") from exc


def byte_ranges(files: Sequence[Path], nworker: int) -> list[list[ByteRange]]:
    """Cut the concatenated bytes of ``files`` into ``nworker`` even ranges.

    Worker ``w`` owns global bytes ``[total*w // nworker, total*(w+1) // nworker)``;
    the result lists, for each worker, the non-empty per-file pieces of its
    range as ``(path, start, end)`` with file offsets, in file order.
    """
    _check_worker(0, nworker)
    paths = [f if isinstance(f, Path) else Path(f) for f in files]
    sizes = [_file_size(p) for p in paths]
    total = sum(sizes)
    bounds = [total * w // nworker for w in range(nworker + 1)]
    ranges: list[list[ByteRange]] = []
    for w in range(nworker):
        lo, hi = bounds[w], bounds[w + 1]
        pieces: list[ByteRange] = []
        offset = 0  # global offset of the current file's first byte
        for path, size in zip(paths, sizes):
            start, end = max(lo, offset), min(hi, offset + size)
            if start < end:
                pieces.append((path, start - offset, end - offset))
            offset += size
        ranges.append(pieces)
    return ranges


def _first_line_start(f: BinaryIO, start: int, chunk_size: int) -> tuple[int, int] | None:
    """Offset of the first line starting at or after ``start``, and its line number.

    Counts the newlines before that offset in large chunks. Returns None when
    no line starts at or after ``start`` (the rest of the file is one line's tail).
    """
    f.seek(0)
    newlines, remaining, last = 0, start, b"\n"
    while remaining > 0:
        chunk = f.read(min(chunk_size, remaining))
        if not chunk:
            return None  # the file shrank under us
        newlines += chunk.count(b"\n")
        remaining -= len(chunk)
        last = chunk[-1:]
    if last == b"\n":
        return start, newlines + 1
    pos = start  # inside a line that began earlier: skip to its end
    while True:
        chunk = f.read(chunk_size)
        if not chunk:
            return None
        cut = chunk.find(b"\n")
        if cut >= 0:
            return pos + cut + 1, newlines + 2
        pos += len(chunk)


def _emit(path: Path, block: bytes, lineno: int, final: bool) -> Iterator[Line]:
    """The lines of ``block`` (which ends with a newline unless ``final``), numbered from ``lineno``."""
    texts = block.decode("utf-8", errors="replace").split("\n")
    if not final:
        texts.pop()  # the empty piece after the last newline
    if b"\r" in block:
        texts = [t[:-1] if t.endswith("\r") else t for t in texts]
    return map(Line, repeat(path), count(lineno), texts)


def _read_range(path: Path, start: int, end: int, chunk_size: int) -> Iterator[Line]:
    """Yield the lines of ``path`` whose first byte lies in ``[start, end)``."""
    with open(path, "rb") as f:
        if start == 0:
            first: tuple[int, int] | None = (0, 1)
        else:
            first = _first_line_start(f, start, chunk_size)
        if first is None or first[0] >= end:
            return
        pos, lineno = first
        f.seek(pos)
        carry = b""  # bytes of an unfinished line starting at file offset pos
        while pos < end:
            chunk = f.read(chunk_size)
            if not chunk:
                if carry:
                    yield from _emit(path, carry, lineno, final=True)
                return
            buf = carry + chunk if carry else chunk
            cut = buf.rfind(b"\n")
            if cut < 0:
                carry = buf
                continue
            limit = end - pos  # lines starting at buf offsets < limit are ours
            if cut + 1 > limit:
                stop = buf.find(b"\n", limit - 1)
                yield from _emit(path, buf[: stop + 1], lineno, final=False)
                return
            block, carry = buf[: cut + 1], buf[cut + 1 :]
            yield from _emit(path, block, lineno, final=False)
            lineno += block.count(b"\n")
            pos += cut + 1


def read_lines(
    files: Sequence[Path],
    worker: int,
    nworker: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[Line]:
    """Yield the lines of ``files`` that belong to ``worker`` of ``nworker``.

    A line belongs to the worker whose byte range (see :func:`byte_ranges`)
    holds its first byte. Lines come in file order with 1-based line
    numbers; text is utf-8 decoded with errors replaced, without its
    ``"\\n"`` or ``"\\r\\n"``. A final line without a newline is still a line.
    """
    _check_worker(worker, nworker)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size}")
    pieces = byte_ranges(files, nworker)[worker]  # eager: bad files fail here
    return _read_pieces(pieces, chunk_size)


def _read_pieces(pieces: list[ByteRange], chunk_size: int) -> Iterator[Line]:
    for path, start, end in pieces:
        yield from _read_range(path, start, end, chunk_size)


def read_all_lines(files: Sequence[Path], chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Line]:
    """Yield every line of every file, in order (``read_lines(files, 0, 1)``)."""
    return read_lines(files, 0, 1, chunk_size)
