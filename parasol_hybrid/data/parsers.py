"""Parse lines into ratings triples, libsvm rows (0/1 labels or real targets), or words.

Parsers take :class:`~parasol_hybrid.data.lines.Line` objects so that a
malformed line can be reported as ``path:lineno``. ``on_bad_line="error"``
raises :class:`InputError` at the first malformed line; ``"skip"`` drops it
and counts it in ``bad_lines``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from parasol_hybrid.data.lines import Line
from parasol_hybrid.errors import ConfigError, InputError

__all__ = [
    "BAD_LINE_POLICIES",
    "Ratings",
    "LibSVM",
    "parse_ratings",
    "parse_libsvm",
    "parse_regression",
    "tokenize",
    "count_words",
]

BAD_LINE_POLICIES = ("error", "skip")
_SHOWN_CHARS = 80
_WORD = re.compile(r"[-a-zA-Z0-9_]+")
_WORD_BATCH = 4096  # lines joined per regex call in count_words


@dataclass
class Ratings:
    """Weighted (row, col, value) triples; ids are Python ``str`` in object arrays."""

    rows: np.ndarray  # dtype object, str ids
    cols: np.ndarray  # dtype object, str ids
    values: np.ndarray  # float64
    bad_lines: int = 0

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class LibSVM:
    """Labelled sparse rows in CSR form; labels normalised to 0.0 / 1.0."""

    labels: np.ndarray  # float64, one per row
    indptr: np.ndarray  # int64, len(labels) + 1
    indices: np.ndarray  # int64, feature indices as written
    data: np.ndarray  # float64
    n_features: int = 0  # max index + 1, 0 when there are no features
    bad_lines: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def _check_policy(on_bad_line: str) -> bool:
    """Return True for "skip", False for "error"; reject anything else."""
    if on_bad_line not in BAD_LINE_POLICIES:
        raise ConfigError(
            f"on_bad_line must be one of {list(BAD_LINE_POLICIES)}, got {on_bad_line!r}"
        )
    return on_bad_line == "skip"


def _bad_line(line: Line, problem: str) -> InputError:
    shown = line.text[:_SHOWN_CHARS]
    return InputError(f"{line.path}:{line.lineno}: {problem} ({shown!r})")


def _finite_float(text: str) -> float | None:
    """``float(text)`` if it is a finite number, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _object_array(items: list[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def parse_ratings(
    lines: Iterable[Line],
    on_bad_line: str = "error",
    weight_required: bool = True,
) -> Ratings:
    """Parse ``row col [weight] [ignored...]`` lines into :class:`Ratings`.

    Fields are separated by any mix of tabs, commas and spaces (runs count
    as one separator). Blank lines and lines whose first field starts with
    ``#`` are skipped silently. Ids stay strings. A missing weight is 1.0
    when ``weight_required`` is False; otherwise it makes the line bad, as
    do a weight that is not a finite number and a line with under two fields.
    """
    skip = _check_policy(on_bad_line)
    need = 3 if weight_required else 2
    expected = "row col weight" if weight_required else "row col [weight]"
    rows: list[str] = []
    cols: list[str] = []
    values: list[float] = []
    bad = 0
    for line in lines:
        fields = line.text.replace(",", " ").split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < need:
            problem = f"expected at least {need} fields ({expected}), got {len(fields)}"
        elif len(fields) == 2:
            rows.append(fields[0])
            cols.append(fields[1])
            values.append(1.0)
            continue
        else:
            weight = _finite_float(fields[2])
            if weight is not None:
                rows.append(fields[0])
                cols.append(fields[1])
                values.append(weight)
                continue
            problem = f"weight {fields[2]!r} is not a finite number"
        if not skip:
            raise _bad_line(line, problem)
        bad += 1
    return Ratings(
        rows=_object_array(rows),
        cols=_object_array(cols),
        values=np.array(values, dtype=np.float64),
        bad_lines=bad,
    )


_LABEL_TEXT = {"1": 1.0, "+1": 1.0, "0": 0.0, "-1": 0.0}
_LABEL_VALUE = {1.0: 1.0, 0.0: 0.0, -1.0: 0.0}


def _label(text: str) -> float | None:
    """The 0/1 label that ``text`` spells (0, 1, -1, +1, or e.g. "1.0"), else None."""
    label = _LABEL_TEXT.get(text)
    if label is None:
        value = _finite_float(text)
        label = None if value is None else _LABEL_VALUE.get(value)
    return label


def _append_features(fields: list[str], indices: list[int], data: list[float]) -> str | None:
    """Append the ``idx:val`` fields to ``indices``/``data``; on a bad field undo and say why."""
    start = len(indices)
    for field in fields:
        key, sep, value = field.partition(":")
        if not (sep and key.isdigit() and key.isascii()):
            problem = f"feature {field!r} is not index:value with a non-negative integer index"
        else:
            number = _finite_float(value)
            if number is not None:
                indices.append(int(key))
                data.append(number)
                continue
            problem = f"feature value in {field!r} is not a finite number"
        del indices[start:], data[start:]
        return problem
    return None


def parse_libsvm(lines: Iterable[Line], on_bad_line: str = "error") -> LibSVM:
    """Parse ``label idx:val idx:val ... [# comment]`` lines into CSR :class:`LibSVM`.

    Labels 0/1 and -1/+1 are normalised to 0.0/1.0; any other label is a
    bad line. Indices are kept as written (not shifted) and must be
    non-negative integers; values must be finite. Text after ``#`` is
    ignored, and blank lines are skipped.
    """
    skip = _check_policy(on_bad_line)
    labels: list[float] = []
    indptr: list[int] = [0]
    indices: list[int] = []
    data: list[float] = []
    bad = 0
    for line in lines:
        text = line.text
        fields = (text.split("#", 1)[0] if "#" in text else text).split()
        if not fields:
            continue
        label = _label(fields[0])
        if label is None:
            problem: str | None = f"label {fields[0]!r} is not one of 0, 1, -1, +1"
        else:
            problem = _append_features(fields[1:], indices, data)
        if problem is None:
            labels.append(label)  # type: ignore[arg-type]
            indptr.append(len(indices))
            continue
        if not skip:
            raise _bad_line(line, problem)
        bad += 1
    index_array = np.array(indices, dtype=np.int64)
    return LibSVM(
        labels=np.array(labels, dtype=np.float64),
        indptr=np.array(indptr, dtype=np.int64),
        indices=index_array,
        data=np.array(data, dtype=np.float64),
        n_features=int(index_array.max()) + 1 if len(index_array) else 0,
        bad_lines=bad,
    )


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
                raise _bad_line(line, problem)
            bad += 1
            continue
        targets.append(target)
        indices.extend(idx)
        data.extend(val)
        indptr.append(len(indices))
    indices = np.array(indices, dtype=np.int64)
    return (np.array(targets, dtype=np.float64), np.array(indptr, dtype=np.int64), indices,
            np.array(data, dtype=np.float64), int(indices.max()) + 1 if len(indices) else 0, bad)


def tokenize(text: str) -> list[str]:
    """Words of ``text``: maximal runs of ``[-a-zA-Z0-9_]`` (ASCII only, case kept)."""
    return _WORD.findall(text)


def count_words(lines: Iterable[Line]) -> Counter[str]:
    """Count the words (as :func:`tokenize` defines them) over all ``lines``."""
    counts: Counter[str] = Counter()
    batch: list[str] = []
    for line in lines:
        batch.append(line.text)
        if len(batch) >= _WORD_BATCH:
            counts.update(_WORD.findall("\n".join(batch)))
            batch.clear()
    if batch:
        counts.update(_WORD.findall("\n".join(batch)))
    return counts
