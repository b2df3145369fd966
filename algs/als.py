"""Matrix factorisation by alternating least squares (ALS), on the parameter server.

Model: ``rating ≈ mu + bu[u] + bi[i] + P[u]·Q[i]`` (``biases: true``, the
default) or ``rating ≈ mu + P[u]·Q[i]`` (``biases: false``); ``mu`` is the mean
training rating. ALS minimises

    Σ (r - r̂)²  +  reg · Σ_u w_u (‖P[u]‖² + bu[u]²)  +  reg · Σ_i w_i (‖Q[i]‖² + bi[i]²)

with ``w = n`` (the row's number of ratings: weighted-λ, ALS-WR, Zhou et al.
2008; ``weighted: true``, the default) or ``w = 1`` (plain λ). Each half-step
fixes one side and solves, per row, the ``(k+1)×(k+1)`` (``k×k`` without
biases) regularised normal equations exactly, by Cholesky: the objective never
goes up.

Every worker loads the ratings twice: partitioned by user (``fmap``: all of a
user's ratings on one worker) and by item (``smap``). Per round it solves its
users against Q (read in place from the node's shards or, in cluster mode,
from the node's cache of remote shards), writes their rows of P and bu in
place, ``sync()``; then solves its items against P, ``clock()``. A row has
one writer, so in-place writes are exact; the round's updates are visible to
every worker after the barrier (ALS is a BSP method, ``bulk_synchronous``:
with ``staleness`` != 0 a ``sync()`` follows each ``clock()``).

Start: ``rng = numpy.random.default_rng(seed)``; ``P = rng.normal(0, init_std,
(users, k))``, then ``Q = rng.normal(0, init_std, (items, k))`` from the same
generator, biases 0; rows are in the order of ``users.txt`` / ``items.txt``
(ids sorted as strings).

Outputs in ``output``: ``P.npy``, ``Q.npy``, ``bu.npy``, ``bi.npy`` (float64),
``users.txt``, ``items.txt`` (the ids of the rows, in order), ``history.tsv``
(``round objective train_rmse test_rmse``), ``metrics.json`` with
``test_rmse`` (with ``test_input``; unseen users/items get mu plus the known
bias), ``train_rmse``, ``objective``, ``seconds``, ``cross_node_bytes``.

    run_parasol --config algs/configs/als.json python algs/als.py
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from common import HeldOutRatings, done_line, load_ratings, write_factors, write_history
from mf_kernels import sse

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.config import non_negative, positive
from parasol_hybrid.tables.striped import striped_row


@njit(cache=True, nogil=True)
def cholesky_solve(A, b, x):
    """Solve ``A x = b`` for symmetric positive definite ``A`` given by its lower triangle.

    ``A`` is overwritten by its Cholesky factor; returns False if ``A`` is not positive definite.
    """
    d = b.shape[0]
    for j in range(d):
        s = A[j, j]
        for m in range(j):
            s -= A[j, m] * A[j, m]
        if s <= 0.0:
            return False
        A[j, j] = math.sqrt(s)
        for i in range(j + 1, d):
            s = A[i, j]
            for m in range(j):
                s -= A[i, m] * A[j, m]
            A[i, j] = s / A[j, j]
    for i in range(d):
        s = b[i]
        for m in range(i):
            s -= A[i, m] * x[m]
        x[i] = s / A[i, i]
    for i in range(d - 1, -1, -1):
        s = x[i]
        for m in range(i + 1, d):
            s -= A[m, i] * x[m]
        x[i] = s / A[i, i]
    return True


@njit(cache=True, nogil=True)
def solve_side(X, XB, Y, YB, rows, indptr, other, target, reg, weighted, biases):
    """One ALS half-step over this worker's groups, writing rows of ``X`` (and ``XB``) in place.

    Group ``g`` (ratings ``indptr[g]:indptr[g+1]``) is row ``rows[g]`` of X; its
    ratings pair it with rows ``other[t]`` of the fixed side ``Y`` and have
    value ``target[t]`` (rating - mu). With biases the unknown is
    ``[X[row], XB[row]]`` against features ``[Y[o], 1]`` and target
    ``target - YB[o]``. Returns the number of groups whose system was not
    positive definite (left unchanged).
    """
    k = X[0].shape[1]
    d = k + 1 if biases else k
    A = np.empty((d, d))
    b = np.empty(d)
    z = np.empty(d)
    sol = np.empty(d)
    failed = 0
    for g in range(rows.shape[0]):
        for a in range(d):
            b[a] = 0.0
            for c in range(d):
                A[a, c] = 0.0
        for t in range(indptr[g], indptr[g + 1]):
            o = other[t]
            yo = striped_row(Y, o)
            for j in range(k):
                z[j] = yo[j]
            y = target[t]
            if biases:
                z[k] = 1.0
                y -= striped_row(YB, o)[0]
            for a in range(d):
                za = z[a]
                b[a] += y * za
                for c in range(a + 1):
                    A[a, c] += za * z[c]
        lam = reg * (indptr[g + 1] - indptr[g]) if weighted else reg
        for a in range(d):
            A[a, a] += lam
        if not cholesky_solve(A, b, sol):
            failed += 1
            continue
        xs = striped_row(X, rows[g])
        for j in range(k):
            xs[j] = sol[j]
        if biases:
            striped_row(XB, rows[g])[0] = sol[k]
    return failed


@njit(cache=True, nogil=True)
def penalty(X, XB, rows, indptr, weighted):
    """Σ over groups of ``w_g (‖X[row]‖² + XB[row]²)`` with ``w_g`` = the group's size or 1."""
    k = X[0].shape[1]
    total = 0.0
    for g in range(rows.shape[0]):
        xs = striped_row(X, rows[g])
        s = striped_row(XB, rows[g])[0] ** 2
        for j in range(k):
            s += xs[j] * xs[j]
        total += s * (indptr[g + 1] - indptr[g] if weighted else 1.0)
    return total


def group(keys: np.ndarray, others: np.ndarray, values: np.ndarray):
    """Ratings grouped by ``keys``: (distinct keys, indptr, others, values) in key order."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    rows, starts = np.unique(k, return_index=True)
    indptr = np.append(starts, len(k)).astype(np.int64)
    return rows.astype(np.int64), indptr, np.ascontiguousarray(others[order]), np.ascontiguousarray(values[order])


class ALS(paralg):
    """ALS(-WR) matrix factorisation; factors and biases in float64 tables."""

    options = {
        "k": Option(int, 10, "number of latent factors", check=positive),
        "reg": Option(float, 0.1, "regularisation λ (times the row's rating count when 'weighted')",
                      check=positive),
        "weighted": Option(bool, True, "weighted-λ (ALS-WR): penalty reg·n_u·‖p_u‖²; false: reg·‖p_u‖²"),
        "biases": Option(bool, True, "learn user and item biases with the factors"),
        "init_std": Option(float, 0.1, "std of the initial factors", check=non_negative),
    }

    bulk_synchronous = True  # a round's two half-steps each read the other side's rows of the last one

    def solve(self) -> None:
        cfg = self.cfg
        data = load_ratings(self, "fmap")
        by_item = self.load(pattern="smap")
        users, items = data.users, data.items  # the job's ids (the same in both loads)
        u, i, r, mu, n_total = data.u.astype(np.int64), data.i.astype(np.int64), data.r, data.mean, data.n_total
        user_side = group(u, i, r - mu)
        item_side = group(by_item.i.astype(np.int64), by_item.u.astype(np.int64), by_item.values - mu)

        k = cfg.k
        P = self.table("P", (len(users), k), "float64")
        Q = self.table("Q", (len(items), k), "float64")
        BU = self.table("bu", (len(users), 1), "float64")
        BI = self.table("bi", (len(items), 1), "float64")
        if self.start_round == 0 and self.is_master:
            rng = np.random.default_rng(cfg.seed)
            self.push(P, np.arange(len(users)), rng.normal(0.0, cfg.init_std, (len(users), k)), rule="assign")
            self.push(Q, np.arange(len(items)), rng.normal(0.0, cfg.init_std, (len(items), k)), rule="assign")
        self.sync()
        test = HeldOutRatings(self, users, items)

        def test_rmse():
            return test.rmse(sse, (P.shards, Q.shards, BU.shards, BI.shards), mu)

        def figures():  # collective: (objective, train_rmse)
            mine = np.array([sse(P.shards, Q.shards, BU.shards, BI.shards, u, i, r, mu),
                             penalty(P.shards, BU.shards, user_side[0], user_side[1], cfg.weighted),
                             penalty(Q.shards, BI.shards, item_side[0], item_side[1], cfg.weighted)])
            tot = self.allreduce(mine)
            return float(tot[0] + cfg.reg * (tot[1] + tot[2])), float(np.sqrt(tot[0] / max(n_total, 1)))

        history = []
        failed = 0
        start = time.perf_counter()
        for rnd in range(self.start_round, cfg.rounds):
            failed += solve_side(P.shards, BU.shards, Q.shards, BI.shards, *user_side, cfg.reg, cfg.weighted,
                                 cfg.biases)
            self.sync()
            failed += solve_side(Q.shards, BI.shards, P.shards, BU.shards, *item_side, cfg.reg, cfg.weighted,
                                 cfg.biases)
            self.clock()  # bulk_synchronous: a sync() follows it whatever the staleness
            if (rnd + 1) % cfg.log_every == 0 or rnd + 1 == cfg.rounds:
                objective, train_rmse = figures()
                rmse = test_rmse()
                history.append((rnd + 1, objective, train_rmse, rmse))
                shown = {"objective": objective, "train_rmse": train_rmse}
                if rmse is not None:
                    shown["test_rmse"] = rmse
                self.progress(rnd + 1, cfg.rounds, **shown)
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        failed = self.allreduce(failed)

        objective, train_rmse = figures()
        metrics = {
            "train_rmse": train_rmse,
            "objective": objective,
            "seconds": seconds,
            "seconds_per_round": seconds / max(cfg.rounds - self.start_round, 1),
            **data.figures(),
            "rounds": cfg.rounds,
            "start_round": self.start_round,
            "k": k,
            "reg": cfg.reg,
            "weighted": cfg.weighted,
            "biases": cfg.biases,
            "singular_rows": failed,
            "bad_lines": data.bad_lines,
            "cross_node_bytes": self.cross_node_bytes(),
        }
        if self.is_master:
            rmse = test_rmse()
            metrics.update(test.figures(rmse))
            write_factors(self, (P, Q, BU, BI), users, items)
            write_history(self, ("round", "objective", "train_rmse", "test_rmse"), history)
            self.write_metrics(metrics)
            self.log(done_line(f"done: objective {objective:.6g}  train_rmse {train_rmse:.4f}", rmse,
                               f"  {seconds:.2f} s"))
        self.sync()

if __name__ == "__main__":
    run(ALS)
