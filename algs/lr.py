"""Logistic regression on the parameter server: mini-batch SGD, FTRL-proximal, or full-batch L-BFGS.

Input: libsvm lines ``label idx:val ...`` (labels 0/1 or -1/+1). Each worker
reads its byte range of the input. The model is ``P(y = 1) = sigmoid(w . x + b)``
with an unregularised bias ``b``; ``method`` chooses how it is trained:

- ``sgd`` (default): per mini-batch a worker pulls the weights of the
  features the batch uses (and the bias), computes the gradient of the mean
  log-loss plus ``beta/2 * ||w||^2`` on those weights, and pushes it with the
  ``sgd`` rule (learning rate ``alpha / (1 + decay * round)``).
- ``ftrl``: the same mini-batches, but the pushed gradient of the mean
  log-loss goes through the ``ftrl`` update rule registered below
  (FTRL-proximal, McMahan et al. 2013: per coordinate ``z`` and ``n`` state
  next to the weight, learning rate ``alpha / (ftrl_beta + sqrt(n))``, L1
  ``l1`` and L2 ``beta``; the bias gets no L1 or L2). Weights whose ``|z|`` is
  at most ``l1`` are exactly 0.
- ``lbfgs``: full batch. Per evaluation every worker computes the log-loss
  and its gradient over its rows at the current point and push-adds them into
  a gradient table; after ``sync()`` the master adds ``beta/2 * ||w||^2``,
  takes the L-BFGS step (two-loop recursion, ``memory`` pairs, backtracking
  Armijo line search) and assigns the next point to the weights table; after a
  second ``sync()`` every worker evaluates there. It stops when
  ``max |gradient| <= tol`` or after ``rounds`` iterations. The objective,
  mean log-loss + ``beta/2 * ||w||^2``, is scikit-learn's
  ``LogisticRegression(C=1 / (beta * n))`` divided by ``C * n`` (``n`` training
  rows; scikit-learn does not penalise the intercept either), and ``tol``
  is its L-BFGS ``tol`` on the same scale.

Outputs in ``output``: ``weights.npy`` (``n_features + 1`` values, the bias
last), ``weights.tsv`` (``feature<TAB>weight``, then ``bias``) and
``metrics.json`` with ``test_accuracy``, ``test_logloss`` (with
``test_input``), ``train_logloss``, ``nonzeros`` (non-zero weights, bias
not counted), ``seconds``; ``lbfgs`` adds ``objective``, ``gradient_max``,
``iterations``, ``evaluations``, ``converged``.

    run_parasol --config algs/configs/lr.json python algs/lr.py
    run_parasol --config algs/configs/lr_ftrl.json python algs/lr.py
    run_parasol --config algs/configs/lr_lbfgs.json python algs/lr.py
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from common import log_loss, logistic_loss, may_replace_rule

from parasol_hybrid import Option, paralg, run, update_rule
from parasol_hybrid import data as loaders
from parasol_hybrid.config import non_negative, positive


@update_rule("ftrl", hyper={"alpha": 0.1, "beta": 1.0, "l1": 0.0, "l2": 0.0}, state_slots=2,
             replace=may_replace_rule("ftrl", __file__))
def ftrl(param, state, delta, hp):
    """FTRL-proximal, per coordinate; ``delta`` is the gradient, ``state[0]`` is z, ``state[1]`` is n.

    ``n`` sums the squared gradients, ``z`` the gradients minus ``sigma * w``
    (``sigma`` the growth of the inverse learning rate); the weight is then
    the closed-form minimiser: 0 when ``|z| <= l1``, else
    ``-(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)``.
    """
    alpha, beta, l1, l2 = hp[0], hp[1], hp[2], hp[3]
    for j in range(param.shape[0]):
        g = delta[j]
        n_old = state[1, j]
        n_new = n_old + g * g
        sigma = (np.sqrt(n_new) - np.sqrt(n_old)) / alpha
        z = state[0, j] + g - sigma * param[j]
        state[0, j] = z
        state[1, j] = n_new
        if abs(z) <= l1:
            param[j] = 0.0
        else:
            shrunk = z - l1 if z > 0 else z + l1
            param[j] = -shrunk / ((beta + np.sqrt(n_new)) / alpha + l2)


@njit(cache=True, nogil=True)
def batch_gradient(w, local_idx, data, indptr, labels, lo, hi, beta, bias_pos, grad):
    """Gradient of the mean log-loss over rows [lo, hi) plus L2, on the pulled weights ``w``.

    ``local_idx[j]`` is the position in ``w`` of the j-th stored feature; the
    bias is ``w[bias_pos]`` and is not regularised. Returns the summed log-loss.
    """
    for j in range(grad.shape[0]):
        grad[j] = 0.0
    loss = 0.0
    n = hi - lo
    for i in range(lo, hi):
        z = w[bias_pos]
        for p in range(indptr[i], indptr[i + 1]):
            z += w[local_idx[p - indptr[lo]]] * data[p]
        row_loss, slope = logistic_loss(z, labels[i])
        loss += row_loss
        r = slope / n
        grad[bias_pos] += r
        for p in range(indptr[i], indptr[i + 1]):
            grad[local_idx[p - indptr[lo]]] += r * data[p]
    for j in range(grad.shape[0]):
        if j != bias_pos:
            grad[j] += beta * w[j]
    return loss


def predict_proba(weights: np.ndarray, rows: loaders.LibSVM) -> np.ndarray:
    """P(label = 1) of every row under ``weights`` (bias last); unknown features are ignored."""
    nf = weights.shape[0] - 1
    z = np.full(len(rows.labels), weights[-1], dtype=np.float64)
    for i in range(len(rows.labels)):
        lo, hi = rows.indptr[i], rows.indptr[i + 1]
        idx = rows.indices[lo:hi]
        keep = idx < nf
        z[i] += float(np.dot(weights[idx[keep]], rows.data[lo:hi][keep]))
    return 1.0 / (1.0 + np.exp(-z))


def lbfgs(x0: np.ndarray, memory: int, tol: float, max_iter: int):
    """L-BFGS as a generator: it yields each point to evaluate and is sent back ``(f, g)`` there.

    Two-loop recursion over the last ``memory`` pairs (initial scaling
    ``s.y / y.y``), backtracking line search with the Armijo condition (step 1,
    then halved or interpolated). Stops when ``max |g| <= tol`` (converged),
    when the objective stops moving (relative change under 64 machine
    epsilons, as SciPy's default ``ftol``) or after ``max_iter`` iterations;
    the generator's return value is ``(x, f, g, iterations, converged)``.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = yield x
    S: list[np.ndarray] = []
    Y: list[np.ndarray] = []
    eps = np.finfo(np.float64).eps
    # memory: every vector below is len(x) float64; they are reused, not reallocated, each iteration
    # (same values: the same operations in the same order, written with out=)
    p = np.empty_like(x)
    x_new = np.empty_like(x)  # also the two-loop's scratch (it holds no point then)
    spare: tuple[np.ndarray, np.ndarray] | None = None  # the buffers of the pair dropped last
    for it in range(max_iter):
        if max_abs(g) <= tol:
            return x, f, g, it, True
        _two_loop(g, S, Y, p, x_new)
        np.negative(p, out=p)
        slope = float(g @ p)
        if slope >= 0:  # not a descent direction: forget the curvature pairs
            S.clear()
            Y.clear()
            np.negative(g, out=p)
            slope = -float(g @ g)
        step = 1.0 if S else min(1.0, 1.0 / float(np.sqrt(g @ g)))
        while True:
            np.multiply(p, step, out=x_new)  # x + step * p
            x_new += x
            f_new, g_new = yield x_new
            if f_new <= f + 1e-4 * step * slope:
                break
            # minimiser of the quadratic through f, slope and f_new, kept within [0.1, 0.5] * step
            curv = f_new - f - slope * step
            trial = -slope * step * step / (2.0 * curv) if curv > 0 else 0.5 * step
            step = min(max(trial, 0.1 * step), 0.5 * step)
            if step < 1e-20:
                return x, f, g, it, False
        s, y = spare if spare is not None else (np.empty_like(x), np.empty_like(x))
        spare = None
        np.subtract(x_new, x, out=s)
        np.subtract(g_new, g, out=y)
        if float(s @ y) > 1e-12 * float(np.sqrt((s @ s) * (y @ y))):
            S.append(s)
            Y.append(y)
            if len(S) > memory:
                spare = (S.pop(0), Y.pop(0))
        else:
            spare = (s, y)
        moved = f - f_new
        x, x_new = x_new, x  # the old point's buffer takes the next trial point
        f, g = f_new, g_new
        if moved <= 64 * eps * max(abs(f), 1.0):
            return x, f, g, it + 1, bool(max_abs(g) <= tol)
    return x, f, g, max_iter, bool(max_abs(g) <= tol)


def max_abs(v: np.ndarray) -> float:
    """``max |v|`` (of a non-empty array) without an ``abs`` copy of ``v``."""
    return max(abs(float(v.max())), abs(float(v.min())))


def _two_loop(g: np.ndarray, S: list, Y: list, q: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """The L-BFGS approximation of (Hessian)^-1 g from the pairs (s, y), oldest first, into ``q``
    (``scratch``: a buffer as long)."""
    q[:] = g
    rho = [1.0 / float(y @ s) for s, y in zip(S, Y)]
    a = [0.0] * len(S)
    for k in range(len(S) - 1, -1, -1):
        a[k] = rho[k] * float(S[k] @ q)
        q -= np.multiply(Y[k], a[k], out=scratch)
    if S:
        q *= float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1])
    for k in range(len(S)):
        b = rho[k] * float(Y[k] @ q)
        q += np.multiply(S[k], a[k] - b, out=scratch)
    return q


class LR(paralg):
    """Binary logistic regression; weights (and the bias) in one table."""

    options = {
        "method": Option(str, "sgd", "sgd (mini-batch SGD), ftrl (FTRL-proximal) or lbfgs (full-batch L-BFGS)",
                         choices=("sgd", "ftrl", "lbfgs")),
        "alpha": Option(float, 0.1, "learning rate (sgd; ftrl: alpha of alpha / (ftrl_beta + sqrt(n)))",
                        check=positive),
        "beta": Option(float, 0.001, "L2 regularisation", check=non_negative),
        "batch": Option(int, 16, "mini-batch size (sgd, ftrl)", check=positive),
        "decay": Option(float, 0.1, "learning-rate decay per round (sgd)", check=non_negative),
        "l1": Option(float, 0.0, "L1 regularisation (ftrl)", check=non_negative),
        "ftrl_beta": Option(float, 1.0, "ftrl: beta of the per-coordinate learning rate "
                                        "alpha / (ftrl_beta + sqrt(n)) (not the L2 'beta')", check=non_negative),
        "tol": Option(float, 1e-6, "lbfgs: stop when max |gradient| <= tol", check=positive),
        "memory": Option(int, 10, "lbfgs: number of curvature pairs kept", check=positive),
    }

    def solve(self) -> None:
        cfg = self.cfg
        rows = self.load(format="libsvm")
        nf = self.allreduce(int(rows.n_features), op="max")
        bad = self.allreduce(int(rows.bad_lines))
        n_total = self.allreduce(len(rows.labels))
        if cfg.method == "ftrl":
            w_table = self.table("w", (nf + 1, 1), "float64", rule="ftrl",
                                 hyper={"alpha": cfg.alpha, "beta": cfg.ftrl_beta, "l1": cfg.l1, "l2": cfg.beta})
        elif cfg.method == "lbfgs":
            w_table = self.table("w", (nf + 1, 1), "float64", rule="assign")
            g_table = self.table("lbfgs_grad", (nf + 2, 1), "float64", exact=True)  # gradient, then the loss
            control = self.table("lbfgs_control", (1, 1), "float64", rule="assign")  # 1: stop
        else:
            w_table = self.table("w", (nf + 1, 1), "float64", rule="sgd", hyper={"lr": cfg.alpha})
        _warm_up(self, w_table)
        start = time.perf_counter()
        if cfg.method == "lbfgs":
            extra = self._lbfgs(rows, w_table, g_table, control, nf, n_total)
        else:
            self._minibatch(rows, w_table, nf)
            extra = {}
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        # the master writes every weight; the others need only those of their own rows' features
        weights = self.pull_all(w_table)[:, 0] if self.is_master else None
        n = len(rows.labels)
        mine = predict_proba(weights, rows) if self.is_master else _own_proba(self, w_table, rows, nf)
        train_logloss = self.allreduce(log_loss(rows.labels, mine) * n) / max(n_total, 1)
        del mine
        metrics = {"train_logloss": train_logloss, "seconds": seconds, "n_features": nf, "train_rows": n_total,
                   "bad_lines": bad, "rounds": cfg.rounds, "method": cfg.method,
                   **extra,
                   "cross_node_bytes": self.cross_node_bytes()}
        if self.is_master:
            metrics["nonzeros"] = int(np.count_nonzero(weights[:nf]))
            if cfg.test_input:
                test = loaders.scan_libsvm(loaders.expand_inputs(cfg.test_input), 0, 1, cfg.on_bad_line)
                proba = predict_proba(weights, test)
                metrics["test_accuracy"] = float(np.mean((proba >= 0.5) == (test.labels == 1)))
                metrics["test_logloss"] = log_loss(test.labels, proba)
                metrics["test_rows"] = len(test.labels)
            np.save(self.output_path("weights.npy"), weights)
            _write_tsv(self.output_path("weights.tsv"), weights, nf)
            self.write_metrics(metrics)
            self.log("done: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        self.sync()

    def _minibatch(self, rows: loaders.LibSVM, w_table, nf: int) -> None:
        """SGD or FTRL: per mini-batch pull the batch's weights, push the gradient through the table's rule."""
        cfg = self.cfg
        ftrl_rule = cfg.method == "ftrl"
        beta = 0.0 if ftrl_rule else cfg.beta  # FTRL applies its L2 in the rule
        bias_key = nf
        n = len(rows.labels)
        for rnd in range(self.start_round, cfg.rounds):
            lr = cfg.alpha / (1.0 + cfg.decay * rnd)
            order = np.random.default_rng([cfg.seed, self.worker_id, rnd]).permutation(n)
            shuffled = _take_rows(rows, order)
            train_loss = 0.0
            for lo in range(0, n, cfg.batch):
                hi = min(lo + cfg.batch, n)
                feats = shuffled.indices[shuffled.indptr[lo]:shuffled.indptr[hi]]
                keys, local_idx = np.unique(feats, return_inverse=True)
                keys = np.append(keys, bias_key).astype(np.int64)
                w = self.pull(w_table, keys)[:, 0]
                grad = np.empty_like(w)
                train_loss += batch_gradient(w, local_idx.astype(np.int64), shuffled.data, shuffled.indptr,
                                             shuffled.labels, lo, hi, beta, len(keys) - 1, grad)
                if ftrl_rule:  # the bias: no L1, no L2
                    self.push(w_table, keys[:-1], grad[:-1].reshape(-1, 1))
                    self.push(w_table, keys[-1:], grad[-1:].reshape(-1, 1), l1=0.0, l2=0.0)
                else:
                    self.push(w_table, keys, grad.reshape(-1, 1), lr=lr)
            self.clock()
            if self.is_master and (rnd + 1) % cfg.log_every == 0:
                figures = {"train_logloss": train_loss / max(n, 1)}
                if not ftrl_rule:
                    figures["lr"] = lr
                self.progress(rnd + 1, cfg.rounds, **figures)

    def _lbfgs(self, rows: loaders.LibSVM, w_table, g_table, control, nf: int, n_total: int) -> dict:
        """Full-batch L-BFGS: the workers sum loss and gradient in ``g_table``, the master steps and assigns
        the next point to ``w_table`` (and 1 to ``control`` when done); see the module doc."""
        cfg = self.cfg
        dim = nf + 1
        # memory: each vector here is dim float64 (8 bytes a feature); a worker keeps three (keys, the
        # pulled weights, its gradient share); the master, after the first evaluation, evaluates at its
        # own copy of the point (the table holds the same numbers, assigned) and keeps the summed
        # gradient, plus L-BFGS's vectors
        g_keys = np.arange(dim + 1, dtype=np.int64)
        all_keys = g_keys[:dim]
        n = len(rows.labels)
        part = np.empty(dim + 1)
        steps = lbfgs(np.zeros(dim), cfg.memory, cfg.tol, cfg.rounds) if self.is_master else None
        point = next(steps) if steps is not None else None  # the master's exact point: 0, the table's initial value
        totals = np.empty((dim + 1, 1)) if self.is_master else None
        w_rows = np.empty((dim, 1))
        evaluations = 0
        result = None
        while True:
            if self.is_master and evaluations:
                w, w_rows = point, None
            else:
                w = self.pull(w_table, all_keys, out=w_rows)[:, 0]
            grad = part[:dim]
            loss = batch_gradient(w, rows.indices, rows.data, rows.indptr, rows.labels, 0, n, 0.0, nf, grad)
            grad *= n / max(n_total, 1)  # batch_gradient averages over this worker's rows: make it a share
            part[dim] = loss / max(n_total, 1)
            self.push(g_table, g_keys, part.reshape(-1, 1))
            self.sync()
            evaluations += 1
            if self.is_master:
                total = self.pull(g_table, g_keys, out=totals)[:, 0]
                g = _unbiased(point, nf, 1.0)  # reg * point, reg = 1 but 0 at the bias
                f = float(total[dim]) + 0.5 * cfg.beta * float(g @ point)
                _unbiased(point, nf, cfg.beta, out=g)  # beta * reg * point
                g += total[:dim]
                totals.fill(0.0)
                self.push(g_table, g_keys, totals, rule="assign")  # zero the sums for the next evaluation
                try:
                    x_next = steps.send((f, g))
                except StopIteration as done:
                    result = done.value
                    x_next = result[0]
                    self.push(control, [0], [[1.0]])
                point = x_next
                self.push(w_table, all_keys, point.reshape(-1, 1))
                if result is None and (evaluations % cfg.log_every == 0):
                    self.progress(evaluations, cfg.rounds, objective=f, gradient_max=max_abs(g))
            self.sync()
            if self.pull(control, [0])[0, 0] != 0:
                break
        extra = {"evaluations": evaluations}
        if self.is_master:
            _, f, g, iterations, converged = result
            extra.update(objective=float(f), gradient_max=max_abs(g), iterations=int(iterations),
                         converged=bool(converged))
        return extra


def _unbiased(point: np.ndarray, nf: int, scale: float, out: np.ndarray | None = None) -> np.ndarray:
    """``scale * reg * point`` with ``reg`` 1 but 0 at the bias ``nf``, without a ``reg`` vector
    (bit for bit: ``(scale * 1.0) * point[j]`` and ``(scale * 0.0) * point[nf]``)."""
    out = np.multiply(point, scale, out=out)
    out[nf] = (scale * 0.0) * point[nf]
    return out


def _warm_up(alg: paralg, w_table) -> None:
    """Compile (or load from numba's cache) the gradient kernel and the table's update rule before the clock
    starts: an empty batch, an empty push."""
    empty = np.zeros(0)
    batch_gradient(np.zeros(1), np.zeros(0, np.int64), empty, np.zeros(1, np.int64), empty, 0, 0, 0.0, 0,
                   np.zeros(1))
    alg.push(w_table, np.zeros(0, np.int64), np.zeros((0, 1)))


def _own_proba(alg: paralg, w_table, rows: loaders.LibSVM, nf: int) -> np.ndarray:
    """``predict_proba`` of ``rows`` from only the weights of their features (and the bias), pulled:
    the same numbers in the same order as with the whole weight vector."""
    idx = rows.indices
    keys, local = np.unique(idx[idx < nf], return_inverse=True)
    local_idx = np.full(len(idx), len(keys), dtype=np.int64)  # features >= nf: ignored, as predict_proba does
    local_idx[idx < nf] = local
    w = alg.pull(w_table, np.append(keys, nf).astype(np.int64))[:, 0]
    return predict_proba(w, loaders.LibSVM(rows.labels, rows.indptr, local_idx, rows.data, len(keys), 0))


_TSV_BLOCK = 1 << 18  # weights formatted per write


def _write_tsv(path, weights: np.ndarray, nf: int) -> None:
    """``feature<TAB>weight`` lines (``repr`` of each float), then ``bias<TAB>b``, a block at a time."""
    with open(path, "w") as f:
        for lo in range(0, nf, _TSV_BLOCK):
            hi = min(lo + _TSV_BLOCK, nf)
            f.write("".join([f"{j}\t{x!r}\n" for j, x in zip(range(lo, hi), weights[lo:hi].tolist())]))
        f.write(f"bias\t{float(weights[nf])!r}\n")


def _take_rows(rows: loaders.LibSVM, order: np.ndarray) -> loaders.LibSVM:
    """The rows of a CSR set in ``order``."""
    lengths = np.diff(rows.indptr)[order]
    indptr = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    pos = np.arange(indptr[-1], dtype=np.int64)  # stored element k of new row r is old rows.indptr[order[r]] + k
    pos += np.repeat(rows.indptr[:-1][order] - indptr[:-1], lengths)
    return loaders.LibSVM(rows.labels[order], indptr, rows.indices[pos].astype(np.int64), rows.data[pos],
                          rows.n_features, rows.bad_lines)


if __name__ == "__main__":
    run(LR)
