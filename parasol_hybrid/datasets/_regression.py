"""Real regression sets from scikit-learn's bundled files, written as libsvm lines with real targets.

A line is ``target idx:val idx:val ...`` (indices from 0, zeros left out),
the target a real number: the format scikit-learn's ``dump_svmlight_file``
writes and ``load_svmlight_file`` reads. Numbers are written with 17
significant digits, so a reader gets back exactly the float64 values that
were written (the tests fit scikit-learn's reference on the same files).
``algs/lasso.py`` reads them with ``scan_libsvm(..., labels="real")``.

- :func:`diabetes`: 442 patients × 10 features (age, sex, BMI, blood
  pressure, six blood serum measurements, as scikit-learn scales them:
  centred, unit norm per column), target a measure of disease progression
  one year later.
- :func:`cancer_area`: the 569 breast-cancer tumours, predicting the cell
  nuclei's mean area from the 29 other measurements (standardised on the
  train part).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._libsvm import features_text

__all__ = ["write_regression", "diabetes", "cancer_area"]


def write_regression(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    """Write a dense matrix and real targets as ``target idx:val ...`` lines (zeros left out)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for row, target in zip(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)):
            fh.write(f"{target:.17g} {features_text(row, 17)}".rstrip() + "\n")
    return path


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    is_test = np.random.default_rng(seed).random(n) < test_fraction
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def diabetes(out_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    """scikit-learn's diabetes set (442 × 10, features as scikit-learn scales them) as ``train.svm``/``test.svm``."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    train, test = _split(len(y), test_fraction, seed)
    out_dir = Path(out_dir)
    return (write_regression(out_dir / "train.svm", X[train], y[train]),
            write_regression(out_dir / "test.svm", X[test], y[test]))


def cancer_area(out_dir: Path, test_fraction: float = 0.25, seed: int = 0) -> tuple[Path, Path]:
    """Breast-cancer tumours: predict ``mean area`` from the 29 other features (standardised on train).

    Feature ``j`` of the files is column ``j`` of ``load_breast_cancer().data``
    with column 3 (``mean area``) removed.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data
    y = data[:, 3]
    X = np.delete(data, 3, axis=1)
    train, test = _split(len(y), test_fraction, seed)
    mu, sd = X[train].mean(0), X[train].std(0) + 1e-12
    out_dir = Path(out_dir)
    return (write_regression(out_dir / "train.svm", (X[train] - mu) / sd, y[train]),
            write_regression(out_dir / "test.svm", (X[test] - mu) / sd, y[test]))
