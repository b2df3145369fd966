"""Truncated SVD of a sparse matrix by randomized block power (subspace) iteration, on the parameter server.

Input: lines ``row col value`` (tabs, commas or spaces; ids are any strings;
a repeated ``(row, col)`` pair adds up, as in a scipy COO matrix). Rows are
split over the workers by row id (``fmap``): each worker holds its rows of
``A`` (``m × n``) as a CSR block and never sees the others'.

Two ``float64`` tables carry the blocks, ``l = k + oversample`` columns wide:

- ``Y`` (``m × l``) = ``A · W``: every worker writes its own rows of it
  (``push`` with the ``assign`` rule; no two workers write the same row);
- ``Z`` (``n × l``) = ``Aᵀ · Q``: every worker adds its rows' part
  ``A_wᵀ · Q_w`` into it through ``push`` with the ``add`` rule (an exact,
  locked table). To reuse one table every round without a zeroing step, a
  worker pushes the change of its part since the previous round
  (``C_w(new) − C_w(old)``), so the table always holds ``Σ_w C_w(new)``.

One round, on every worker (``sync()`` makes each block complete and visible
on every node before it is read):

1. ``Y_w = A_w · W``, assigned into ``Y``; ``sync()``;
2. ``Q = qr(Y)`` (every worker the same, redundantly); ``Z += A_wᵀ Q_w − old``;
   ``sync()``;
3. ``W = qr(Z)`` for the next round; the singular values of ``Z`` are the
   current Ritz values (printed, and used by ``tol``).

``W`` starts as a Gaussian ``n × l`` block (seeded by ``seed``, the same on
every worker); ``rounds`` power iterations are done after the first product.
At the end, Rayleigh–Ritz: ``B = Qᵀ A = Zᵀ`` (``l × n``), ``B = U_B S Vᵀ``,
``U = Q U_B``; the top ``k`` are kept. Each pair is signed so that the
largest-magnitude entry of its ``V`` column is positive.

The algorithm is bulk-synchronous whatever the ``staleness`` key says. Every
rank runs with one BLAS thread (``run_parasol`` sets ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1 unless they are set): the
ranks already fill the cores, and BLAS threads in each would only fight over
them.

Outputs in ``output``: ``singular_values.txt`` (one per line, descending),
``U.npy`` (``m × k``, rows in the order of ``rows.txt``), ``V.npy``
(``n × k``, rows in the order of ``cols.txt``), ``rows.txt``, ``cols.txt``
(the ids, sorted as strings) and ``metrics.json`` with ``singular_values``,
``max_residual`` (``max_i ‖A v_i − σ_i u_i‖ / σ_i``), ``ritz_change``
(the largest relative change of the k Ritz values in the last round; null
after a single product, ``rounds: 0``), ``rounds_done``,
``seconds``, ``cross_node_bytes``.

With ``checkpoint_every``, the tables are saved every that many rounds (not
after the last); a resumed job (``--resume``, with any ``nworker``/``nserver``)
continues with the next round and reports ``start_round``.

    run_parasol --config algs/configs/svd.json python algs/svd.py
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.errors import ConfigError


@njit(cache=True, nogil=True)
def csr_times_block(indptr, cols, vals, B, out):
    """``out = A · B`` for a CSR block ``A`` (``rows × n``) and a dense ``B`` (``n × l``)."""
    l = B.shape[1]
    for i in range(indptr.shape[0] - 1):
        for j in range(l):
            out[i, j] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            c = cols[p]
            v = vals[p]
            for j in range(l):
                out[i, j] += v * B[c, j]


@njit(cache=True, nogil=True)
def csr_transpose_times_block(indptr, cols, vals, Q, out):
    """``out = Aᵀ · Q`` (``n × l``) for a CSR block ``A`` (``rows × n``) and a dense ``Q`` (``rows × l``)."""
    l = Q.shape[1]
    for c in range(out.shape[0]):
        for j in range(l):
            out[c, j] = 0.0
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            c = cols[p]
            v = vals[p]
            for j in range(l):
                out[c, j] += v * Q[i, j]


def _warm_up() -> None:
    """Load (or compile) the kernels on a 1 x 1 block, so that the timed rounds do not include it."""
    one = np.ones((1, 1))
    ptr, idx, val = np.array([0, 1], dtype=np.int64), np.zeros(1, dtype=np.int64), np.ones(1)
    csr_times_block(ptr, idx, val, one, one.copy())
    csr_transpose_times_block(ptr, idx, val, one, one.copy())


def local_csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray):
    """This worker's block as CSR: (its global row ids, indptr, column ids, values)."""
    mine, local = np.unique(rows, return_inverse=True)
    order = np.argsort(local, kind="stable")
    indptr = np.zeros(len(mine) + 1, dtype=np.int64)
    np.cumsum(np.bincount(local, minlength=len(mine)), out=indptr[1:])
    return (mine.astype(np.int64), indptr, np.ascontiguousarray(cols[order], dtype=np.int64),
            np.ascontiguousarray(vals[order], dtype=np.float64))


def orthonormal(block: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of ``block`` (reduced Householder QR)."""
    q, _ = np.linalg.qr(block)
    return np.ascontiguousarray(q)


class SVD(paralg):
    """Top-k singular triplets of a sparse matrix; the blocks Y and Z live in tables."""

    options = {
        "k": Option(int, 10, "number of singular values and vectors",
                    check=lambda v: None if v > 0 else "must be positive"),
        "oversample": Option(int, 10, "extra columns of the block (l = k + oversample)",
                             check=lambda v: None if v >= 0 else "must be >= 0"),
        "tol": Option(float, 0.0, "stop early when no Ritz value changes by more than this (relative) in a round; "
                      "0: run every round", check=lambda v: None if v >= 0 else "must be >= 0"),
    }

    bulk_synchronous = True  # each block is read whole by every worker after the sync() that completes it

    def solve(self) -> None:
        cfg = self.cfg
        part = self.load(pattern="fmap")
        row_ids, col_ids = part.row_ids, part.col_ids
        m, n = len(row_ids), len(col_ids)
        nnz = self.allreduce(len(part.values))
        bad = self.allreduce(int(part.bad_lines))
        k = cfg.k
        if k > min(m, n):
            raise ConfigError(f"k must be at most min(rows, cols) = {min(m, n)} for this {m} x {n} matrix, got {k}")
        l = min(k + cfg.oversample, m, n)
        mine, indptr, cols, vals = local_csr(part.u.astype(np.int64), part.i.astype(np.int64),
                                             part.values)
        touched = np.unique(cols)

        Y = self.table("Y", (m, l), "float64", rule="assign")
        Z = self.table("Z", (n, l), "float64", exact=True)
        W = np.random.default_rng(cfg.seed).standard_normal((n, l))  # the same start block on every worker
        Yw = np.empty((len(mine), l))
        C = np.empty((n, l))
        C_old = np.zeros((n, l))

        ritz_old = None
        change = float("inf")
        done = 0
        claim = False
        if self.start_round:  # resumed after round start_round - 1: Z holds that round's Aᵀ Q
            if self.start_round > cfg.rounds:
                raise ConfigError(f"svd: the checkpoint is after round {self.start_round - 1}; rounds must be at "
                                  f"least {self.start_round}, got {cfg.rounds}")
            Zall = self.pull_all(Z)
            ritz_old = np.linalg.svd(Zall, compute_uv=False)[:k]
            W = orthonormal(Zall)
            done = self.start_round - 1
            # the master counts all of Z as its own part (another nworker may have written it): its first
            # change then covers every row, and Z stays the sum of the workers' parts
            claim = self.is_master
            if claim:
                C_old[...] = Zall

        _warm_up()
        self.sync()
        start = time.perf_counter()
        for rnd in range(self.start_round, cfg.rounds + 1):
            csr_times_block(indptr, cols, vals, W, Yw)
            if len(mine):
                self.push(Y, mine, Yw)
            self.sync()
            Q = orthonormal(self.pull_all(Y))
            csr_transpose_times_block(indptr, cols, vals, np.ascontiguousarray(Q[mine]), C)
            rows = np.arange(n, dtype=np.int64) if claim else touched
            claim = False
            if len(rows):
                self.push(Z, rows, C[rows] - C_old[rows])
            C, C_old = C_old, C
            self.sync()
            Zall = self.pull_all(Z)
            ritz = np.linalg.svd(Zall, compute_uv=False)[:k]
            if ritz_old is not None:
                change = float(np.max(np.abs(ritz - ritz_old) / np.maximum(ritz, np.finfo(float).tiny)))
            if cfg.tol > 0 and np.isfinite(change):
                # every worker must stop at the same round: its own Z may differ in the last bits (caches)
                change = self.allreduce(change, op="max")
            ritz_old = ritz
            done = rnd
            last = rnd == cfg.rounds or change <= cfg.tol
            if rnd % cfg.log_every == 0 or last:
                self.progress(rnd, cfg.rounds, sigma_1=float(ritz[0]), sigma_k=float(ritz[-1]), ritz_change=change)
            if last:
                break
            self.round_done()  # a checkpoint every checkpoint_every rounds: Z is complete and read by all here
            W = orthonormal(Zall)

        # Rayleigh–Ritz: B = Qᵀ A = Zᵀ; Z = V_B S U_Bᵀ, so U = Q U_B, V = V_B
        VB, S, UBt = np.linalg.svd(Zall, full_matrices=False)
        U = Q @ UBt[:k].T
        V = VB[:, :k].copy()
        S = S[:k]
        flip = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(k)])
        flip[flip == 0] = 1.0
        U *= flip
        V *= flip
        seconds = self.allreduce(time.perf_counter() - start, op="max")

        # residuals ‖A v_i − σ_i u_i‖ over this worker's rows, summed over the workers
        AV = np.empty((len(mine), k))
        csr_times_block(indptr, cols, vals, np.ascontiguousarray(V), AV)
        res2 = self.allreduce(((AV - U[mine] * S) ** 2).sum(axis=0))
        max_residual = float(np.max(np.sqrt(res2) / np.maximum(S, np.finfo(float).tiny)))
        cross = self.cross_node_bytes()
        if self.is_master:
            metrics = {
                "singular_values": [float(s) for s in S],
                "max_residual": max_residual,
                "ritz_change": change if np.isfinite(change) else None,  # None: a single round
                "seconds": seconds,
                "rows": m,
                "cols": n,
                "nnz": nnz,
                "bad_lines": bad,
                "k": k,
                "block_columns": l,
                "rounds": cfg.rounds,
                "rounds_done": done,
                "start_round": self.start_round,
                "cross_node_bytes": cross,
            }
            np.save(self.output_path("U.npy"), U)
            np.save(self.output_path("V.npy"), V)
            self.output_path("singular_values.txt").write_text("".join(f"{float(s)!r}\n" for s in S))
            self.output_path("rows.txt").write_text("".join(f"{x}\n" for x in row_ids))
            self.output_path("cols.txt").write_text("".join(f"{x}\n" for x in col_ids))
            self.write_metrics(metrics)
            self.log(f"done: {m} x {n}, {nnz:,} non-zeros; sigma_1..{k} = "
                     + " ".join(f"{s:.6g}" for s in S) + f"; max residual {max_residual:.2e}; {seconds:.2f} s")
        self.sync()


if __name__ == "__main__":
    run(SVD)
