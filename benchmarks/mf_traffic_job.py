"""The push traffic of ``algs/mf.py`` between nodes, counted from the rows each worker updates (a job).

The ``mfnodes`` benchmark runs it with MF's config. It loads the ratings as MF
does, declares MF's model tables (``MF.model_tables``) and counts, for one
round, the rows of shards owned on another node that the workers update,
times the bytes of those rows with their keys (int64) at the tables' dtypes (a
factor row and a bias row per user or item):

- ``push_bytes_per_round_node_aggregated``: what the node agents send (per
  node, the union of its workers' rows);
- ``push_bytes_per_round_per_worker``: what workers sending their own updates
  would send (the sum of their rows).

The second is a counterfactual the job cannot measure; MF itself reports what
crosses the wire (``cross_node_bytes_per_round``). Writes
``<output>/traffic.json`` (nothing is trained).

    run_parasol --config mf-config.json python benchmarks/mf_traffic_job.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ALGS = Path(__file__).resolve().parents[1] / "algs"
if str(ALGS) not in sys.path:  # the job imports algs/mf.py as the launcher would run it
    sys.path.insert(0, str(ALGS))

from common import load_ratings  # noqa: E402
from mf import MF  # noqa: E402

from parasol_hybrid import run  # noqa: E402
from parasol_hybrid.tables.striped import shard_of  # noqa: E402

RESULT = "traffic.json"


def remote_rows(rows: np.ndarray, table) -> np.ndarray:
    """The distinct ``rows`` of ``table`` held by shards owned on another node."""
    remote = np.array(sorted(table.remote), dtype=np.int64)
    return np.unique(rows[np.isin(shard_of(rows.astype(np.int64), table.nshards), remote)])


def row_bytes(*tables) -> int:
    """Bytes of one row of each of ``tables``, each with its int64 key."""
    return sum(8 + t.dim * t.dtype.itemsize for t in tables)


class MFTraffic(MF):
    """MF's load and tables, then the per-round push bytes with and without node aggregation (collective)."""

    def solve(self) -> None:
        data = load_ratings(self, self.cfg.pattern)
        P, Q, BU, BI = self.model_tables(len(data.users), len(data.items))
        parts = self.allgather((self.node_id, remote_rows(data.u, P), remote_rows(data.i, Q)))
        user_row, item_row = row_bytes(P, BU), row_bytes(Q, BI)
        per_worker = sum(len(ru) * user_row + len(ri) * item_row for _, ru, ri in parts)
        per_node = 0
        for node in {n for n, _, _ in parts}:
            users = np.unique(np.concatenate([ru for n, ru, _ in parts if n == node]))
            items = np.unique(np.concatenate([ri for n, _, ri in parts if n == node]))
            per_node += len(users) * user_row + len(items) * item_row
        self.write_json(RESULT, {"push_bytes_per_round_node_aggregated": int(per_node),
                                 "push_bytes_per_round_per_worker": int(per_worker),
                                 "nodes": self.nnodes, "nworker": self.nworker})
        self.sync()


if __name__ == "__main__":
    run(MFTraffic)
