"""Every demo and test data set under one folder: :func:`prepare`, and ``python -m parasol_hybrid.datasets``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ._graphs import lee_word_graph, movielens_bipartite, movielens_ratings
from ._libsvm import breast_cancer, digits_libsvm
from ._ratings import split_ratings
from ._regression import cancer_area, diabetes
from ._sources import gensim_corpus, movielens_100k
from ._text import lee_split

__all__ = ["prepare", "main"]


def _link(path: Path, target: Path) -> Path:
    """``path`` made a symbolic link to ``target`` (replacing what was there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)
    return path


def prepare(out: Path, seed: int = 0) -> dict[str, Path]:
    """Write every demo/test data set under ``out``; returns what was written, by path under ``out``
    (idempotent)."""
    out = Path(out)
    made = {}
    made["ml-100k/train.tsv"], made["ml-100k/test.tsv"] = split_ratings(movielens_100k(), out / "ml-100k", seed=seed)
    made["breast_cancer/train.svm"], made["breast_cancer/test.svm"] = breast_cancer(out / "breast_cancer", seed=seed)
    made["lee/lee_background.cor"] = _link(out / "lee" / "lee_background.cor", gensim_corpus("lee_background.cor"))
    made["digits/digits.svm"] = digits_libsvm(out / "digits")
    made["lee_split/train.txt"], made["lee_split/test.txt"] = lee_split(out / "lee_split", seed=seed)
    made["ml-100k/ratings.tsv"] = movielens_ratings(out / "ml-100k")
    made["graphs/lee_words.tsv"] = lee_word_graph(out / "graphs")
    made["graphs/ml100k_bipartite.tsv"] = movielens_bipartite(out / "graphs")
    made["diabetes/train.svm"], made["diabetes/test.svm"] = diabetes(out / "diabetes", seed=seed)
    made["cancer_area/train.svm"], made["cancer_area/test.svm"] = cancer_area(out / "cancer_area", seed=seed)
    return made


def main(argv: list[str] | None = None) -> int:
    """``python -m parasol_hybrid.datasets --out data``: prepare the demo and test data."""
    parser = argparse.ArgumentParser(prog="python -m parasol_hybrid.datasets", description=main.__doc__)
    parser.add_argument("--out", default="data", help="folder to write into (default: data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random splits")
    args = parser.parse_args(argv)
    try:
        for name, path in prepare(Path(args.out), args.seed).items():
            print(f"{name}: {path}")
    except InputError as exc:
        print(f"error: {exc}")
        return 1
    return 0
