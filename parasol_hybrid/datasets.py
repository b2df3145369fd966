"""Real data sets that ship inside PyPI packages, located and split for jobs and tests.

Nothing is downloaded: MovieLens-100K comes from the ``recbole`` package,
text corpora from ``gensim``, tabular sets from scikit-learn (install them
with ``pip install --no-deps recbole==1.2.1 gensim==4.4.0 scikit-learn``).
The files are read from the installed package; nothing is copied into the
repository.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["package_file", "movielens_100k", "split_ratings", "gensim_corpus", "write_libsvm", "breast_cancer", "prepare"]


def package_file(package: str, relative: str) -> Path:
    """``relative`` inside the installed ``package`` (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package {package!r} is not installed (pip install --no-deps {package})")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise InputError(f"{path} is missing from the installed package {package!r}")
    return path


def movielens_100k() -> Path:
    """The MovieLens-100K ratings file shipped by recbole (TSV with a header line)."""
    return package_file("recbole", "dataset_example/ml-100k/ml-100k.inter")


def gensim_corpus(name: str = "lee_background.cor") -> Path:
    """A text corpus shipped with gensim's tests (one document per line)."""
    return package_file("gensim", f"test/test_data/{name}")


def split_ratings(source: Path, out_dir: Path, test_fraction: float = 0.2, seed: int = 0,
                  skip_header: bool = True) -> tuple[Path, Path]:
    """Write a random train/test split of ``user item rating`` lines as ``train.tsv`` and ``test.tsv``.

    Reuses the files when they already exist with the same parameters.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = out_dir / "train.tsv", out_dir / "test.tsv"
    stamp = out_dir / ".split"
    key = f"{Path(source).resolve()} {test_fraction} {seed}\n"
    if train.exists() and test.exists() and stamp.exists() and stamp.read_text() == key:
        return train, test
    lines = Path(source).read_text().splitlines()
    if skip_header:
        lines = lines[1:]
    rows = ["\t".join(line.split()[:3]) for line in lines if line.strip()]
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(rows)) < test_fraction
    train.write_text("".join(r + "\n" for r, t in zip(rows, is_test) if not t))
    test.write_text("".join(r + "\n" for r, t in zip(rows, is_test) if t))
    stamp.write_text(key)
    return train, test


def write_libsvm(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    """Write a dense matrix and 0/1 labels as libsvm lines (``label idx:val ...``, zeros left out)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for row, label in zip(X, y):
            feats = " ".join(f"{j}:{v:.10g}" for j, v in enumerate(row) if v != 0)
            fh.write(f"{int(label)} {feats}\n")
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


def prepare(out: Path, seed: int = 0) -> dict[str, Path]:
    """Write every demo/test data set under ``out``; returns what was written (idempotent)."""
    out = Path(out)
    made = {}
    made["ml-100k/train.tsv"], made["ml-100k/test.tsv"] = split_ratings(movielens_100k(), out / "ml-100k", seed=seed)
    made["breast_cancer/train.svm"], made["breast_cancer/test.svm"] = breast_cancer(out / "breast_cancer", seed=seed)
    lee = out / "lee"
    lee.mkdir(parents=True, exist_ok=True)
    link = lee / "lee_background.cor"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(gensim_corpus("lee_background.cor"))
    made["lee/lee_background.cor"] = link
    # the data of the other algorithms (each module writes under ``out``)
    from . import datasets_graphs, datasets_regression, datasets_tables

    for part in (datasets_tables.prepare_tables(out, seed), datasets_graphs.prepare_graphs(out),
                 datasets_regression.prepare(out, seed)):
        made.update({str(k): v for k, v in part.items()})
    return made


def main(argv: list[str] | None = None) -> int:
    """``python -m parasol_hybrid.datasets --out data``: prepare the demo and test data."""
    import argparse

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


if __name__ == "__main__":
    raise SystemExit(main())
