"""Writing a data file whole: through a temporary file beside it, with an optional stamp of its source."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_whole", "is_fresh"]


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".stamp")


def is_fresh(path: Path, key: str) -> bool:
    """Whether ``path`` exists and was written with the stamp ``key`` (what it was made from)."""
    stamp = _stamp(path)
    return path.exists() and stamp.exists() and stamp.read_text() == key


def write_whole(path: Path, text: str, key: str | None = None) -> Path:
    """Write ``text`` to ``path`` through a temporary file (a reader never sees half of it), and the stamp
    ``key`` beside it when given (``<name>.stamp``, for :func:`is_fresh`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    if key is not None:
        _stamp(path).write_text(key)
    return path
