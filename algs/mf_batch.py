"""Matrix factorisation by full-batch nonlinear conjugate gradient or L-BFGS, on the parameter server.

Objective (no mean, no biases), over the training ratings ``(u, i, r)``:

    f(P, Q) = ½ Σ (r - P[u]·Q[i])²  +  ½ reg (‖P‖² + ‖Q‖²)

``method: "cg"`` is Polak–Ribière+ nonlinear CG (β = max(0, g·(g - g')/g'·g'),
restart on a non-descent direction); ``method: "lbfgs"`` is L-BFGS with
``memory`` pairs (two-loop recursion with the initial scaling s·y/y·y, pairs
with s·y ≤ 1e-10·y·y skipped). Both use an **exact line search**: along a
direction d, f(x + αd) is a quartic polynomial in α whose five coefficients
are sums over the ratings (plus the regulariser's), so one pass over the
data gives the whole line and the step is its global minimiser over α > 0
(a root of a cubic).

Where things are: the parameters P, Q, the gradient (GP, GQ: ``exact``
tables, pushed with ``add``) and the search direction (DP, DQ) are tables.
Every worker owns a disjoint slice of the rows — the rows of the shards on its
node, split among the node's workers — and does the vector algebra (the
direction, the L-BFGS history, the update x += αd) for that slice only; the
few dot products the methods need are summed over the workers in one
collective per phase, in worker order, so every worker takes the same
decisions. One iteration:

1. gradient pass: each worker computes ½Σe² and the data gradient over its
   ratings (``pattern``) into local buffers and pushes them into GP/GQ; ``sync()``;
   owners read their gradient rows, add reg·x, zero the rows for the next pass;
2. direction on the owned slices (CG: 3 dots; L-BFGS: the Gram matrix of
   the history and g, vector-free two-loop recursion in its coefficients),
   written to DP/DQ; ``sync()``;
3. line pass: the quartic's sums over each worker's ratings; step α;
   owners write x += αd into P/Q; ``clock()``.

Start: ``rng = numpy.random.default_rng(seed)``; ``P = rng.normal(0, init_std,
(users, k))``, then ``Q = rng.normal(0, init_std, (items, k))``, rows in the
order of ``users.txt`` / ``items.txt`` (ids sorted as strings).

Stops after ``rounds`` iterations, or earlier when the max-abs gradient is at most
``gtol``, or when an iteration lowered f by at most ``tol`` relative to
max(|f|, |f'|, 1) (scipy's ``ftol`` rule), or when no step lowers f. A job
resumed from a checkpoint restarts the method (steepest descent, empty
L-BFGS history) at the saved parameters.

Outputs in ``output``: ``P.npy``, ``Q.npy`` (float64), ``users.txt``,
``items.txt``, ``history.tsv`` (``iteration objective grad_max step``),
``metrics.json`` with ``objective``, ``test_rmse`` (with ``test_input``;
an unseen user or item is predicted by the mean training rating),
``train_rmse``, ``iterations``, ``grad_max``, ``seconds``, ``cross_node_bytes``.

    run_parasol --config algs/configs/mf_lbfgs.json python algs/mf_batch.py
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from common import HeldOutRatings, done_line, load_ratings, write_factors, write_history
from mf_kernels import add_dot

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.config import non_negative, positive
from parasol_hybrid.tables.striped import shard_keys, striped_row


@njit(cache=True, nogil=True)
def gradient_pass(P, Q, users, items, lu, li, ratings, gp, gq):
    """½Σe² (e = r - P[u]·Q[i]) over the ratings; ``gp[lu[t]] -= e·Q[i]``, ``gq[li[t]] -= e·P[u]`` from zero."""
    k = P[0].shape[1]
    for a in range(gp.shape[0]):
        for j in range(k):
            gp[a, j] = 0.0
    for b in range(gq.shape[0]):
        for j in range(k):
            gq[b, j] = 0.0
    loss = 0.0
    for t in range(users.shape[0]):
        u = users[t]
        i = items[t]
        pu = striped_row(P, u)
        qi = striped_row(Q, i)
        e = ratings[t]
        for j in range(k):
            e -= pu[j] * qi[j]
        loss += e * e
        a = lu[t]
        b = li[t]
        for j in range(k):
            gp[a, j] -= e * qi[j]
            gq[b, j] -= e * pu[j]
    return 0.5 * loss


@njit(cache=True, nogil=True)
def line_pass(P, Q, DP, DQ, users, items, ratings, out):
    """The sums that make ½Σ(r - (p + αdp)·(q + αdq))² a quartic in α.

    With e0 = r - p·q, a1 = p·dq + dp·q, a2 = dp·dq, the residual is
    e0 - α a1 - α² a2; ``out = [Σe0², Σe0·a1, Σa1², Σe0·a2, Σa1·a2, Σa2²]``.
    """
    k = P[0].shape[1]
    for m in range(6):
        out[m] = 0.0
    for t in range(users.shape[0]):
        u, i = users[t], items[t]
        pu, dpu = striped_row(P, u), striped_row(DP, u)  # the rows and their search directions
        qi, dqi = striped_row(Q, i), striped_row(DQ, i)
        e0 = ratings[t]
        a1 = 0.0
        a2 = 0.0
        for j in range(k):
            p = pu[j]
            q = qi[j]
            dp = dpu[j]
            dq = dqi[j]
            e0 -= p * q
            a1 += p * dq + dp * q
            a2 += dp * dq
        out[0] += e0 * e0
        out[1] += e0 * a1
        out[2] += a1 * a1
        out[3] += e0 * a2
        out[4] += a1 * a2
        out[5] += a2 * a2


@njit(cache=True, nogil=True)
def test_sse(P, Q, users, items, ratings, fallback):
    """Σ(r - P[u]·Q[i])²; a pair with an unknown user or item (id -1) is predicted ``fallback``."""
    total = 0.0
    for t in range(users.shape[0]):
        u = users[t]
        i = items[t]
        pred = add_dot(0.0, P, u, Q, i) if u >= 0 and i >= 0 else fallback
        e = ratings[t] - pred
        total += e * e
    return total


def quartic_coefficients(sums: np.ndarray, reg: float) -> np.ndarray:
    """``c`` with f(x + αd) = c[0] + c[1]α + ... + c[4]α⁴ from the line-pass sums and [x·x, x·d, d·d]."""
    e0e0, e0a1, a1a1, e0a2, a1a2, a2a2, xx, xd, dd = sums
    return np.array([0.5 * e0e0 + 0.5 * reg * xx,
                     -e0a1 + reg * xd,
                     0.5 * a1a1 - e0a2 + 0.5 * reg * dd,
                     a1a2,
                     0.5 * a2a2])


def quartic_minimum(c: np.ndarray) -> float:
    """The α > 0 that minimises the polynomial with coefficients ``c`` (lowest degree first); 0 if none lowers it."""
    if not c[1] < 0:
        return 0.0
    deriv = np.array([4 * c[4], 3 * c[3], 2 * c[2], c[1]])  # highest degree first, for np.roots
    best, best_val = 0.0, float(c[0])
    for root in np.roots(deriv):
        a = float(root.real)
        if abs(root.imag) > 1e-6 * max(1.0, abs(a)) or a <= 0:
            continue
        for _ in range(3):  # polish the root with Newton steps on f'
            slope = np.polyval(deriv, a)
            curv = np.polyval(np.polyder(deriv), a)
            if curv <= 0:
                break
            a -= slope / curv
        val = float(np.polyval(c[::-1], a))
        if a > 0 and val < best_val:
            best, best_val = a, val
    return best


def lbfgs_coefficients(gram: np.ndarray, m: int) -> np.ndarray:
    """The two-loop recursion in the coefficients of the basis [s_1..s_m, y_1..y_m, g] (oldest first).

    ``gram`` holds their dot products; returns ``c`` with H·g = Σ c_j b_j (so d = -Σ c_j b_j).
    """
    c = np.zeros(2 * m + 1)
    c[-1] = 1.0
    alphas = np.zeros(m)
    for j in range(m - 1, -1, -1):
        rho = 1.0 / gram[j, m + j]
        alphas[j] = rho * (gram[j] @ c)
        c[m + j] -= alphas[j]
    if m:
        c *= gram[m - 1, 2 * m - 1] / gram[2 * m - 1, 2 * m - 1]
    for j in range(m):
        rho = 1.0 / gram[j, m + j]
        beta = rho * (gram[m + j] @ c)
        c[j] += alphas[j] - beta
    return c


class MFBatch(paralg):
    """Full-batch MF by PR+ conjugate gradient or L-BFGS, with an exact line search."""

    options = {
        "method": Option(str, "lbfgs", "the optimiser", choices=("lbfgs", "cg")),
        "k": Option(int, 8, "number of latent factors", check=positive),
        "reg": Option(float, 5.0, "L2 regularisation λ of ½λ(‖P‖² + ‖Q‖²)", check=non_negative),
        "memory": Option(int, 10, "L-BFGS: number of (s, y) pairs kept", check=positive),
        "init_std": Option(float, 0.1, "std of the initial factors", check=non_negative),
        "tol": Option(float, 0.0, "stop when an iteration lowers f by at most tol·max(|f|, |f'|, 1) (0: off)",
                      check=non_negative),
        "gtol": Option(float, 0.0, "stop when max |gradient| <= gtol (0: off)", check=non_negative),
        "pattern": Option(str, "fmap", "how ratings are split over workers",
                          choices=("fmap", "smap", "fsmap", "linesplit")),
    }

    # ------------------------------------------------------------ helpers
    def _total(self, sums, maxes=()) -> tuple[np.ndarray, np.ndarray]:
        """Sums and maxima over the workers, added in worker order so that every worker gets the same bits."""
        parts = self.allgather((np.asarray(sums, dtype=np.float64), np.asarray(maxes, dtype=np.float64)))
        total = np.zeros_like(parts[0][0])
        for s, _ in parts:
            total = total + s
        most = np.max(np.stack([m for _, m in parts]), axis=0) if len(maxes) else np.zeros(0)
        return total, most

    def _owned_rows(self, table) -> np.ndarray:
        """The rows this worker does the vector algebra for: the rows of the shards on its node, split
        among the node's workers (shards on a node without workers: split among all workers)."""
        S = table.nshards
        local = [s for s in range(S) if s not in table.remote]
        everyone = self.allgather(local)
        mine = []
        for s in range(S):
            cands = [w for w, loc in enumerate(everyone) if s in loc] or list(range(self.nworker))
            if self.worker_id in cands:
                rows = shard_keys(s, table.rows, S)
                mine.append(rows[cands.index(self.worker_id)::len(cands)])
        return np.sort(np.concatenate(mine)) if mine else np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------ the job
    bulk_synchronous = True  # every phase reads what all workers wrote in the one before

    def solve(self) -> None:
        cfg = self.cfg
        data = load_ratings(self, cfg.pattern)
        users, items, r, mu = data.users, data.items, data.r, data.mean
        u, i = data.u.astype(np.int64), data.i.astype(np.int64)
        uniq_u, lu = np.unique(u, return_inverse=True)
        uniq_i, li = np.unique(i, return_inverse=True)
        lu, li = lu.astype(np.int64), li.astype(np.int64)
        gp = np.zeros((len(uniq_u), cfg.k))
        gq = np.zeros((len(uniq_i), cfg.k))

        k, reg = cfg.k, cfg.reg
        nu, ni = len(users), len(items)
        P = self.table("P", (nu, k), "float64")
        Q = self.table("Q", (ni, k), "float64")
        GP = self.table("GP", (nu, k), "float64", exact=True)
        GQ = self.table("GQ", (ni, k), "float64", exact=True)
        DP = self.table("DP", (nu, k), "float64")
        DQ = self.table("DQ", (ni, k), "float64")
        own_u, own_i = self._owned_rows(P), self._owned_rows(Q)
        split = len(own_u) * k

        def write(tp, tq, vec):
            self.push(tp, own_u, vec[:split].reshape(-1, k), rule="assign")
            self.push(tq, own_i, vec[split:].reshape(-1, k), rule="assign")

        if self.start_round == 0:
            rng = np.random.default_rng(cfg.seed)
            P0 = rng.normal(0.0, cfg.init_std, (nu, k))
            Q0 = rng.normal(0.0, cfg.init_std, (ni, k))
            x = np.concatenate([P0[own_u].ravel(), Q0[own_i].ravel()])
            write(P, Q, x)
        else:
            x = np.concatenate([self.pull(P, own_u).ravel(), self.pull(Q, own_i).ravel()])
        zeros = np.zeros_like(x)
        self.sync()
        test = HeldOutRatings(self, users, items)

        def test_rmse():
            return test.rmse(test_sse, (P.shards, Q.shards), mu)

        lbfgs = cfg.method == "lbfgs"
        S_hist: list[np.ndarray] = []
        Y_hist: list[np.ndarray] = []
        g_prev = d = None
        gg_prev = 0.0

        def evaluate(step=None, g_old=None):
            """f, ½Σe², this worker's slice of the gradient, max |g|, and the dot products the method needs.

            For L-BFGS, ``step`` (s = x - x_old) and ``g_old`` make the new pair (s, g - g_old) first.
            """
            loss = gradient_pass(P.shards, Q.shards, u, i, lu, li, r, gp, gq)
            self.push(GP, uniq_u, gp)
            self.push(GQ, uniq_i, gq)
            self.sync()
            g = np.concatenate([self.pull(GP, own_u).ravel(), self.pull(GQ, own_i).ravel()]) + reg * x
            write(GP, GQ, zeros)  # ready for the next pass (nobody pushes before the next sync)
            if lbfgs and step is not None:
                S_hist.append(step)
                Y_hist.append(g - g_old)
                if len(S_hist) > cfg.memory:
                    del S_hist[0], Y_hist[0]
            if lbfgs:
                basis = np.stack(S_hist + Y_hist + [g], axis=1)
                extra = (basis.T @ basis).ravel()
            elif g_prev is not None:
                extra = np.array([g @ g, g @ g_prev, g @ d])
            else:
                extra = np.array([g @ g, 0.0, 0.0])
            tot, most = self._total(np.concatenate([[loss, x @ x], extra]), [np.abs(g).max(initial=0.0)])
            return tot[0] + 0.5 * reg * tot[1], tot[0], g, most[0], tot[2:]

        history = []
        start = time.perf_counter()
        f, data_loss, g, gmax, dots = evaluate()
        evaluations = 1
        iterations = 0
        stop = "rounds"
        for rnd in range(self.start_round, cfg.rounds):
            if cfg.gtol > 0 and gmax <= cfg.gtol:
                stop = "gtol"
                break
            # ---- direction on the owned slice
            if lbfgs:
                m = len(S_hist)
                gram = dots.reshape(2 * m + 1, 2 * m + 1)
                if m and not gram[m - 1, 2 * m - 1] > 1e-10 * gram[2 * m - 1, 2 * m - 1]:
                    keep = [j for j in range(2 * m + 1) if j not in (m - 1, 2 * m - 1)]  # drop the newest pair
                    gram = gram[np.ix_(keep, keep)]
                    S_hist.pop()
                    Y_hist.pop()
                    m -= 1
                c = lbfgs_coefficients(gram, m)
                gd = -float(gram[-1] @ c)
                if gd < 0:
                    d = -(np.stack(S_hist + Y_hist + [g], axis=1) @ c)
                else:  # not a descent direction: forget the history
                    S_hist.clear()
                    Y_hist.clear()
                    d = -g
            else:
                gg, g_gprev, g_dprev = dots
                beta = max(0.0, (gg - g_gprev) / gg_prev) if g_prev is not None and gg_prev > 0 else 0.0
                gd = -gg + beta * g_dprev
                if beta > 0 and gd < 0:
                    d = -g + beta * d
                else:
                    d = -g
                gg_prev = gg
            write(DP, DQ, d)
            self.sync()
            # ---- exact line search
            sums = np.zeros(6)
            line_pass(P.shards, Q.shards, DP.shards, DQ.shards, u, i, r, sums)
            tot, _ = self._total(np.concatenate([sums, [x @ x, x @ d, d @ d]]))
            coef = quartic_coefficients(tot, reg)
            alpha = quartic_minimum(coef)
            if alpha <= 0:
                stop = "no descent"
                break
            x = x + alpha * d
            write(P, Q, x)
            self.clock()  # bulk_synchronous: a sync() follows it whatever the staleness
            iterations += 1
            f_old = f
            g_old = g
            g_prev = g_old
            f, data_loss, g, gmax, dots = evaluate(alpha * d, g_old)
            evaluations += 1
            history.append((rnd + 1, float(f), float(gmax), float(alpha)))
            if (rnd + 1) % cfg.log_every == 0 or rnd + 1 == cfg.rounds:
                self.progress(rnd + 1, cfg.rounds, objective=f, grad_max=gmax, step=alpha)
            if cfg.tol > 0 and (f_old - f) <= cfg.tol * max(abs(f_old), abs(f), 1.0):
                stop = "tol"
                break
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        metrics = {
            "objective": float(f),
            "train_rmse": float(np.sqrt(2.0 * data_loss / max(data.n_total, 1))),
            "grad_max": float(gmax),
            "iterations": iterations,
            "evaluations": evaluations,
            "stopped_by": stop,
            "seconds": seconds,
            "method": cfg.method,
            "k": k,
            "reg": reg,
            **data.figures(),
            "start_round": self.start_round,
            "bad_lines": data.bad_lines,
            "cross_node_bytes": self.cross_node_bytes(),
        }
        if self.is_master:
            rmse = test_rmse()
            metrics.update(test.figures(rmse))
            write_factors(self, (P, Q), users, items)
            write_history(self, ("iteration", "objective", "grad_max", "step"), history)
            self.write_metrics(metrics)
            self.log(done_line(f"done: {cfg.method} objective {f:.8g}  grad_max {gmax:.3g}  {iterations} iterations",
                               rmse, f"  {seconds:.2f} s"))
        self.sync()


if __name__ == "__main__":
    run(MFBatch)
