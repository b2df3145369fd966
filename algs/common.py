"""Pieces the algorithms of ``algs/`` share: the ratings set-up, the held-out ratings, the output files,
the stable logistic loss, and the guard of the update rules a script registers.

The algorithms import it by its plain name (``from common import ...``): ``algs/`` is on ``sys.path``
whenever one of them runs, as a script (``run_parasol ... python algs/mf.py``: Python puts the
script's folder first) and when the launcher imports the entry script to read its options (it puts
the script's folder on ``sys.path`` for that import). Tests and benchmarks that import these modules
put ``algs/`` on ``sys.path`` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from parasol_hybrid import data as loaders
from parasol_hybrid import get_rule, rule_names

if TYPE_CHECKING:  # importing paralg starts MPI: kernels modules import this one, tests import them
    from parasol_hybrid import paralg

__all__ = ["Ratings", "load_ratings", "index_of", "HeldOutRatings", "write_ids", "write_factors",
           "write_history", "done_line", "logistic_loss", "log_loss", "may_replace_rule"]


# ---------------------------------------------------------------- ratings


@dataclass
class Ratings:
    """This worker's training ratings as rows of the job's vocabularies, and the job-wide figures."""

    users: np.ndarray      # the job's user ids, sorted as strings: row ``r`` of a user table is ``users[r]``
    items: np.ndarray      # the same for the items
    u: np.ndarray          # this worker's ratings: user row, item row, value (as loaded: int32 rows
    i: np.ndarray          # stay int32, the values are float64)
    r: np.ndarray
    n_total: int           # ratings over all workers
    mean: float            # the mean training rating over all workers (0 without ratings)
    bad_lines: int         # bad input lines over all workers

    def figures(self) -> dict:
        """The metrics every ratings algorithm reports about its input."""
        return {"global_mean": self.mean, "ratings": self.n_total, "users": len(self.users),
                "items": len(self.items)}


def load_ratings(alg: paralg, pattern: str = "fmap", shuffle: bool = False) -> Ratings:
    """Load the config's ``input`` as ratings split by ``pattern`` (collective).

    ``fmap`` / ``smap`` / ``fsmap``: parsed in parallel and sent to the owners, the vocabularies come with
    them (``shuffle``: in a random order of runs); ``linesplit``: each worker parses its byte range
    and the vocabularies are agreed on afterwards.
    """
    if pattern == "linesplit":
        part = alg.load(format="ratings")
        users, items = alg.vocabulary(part.rows), alg.vocabulary(part.cols)
        u, i = index_of(users, part.rows), index_of(items, part.cols)
    else:
        part = alg.load(pattern=pattern, shuffle=shuffle)
        users, items, u, i = part.row_ids, part.col_ids, part.u, part.i
    r = part.values.astype(np.float64, copy=False)
    n_total = alg.allreduce(len(r))
    mean = alg.allreduce(float(r.sum())) / max(n_total, 1)
    bad = alg.allreduce(int(part.bad_lines))
    return Ratings(users, items, u, i, r, n_total, mean, bad)


def index_of(vocab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in the sorted ``vocab``; -1 where an id is not in it."""
    vocab = np.asarray(vocab, dtype=str)
    ids = np.asarray(ids, dtype=str)
    pos = np.searchsorted(vocab, ids)
    pos = np.minimum(pos, len(vocab) - 1)
    found = vocab[pos] == ids
    return np.where(found, pos, -1).astype(np.int64)


class HeldOutRatings:
    """The ``test_input`` ratings as rows of the training vocabularies (-1: an id not seen in training).

    Only the master reads them; elsewhere, and without ``test_input``, there are none.
    """

    def __init__(self, alg: paralg, users: np.ndarray, items: np.ndarray):
        self.u = self.i = self.r = None
        if alg.is_master and alg.cfg.test_input:
            lines = loaders.read_all_lines(loaders.expand_inputs(alg.cfg.test_input))
            t = loaders.parse_ratings(lines, on_bad_line=alg.cfg.on_bad_line)
            self.u, self.i, self.r = index_of(users, t.rows), index_of(items, t.cols), t.values.astype(np.float64)

    def __len__(self) -> int:
        return 0 if self.r is None else len(self.r)

    def rmse(self, sse_kernel, tables: tuple, *after) -> float | None:
        """``sqrt(sse_kernel(*tables, u, i, r, *after) / n)`` over the held-out ratings; None without any."""
        if not len(self):
            return None
        return float(np.sqrt(sse_kernel(*tables, self.u, self.i, self.r, *after) / len(self)))

    def figures(self, rmse: float | None) -> dict:
        """``test_rmse`` and ``test_ratings`` for metrics.json (nothing without a test RMSE)."""
        return {} if rmse is None else {"test_rmse": rmse, "test_ratings": len(self)}


# ---------------------------------------------------------------- output files (master)


def write_ids(alg: paralg, name: str, ids) -> None:
    """``<output>/<name>``: one id a line, in row order."""
    alg.output_path(name).write_text("".join(f"{x}\n" for x in ids))


def write_factors(alg: paralg, tables, users: np.ndarray, items: np.ndarray) -> None:
    """Save ``tables`` (``<name>.npy`` each) and the ids of their rows, ``users.txt`` and ``items.txt``."""
    for t in tables:
        alg.save_table(t)
    write_ids(alg, "users.txt", users)
    write_ids(alg, "items.txt", items)


def write_history(alg: paralg, columns: tuple[str, ...], rows) -> None:
    """``<output>/history.tsv``: a header of ``columns``, then a line per row (round, then ``repr`` of each
    figure; an empty field for None)."""
    lines = ["\t".join(columns) + "\n"]
    for rnd, *figures in rows:
        lines.append("\t".join([f"{rnd}"] + ["" if x is None else repr(x) for x in figures]) + "\n")
    alg.output_path("history.tsv").write_text("".join(lines))


def done_line(head: str, test_rmse: float | None, tail: str) -> str:
    """The last line an algorithm prints: ``head``, the test RMSE when there is one, then ``tail``."""
    return head + ("" if test_rmse is None else f"  test_rmse {test_rmse:.4f}") + tail


# ---------------------------------------------------------------- kernels


@njit(inline="always", nogil=True)
def logistic_loss(z, y):
    """The log-loss of the 0/1 label ``y`` under ``P(y = 1) = sigmoid(z)``, and its derivative in ``z``,
    ``sigmoid(z) - y``; without overflow (``log(1 + e^-|z|)`` plus the linear part)."""
    if z >= 0:
        e = np.exp(-z)
        return np.log1p(e) + (1.0 - y) * z, 1.0 / (1.0 + e) - y
    e = np.exp(z)
    return np.log1p(e) - y * z, e / (1.0 + e) - y


def log_loss(labels: np.ndarray, proba: np.ndarray) -> float:
    """Mean log-loss of 0/1 ``labels`` under ``proba`` (clipped to [1e-15, 1 - 1e-15])."""
    p = np.clip(proba, 1e-15, 1 - 1e-15)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


# ---------------------------------------------------------------- update rules


def may_replace_rule(name: str, script: str) -> bool:
    """Whether ``script`` registering update rule ``name`` may replace an existing one: only its own, when
    the script is imported again (the launcher imports the entry script to read its options)."""
    if name not in rule_names():
        return False
    fn = get_rule(name).fn
    return getattr(fn, "py_func", fn).__code__.co_filename == script
