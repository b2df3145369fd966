"""Cluster test job: int64, float64 exact=True and sparse tables pushed to by every worker, over several clocks.

The master writes ``<output>/exact.json``: per worker (by id) its node, and after the final ``sync()`` its
``pull_all`` of both dense tables, its ``pull`` of every word's row of the sparse table, the sparse
table's ``items()`` and ``len()``.
"""

from __future__ import annotations

import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_data import (FLOAT_DIM, FLOAT_ROWS, INT_DIM, INT_ROWS, float_increments, int_increments,  # noqa: E402
                          word_increments, words)

from parasol_hybrid import Option, hash_strings, paralg, run  # noqa: E402


class ClusterExact(paralg):
    options = {"steps": Option(int, 6, "clocks of pushes per worker")}

    def solve(self) -> None:
        w = self.worker_id
        ints = self.table("ints", (INT_ROWS, INT_DIM), "int64")
        floats = self.table("floats", (FLOAT_ROWS, FLOAT_DIM), "float64", exact=True)
        sparse = self.sparse_table("words", capacity=len(words()) + 10, dim=2, dtype="int64")
        for step in range(self.cfg.steps):
            self.push(ints, *int_increments(w, step))
            self.push(floats, *float_increments(w, step))
            ws, counts = word_increments(w, step)
            sparse.push(hash_strings(ws), counts)
            self.clock()
        self.sync()
        keys, values = sparse.items()
        rec = {"worker": w, "node": self.node_id, "nnodes": self.nnodes,
               "ints": self.pull_all(ints).tolist(), "floats": self.pull_all(floats).tolist(),
               "sparse_pull": sparse.pull(hash_strings(words())).tolist(),
               "sparse_items": sorted([int(k), [int(x) for x in v]] for k, v in zip(keys, values)),
               "sparse_len": len(sparse)}
        everyone = self.allgather(rec)
        self.write_json("exact.json", {"workers": everyone, "cross_node_bytes": self.cross_node_bytes()})
        self.sync()


if __name__ == "__main__":
    run(ClusterExact)
