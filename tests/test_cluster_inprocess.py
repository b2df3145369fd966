"""Cluster mode in one process (``tests/inprocess.py``): the pushes, flushes, refreshes, staleness waits and
remote rules of ``tests/test_cluster.py``'s jobs, driven through the real servers, agents and tables.

The jobs ``tests/jobs/cluster_exact.py``, ``cluster_staleness.py`` and ``cluster_adagrad.py`` are replayed
here on an :class:`InProcessJob` of the same layout (node 0 = workers 0, 1 and server 0; node 1 = workers 2,
3 and server 1), each worker in a thread of its own, and their records handed to ``test_cluster``'s own
checks (its fixtures and ``run_staleness`` are replaced), so both check the same things. Also here: the
fixture's own checks (a socket left open, a server loop that failed) can fail.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

import test_cluster
from inprocess import InProcessJob
from parasol_hybrid.errors import JobError
from parasol_hybrid.tables.sparse import hash_strings

sys.path.insert(0, str(Path(__file__).resolve().parent / "jobs"))
import cluster_data as cd  # noqa: E402

pytestmark = pytest.mark.timeout(120)
TWO_NODES = {"nserver": 2, "nodes": 2}


def cross_node_bytes(job: InProcessJob) -> int:
    return int(sum(int(rt.clocks.sent_bytes[rt.rank]) for rt in job.runtimes))


# ----------------------------------------------------------------- exact tables across nodes


@pytest.fixture(scope="module")
def exact_run():
    """``cluster_exact.py``'s record: 4 workers, 2 nodes, SSP s = 2 (flushes and refreshes overlap pushes)."""
    nworker = test_cluster.EXACT_WORKERS
    with InProcessJob(nworker=nworker, staleness=2, **TWO_NODES) as job:
        ints = job.table("ints", (cd.INT_ROWS, cd.INT_DIM), "int64")
        floats = job.table("floats", (cd.FLOAT_ROWS, cd.FLOAT_DIM), "float64", exact=True)
        sparse = job.sparse_table("words", capacity=len(cd.words()) + 10, dim=2, dtype="int64")

        def solve(w):
            for step in range(test_cluster.EXACT_STEPS):
                ints[w.id].push(*cd.int_increments(w.id, step))
                floats[w.id].push(*cd.float_increments(w.id, step))
                ws, counts = cd.word_increments(w.id, step)
                sparse[w.id].push(hash_strings(ws), counts)
                w.tick()
        job.each_worker(solve)
        job.sync()
        records = []
        for w in job.workers:
            keys, values = sparse[w.id].items()
            records.append({"worker": w.id, "node": w.rt.node, "ints": ints[w.id].pull_all().tolist(),
                            "floats": floats[w.id].pull_all().tolist(),
                            "sparse_pull": sparse[w.id].pull(hash_strings(cd.words())).tolist(),
                            "sparse_items": sorted([int(k), [int(x) for x in v]] for k, v in zip(keys, values)),
                            "sparse_len": len(sparse[w.id])})
        res = {"workers": records, "cross_node_bytes": cross_node_bytes(job)}
    assert [r["node"] for r in res["workers"]] == [0, 0, 1, 1]
    assert res["cross_node_bytes"] > 0
    return res


def test_int64_pushes_are_exact_across_nodes(exact_run):
    test_cluster.test_int64_pushes_are_exact_across_nodes(exact_run)


def test_float64_exact_table_is_exact_across_nodes(exact_run):
    test_cluster.test_float64_exact_table_is_exact_across_nodes(exact_run)


def test_sparse_table_across_nodes(exact_run):
    test_cluster.test_sparse_table_across_nodes(exact_run)


# ----------------------------------------------------------------- staleness across nodes


def run_staleness_inprocess(tmp_path, staleness: int) -> dict:
    """``cluster_staleness.py``'s record: worker 3 (node 1) sleeps before each clock."""
    clocks, slow, nworker = test_cluster.CLOCKS, test_cluster.SLOW, 4
    with InProcessJob(nworker=nworker, staleness=staleness, **TWO_NODES) as job:
        progress = job.table("progress", (nworker, 1), "float64", exact=True)
        job.sync()
        one = np.ones((1, 1))

        def solve(w):
            base = w.clocks.clock
            leads, seen, returned = [], [], []
            for _ in range(clocks):
                if w.id == slow:
                    time.sleep(0.05)
                progress[w.id].push([w.id], one)
                returned.append(w.tick() - base)
                leads.append(w.clocks.clock - w.clocks.slowest())
                seen.append(progress[w.id].pull_all()[:, 0].tolist())
            w.clocks.max_lead = max(w.clocks.max_lead, max(leads))  # what Clocks.tick records
            return {"worker": w.id, "node": w.rt.node, "leads": leads, "seen": seen, "returned": returned}
        records = job.each_worker(solve)
        job.sync()
        for r in records:
            r["final"] = progress[r["worker"]].pull_all()[:, 0].tolist()
            r["max_lead"] = job.workers[r["worker"]].clocks.max_lead
    return {"staleness": staleness, "nnodes": 2, "workers": records}


@pytest.fixture
def inprocess_staleness(monkeypatch):
    monkeypatch.setattr(test_cluster, "run_staleness", run_staleness_inprocess)


@pytest.mark.parametrize("staleness", [0, 2])
def test_staleness_bound_and_reads_across_nodes(tmp_path, staleness, inprocess_staleness):
    test_cluster.test_staleness_bound_and_reads_across_nodes(tmp_path, staleness)


def test_asp_across_nodes_finishes_with_exact_sums_after_sync(tmp_path, inprocess_staleness):
    test_cluster.check_asp_across_nodes_finishes_with_exact_sums_after_sync(tmp_path)


# ----------------------------------------------------------------- a stateful rule on remote rows


def adagrad_run(nodes: int, exact: bool) -> dict:
    """``cluster_adagrad.py``'s record: 2 workers, BSP, taking turns at the shared rows."""
    n, steps = 2, test_cluster.ADA_STEPS
    with InProcessJob(nworker=n, nserver=nodes, nodes=nodes, staleness=0) as job:
        kw = dict(init="constant", a=cd.ADA_INIT, rule="adagrad", hyper={"lr": cd.ADA_LR, "eps": cd.ADA_EPS},
                  exact=exact)
        ada = job.table("ada", (cd.ADA_ROWS, cd.ADA_DIM), "float64", **kw)
        ada_lr = job.table("ada_lr", (cd.ADA_ROWS, cd.ADA_DIM), "float64", **kw)
        shared, target = cd.shared_rows(n), cd.targets()
        job.sync()
        for step in range(steps):
            for w in job.workers:
                mine = cd.own_rows(w.id, n)
                ada[w.id].push(mine, ada[w.id].pull(mine) - target[mine])
            for w in job.workers:  # one after another, as the job's allreduce turns make them
                ada[w.id].push(shared, cd.shared_gradient(shared, step))
                ada_lr[w.id].push(shared, cd.shared_gradient(shared, step), lr=cd.ADA_LR_OVERRIDE)
            job.clock_all()
        job.sync()
        return {"nnodes": nodes, "workers": [{"worker": w.id, "node": w.rt.node, "ada": ada[w.id].pull_all().tolist(),
                                              "ada_lr": ada_lr[w.id].pull_all().tolist()} for w in job.workers]}


@pytest.fixture(scope="module")
def adagrad_runs():
    runs = {"two": adagrad_run(2, exact=False), "one": adagrad_run(1, exact=False)}
    assert [r["node"] for r in runs["two"]["workers"]] == [0, 1]
    return runs


def test_adagrad_on_remote_rows_matches_one_node(adagrad_runs):
    test_cluster.check_adagrad_on_remote_rows_matches_one_node(adagrad_runs)


def test_adagrad_hyper_override_applies_to_remote_rows(adagrad_runs):
    test_cluster.check_adagrad_hyper_override_applies_to_remote_rows(adagrad_runs)


def test_adagrad_exact_table_across_nodes():
    """An exact (locked) table with a stateful rule, pushed from both nodes at once, must not deadlock."""
    want, _ = test_cluster.adagrad_reference(2, test_cluster.ADA_STEPS, cd.ADA_LR_OVERRIDE)
    for r in adagrad_run(2, exact=True)["workers"]:
        np.testing.assert_allclose(np.array(r["ada"]), want, rtol=0, atol=1e-9)


# ----------------------------------------------------------------- the fixture's own checks


def test_a_socket_the_library_leaves_open_fails_the_job_close(monkeypatch):
    from parasol_hybrid.cluster.agent import NodeAgent

    monkeypatch.setattr(NodeAgent, "close", lambda self: [c.shard.unlink() for c in self.caches.values()])
    job = InProcessJob(nworker=2, **TWO_NODES).start()
    job.table("t", (4, 1), "float64")
    with pytest.raises(AssertionError, match="sockets left open after every part was closed"):
        job.close()


def test_a_failed_server_loop_the_test_did_not_take_fails_the_job_close():
    job = InProcessJob(nworker=2, peer_timeout=0.2, **TWO_NODES).start()
    job.agent(1)._send = lambda *a, **kw: None  # node 1's agent goes silent: node 0's ends its loop
    assert isinstance(job.failure(0, timeout=5), JobError)
    job.agent(0)._send = lambda *a, **kw: None
    time.sleep(0.5)
    with pytest.raises(AssertionError, match=r"server loops ended with errors the test did not expect: \{1: "
                                             r"'JobError: node agent of node 1"):
        job.close()
