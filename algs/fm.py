"""A factorization machine (Rendle, 2010) for binary classification, by mini-batch SGD on the parameter server.

Input: libsvm lines ``label idx:val ...`` (labels 0/1 or -1/+1), split over
the workers by byte range. The model is
``P(y = 1 | x) = sigmoid(w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j)``:
a weight ``w_i`` and a ``k``-vector ``v_i`` per feature, so every pair of
features gets an interaction weight ``<v_i, v_j>`` without a table of pairs.

Two tables: ``w`` (``n_features + 1`` rows, the bias ``w0`` last) and ``V``
(``n_features`` rows of ``k``). Per mini-batch a worker pulls the rows of the
features the batch uses, computes the gradient of the batch's mean log-loss
plus ``reg_w/2 ||w||^2 + reg_v/2 ||V||^2`` on them (a numba kernel,
``fm_kernels.batch_gradient``; the bias is not regularised) and pushes it
through the tables' update rule: ``adam`` (registered below), ``adagrad`` or
``sgd``, chosen by the ``optimizer`` key. One ``clock()`` per pass.

Keys: ``k`` (8), ``optimizer`` (``adam``), ``alpha`` (learning rate, 0.01),
``beta1`` (0.9), ``beta2`` (0.999), ``eps`` (1e-8; Adam and Adagrad),
``reg_w`` (1e-4), ``reg_v`` (1e-4), ``init_std`` (0.01: the factors start
normal with this std, the weights at 0), ``batch`` (32), plus the common keys
(``rounds``, ``staleness``, ``seed``...).

Outputs in ``output``: ``w.npy`` (``n_features + 1`` float64, the bias last),
``V.npy`` (``n_features × k``) and ``metrics.json`` with ``train_logloss``,
``test_accuracy``, ``test_logloss``, ``test_rows`` (with ``test_input``),
``seconds`` (training, slowest worker, compilation excluded),
``cross_node_bytes``, ``max_clock_lead`` and the job's shape.

    run_parasol --config algs/configs/fm.json python algs/fm.py
"""

from __future__ import annotations

import time

import numpy as np

from common import log_loss, may_replace_rule
from fm_kernels import batch_gradient, predict, take_rows

from parasol_hybrid import Option, paralg, run, update_rule
from parasol_hybrid import data as loaders
from parasol_hybrid.config import non_negative, positive


@update_rule("adam", hyper={"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, state_slots=3,
             replace=may_replace_rule("adam", __file__))
def adam(param, state, delta, hp):
    """Adam (Kingma & Ba, 2015) per coordinate; ``delta`` is the gradient.

    ``state[0]`` is the first moment ``m``, ``state[1]`` the second ``v`` and
    ``state[2]`` the number of updates ``t`` of the coordinate, so the bias
    correction counts a row's own updates (rows of a sparse model are not
    updated every step: this is "lazy" Adam; on a row updated every step it
    is the textbook algorithm).
    """
    lr, b1, b2, eps = hp[0], hp[1], hp[2], hp[3]
    for j in range(param.shape[0]):
        g = delta[j]
        t = state[2, j] + 1.0
        m = b1 * state[0, j] + (1.0 - b1) * g
        v = b2 * state[1, j] + (1.0 - b2) * g * g
        state[0, j] = m
        state[1, j] = v
        state[2, j] = t
        m_hat = m / (1.0 - b1 ** t)
        v_hat = v / (1.0 - b2 ** t)
        param[j] -= lr * m_hat / (np.sqrt(v_hat) + eps)


def _below_one(v):
    return None if 0 <= v < 1 else "must be in [0, 1)"


class FM(paralg):
    """Binary factorization machine; weights and bias in table ``w``, factors in table ``V``."""

    options = {
        "k": Option(int, 8, "number of factors per feature", check=positive),
        "optimizer": Option(str, "adam", "update rule of both tables", choices=("adam", "adagrad", "sgd")),
        "alpha": Option(float, 0.01, "learning rate (the rule's lr)", check=positive),
        "beta1": Option(float, 0.9, "adam: decay of the first moment", check=_below_one),
        "beta2": Option(float, 0.999, "adam: decay of the second moment", check=_below_one),
        "eps": Option(float, 1e-8, "adam, adagrad: added to the denominator", check=positive),
        "reg_w": Option(float, 1e-4, "L2 regularisation of the weights (not the bias)", check=non_negative),
        "reg_v": Option(float, 1e-4, "L2 regularisation of the factors", check=non_negative),
        "init_std": Option(float, 0.01, "std of the initial factors (normal, mean 0)", check=non_negative),
        "batch": Option(int, 32, "mini-batch size", check=positive),
    }

    def _hyper(self) -> dict[str, float]:
        """The hyper-parameters of the chosen rule, from the config."""
        cfg = self.cfg
        if cfg.optimizer == "adam":
            return {"lr": cfg.alpha, "beta1": cfg.beta1, "beta2": cfg.beta2, "eps": cfg.eps}
        if cfg.optimizer == "adagrad":
            return {"lr": cfg.alpha, "eps": cfg.eps}
        return {"lr": cfg.alpha}

    def solve(self) -> None:
        cfg = self.cfg
        rows = self.load(format="libsvm")  # this worker's byte range of the input
        nf = self.allreduce(int(rows.n_features), op="max")  # every worker must declare the same shapes
        n_total = self.allreduce(len(rows.labels))
        bad = self.allreduce(int(rows.bad_lines))

        hyper = self._hyper()
        w_table = self.table("w", (nf + 1, 1), "float64", rule=cfg.optimizer, hyper=hyper)
        V_table = self.table("V", (nf, cfg.k), "float64", "normal", std=cfg.init_std, rule=cfg.optimizer,
                             hyper=hyper)
        self._warm_up(w_table, V_table)

        self.sync()
        start = time.perf_counter()
        for rnd in range(self.start_round, cfg.rounds):
            train_loss = self._one_pass(rows, w_table, V_table, nf, rnd)
            self.clock()
            if (rnd + 1) % cfg.log_every == 0:
                self.progress(rnd + 1, cfg.rounds, train_logloss=train_loss / max(len(rows.labels), 1))
        self.sync()
        seconds = self.allreduce(time.perf_counter() - start, op="max")

        w = self.pull_all(w_table)[:, 0]
        V = self.pull_all(V_table)
        n = len(rows.labels)
        train_logloss = self.allreduce(log_loss(rows.labels, self._proba(w, V, rows)) * n) / max(n_total, 1)
        metrics = {"train_logloss": train_logloss, "seconds": seconds, "n_features": nf, "train_rows": n_total,
                   "bad_lines": bad, "rounds": cfg.rounds, "k": cfg.k, "optimizer": cfg.optimizer,
                   "max_clock_lead": self.allreduce(self.clocks.max_lead, op="max"),
                   "cross_node_bytes": self.cross_node_bytes()}
        if self.is_master:
            if cfg.test_input:
                test = loaders.parse_libsvm(loaders.read_all_lines(loaders.expand_inputs(cfg.test_input)),
                                            on_bad_line=cfg.on_bad_line)
                proba = self._proba(w, V, test)
                metrics["test_accuracy"] = float(np.mean((proba >= 0.5) == (test.labels == 1)))
                metrics["test_logloss"] = log_loss(test.labels, proba)
                metrics["test_rows"] = len(test.labels)
            np.save(self.output_path("w.npy"), w)
            np.save(self.output_path("V.npy"), V)
            self.write_metrics(metrics)
            self.log("done: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        self.sync()

    def _one_pass(self, rows: loaders.LibSVM, w_table, V_table, nf: int, rnd: int) -> float:
        """One pass over this worker's rows in mini-batches: pull, gradient, push. Returns the summed loss."""
        cfg = self.cfg
        n = len(rows.labels)
        order = np.random.default_rng([cfg.seed, self.worker_id, rnd]).permutation(n)  # per round: resumable
        indptr = np.empty(n + 1, dtype=np.int64)
        indices = np.empty_like(rows.indices)
        data = np.empty_like(rows.data)
        take_rows(rows.indptr, rows.indices, rows.data, order, indptr, indices, data)
        labels = rows.labels[order]
        bias = np.array([nf], dtype=np.int64)
        loss = 0.0
        for lo in range(0, n, cfg.batch):
            hi = min(lo + cfg.batch, n)
            keys, local = np.unique(indices[indptr[lo]:indptr[hi]], return_inverse=True)
            w = self.pull(w_table, np.concatenate([keys, bias]))[:, 0]   # the batch's weights, then the bias
            V = self.pull(V_table, keys)                                 # their factor rows
            gw = np.empty_like(w)
            gV = np.empty_like(V)
            loss += batch_gradient(w, V, local.astype(np.int64), data, indptr, labels, lo, hi,
                                   cfg.reg_w, cfg.reg_v, gw, gV)
            self.push(w_table, np.concatenate([keys, bias]), gw.reshape(-1, 1))
            self.push(V_table, keys, gV)
        return loss

    @staticmethod
    def _proba(w: np.ndarray, V: np.ndarray, rows: loaders.LibSVM) -> np.ndarray:
        return predict(w, V, rows.indices, rows.data, rows.indptr, np.empty(len(rows.labels)))

    def _warm_up(self, w_table, V_table) -> None:
        """Compile (or load from numba's cache) the kernels and the update rule before the clock starts."""
        k = V_table.dim
        none = np.zeros(0, np.int64)
        batch_gradient(np.zeros(1), np.zeros((0, k)), none, np.zeros(0), np.zeros(1, np.int64), np.zeros(0),
                       0, 0, 0.0, 0.0, np.zeros(1), np.zeros((0, k)))
        predict(np.zeros(1), np.zeros((0, k)), none, np.zeros(0), np.zeros(1, np.int64), np.zeros(0))
        take_rows(np.zeros(1, np.int64), none, np.zeros(0), none, np.zeros(1, np.int64), none, np.zeros(0))
        self.push(w_table, none, np.zeros((0, 1)))
        self.push(V_table, none, np.zeros((0, k)))


if __name__ == "__main__":
    run(FM)
