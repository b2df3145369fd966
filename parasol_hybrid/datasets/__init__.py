"""Real data sets that ship inside PyPI packages, located, split and written for jobs and tests.

Nothing is downloaded: MovieLens-100K comes from the ``recbole`` package,
text corpora from ``gensim``, tabular sets from scikit-learn (install them
with ``pip install --no-deps recbole==1.2.1 gensim==4.4.0 scikit-learn``).
The files are read from the installed package; nothing is copied into the
repository. ``python -m parasol_hybrid.datasets --out data`` writes them all
(:func:`prepare`).

- where they are: :func:`package_file`, :func:`movielens_100k`, :func:`gensim_corpus`;
- ratings (MF, ALS): :func:`split_ratings`;
- libsvm, 0/1 labels (LR, FM, k-means): :func:`write_libsvm`, :func:`breast_cancer`, :func:`digits_libsvm`;
- libsvm, real targets (Lasso): :func:`write_regression`, :func:`diabetes`, :func:`cancer_area`;
- graphs and matrices (SVD, PageRank): :func:`movielens_ratings`, :func:`movielens_bipartite`,
  :func:`lee_word_graph` (:func:`word_pairs`);
- text (LDA): :func:`lee_split`.
"""

from ._graphs import lee_word_graph, movielens_bipartite, movielens_ratings, word_pairs
from ._libsvm import breast_cancer, digits_libsvm, write_libsvm
from ._prepare import main, prepare
from ._ratings import split_ratings
from ._regression import cancer_area, diabetes, write_regression
from ._sources import gensim_corpus, movielens_100k, package_file
from ._text import lee_split

__all__ = [
    "package_file",
    "movielens_100k",
    "gensim_corpus",
    "split_ratings",
    "write_libsvm",
    "breast_cancer",
    "digits_libsvm",
    "write_regression",
    "diabetes",
    "cancer_area",
    "movielens_ratings",
    "movielens_bipartite",
    "lee_word_graph",
    "word_pairs",
    "lee_split",
    "prepare",
    "main",
]
