"""Test job of the table protocol (issue 9, items 4, 7, 10): one ``case`` per run.

* ``protocol``: a dense and a sparse table answer ``paralg.pull`` (with and without ``out=``),
  ``pull_all`` and ``save_table`` the same way; the master writes what it read.
* ``full``: worker 0 pushes more keys than a sparse table has room for, into a shard on another
  node when there is one (the owner's path), else locally; records the error.
* ``nan``: worker 0 pushes NaN/±Inf deltas through the API and, raw over the wire (PUSH_ADD,
  PUSH_RULE, SPARSE_PUSH), to a shard another node owns; records every error and the owner's rows after.
* ``exact``: every worker adds 1 to every row ``adds`` times with an in-place numba kernel inside
  ``table.locked()``, in batches; records the table after a ``sync()``, and whether an in-place
  write outside ``locked()`` was refused.

Results: ``<output>/protocol.json`` (written by the master).
"""

from __future__ import annotations

import json

import numpy as np
from numba import njit

from parasol_hybrid import Option, TableError, paralg, run
from parasol_hybrid.transport.wire import Op

ROWS, DIM = 12, 3


@njit(cache=True)
def add_ones(shards, times):
    """Add 1 to every row of a striped table ``times`` times, element by element (a read-modify-write each)."""
    for _ in range(times):
        for sh in shards:
            for r in range(sh.shape[0]):
                for j in range(sh.shape[1]):
                    sh[r, j] += 1


def _error(fn) -> str | None:
    """The message of the TableError ``fn()`` raises, or None when it returns."""
    try:
        fn()
    except TableError as exc:
        return str(exc)
    return None


class Protocol(paralg):
    options = {
        "case": Option(str, "protocol", "which case to run"),
        "adds": Option(int, 1000, "in-place adds per worker (exact case)"),
        "batch": Option(int, 100, "adds per locked() block (exact case)"),
    }

    def solve(self) -> None:
        result = getattr(self, "case_" + self.cfg.case)()
        everyone = self.allgather(result)
        self.write_json("protocol.json", {"workers": everyone, "nnodes": self.nnodes})
        self.sync()

    # ------------------------------------------------------------------ cases
    def case_protocol(self) -> dict:
        w = self.worker_id
        dense = self.table("dense", (ROWS, DIM), "float64", exact=True)
        sparse = self.sparse_table("sparse", capacity=100, dim=DIM, dtype="float64")
        keys = np.array([7 + 1000 * w, 3, 10**12 + w], dtype=np.int64)  # some shared, some per worker
        deltas = np.arange(3 * DIM, dtype=np.float64).reshape(3, DIM) + w
        self.push(dense, keys % ROWS, deltas)
        self.push(sparse, keys, deltas)
        self.sync()
        probe = np.array([3, 10**12, 10**12 + 1, 7, 7000, 5], dtype=np.int64)
        out = np.full((len(probe), DIM), -1.0)
        got_out = self.pull(sparse, probe, out=out)
        rec = {"worker": w, "node": self.node_id,
               "sparse_pull": self.pull(sparse, probe).tolist(), "sparse_pull_out": out.tolist(),
               "out_is_returned": got_out is out,
               "dense_pull": self.pull(dense, probe % ROWS).tolist()}
        sk, sv = self.pull_all(sparse)
        rec["sparse_all"] = [sk.tolist(), sv.tolist()]
        rec["dense_all"] = self.pull_all(dense).tolist()
        paths = [self.save_table(dense), self.save_table(sparse), self.save_table(sparse, "renamed")]
        rec["saved"] = [None if p is None else str(p) for p in paths]
        return rec

    def case_full(self) -> dict:
        S = self.nserver
        sparse = self.sparse_table("tiny", capacity=4, dim=1, dtype="int64")
        rec = {"worker": self.worker_id, "remote": sorted(sparse.remote)}
        if self.worker_id == 0:
            shard = min(sparse.remote) if sparse.remote else 0
            rec["shard"] = shard
            keys = np.arange(200, dtype=np.int64) * S + shard  # all in one shard: more than it has slots
            rec["error"] = _error(lambda: sparse.push(keys, np.ones(len(keys), np.int64)))
            rec["len_after"] = len(sparse)
            sparse.push([shard], [5])  # the table still works
            rec["pull_after"] = sparse.pull([shard]).ravel().tolist()
        self.sync()
        return rec

    def case_nan(self) -> dict:
        S = self.nserver
        w = self.worker_id
        dense = self.table("w", (ROWS, DIM), "float64", "constant", value=1.0)
        ada = self.table("ada", (ROWS, DIM), "float64", "constant", value=1.0, rule="adagrad")
        sparse = self.sparse_table("sp", capacity=50, dim=DIM, dtype="float64")
        sparse.push([0, 1], np.ones((2, DIM)))
        self.sync()
        rec = {"worker": w, "remote": sorted(dense.remote)}
        if w == 0:
            shard = min(dense.remote) if dense.remote else 0
            rec["shard"] = shard
            keys = np.array([shard, shard + S], dtype=np.int64)
            bad = np.ones((2, DIM))
            bad[1, 2] = np.nan
            errors = {}
            for value in (np.nan, np.inf, -np.inf):
                bad[1, 2] = value
                errors[f"dense_add_{value}"] = _error(lambda: self.push(dense, keys, bad))
                errors[f"dense_assign_{value}"] = _error(lambda: self.push(dense, keys, bad, rule="assign"))
                errors[f"ada_{value}"] = _error(lambda: self.push(ada, keys, bad))
                errors[f"sparse_{value}"] = _error(lambda: sparse.push(keys, bad))
            if self._net is not None and dense.remote:  # straight to the owner, as another node's agent would
                rule = json.dumps({"rule": "sgd", "hyper": {"lr": 1.0}}).encode()
                net = self._net
                errors["wire_push_add"] = _error(lambda: net.request(
                    shard, Op.PUSH_ADD, table=dense.spec.index, shard=shard, keys=keys, values=bad))
                errors["wire_push_rule"] = _error(lambda: net.request(
                    shard, Op.PUSH_RULE, table=dense.spec.index, shard=shard, keys=keys, values=bad, extra=rule))
                errors["wire_sparse_push"] = _error(lambda: net.request(
                    shard, Op.SPARSE_PUSH, table=sparse.values.spec.index, shard=shard, keys=keys, values=bad))
                rec["owner_rows"] = net.request(shard, Op.PULL, table=dense.spec.index, shard=shard,
                                                keys=keys).values.tolist()
            rec["errors"] = errors
        self.sync()
        rec["dense_all"] = self.pull_all(dense).tolist()
        rec["ada_all"] = self.pull_all(ada).tolist()
        sk, sv = self.pull_all(sparse)
        rec["sparse_all"] = [sk.tolist(), sv.tolist()]
        return rec

    def case_exact(self) -> dict:
        cfg = self.cfg
        t = self.table("counts", (ROWS, 2), "float64", exact=True)
        rec = {"worker": self.worker_id, "node": self.node_id}

        def outside():
            t.shards[0][0, 0] += 1.0

        try:
            outside()
            rec["outside_numpy"] = None
        except ValueError as exc:
            rec["outside_numpy"] = str(exc)
        try:
            add_ones(t.shards, 1)
            rec["outside_numba"] = None
        except Exception as exc:  # noqa: BLE001 - numba's typing error
            rec["outside_numba"] = type(exc).__name__ + ": " + str(exc)[:3000]
        self.sync()
        done = 0
        while done < cfg.adds:
            n = min(cfg.batch, cfg.adds - done)
            with t.locked() as shards:
                add_ones(shards, n)
            done += n
        self.sync()
        rec["table"] = self.pull_all(t).tolist()
        return rec


if __name__ == "__main__":
    run(Protocol)
