"""Turn an input spec (file, directory, glob, or a list of them) into files.

Every worker of a job calls :func:`expand_inputs` on the same spec and must
get the same list in the same order, because the byte-range split in
:mod:`parasol_hybrid.data.lines` is computed over that order.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable, Union

from parasol_hybrid.errors import InputError

__all__ = ["InputSpec", "expand_inputs"]

InputSpec = Union[str, "os.PathLike[str]", Iterable[Union[str, "os.PathLike[str]"]]]

_GLOB_CHARS = frozenset("*?[")


def _is_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


def _files_under(directory: Path) -> list[Path]:
    """Regular files below ``directory``, recursively, skipping hidden files and dirs."""
    found: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if path.is_file():
                found.append(path)
    return found


def _expand_one(item: str | os.PathLike[str]) -> list[Path]:
    text = os.fspath(item)
    if not isinstance(text, str):
        raise InputError(f"input spec must be a path or a glob, got {item!r}")
    if text == "":
        raise InputError("input spec is an empty string")
    path = Path(text)
    if path.is_dir():
        files = _files_under(path)
        if not files:
            raise InputError(f"input directory {text!r} contains no (non-hidden) files")
        return files
    if path.exists():
        return [path]
    if not _is_glob(text):
        raise InputError(f"input file {text!r} does not exist")
    files = []
    for match in sorted(glob.glob(text, recursive=True)):
        found = Path(match)
        if found.is_dir():
            files.extend(_files_under(found))
        elif found.is_file():
            files.append(found)
    if not files:
        raise InputError(f"input pattern {text!r} matches no files")
    return files


def expand_inputs(spec: InputSpec) -> list[Path]:
    """Expand an input spec into a sorted, deduplicated list of files.

    ``spec`` is a file, a directory (all regular files inside it,
    recursively, hidden files and directories skipped), a glob pattern
    (``*``, ``?``, ``[...]``, ``**``), or a list of those. Files are
    deduplicated by absolute path and sorted by absolute path, so every
    process that runs in the same directory gets the same list.

    Raises :class:`InputError` naming the spec when a path does not exist, a
    pattern matches nothing, a directory holds no files, or the list is empty.
    """
    if isinstance(spec, (str, os.PathLike)):
        items: list[str | os.PathLike[str]] = [spec]
    else:
        items = list(spec)
        if not items:
            raise InputError("input spec is an empty list: no input files given")
    by_abspath: dict[str, Path] = {}
    for item in items:
        for path in _expand_one(item):
            by_abspath.setdefault(os.path.abspath(path), path)
    return [by_abspath[key] for key in sorted(by_abspath)]
