"""Logistic regression by mini-batch SGD with L2 regularisation, on the parameter server.

Input: libsvm lines ``label idx:val ...`` (labels 0/1 or -1/+1). Each worker
reads its byte range of the input; per mini-batch it pulls the weights of the
features the batch uses (and the bias), computes the gradient of the mean
log-loss plus ``beta/2 * ||w||^2`` on those weights, and pushes it with the
``sgd`` rule (learning rate ``alpha / (1 + decay * round)``).

Outputs in ``output``: ``weights.npy`` (``n_features + 1`` values, the bias
last), ``weights.tsv`` (``feature<TAB>weight``, then ``bias``) and
``metrics.json`` with ``test_accuracy``, ``test_logloss`` (with
``test_input``), ``train_logloss``, ``seconds``.

    run_parasol --config algs/configs/lr.json python algs/lr.py
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from parasol_hybrid import Option, paralg, run
from parasol_hybrid import data as loaders


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
        y = labels[i]
        if z >= 0:
            e = np.exp(-z)
            prob = 1.0 / (1.0 + e)
            loss += np.log1p(e) + (1.0 - y) * z
        else:
            e = np.exp(z)
            prob = e / (1.0 + e)
            loss += np.log1p(e) - y * z
        r = (prob - y) / n
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


def log_loss(labels: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba, 1e-15, 1 - 1e-15)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


class LR(paralg):
    """Binary logistic regression; weights (and the bias) in one table."""

    options = {
        "alpha": Option(float, 0.1, "learning rate", check=lambda v: None if v > 0 else "must be positive"),
        "beta": Option(float, 0.001, "L2 regularisation", check=lambda v: None if v >= 0 else "must be >= 0"),
        "batch": Option(int, 16, "mini-batch size", check=lambda v: None if v > 0 else "must be positive"),
        "decay": Option(float, 0.1, "learning-rate decay per round", check=lambda v: None if v >= 0 else "must be >= 0"),
    }

    def solve(self) -> None:
        cfg = self.cfg
        rows = self.load(format="libsvm")
        nf = self.allreduce(int(rows.n_features), op="max")
        bad = self.allreduce(int(rows.bad_lines))
        n_total = self.allreduce(len(rows.labels))
        w_table = self.table("w", (nf + 1, 1), "float64", rule="sgd", hyper={"lr": cfg.alpha})
        bias_key = nf
        n = len(rows.labels)
        start = time.perf_counter()
        train_loss = 0.0
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
                                             shuffled.labels, lo, hi, cfg.beta, len(keys) - 1, grad)
                self.push(w_table, keys, grad.reshape(-1, 1), lr=lr)
            self.clock()
            total_loss = train_loss
            if self.is_master and (rnd + 1) % cfg.log_every == 0:
                self.progress(rnd + 1, cfg.rounds, train_logloss=total_loss / max(n, 1), lr=lr)
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        weights = self.pull_all(w_table)[:, 0]
        train_logloss = self.allreduce(log_loss(rows.labels, predict_proba(weights, rows)) * n) / max(n_total, 1)
        metrics = {"train_logloss": train_logloss, "seconds": seconds, "n_features": nf, "train_rows": n_total,
                   "bad_lines": bad, "rounds": cfg.rounds, "cross_node_bytes": self.cross_node_bytes()}
        if self.is_master:
            if cfg.test_input:
                test = loaders.parse_libsvm(loaders.read_all_lines(loaders.expand_inputs(cfg.test_input)),
                                            on_bad_line=cfg.on_bad_line)
                proba = predict_proba(weights, test)
                metrics["test_accuracy"] = float(np.mean((proba >= 0.5) == (test.labels == 1)))
                metrics["test_logloss"] = log_loss(test.labels, proba)
                metrics["test_rows"] = len(test.labels)
            np.save(self.output_path("weights.npy"), weights)
            lines = [f"{j}\t{weights[j]!r}\n" for j in range(nf)] + [f"bias\t{weights[nf]!r}\n"]
            self.output_path("weights.tsv").write_text("".join(lines))
            self.write_metrics(metrics)
            self.log("done: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        self.sync()


def _take_rows(rows: loaders.LibSVM, order: np.ndarray) -> loaders.LibSVM:
    """The rows of a CSR set in ``order``."""
    lengths = np.diff(rows.indptr)[order]
    indptr = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    pos = np.concatenate([np.arange(rows.indptr[i], rows.indptr[i + 1]) for i in order]) if len(order) else \
        np.zeros(0, np.int64)
    return loaders.LibSVM(rows.labels[order], indptr, rows.indices[pos].astype(np.int64), rows.data[pos],
                          rows.n_features, rows.bad_lines)


if __name__ == "__main__":
    run(LR)
