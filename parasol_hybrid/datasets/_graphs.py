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
its path.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..data.parsers import tokenize
from ._files import is_fresh, write_whole
from ._sources import gensim_corpus, movielens_100k

__all__ = ["movielens_ratings", "lee_word_graph", "movielens_bipartite", "word_pairs"]


def _from_movielens(path: Path, kind: str, template: str) -> Path:
    """``path``: each MovieLens-100K rating as ``template.format(user, item, rating)``, unless it is fresh
    (made from the same file)."""
    source = movielens_100k()
    key = f"{kind} {source.resolve()}\n"
    if is_fresh(path, key):
        return path
    rows = (line.split() for line in source.read_text().splitlines()[1:])  # the first line is recbole's header
    return write_whole(path, "".join(template.format(*fields[:3]) for fields in rows if len(fields) >= 3), key)


def movielens_ratings(out_dir) -> Path:
    """``<out_dir>/ratings.tsv``: every MovieLens-100K rating as ``user<TAB>item<TAB>rating`` (100,000 lines)."""
    return _from_movielens(Path(out_dir) / "ratings.tsv", "ratings", "{}\t{}\t{}\n")


def movielens_bipartite(out_dir) -> Path:
    """``<out_dir>/ml100k_bipartite.tsv``: edges ``u<user> -> i<item>`` weighted by the rating.

    2,625 nodes (943 users, 1,682 items), 100,000 edges; the items have no
    out-edges, so they are dangling nodes.
    """
    return _from_movielens(Path(out_dir) / "ml100k_bipartite.tsv", "bipartite", "u{}\ti{}\t{}\n")


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
    if is_fresh(path, key):
        return path
    pairs = word_pairs(source.read_text(encoding="utf-8", errors="replace").splitlines())
    return write_whole(path, "".join(f"{a}\t{b}\t{c}\n" for (a, b), c in sorted(pairs.items())), key)
