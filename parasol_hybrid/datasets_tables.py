"""Data for the k-means and LDA jobs, made from data sets that ship inside packages (nothing downloaded).

* :func:`digits_libsvm`: scikit-learn's hand-written digits (1,797 images of
  8×8 pixels with grey levels 0..16, i.e. 64 features), one libsvm line per
  image. The library's libsvm parser takes only 0/1 (or -1/+1) labels, and
  k-means needs none, so every line's label is ``0``; the true digit follows
  in a comment (``# 7``), which the parser ignores. Feature indices are
  0-based (column ``j`` of ``load_digits().data`` is index ``j``); zero pixels
  are left out.
* :func:`lee_split`: gensim's Lee news corpus (300 documents, one per line)
  cut into a train and a held-out file of whole documents, for LDA.

Both write into ``out_dir`` and are idempotent (the files are rewritten with
the same content).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import gensim_corpus

__all__ = ["digits_libsvm", "lee_split", "prepare_tables"]


def digits_libsvm(out_dir: Path, name: str = "digits.svm") -> Path:
    """Write scikit-learn's digits as ``<out_dir>/<name>``: ``0 j:v ... # digit`` per image (0-based j)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    lines = []
    for row, digit in zip(X, y):
        feats = " ".join(f"{j}:{v:.10g}" for j, v in enumerate(row) if v != 0)
        lines.append(f"0 {feats} # {int(digit)}\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(path)
    return path


def lee_split(out_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    """Split gensim's ``lee_background.cor`` by document into ``train.txt`` and ``test.txt``.

    A document goes to the test file with probability ``test_fraction``
    (numpy ``default_rng(seed)``); blank lines are dropped; order is kept.
    """
    lines = [ln for ln in gensim_corpus("lee_background.cor").read_text(encoding="utf-8").splitlines()
             if ln.strip()]
    is_test = np.random.default_rng(seed).random(len(lines)) < test_fraction
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = out_dir / "train.txt", out_dir / "test.txt"
    for path, keep in ((train, ~is_test), (test, is_test)):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(ln + "\n" for ln, t in zip(lines, keep) if t), encoding="utf-8")
        tmp.replace(path)
    return train, test


def prepare_tables(out: Path, seed: int = 0) -> dict[str, Path]:
    """The files for k-means and LDA under ``out``: ``digits/digits.svm``, ``lee_split/{train,test}.txt``."""
    out = Path(out)
    made = {"digits/digits.svm": digits_libsvm(out / "digits")}
    made["lee_split/train.txt"], made["lee_split/test.txt"] = lee_split(out / "lee_split", seed=seed)
    return made
