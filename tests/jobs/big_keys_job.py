"""Test job: a sparse table keyed by keys at and above 2**31 (up to 2**40, and 2**63 - 1), pushed, checkpointed,
resumed and pulled, across nodes.

A fresh run pushes ``rounds`` rounds of :func:`deltas` (a checkpoint every ``checkpoint_every``), and every
worker checks that a negative key is refused. A run with ``--resume`` declares the same table and pushes the
rounds after the checkpoint's. At the end every worker writes ``pull_w<worker>.npy`` (its pull of
:func:`query_keys`) and the master saves the table (``big.npz``). The test builds what they must hold with a
Python dict fed by the same :func:`deltas`. Pushes and pulls to the other node's shard travel in messages
of 8 keys (``MESSAGE_BYTES``), so their cutting into messages is tested too.
"""

from __future__ import annotations

import json

import numpy as np

from parasol_hybrid import paralg, run
from parasol_hybrid.errors import TableError
from parasol_hybrid.tables import sparse as sparse_module

# Messages of 8 keys to the other node's server: every push and pull there is cut into many messages.
sparse_module.MESSAGE_BYTES = 8 * (8 + 2 * 8)

CAPACITY = 1024
DIM = 2


def key_set(seed: int = 7) -> np.ndarray:
    """A few hundred keys spread over [2**31 - 5, 2**40], with 2**31 - 1, 2**31, 2**32, 2**40 and 2**63 - 1."""
    rng = np.random.default_rng(seed)
    edges = [2**31 - 5 + i for i in range(11)] + [2**32 - 1, 2**32, 2**32 + 1, 2**33, 2**40 - 1, 2**40, 2**63 - 1]
    spread = rng.integers(2**31 - 5, 2**40 + 1, 300, dtype=np.int64)
    return np.unique(np.concatenate([np.array(edges, dtype=np.int64), spread]))


def deltas(seed: int, worker: int, round_: int) -> tuple[np.ndarray, np.ndarray]:
    """What ``worker`` pushes in ``round_``: 120 keys of :func:`key_set` (some repeated) and int64 rows."""
    keys = key_set()
    rng = np.random.default_rng([seed, worker, round_])
    pick = rng.integers(0, len(keys), 120)
    return keys[pick], rng.integers(-50, 51, (120, DIM)).astype(np.int64)


def query_keys() -> np.ndarray:
    """Every key of :func:`key_set` and keys never pushed next to them (2**31 + 100, 2**32 + 2, 2**62)."""
    return np.concatenate([key_set(), np.array([2**31 + 100, 2**32 + 2, 2**62], dtype=np.int64)])


class BigKeysJob(paralg):
    def solve(self) -> None:
        big = self.sparse_table("big", capacity=CAPACITY, dim=DIM, dtype="int64")
        refused = []
        if not self.start_round:
            for bad in (-1, -(2**40)):
                try:
                    big.push(np.array([2**31, bad], dtype=np.int64), np.ones((2, DIM), dtype=np.int64))
                except TableError as exc:
                    refused.append(str(exc))
        for rnd in range(self.start_round, self.cfg.rounds):
            keys, rows = deltas(self.cfg.seed, self.worker_id, rnd)
            big.push(keys, rows)
            self.clock()
        self.sync()
        np.save(self.output_path(f"pull_w{self.worker_id}.npy"), big.pull(query_keys()))
        self.output_path(f"refused_w{self.worker_id}.json").write_text(json.dumps(refused))
        self.save_table(big)
        self.sync()


if __name__ == "__main__":
    run(BigKeysJob)
