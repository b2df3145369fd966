"""Logistic regression's other methods (algs/lr.py ``method``): full-batch L-BFGS and FTRL-proximal.

- ``lbfgs`` minimises mean log-loss + beta/2 ||w||^2 (bias not penalised),
  which is scikit-learn's ``LogisticRegression(C=1/(beta*n))`` objective
  divided by ``C*n``: it must reach scikit-learn's test accuracy (within 0.1
  point) and test log-loss (within 1 %), fitted here on the same split.
- ``ftrl`` with an L1 penalty must give fewer non-zero weights than plain SGD
  with accuracy within 2 points of scikit-learn's and of SGD's.
- The ``ftrl`` update rule itself is compared with FTRL-proximal written in numpy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid import launcher
from parasol_hybrid.datasets import breast_cancer
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
LR = REPO / "algs" / "lr.py"
pytestmark = pytest.mark.timeout(300)


def _run(tmp_path: Path, **keys) -> tuple[dict, np.ndarray]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    cfg = write_config(tmp_path, output=str(out), **keys)
    done = run_launcher(["--config", str(cfg), "python", str(LR)], timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text()), np.load(out / "weights.npy")


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    from sklearn.datasets import load_svmlight_file

    train, test = breast_cancer(tmp_path_factory.mktemp("bc"))
    X, y = load_svmlight_file(str(train), n_features=30)
    Xt, yt = load_svmlight_file(str(test), n_features=30)
    return train, test, X.toarray(), y, Xt.toarray(), yt


def _sklearn(X, y, Xt, yt, beta: float):
    """scikit-learn's model for our ``beta``: C = 1 / (beta * n); its accuracy, log-loss, objective, weights."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    model = LogisticRegression(C=1.0 / (beta * len(y)), tol=1e-10, max_iter=10_000).fit(X, y)
    w = np.append(model.coef_[0], model.intercept_[0])
    return model.score(Xt, yt), log_loss(yt, model.predict_proba(Xt)), _objective(X, y, w, beta), w


def _objective(X, y, w, beta: float) -> float:
    """Mean log-loss + beta/2 ||w||^2 over the features (the bias, last, is not penalised)."""
    z = X @ w[:-1] + w[-1]
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * beta * w[:-1] @ w[:-1])


@pytest.mark.parametrize("nworker, nodes", [(2, 1), (2, 2), (3, 1)])
def test_lbfgs_matches_sklearn(tmp_path, cancer, nworker, nodes):
    train, test, X, y, Xt, yt = cancer
    beta = 1.0 / len(y)  # scikit-learn's default C = 1
    accuracy, logloss, objective, w_ref = _sklearn(X, y, Xt, yt, beta)
    metrics, w = _run(tmp_path, nworker=nworker, nserver=nodes, simulate_nodes=nodes, input=str(train),
                      test_input=str(test), method="lbfgs", beta=beta, tol=1e-8, rounds=200, log_every=10)
    assert metrics["converged"] and metrics["gradient_max"] <= 1e-8, metrics
    assert abs(metrics["test_accuracy"] - accuracy) <= 0.001, (metrics, accuracy)
    assert abs(metrics["test_logloss"] - logloss) <= 0.01 * logloss, (metrics, logloss)
    ours = _objective(X, y, w, beta)
    assert abs(metrics["objective"] - ours) <= 1e-9 * ours  # the reported objective is that of weights.npy
    assert ours <= objective * (1 + 1e-8), (ours, objective)
    assert np.max(np.abs(w - w_ref)) <= 1e-4 * np.max(np.abs(w_ref)), (w, w_ref)
    assert metrics["nodes"] == nodes and (metrics["cross_node_bytes"] > 0) == (nodes > 1)


def test_ftrl_is_sparser_than_sgd_and_as_accurate(tmp_path, cancer):
    train, test, X, y, Xt, yt = cancer
    common = dict(nworker=2, input=str(train), test_input=str(test), rounds=30, beta=0.001, batch=16)
    sgd, w_sgd = _run(tmp_path / "sgd", nserver=1, **common)
    ftrl, w_ftrl = _run(tmp_path / "ftrl", nserver=2, simulate_nodes=2, method="ftrl", alpha=0.5, l1=3.0,
                        ftrl_beta=1.0, **common)
    accuracy, _, _, _ = _sklearn(X, y, Xt, yt, 0.001)
    assert sgd["nonzeros"] == np.count_nonzero(w_sgd[:-1]) == 30
    assert ftrl["nonzeros"] == np.count_nonzero(w_ftrl[:-1])
    assert ftrl["nonzeros"] <= sgd["nonzeros"] - 4, (ftrl, sgd)  # L1 zeroes several weights, SGD none
    assert abs(ftrl["test_accuracy"] - accuracy) <= 0.02, (ftrl, accuracy)
    assert abs(ftrl["test_accuracy"] - sgd["test_accuracy"]) <= 0.02, (ftrl, sgd)
    assert ftrl["test_logloss"] < 0.2, ftrl
    assert ftrl["nodes"] == 2 and ftrl["cross_node_bytes"] > 0


def _numpy_ftrl(grads: np.ndarray, alpha: float, beta: float, l1: float, l2: float) -> np.ndarray:
    """FTRL-proximal (McMahan et al. 2013, Algorithm 1) over a sequence of gradient vectors."""
    d = grads.shape[1]
    z, n, w = np.zeros(d), np.zeros(d), np.zeros(d)
    for g in grads:
        sigma = (np.sqrt(n + g * g) - np.sqrt(n)) / alpha
        z += g - sigma * w
        n += g * g
        w = np.where(np.abs(z) <= l1, 0.0, -(z - np.sign(z) * l1) / ((beta + np.sqrt(n)) / alpha + l2))
    return w


def test_ftrl_rule_is_ftrl_proximal():
    launcher.algorithm_options(LR)  # imports algs/lr.py without MPI: registers the rule
    launcher.algorithm_options(LR)  # importing it again is fine
    from parasol_hybrid.tables.rules import get_rule

    rule = get_rule("ftrl")
    assert rule.state_slots == 2
    rng = np.random.default_rng(0)
    grads = 0.1 * rng.normal(size=(200, 6)) + np.array([0.0, 0.05, -0.3, 1.0, 0.0, -0.002])
    hyper = {"alpha": 0.3, "beta": 1.0, "l1": 2.0, "l2": 0.5}
    rows, dim = 5, 6  # one table row of 6 weights at key 3, on 2 shards: shard 1, local row 1
    shards = (np.zeros((3, dim)), np.zeros((2, dim)))
    states = (np.zeros((3, 2, dim)), np.zeros((2, 2, dim)))
    keys = np.array([3], dtype=np.int64)
    hp = rule.hyper_array(hyper)
    for g in grads:
        assert rule.apply(shards, states, rows, keys, g.reshape(1, -1), hp) == -1
    expected = _numpy_ftrl(grads, **hyper)
    np.testing.assert_allclose(shards[1][1], expected, rtol=1e-12, atol=1e-15)
    assert (expected == 0).any() and (expected != 0).any()  # both branches of the rule ran
    assert not shards[0].any() and not shards[1][0].any()
