"""Where the data sets that ship inside PyPI packages are: found without importing the packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import InputError

__all__ = ["package_file", "movielens_100k", "gensim_corpus"]


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
