"""The factorization machine (algs/fm.py) and its ``adam`` update rule.

- On scikit-learn's breast-cancer split, FM (k=4, Adam) must be within 2
  accuracy points of scikit-learn's ``LogisticRegression`` fitted here, on one
  node (2 workers) and on two simulated nodes (``simulate_nodes: 2``, 2
  servers), where bytes must cross between the nodes.
- On data whose label is the sign of ``x0 * x1`` (generated here with a fixed
  seed), which no linear model separates, FM must be right at least 90 % of
  the time while ``LogisticRegression`` stays near chance.
- The ``adam`` rule, applied with ``Rule.apply`` to a toy striped table, must
  equal Adam written in numpy, per row (a row's step count is its own).
- The gradient kernel must match finite differences of the loss it returns.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid import launcher
from parasol_hybrid.datasets import breast_cancer, write_libsvm
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
FM = REPO / "algs" / "fm.py"
pytestmark = pytest.mark.timeout(300)


def _run(tmp_path: Path, **keys) -> tuple[dict, np.ndarray, np.ndarray]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    cfg = write_config(tmp_path, output=str(out), **keys)
    done = run_launcher(["--config", str(cfg), "--quiet", "python", str(FM)], timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), np.load(out / "w.npy"), np.load(out / "V.npy")


def _kernels():
    if str(REPO / "algs") not in sys.path:  # fm_kernels imports algs/common.py, as when algs/fm.py runs
        sys.path.insert(0, str(REPO / "algs"))
    return importlib.import_module("fm_kernels")


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression

    train, test = breast_cancer(tmp_path_factory.mktemp("bc"))
    X, y = load_svmlight_file(str(train), n_features=30)
    Xt, yt = load_svmlight_file(str(test), n_features=30)
    return train, test, LogisticRegression(max_iter=5000).fit(X, y).score(Xt, yt)


@pytest.mark.parametrize("nodes", [1, 2])
def test_fm_matches_logistic_regression(tmp_path, cancer, nodes):
    train, test, accuracy = cancer
    metrics, w, V = _run(tmp_path, nworker=2, nserver=nodes, simulate_nodes=nodes, input=str(train),
                         test_input=str(test), rounds=20, k=4, alpha=0.01, reg_w=0.003, reg_v=0.03, batch=16)
    assert abs(metrics["test_accuracy"] - accuracy) <= 0.02, (metrics, accuracy)
    assert metrics["test_logloss"] < 0.15, metrics
    assert metrics["train_logloss"] < 0.15, metrics
    assert w.shape == (31,) and V.shape == (30, 4) and np.isfinite(w).all() and np.isfinite(V).all()
    assert metrics["nodes"] == nodes and (metrics["cross_node_bytes"] > 0) == (nodes > 1), metrics
    assert metrics["optimizer"] == "adam" and metrics["max_clock_lead"] == 0  # BSP


def test_fm_learns_an_interaction_that_lr_cannot(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X, Xt = rng.normal(size=(2000, 8)), rng.normal(size=(500, 8))
    y, yt = (X[:, 0] * X[:, 1] > 0).astype(int), (Xt[:, 0] * Xt[:, 1] > 0).astype(int)
    train, test = write_libsvm(tmp_path / "train.svm", X, y), write_libsvm(tmp_path / "test.svm", Xt, yt)
    linear = LogisticRegression().fit(X, y).score(Xt, yt)
    metrics, _, V = _run(tmp_path, nworker=2, nserver=1, input=str(train), test_input=str(test), rounds=10,
                         k=2, alpha=0.02, batch=32)
    assert linear < 0.65, linear
    assert metrics["test_accuracy"] >= 0.9, metrics
    pairs = V @ V.T  # <v_i, v_j>: the weight of x_i * x_j
    others = np.abs(pairs[np.triu_indices(8, 1)][1:])  # every pair but (0, 1)
    assert pairs[0, 1] > 10 * others.max(), pairs  # the interaction it found is x0 * x1


def test_unknown_optimizer_is_a_config_error(tmp_path, cancer):
    train, _, _ = cancer
    cfg = write_config(tmp_path, nworker=2, nserver=1, input=str(train), optimizer="rmsprop")
    done = run_launcher(["--config", str(cfg), "python", str(FM)], timeout=60)
    assert done.returncode == 2
    assert "config key 'optimizer' must be one of 'adam', 'adagrad', 'sgd', got 'rmsprop'" in done.stderr


def _numpy_adam(param, grads, lr, beta1, beta2, eps):
    """Adam (Kingma & Ba, 2015, Algorithm 1) from ``param`` over a sequence of gradient vectors."""
    w, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return w


def test_adam_rule_is_adam():
    launcher.algorithm_options(FM)  # imports algs/fm.py without MPI: registers the rule
    launcher.algorithm_options(FM)  # importing it again is fine
    from parasol_hybrid.tables.rules import get_rule

    rule = get_rule("adam")
    assert rule.state_slots == 3 and list(rule.hyper) == ["lr", "beta1", "beta2", "eps"]
    rng = np.random.default_rng(0)
    rows, dim, S = 7, 4, 3  # row k is shards[k % S][k // S]
    full = rng.normal(size=(rows, dim))
    shards = tuple(full[s::S].copy() for s in range(S))
    states = tuple(np.zeros((len(sh), 3, dim)) for sh in shards)
    hyper = {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}
    hp = rule.hyper_array(hyper)
    grads = {5: [], 2: []}  # row 5 in every push, row 2 in every third: its bias correction counts its own steps
    for step in range(60):
        keys = [5, 2] if step % 3 == 0 else [5]
        deltas = rng.normal(size=(len(keys), dim)) + 0.3
        for key, g in zip(keys, deltas):
            grads[key].append(g)
        assert rule.apply(shards, states, rows, np.array(keys, dtype=np.int64), deltas, hp) == -1
    for key, gs in grads.items():
        np.testing.assert_allclose(shards[key % S][key // S], _numpy_adam(full[key], gs, **hyper),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(states[key % S][key // S][2], len(gs))
    for key in set(range(rows)) - set(grads):
        np.testing.assert_array_equal(shards[key % S][key // S], full[key])  # untouched rows stay as they were
    assert rule.apply(shards, states, rows, np.array([7], dtype=np.int64), np.zeros((1, dim)), hp) == 0


def test_batch_gradient_matches_finite_differences():
    K = _kernels()
    rng = np.random.default_rng(1)
    m, k, n = 5, 3, 6  # 5 distinct features in the batch, 3 factors, 6 rows
    indptr = np.array([0, 2, 5, 5, 8, 9, 12], dtype=np.int64)
    local = rng.integers(0, m, size=indptr[-1]).astype(np.int64)
    data = rng.normal(size=indptr[-1])
    labels = (rng.random(n) < 0.5).astype(np.float64)
    w, V = rng.normal(size=m + 1), 0.5 * rng.normal(size=(m, k))
    reg_w, reg_v = 0.1, 0.2

    def objective(w, V):
        gw, gV = np.empty_like(w), np.empty_like(V)
        loss = K.batch_gradient(w, V, local, data, indptr, labels, 0, n, reg_w, reg_v, gw, gV)
        return loss / n + 0.5 * reg_w * w[:m] @ w[:m] + 0.5 * reg_v * np.sum(V * V), gw, gV

    _, gw, gV = objective(w, V)
    h = 1e-6
    for a in range(m + 1):
        e = np.zeros_like(w)
        e[a] = h
        assert abs((objective(w + e, V)[0] - objective(w - e, V)[0]) / (2 * h) - gw[a]) < 1e-7
    for a in range(m):
        for f in range(k):
            e = np.zeros_like(V)
            e[a, f] = h
            assert abs((objective(w, V + e)[0] - objective(w, V - e)[0]) / (2 * h) - gV[a, f]) < 1e-7
    # predict() on the same rows (features = local positions) gives the probabilities behind the loss
    proba = K.predict(w, V, local, data, indptr, np.empty(n))
    loss = K.batch_gradient(w, V, local, data, indptr, labels, 0, n, 0.0, 0.0, np.empty_like(w), np.empty_like(V))
    assert abs(K.log_loss(labels, proba) - loss / n) < 1e-12
