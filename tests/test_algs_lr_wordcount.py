"""Word count and logistic regression from the command line, checked against exact references.

Word count must equal collections.Counter over the same files for any number
of workers; logistic regression must be within 1 accuracy point of
scikit-learn's LogisticRegression on the same split.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid.datasets import breast_cancer, gensim_corpus
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)


def _run(tmp_path, entry: str, **keys) -> dict:
    out = tmp_path / "out"
    cfg = write_config(tmp_path, output=str(out), **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / entry)], timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "metrics.json").read_text())


def _expected_counts(files) -> Counter:
    c = Counter()
    for f in files:
        for line in Path(f).read_text(encoding="utf-8", errors="replace").splitlines():
            c.update(re.findall(r"[-a-zA-Z0-9_]+", line))
    return c


@pytest.mark.parametrize("nworker", [1, 3])
def test_wordcount_equals_counter(tmp_path, nworker):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lee.txt").write_text(gensim_corpus("lee_background.cor").read_text())
    # a second file with edge cases: hyphens, underscores, case, non-ASCII, no final newline
    (corpus / "edge.txt").write_text("Foo foo-bar_baz FOO\n\nnaïve café x--y __\r\nend")
    metrics = _run(tmp_path, "wordcount.py", nworker=nworker, nserver=1, input=str(corpus), topk=0)
    expected = _expected_counts(sorted(corpus.iterdir()))
    assert metrics["total_words"] == sum(expected.values())
    assert metrics["distinct_words"] == len(expected)
    got = [line.split("\t") for line in (tmp_path / "out" / "topk.tsv").read_text().splitlines()]
    want = sorted(expected.items(), key=lambda wc: (-wc[1], wc[0]))
    assert [(w, int(c)) for w, c in got] == want


def test_wordcount_topk_with_two_servers(tmp_path):
    corpus = gensim_corpus("head500.noblanks.cor")
    metrics = _run(tmp_path, "wordcount.py", nworker=2, nserver=2, input=str(corpus), topk=25)
    expected = _expected_counts([corpus])
    got = [line.split("\t") for line in (tmp_path / "out" / "topk.tsv").read_text().splitlines()]
    assert [(w, int(c)) for w, c in got] == sorted(expected.items(), key=lambda wc: (-wc[1], wc[0]))[:25]
    assert metrics["total_words"] == sum(expected.values())


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    return breast_cancer(tmp_path_factory.mktemp("bc"))


@pytest.fixture(scope="module")
def sklearn_reference(cancer):
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    train, test = cancer
    X, y = load_svmlight_file(str(train), n_features=30)
    Xt, yt = load_svmlight_file(str(test), n_features=30)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    return model.score(Xt, yt), log_loss(yt, model.predict_proba(Xt))


@pytest.mark.parametrize("nworker", [1, 3])
def test_lr_matches_sklearn(tmp_path, cancer, sklearn_reference, nworker):
    train, test = cancer
    metrics = _run(tmp_path, "lr.py", nworker=nworker, nserver=1, input=str(train), test_input=str(test),
                   rounds=30, alpha=0.1, beta=0.001, batch=16)
    accuracy, logloss = sklearn_reference
    assert abs(metrics["test_accuracy"] - accuracy) <= 0.01 + 1e-9, (metrics, accuracy)
    assert metrics["test_logloss"] < 0.2, metrics
    weights = np.load(tmp_path / "out" / "weights.npy")
    assert weights.shape == (31,) and np.isfinite(weights).all()


def test_lr_labels_minus_one_plus_one(tmp_path, cancer):
    train, test = cancer
    pm = tmp_path / "pm.svm"
    pm.write_text("".join(("-1" if line.startswith("0") else "+1") + line[1:]
                          for line in Path(train).read_text().splitlines(keepends=True)))
    metrics = _run(tmp_path, "lr.py", nworker=2, nserver=1, input=str(pm), test_input=str(test), rounds=10)
    assert metrics["test_accuracy"] > 0.9
