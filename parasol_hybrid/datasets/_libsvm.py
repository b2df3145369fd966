"""Classification and clustering sets of scikit-learn, written as libsvm lines (``label idx:val ...``).

- :func:`breast_cancer`: the 569 breast-cancer tumours, 0/1 labels, standardised on the train part (LR, FM).
- :func:`digits_libsvm`: the 1,797 hand-written digits (8×8 pixels with grey levels 0..16, 64 features),
  for k-means. The library's libsvm parser takes only 0/1 (or -1/+1) labels, and k-means needs none, so
  every line's label is ``0``; the true digit follows in a comment (``# 7``), which the parser ignores.

Feature indices are 0-based (column ``j`` is index ``j``); zeros are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._files import write_whole

__all__ = ["features_text", "write_libsvm", "breast_cancer", "digits_libsvm"]


def features_text(row: np.ndarray, digits: int = 10) -> str:
    """``j:v`` for each non-zero ``row[j]``, space-separated, ``v`` with ``digits`` significant digits."""
    return " ".join(f"{j}:{v:.{digits}g}" for j, v in enumerate(row) if v != 0)


def write_libsvm(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    """Write a dense matrix and 0/1 labels as libsvm lines (``label idx:val ...``, zeros left out)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for row, label in zip(X, y):
            fh.write(f"{int(label)} {features_text(row)}\n")
    return path


def breast_cancer(out_dir: Path, test_fraction: float = 0.25, seed: int = 0) -> tuple[Path, Path]:
    """scikit-learn's breast-cancer set, standardised on the train part, as libsvm train/test files."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-12
    out_dir = Path(out_dir)
    return (write_libsvm(out_dir / "train.svm", (Xtr - mu) / sd, ytr),
            write_libsvm(out_dir / "test.svm", (Xte - mu) / sd, yte))


def digits_libsvm(out_dir: Path, name: str = "digits.svm") -> Path:
    """Write scikit-learn's digits as ``<out_dir>/<name>``: ``0 j:v ... # digit`` per image (0-based j)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    lines = [f"0 {features_text(row)} # {int(digit)}\n" for row, digit in zip(X, y)]
    return write_whole(Path(out_dir) / name, "".join(lines))
