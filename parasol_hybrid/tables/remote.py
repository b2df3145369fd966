"""The remote path of a table: what a table asks of the owners of shards on other nodes.

A :class:`~parasol_hybrid.tables.table.Table` or
:class:`~parasol_hybrid.tables.sparse.SparseTable` holds the shards mapped on
its node; for the others it is given an object answering :class:`RemoteShards`
(in a job, the worker's :class:`~parasol_hybrid.cluster.link.NodeLink`, see
``cluster/owners.py``). The tables never see a socket or a wire message; an
owner's refusal comes back as a :class:`~parasol_hybrid.errors.TableError`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .spec import TableSpec

__all__ = ["RemoteShards"]


class RemoteShards(Protocol):
    """Requests of one worker to the owners of remote shards (each call waits for the answers)."""

    def push_rule(self, spec: TableSpec, parts: list[tuple[int, np.ndarray, np.ndarray]], rule: str,
                  hyper: dict) -> list[tuple[np.ndarray, int]]:
        """Have the owner of each ``(shard, keys, deltas)`` part apply ``rule`` (with ``hyper``) to its
        rows, all parts at once; per part, the rows as the rule left them (``len(keys) × dim``) and
        the owner's count of writes to that shard (the cache version, ``tables/cache.py``)."""

    def sparse_push(self, spec: TableSpec, shard: int, keys: np.ndarray, values: np.ndarray) -> None:
        """Have the owner of ``shard`` of a sparse table insert ``keys`` and add ``values`` to their rows."""

    def sparse_pull(self, spec: TableSpec, shard: int, keys: np.ndarray) -> np.ndarray:
        """The rows of ``keys`` (all in ``shard``) of a sparse table; zeros for keys never pushed."""

    def sparse_items(self, spec: TableSpec, shard: int) -> tuple[np.ndarray, np.ndarray]:
        """Every present key of ``shard`` of a sparse table and its row, in slot order."""
