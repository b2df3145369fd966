"""Lasso regression by accelerated proximal gradient (FISTA) on the parameter server.

Minimises scikit-learn's ``Lasso`` objective::

    (1 / (2 n)) * ||y - X w - b||^2 + alpha * ||w||_1

over the weights ``w`` and, with ``fit_intercept`` (the default, as in
scikit-learn), an unpenalised intercept ``b``. The intercept is fitted as
scikit-learn does: the problem is solved on centred data (``X - mean(X)``,
``y - mean(y)``, the means over all rows), and ``b = mean(y) - mean(X) . w``.
The centring is implicit, so sparse rows stay sparse.

Input: lines ``target idx:val idx:val ...`` with a real-valued target
(scikit-learn's ``dump_svmlight_file`` format; features from index 0, missing
ones are 0), split across workers by byte range. ``test_input`` (same
format) is scored at the end.

Each round, every worker computes ``X_k^T r_k`` (centred) and two scalars of
the residual ``r_k`` over its own rows at the current extrapolated point; one
``allreduce`` sums them, and every worker takes the same proximal step
(soft-thresholding) with momentum, with step ``1/L``, ``L`` the largest
eigenvalue of ``X^T X / n`` (centred) found by power iteration summed the same
way. The round's sums also give the duality gap of the point, scikit-learn's
stopping rule: the job stops when the gap is at most ``tol * ||y - mean(y)||^2``
(scikit-learn's ``tol`` means the same), or after ``rounds`` rounds. The
master's decisions (stop, restart the momentum) travel with the next round's
sums, so every worker applies them at the same round. At the end the master
assigns the weights and the intercept to the table ``weights``
(``features + 1`` rows): the fitted model is in the parameter server.

Outputs in ``output``: ``weights.tsv`` (``feature<TAB>weight`` for every
feature, then ``intercept<TAB>b``), ``weights.npy`` (the same numbers, the
intercept last) and ``metrics.json`` with ``objective``, ``nonzeros``,
``seconds``, ``duality_gap``, ``iterations``, ``converged``, ``intercept``,
``train_mse`` and, with ``test_input``, ``test_mse`` and ``test_r2``.

    run_parasol --config algs/configs/lasso.json python algs/lasso.py
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from parasol_hybrid import InputError, Option, paralg, run
from parasol_hybrid.checkpoint import refuse_option
from parasol_hybrid.config import non_negative, positive
from parasol_hybrid import data as loaders
from parasol_hybrid.data.scan_text import parse_regression, scan_libsvm

__all__ = ["Lasso", "parse_regression", "load_regression"]

FLAGS = 2  # the master's decisions that travel with each round's sums
RESTART, STOP = 0, 1


# ---------------------------------------------------------------- input


def load_regression(alg: paralg):
    """This worker's rows of ``input`` as ``(targets, indptr, indices, data, n_features, bad_lines)``:
    ``parse_regression`` of its byte range, parsed by the compiled libsvm scanner with real targets."""
    rows = alg.load(format="regression")
    return rows.labels, rows.indptr, rows.indices, rows.data, rows.n_features, rows.bad_lines


# ---------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def residual_sums(indptr, indices, data, y, ybar, xbar, w, b, out):
    """Sums over these rows of the residual ``r = y - X w - b``.

    ``out[:d] = (X - xbar)^T r``, ``out[d] = r . r``, ``out[d + 1] = r . (y - ybar)``
    (``d = len(w)``; features at or beyond ``d`` are ignored).
    """
    d = w.shape[0]
    for j in range(out.shape[0]):
        out[j] = 0.0
    rsum = 0.0
    for i in range(y.shape[0]):
        pred = b
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] < d:
                pred += data[p] * w[indices[p]]
        r = y[i] - pred
        rsum += r
        out[d] += r * r
        out[d + 1] += r * (y[i] - ybar)
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] < d:
                out[indices[p]] += data[p] * r
    for j in range(d):
        out[j] -= xbar[j] * rsum


@njit(cache=True, nogil=True)
def column_sums(indptr, indices, data, d, out):
    """``out[j]`` = sum of feature ``j`` over these rows (``j < d``)."""
    for j in range(d):
        out[j] = 0.0
    for p in range(indptr[indptr.shape[0] - 1]):
        if indices[p] < d:
            out[indices[p]] += data[p]


@njit(cache=True, nogil=True)
def soft_threshold_step(z, grad, step, threshold, out):
    """``out = S(z - step * grad, threshold)``, ``S`` the soft-thresholding (the prox of the L1 norm)."""
    for j in range(z.shape[0]):
        v = z[j] - step * grad[j]
        if v > threshold:
            out[j] = v - threshold
        elif v < -threshold:
            out[j] = v + threshold
        else:
            out[j] = 0.0


def lasso_gap(xtr: np.ndarray, rr: float, ry: float, w: np.ndarray, alpha: float, n: int) -> float:
    """The duality gap of the Lasso at ``w`` from ``X^T r``, ``r . r`` and ``r . y`` (scikit-learn's formula,
    in units of ``n`` times the objective)."""
    dual_norm = float(np.max(np.abs(xtr))) if len(xtr) else 0.0
    if dual_norm > n * alpha:
        const = n * alpha / dual_norm
        gap = 0.5 * (rr + rr * const * const)
    else:
        const = 1.0
        gap = rr
    return gap + alpha * n * float(np.abs(w).sum()) - const * ry


# ---------------------------------------------------------------- the algorithm


class Lasso(paralg):
    """L1-regularised least squares; every worker keeps the same iterate, the gradient is summed by allreduce."""

    options = {
        "alpha": Option(float, 1.0, "L1 regularisation (scikit-learn's Lasso alpha)", check=non_negative),
        "tol": Option(float, 1e-6, "stop when the duality gap is at most tol * ||y - mean(y)||^2 "
                                   "(scikit-learn's Lasso tol)", check=positive),
        "rounds": Option(int, 5000, "at most this many proximal-gradient rounds", check=positive),
        "fit_intercept": Option(bool, True, "fit an unpenalised intercept (scikit-learn's fit_intercept)"),
        "power_rounds": Option(int, 200, "at most this many power-iteration rounds to find the step size",
                               check=positive),
        "step_margin": Option(float, 1.05, "the step is 1 / (step_margin * largest eigenvalue of X^T X / n)",
                              check=lambda v: None if v >= 1 else "must be at least 1"),
        # the iterate, its momentum and the step live in every worker's memory, not in tables
        "checkpoint_every": refuse_option("lasso", "its iterate is kept by the workers, not in tables; "
                                            "a run takes seconds to minutes: rerun it instead"),
    }

    def solve(self) -> None:
        cfg = self.cfg
        y, indptr, indices, data, nf, bad = load_regression(self)
        d = self.allreduce(int(nf), op="max")
        n = self.allreduce(len(y))
        bad = self.allreduce(int(bad))
        if n == 0 or d == 0:
            raise InputError(f"no training rows with features in {cfg.input}")
        self._sum_rounds = 0
        model = self.table("weights", (d + 1, 1), "float64", rule="assign")  # the result: w, then the intercept
        _warm_up(d)
        self.sync()
        start = time.perf_counter()
        # means over all rows: the centring that fits the intercept
        local = np.zeros(d + 2)
        column_sums(indptr, indices, data, d, local[:d])
        local[d], local[d + 1] = y.sum(), float(y @ y)
        sums = self.allreduce(local)
        xbar = sums[:d] / n if cfg.fit_intercept else np.zeros(d)
        ybar = sums[d] / n if cfg.fit_intercept else 0.0
        y_norm2 = float(sums[d + 1] - n * ybar * ybar)  # ||y - ybar||^2, the scale of the stopping rule

        L = self._largest_eigenvalue(indptr, indices, data, xbar, d, n)
        step = 1.0 / (cfg.step_margin * L) if L > 0 else 1.0
        self.log(f"lasso: {n} rows, {d} features, alpha {cfg.alpha:g}, L {L:.6g}, "
                 f"{self._sum_rounds} power-iteration rounds")

        x = np.zeros(d)        # the iterate (what is returned)
        z = np.zeros(d)        # the extrapolated point the gradient is taken at
        x_new = np.zeros(d)
        grad = np.zeros(d)
        part = np.zeros(d + 2)
        t = 1.0
        flags = np.zeros(FLAGS)  # master: decisions sent with the next round
        gap = np.inf
        converged = False
        iterations = 0
        for rnd in range(cfg.rounds):
            b = ybar - float(xbar @ z)
            residual_sums(indptr, indices, data, y, ybar, xbar, z, b, part)
            total, told = self._round_sum(part, flags)
            if told[STOP]:
                converged = True
                break
            xtr, rr, ry = total[:d], total[d], total[d + 1]
            np.divide(xtr, -n, out=grad)
            gap = lasso_gap(xtr, rr, ry, z, cfg.alpha, n)
            soft_threshold_step(z, grad, step, step * cfg.alpha, x_new)
            iterations += 1
            if self.is_master:
                flags[STOP] = gap <= cfg.tol * y_norm2
                flags[RESTART] = float((z - x_new) @ (x_new - x)) > 0  # momentum points uphill
                if (rnd + 1) % cfg.log_every == 0:
                    self.progress(rnd + 1, cfg.rounds, objective=rr / (2 * n) + cfg.alpha * float(np.abs(z).sum()),
                                  gap=gap / max(y_norm2, 1e-300), nonzeros=int(np.count_nonzero(x_new)))
            if told[RESTART]:
                t = 1.0
                z[:] = x_new
            else:
                t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                z[:] = x_new + ((t - 1.0) / t_next) * (x_new - x)
                t = t_next
            x, x_new = x_new, x

        # the objective of the result, and the training error, from one more round of sums
        b = ybar - float(xbar @ x)
        residual_sums(indptr, indices, data, y, ybar, xbar, x, b, part)
        total, _ = self._round_sum(part)
        if self.is_master:
            model.push(np.arange(d + 1), np.append(x, b).reshape(-1, 1))
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        rr = float(total[d])
        metrics = {
            "objective": rr / (2 * n) + cfg.alpha * float(np.abs(x).sum()),
            "nonzeros": int(np.count_nonzero(x)),
            "seconds": seconds,
            "duality_gap": gap / n,
            "relative_gap": gap / max(y_norm2, 1e-300),
            "converged": converged,
            "iterations": iterations,
            "rounds_total": self._sum_rounds,
            "lipschitz": L,
            "intercept": b,
            "train_mse": rr / n,
            "train_rows": n,
            "n_features": d,
            "alpha": cfg.alpha,
            "bad_lines": bad,
            "cross_node_bytes": self.cross_node_bytes(),
        }
        if self.is_master:
            if cfg.test_input:
                metrics.update(_score(cfg, x, b))
            np.save(self.output_path("weights.npy"), np.append(x, b))
            lines = [f"{j}\t{float(x[j])!r}\n" for j in range(d)] + [f"intercept\t{float(b)!r}\n"]
            self.output_path("weights.tsv").write_text("".join(lines))
            self.write_metrics(metrics)
            self.log(f"done: objective {metrics['objective']:.10g}  nonzeros {metrics['nonzeros']}/{d}  "
                     f"gap {metrics['relative_gap']:.2e}  {iterations} iterations  {seconds:.2f} s")
        self.sync()

    def _round_sum(self, local: np.ndarray, flags=None) -> tuple[np.ndarray, np.ndarray]:
        """This worker's ``local`` part in, the sum over the workers and the master's ``FLAGS`` out
        (the others send zeros there). Collective; counted in ``rounds_total``."""
        self._sum_rounds += 1
        send = np.zeros(len(local) + FLAGS)
        send[:len(local)] = local
        if flags is not None and self.is_master:
            send[len(local):] = flags
        total = self.allreduce(send)
        return total[:len(local)], total[len(local):]

    def _largest_eigenvalue(self, indptr, indices, data, xbar, d: int, n: int) -> float:
        """The largest eigenvalue of ``Xc^T Xc / n`` (``Xc`` the centred data) by power iteration.

        The master stops it when the Rayleigh quotient changes by at most 1e-6
        (relative); every worker starts from the same seeded vector.
        """
        v = np.random.default_rng(self.cfg.seed).standard_normal(d)
        v /= np.linalg.norm(v)
        no_targets = np.zeros(len(indptr) - 1)
        part = np.zeros(d + 2)
        flags = np.zeros(FLAGS)
        lam = previous = 0.0
        for k in range(self.cfg.power_rounds):
            # residual_sums with y = 0 and w = -v gives (Xc^T Xc v) in part[:d]
            residual_sums(indptr, indices, data, no_targets, 0.0, xbar, -v, float(xbar @ v), part)
            total, told = self._round_sum(part, flags)
            if told[STOP]:
                break
            u = total[:d] / n
            lam = float(v @ u)
            norm = float(np.linalg.norm(u))
            if norm == 0.0:  # every centred column is zero
                lam = 0.0
                flags[STOP] = 1.0
                continue
            v = u / norm
            if self.is_master:
                flags[STOP] = k >= 5 and abs(lam - previous) <= 1e-6 * lam
            previous = lam
        return lam


def _warm_up(d: int) -> None:
    """Compile (or load from numba's cache) the kernels on empty data, before the timed part."""
    ptr, idx, val, vec = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(d)
    residual_sums(ptr, idx, val, val, 0.0, vec, vec, 0.0, np.zeros(d + 2))
    column_sums(ptr, idx, val, d, np.zeros(d))
    soft_threshold_step(vec, vec, 1.0, 0.0, np.zeros(d))


def _score(cfg, w: np.ndarray, b: float) -> dict:
    """Test MSE and R^2 of ``X w + b`` on ``test_input`` (features beyond ``len(w)`` are ignored)."""
    rows = scan_libsvm(loaders.expand_inputs(cfg.test_input), 0, 1, cfg.on_bad_line, labels="real")
    y, indptr, indices, data = rows.labels, rows.indptr, rows.indices, rows.data
    if len(y) == 0:
        return {"test_rows": 0}
    out = np.zeros(len(w) + 2)
    residual_sums(indptr, indices, data, y, float(y.mean()), np.zeros(len(w)), w, b, out)
    mse = float(out[len(w)]) / len(y)
    var = float(np.var(y))
    return {"test_mse": mse, "test_r2": 1.0 - mse / var if var > 0 else float("nan"), "test_rows": len(y)}


if __name__ == "__main__":
    run(Lasso)
