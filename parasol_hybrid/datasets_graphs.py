"""Real graphs and matrices for SVD and PageRank, made from data that ships in packages.

- :func:`movielens_ratings`: the whole MovieLens-100K ratings file (recbole's
  ``ml-100k.inter``) as ``user<TAB>item<TAB>rating`` lines, no header: the
  943 × 1682 matrix that ``algs/svd.py`` factorises.
- :func:`lee_word_graph`: a directed word graph of gensim's Lee corpus
  (``lee_background.cor``): an edge ``a -> b`` for every pair of adjacent
  words in a document (lower-cased words as :func:`parasol_hybrid.data.tokenize`
  finds them), weighted by how often the pair occurs; ``a<TAB>b<TAB>count``.
- :func:`movielens_bipartite`: MovieLens-100K as a directed bipartite graph,
  ``u<user><TAB>i<item><TAB>rating`` (every item is a dangling node).

Each writes its file only when it is missing or was made from another
source (a ``.stamp`` file beside it says what it was made from), and returns
its path. ``prepare_graphs(out)`` writes all three, like
:func:`parasol_hybrid.datasets.prepare`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .data.parsers import tokenize
from .datasets import gensim_corpus, movielens_100k

__all__ = ["movielens_ratings", "lee_word_graph", "movielens_bipartite", "prepare_graphs"]


def _fresh(path: Path, key: str) -> bool:
    stamp = path.with_name(path.name + ".stamp")
    return path.exists() and stamp.exists() and stamp.read_text() == key


def _write(path: Path, key: str, lines: list[str]) -> Path:
    """Write ``lines`` to ``path`` (through a temporary file) and its stamp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(path)
    path.with_name(path.name + ".stamp").write_text(key)
    return path


def _movielens_triples() -> tuple[str, list[tuple[str, str, str]]]:
    source = movielens_100k()
    rows = []
    for line in source.read_text().splitlines()[1:]:  # the first line is recbole's header
        fields = line.split()
        if len(fields) >= 3:
            rows.append((fields[0], fields[1], fields[2]))
    return f"{source.resolve()}\n", rows


def movielens_ratings(out_dir) -> Path:
    """``<out_dir>/ratings.tsv``: every MovieLens-100K rating as ``user<TAB>item<TAB>rating`` (100,000 lines)."""
    path = Path(out_dir) / "ratings.tsv"
    key = f"ratings {movielens_100k().resolve()}\n"
    if _fresh(path, key):
        return path
    _, rows = _movielens_triples()
    return _write(path, key, [f"{u}\t{i}\t{r}\n" for u, i, r in rows])


def movielens_bipartite(out_dir) -> Path:
    """``<out_dir>/ml100k_bipartite.tsv``: edges ``u<user> -> i<item>`` weighted by the rating.

    2,625 nodes (943 users, 1,682 items), 100,000 edges; the items have no
    out-edges, so they are dangling nodes.
    """
    path = Path(out_dir) / "ml100k_bipartite.tsv"
    key = f"bipartite {movielens_100k().resolve()}\n"
    if _fresh(path, key):
        return path
    _, rows = _movielens_triples()
    return _write(path, key, [f"u{u}\ti{i}\t{r}\n" for u, i, r in rows])


def word_pairs(lines) -> Counter:
    """How often each (word, next word) pair occurs within a line, words lower-cased."""
    pairs: Counter = Counter()
    for line in lines:
        words = [w.lower() for w in tokenize(line)]
        pairs.update(zip(words, words[1:]))
    return pairs


def lee_word_graph(out_dir) -> Path:
    """``<out_dir>/lee_words.tsv``: the adjacent-word graph of gensim's Lee corpus, ``a<TAB>b<TAB>count``.

    Lines are sorted by (a, b). 7,393 nodes and 35,735 edges; the 32 words
    that only ever end a document are dangling nodes.
    """
    source = gensim_corpus("lee_background.cor")
    path = Path(out_dir) / "lee_words.tsv"
    key = f"lee {source.resolve()}\n"
    if _fresh(path, key):
        return path
    pairs = word_pairs(source.read_text(encoding="utf-8", errors="replace").splitlines())
    return _write(path, key, [f"{a}\t{b}\t{c}\n" for (a, b), c in sorted(pairs.items())])


def prepare_graphs(out) -> dict[str, Path]:
    """Write the SVD and PageRank inputs under ``out`` (``ml-100k/ratings.tsv``, ``graphs/*.tsv``)."""
    out = Path(out)
    return {
        "ml-100k/ratings.tsv": movielens_ratings(out / "ml-100k"),
        "graphs/lee_words.tsv": lee_word_graph(out / "graphs"),
        "graphs/ml100k_bipartite.tsv": movielens_bipartite(out / "graphs"),
    }


if __name__ == "__main__":
    import sys

    for name, where in prepare_graphs(Path(sys.argv[1] if len(sys.argv) > 1 else "data")).items():
        print(f"{name}: {where}")
