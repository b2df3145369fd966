"""Cluster mode: jobs split over simulated nodes (``simulate_nodes``) that share no memory and talk only
over ZeroMQ, checked against the same job on one node and against exact references.

Each test runs ``python -m parasol_hybrid --config cfg python <script>`` and checks what the job's master
wrote, the exit code, and that the job left no process and no /dev/shm name behind. The job scripts are
``algs/*.py`` and ``tests/jobs/cluster_*.py``; what the test jobs push is in ``tests/jobs/cluster_data.py``
(pure numpy, so the expected tables are recomputed here).

Layout of the 4-worker jobs (6 ranks, ``simulate_nodes: 2``, ``nserver: 2``): node 0 = workers 0, 1 and
server 0 (shard 0); node 1 = workers 2, 3 and server 1 (shard 1). Row ``k`` lives in shard ``k % 2``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid import launcher
from parasol_hybrid.datasets import breast_cancer, gensim_corpus, movielens_100k, split_ratings
from parasol_hybrid.tables.sparse import hash_strings
from parasol_hybrid.testing import run_launcher, shm_leftovers, write_config

REPO = Path(__file__).resolve().parent.parent
JOBS = Path(__file__).resolve().parent / "jobs"
if str(JOBS) not in sys.path:
    sys.path.insert(0, str(JOBS))

import cluster_data as cd  # noqa: E402

pytestmark = pytest.mark.timeout(150)

JOB_TIMEOUT = 90.0
TWO_NODES = {"simulate_nodes": 2, "nserver": 2}
ONE_NODE = {"nserver": 1}


def run_job(tmp_path: Path, name: str, script: Path, timeout: float = JOB_TIMEOUT, **config) -> Path:
    """Run ``script`` with ``config`` (output in tmp_path/name/out); check it succeeded and cleaned up.

    Returns the output folder.
    """
    where = tmp_path / name
    where.mkdir(parents=True, exist_ok=True)
    out = where / "out"
    cfg = write_config(where / "cfg.json", output=str(out), **config)
    done = run_launcher(["--config", str(cfg), "python", str(script)], timeout=timeout, cwd=where)
    m = re.search(r"run_parasol: job ([0-9a-f]+):", done.stderr)
    assert m, f"the launcher did not say which job it started:\n{done.stderr}"
    job_id = m.group(1)
    assert done.returncode == 0, f"{name}: job failed with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert launcher.job_pids(job_id) == [], f"{name}: processes of the job are still running"
    assert shm_leftovers(job_id) == [], f"{name}: the job left shared-memory names"
    swept = re.search(rf"removed \d+ segment\(s\) of job {job_id}", done.stderr)
    assert swept is None, f"{name}: the job left segments that only the launcher's sweep removed: {swept.group(0)}"
    return out


def read_json(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


# ----------------------------------------------------------------- the algorithms, one node and two


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    return split_ratings(movielens_100k(), tmp_path_factory.mktemp("ml"))


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    return breast_cancer(tmp_path_factory.mktemp("bc"))


def test_mf_two_nodes_matches_one_node(tmp_path, movielens):
    train, test = movielens
    common = dict(nworker=2, input=str(train), test_input=str(test), rounds=20, k=16, alpha=0.01, beta=0.05,
                  staleness=0, seed=0)
    two = read_json(run_job(tmp_path, "two", REPO / "algs" / "mf.py", **common, **TWO_NODES), "metrics.json")
    one = read_json(run_job(tmp_path, "one", REPO / "algs" / "mf.py", **common, **ONE_NODE), "metrics.json")
    assert two["nodes"] == 2 and one["nodes"] == 1
    assert two["cross_node_bytes"] > 0, "the 2-node job sent nothing between its nodes"
    assert one["cross_node_bytes"] == 0
    assert two["max_clock_lead"] == 0, "BSP: a worker ran ahead of the global view"
    assert two["test_rmse"] <= 0.93, two
    assert one["test_rmse"] <= 0.93, one
    assert abs(two["test_rmse"] - one["test_rmse"]) <= 0.01 * one["test_rmse"], (
        f"2 nodes test_rmse {two['test_rmse']:.4f} vs 1 node {one['test_rmse']:.4f}")


def test_lr_two_nodes_matches_one_node(tmp_path, cancer):
    train, test = cancer
    common = dict(nworker=2, input=str(train), test_input=str(test), rounds=30, alpha=0.1, beta=0.001, batch=16,
                  staleness=0, seed=0)
    two = read_json(run_job(tmp_path, "two", REPO / "algs" / "lr.py", **common, **TWO_NODES), "metrics.json")
    one = read_json(run_job(tmp_path, "one", REPO / "algs" / "lr.py", **common, **ONE_NODE), "metrics.json")
    assert two["nodes"] == 2 and one["nodes"] == 1
    assert two["cross_node_bytes"] > 0 and one["cross_node_bytes"] == 0
    assert one["test_accuracy"] > 0.9 and two["test_accuracy"] > 0.9, (one, two)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.01 + 1e-9, (
        f"2 nodes accuracy {two['test_accuracy']:.4f} vs 1 node {one['test_accuracy']:.4f}")
    assert abs(two["test_logloss"] - one["test_logloss"]) < 0.02, (one, two)


def test_wordcount_two_nodes_equals_counter(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lee.txt").write_text(gensim_corpus("lee_background.cor").read_text())
    (corpus / "edge.txt").write_text("Foo foo-bar_baz FOO\n\nnaïve café x--y __\r\nend")
    out = run_job(tmp_path, "wc", REPO / "algs" / "wordcount.py", nworker=2, input=str(corpus), topk=0,
                  **TWO_NODES)
    metrics = read_json(out, "metrics.json")
    expected = Counter()
    for f in sorted(corpus.iterdir()):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            expected.update(re.findall(r"[-a-zA-Z0-9_]+", line))
    assert metrics["nodes"] == 2 and metrics["cross_node_bytes"] > 0
    assert metrics["total_words"] == sum(expected.values())
    assert metrics["distinct_words"] == len(expected)
    got = [line.split("\t") for line in (out / "topk.tsv").read_text().splitlines()]
    assert [(w, int(c)) for w, c in got] == sorted(expected.items(), key=lambda wc: (-wc[1], wc[0]))


# ----------------------------------------------------------------- exact tables across nodes

EXACT_STEPS = 6
EXACT_WORKERS = 4


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    """One 4-worker, 2-node run of cluster_exact.py (SSP, s = 2: flushes and refreshes overlap pushes)."""
    out = run_job(tmp_path_factory.mktemp("exact"), "exact", JOBS / "cluster_exact.py", nworker=EXACT_WORKERS,
                  staleness=2, steps=EXACT_STEPS, **TWO_NODES)
    res = read_json(out, "exact.json")
    assert [r["worker"] for r in res["workers"]] == list(range(EXACT_WORKERS))
    assert [r["node"] for r in res["workers"]] == [0, 0, 1, 1]
    assert res["cross_node_bytes"] > 0
    return res


def test_int64_pushes_are_exact_across_nodes(exact_run):
    expected = np.zeros((cd.INT_ROWS, cd.INT_DIM), dtype=np.int64)
    for w in range(EXACT_WORKERS):
        for step in range(EXACT_STEPS):
            keys, counts = cd.int_increments(w, step)
            np.add.at(expected, keys, counts)
    for r in exact_run["workers"]:
        np.testing.assert_array_equal(np.array(r["ints"]), expected,
                                      err_msg=f"worker {r['worker']} (node {r['node']}): int64 sums are off")


def test_float64_exact_table_is_exact_across_nodes(exact_run):
    expected = np.zeros((cd.FLOAT_ROWS, cd.FLOAT_DIM))
    for w in range(EXACT_WORKERS):
        for step in range(EXACT_STEPS):
            keys, deltas = cd.float_increments(w, step)
            np.add.at(expected, keys, deltas)
    for r in exact_run["workers"]:
        np.testing.assert_array_equal(np.array(r["floats"]), expected,
                                      err_msg=f"worker {r['worker']} (node {r['node']}): float64 sums are off")


def test_sparse_table_across_nodes(exact_run):
    totals: dict[str, np.ndarray] = {}
    for w in range(EXACT_WORKERS):
        for step in range(EXACT_STEPS):
            words, counts = cd.word_increments(w, step)
            for word, c in zip(words, counts):
                totals[word] = totals.get(word, np.zeros(2, np.int64)) + c
    assert set(cd.ODD_WORDS) <= set(totals)
    vocab = cd.words()
    want_pull = np.array([totals.get(word, np.zeros(2, np.int64)) for word in vocab])
    keys = hash_strings(list(totals))
    assert len(set(keys.tolist())) == len(totals)
    want_items = sorted([int(k), totals[word].tolist()] for k, word in zip(keys, totals))
    assert {int(k) % 2 for k in keys} == {0, 1}, "the words should land in both nodes' shards"
    for r in exact_run["workers"]:
        who = f"worker {r['worker']} (node {r['node']})"
        np.testing.assert_array_equal(np.array(r["sparse_pull"]), want_pull, err_msg=f"{who}: pull")
        assert r["sparse_items"] == want_items, f"{who}: items() differ"
        assert r["sparse_len"] == len(totals), f"{who}: len() {r['sparse_len']} != {len(totals)}"


# ----------------------------------------------------------------- staleness across nodes

CLOCKS = 10
SLOW = 3  # on node 1


def run_staleness(tmp_path, staleness: int) -> dict:
    out = run_job(tmp_path, f"s{staleness}", JOBS / "cluster_staleness.py", nworker=4, staleness=staleness,
                  clocks=CLOCKS, slow_worker=SLOW, slow_sleep=0.05, **TWO_NODES)
    res = read_json(out, "staleness.json")
    assert res["staleness"] == staleness and res["nnodes"] == 2
    assert [r["node"] for r in res["workers"]] == [0, 0, 1, 1]
    return res


@pytest.mark.parametrize("staleness", [2])  # 0 and 2 also in tests/test_cluster_inprocess.py
def test_staleness_bound_and_reads_across_nodes(tmp_path, staleness):
    res = run_staleness(tmp_path, staleness)
    for r in res["workers"]:
        w = r["worker"]
        assert r["returned"] == list(range(1, CLOCKS + 1))
        assert len(r["leads"]) == CLOCKS and len(r["seen"]) == CLOCKS
        for c, (lead, seen) in enumerate(zip(r["leads"], r["seen"]), start=1):
            assert 0 <= lead <= staleness, f"worker {w} after clock {c}: {lead} clocks ahead of the global view"
            for v, value in enumerate(seen):
                assert value >= c - staleness, (
                    f"worker {w} (node {r['node']}) after clock {c} read {value} in row {v}: the updates of "
                    f"worker {v} up to clock {c - staleness} should be visible (staleness {staleness})")
        assert r["final"] == [float(CLOCKS)] * 4, f"worker {w} after sync(): {r['final']}"
        assert r["max_lead"] <= staleness
    if staleness == 0:
        assert all(lead == 0 for r in res["workers"] for lead in r["leads"])
    else:
        fast = [lead for r in res["workers"] if r["worker"] != SLOW for lead in r["leads"]]
        assert max(fast) > 0, f"with s = {staleness} no fast worker ever got ahead: {fast}"


# not collected here: tests/test_cluster_inprocess.py runs this on an in-process job
def check_asp_across_nodes_finishes_with_exact_sums_after_sync(tmp_path):
    res = run_staleness(tmp_path, -1)
    leads = [lead for r in res["workers"] if r["worker"] != SLOW for lead in r["leads"]]
    assert max(leads) > 2, f"with ASP the fast workers should race ahead: {leads}"
    for r in res["workers"]:
        # sync() is a clock with staleness 0 even under ASP: every node's updates are in every cache
        assert r["final"] == [float(CLOCKS)] * 4, (
            f"worker {r['worker']} (node {r['node']}) read {r['final']} after sync(), want {CLOCKS} in every row")


# ----------------------------------------------------------------- a stateful rule on remote rows

ADA_STEPS = 6


def adagrad_reference(nworker: int, steps: int, shared_lr: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``ada`` and ``ada_lr`` tables that cluster_adagrad.py must end with (one process, numpy)."""
    def apply(P, G, rows, grads, lr):
        for r, g in zip(rows, grads):
            G[r] += g * g
            P[r] -= lr * g / (np.sqrt(G[r]) + cd.ADA_EPS)

    ada, ada_g = np.full((cd.ADA_ROWS, cd.ADA_DIM), cd.ADA_INIT), np.zeros((cd.ADA_ROWS, cd.ADA_DIM))
    lr_t, lr_g = ada.copy(), ada_g.copy()
    target, shared = cd.targets(), cd.shared_rows(nworker)
    for step in range(steps):
        for w in range(nworker):
            mine = cd.own_rows(w, nworker)
            apply(ada, ada_g, mine, ada[mine] - target[mine], cd.ADA_LR)
        for _ in range(nworker):
            apply(ada, ada_g, shared, cd.shared_gradient(shared, step), cd.ADA_LR)
            apply(lr_t, lr_g, shared, cd.shared_gradient(shared, step), shared_lr)
    return ada, lr_t


@pytest.fixture(scope="module")
def adagrad_runs(tmp_path_factory):
    """cluster_adagrad.py with 1 worker on each of 2 nodes, and with both workers on 1 node (unlocked tables)."""
    where = tmp_path_factory.mktemp("adagrad")
    runs = {}
    for name, layout in (("two", TWO_NODES), ("one", ONE_NODE)):
        out = run_job(where, name, JOBS / "cluster_adagrad.py", nworker=2, staleness=0, steps=ADA_STEPS,
                      exact=False, **layout)
        runs[name] = read_json(out, "adagrad.json")
    assert runs["two"]["nnodes"] == 2 and [r["node"] for r in runs["two"]["workers"]] == [0, 1]
    assert runs["one"]["nnodes"] == 1
    return runs


# not collected here: tests/test_cluster_inprocess.py runs this on an in-process job
def check_adagrad_on_remote_rows_matches_one_node(adagrad_runs):
    want, _ = adagrad_reference(2, ADA_STEPS, cd.ADA_LR_OVERRIDE)
    for own in (cd.own_rows(0, 2), cd.own_rows(1, 2)):
        assert set(own % 2) == {0, 1}, "each worker's rows should be in both nodes' shards"
    one = np.array(adagrad_runs["one"]["workers"][0]["ada"])
    np.testing.assert_allclose(one, want, rtol=0, atol=1e-9, err_msg="1 node vs the numpy reference")
    for r in adagrad_runs["two"]["workers"]:
        got = np.array(r["ada"])
        np.testing.assert_allclose(got, one, rtol=0, atol=1e-9,
                                   err_msg=f"2 nodes (seen by worker {r['worker']}) vs 1 node")
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg="2 nodes vs the numpy reference")


# not collected here: tests/test_cluster_inprocess.py runs this on an in-process job
def check_adagrad_hyper_override_applies_to_remote_rows(adagrad_runs):
    """``push(t, keys, g, lr=...)`` on a stateful rule: the override must hold for rows forwarded to their owner."""
    _, want = adagrad_reference(2, ADA_STEPS, cd.ADA_LR_OVERRIDE)
    rows = cd.shared_rows(2)
    one = np.array(adagrad_runs["one"]["workers"][0]["ada_lr"])
    np.testing.assert_allclose(one[rows], want[rows], rtol=0, atol=1e-9, err_msg="1 node vs the numpy reference")
    for r in adagrad_runs["two"]["workers"]:
        np.testing.assert_allclose(np.array(r["ada_lr"])[rows], one[rows], rtol=0, atol=1e-9,
                                   err_msg=f"2 nodes (seen by worker {r['worker']}) vs 1 node: lr override lost")


def test_adagrad_exact_table_across_nodes(tmp_path):
    """An exact (locked) table with a stateful rule, pushed from both nodes at once, must not deadlock."""
    out = run_job(tmp_path, "exact", JOBS / "cluster_adagrad.py", timeout=40, nworker=2, staleness=0,
                  steps=ADA_STEPS, exact=True, **TWO_NODES)
    want, _ = adagrad_reference(2, ADA_STEPS, cd.ADA_LR_OVERRIDE)
    for r in read_json(out, "adagrad.json")["workers"]:
        np.testing.assert_allclose(np.array(r["ada"]), want, rtol=0, atol=1e-9)
