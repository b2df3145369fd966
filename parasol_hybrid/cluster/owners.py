"""A table's requests to the owners of remote shards, as wire messages: the cluster side of
:class:`~parasol_hybrid.tables.remote.RemoteShards`.

:class:`OwnerRequests` turns the table verbs that need another node's server
(a rule that is not additive, and every sparse-table access) into requests and
checks the answers; :class:`~parasol_hybrid.cluster.link.NodeLink` adds it to
its sockets, so the worker's link is what its tables are given.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import TableError
from ..tables.spec import TableSpec
from ..transport.wire import Message, Op

__all__ = ["OwnerRequests"]


class OwnerRequests:
    """The :class:`~parasol_hybrid.tables.remote.RemoteShards` requests, over ``request``/``requests``
    (see :class:`~parasol_hybrid.cluster.link.NodeLink`); an owner's refusal is a TableError."""

    def request(self, server: int, op: int, **fields) -> Message:  # provided by the link
        raise NotImplementedError

    def requests(self, batch: list) -> list[Message]:  # provided by the link
        raise NotImplementedError

    def push_rule(self, spec: TableSpec, parts: list[tuple[int, np.ndarray, np.ndarray]], rule: str,
                  hyper: dict) -> list[tuple[np.ndarray, int]]:
        """One PUSH_RULE per part, sent together; the rows each owner returns and its write count."""
        extra = json.dumps({"rule": rule, "hyper": {k: float(v) for k, v in hyper.items()}}).encode()
        replies = self.requests([(s, Op.PUSH_RULE, {"table": spec.index, "shard": s, "keys": keys,
                                                    "values": deltas, "extra": extra})
                                 for s, keys, deltas in parts])
        dtype = np.dtype(spec.dtype)
        answers = []
        for (s, keys, _), reply in zip(parts, replies):
            rows = reply.values
            if reply.op != Op.VALUES or rows is None or rows.shape != (keys.shape[0], spec.dim) or rows.dtype != dtype:
                raise TableError(f"table {spec.name!r}: the owner of shard {s} answered PUSH_RULE with "
                                 f"{reply.name} {None if rows is None else (rows.dtype, rows.shape)}, "
                                 f"not the {keys.shape[0]} pushed rows")
            answers.append((rows, reply.clock))
        return answers

    def sparse_push(self, spec: TableSpec, shard: int, keys: np.ndarray, values: np.ndarray) -> None:
        """SPARSE_PUSH of ``keys`` and ``values`` to the owner of ``shard``."""
        self.request(shard, Op.SPARSE_PUSH, table=spec.index, shard=shard, keys=keys, values=values)

    def sparse_pull(self, spec: TableSpec, shard: int, keys: np.ndarray) -> np.ndarray:
        """SPARSE_PULL of ``keys`` from the owner of ``shard``: their rows."""
        return self.request(shard, Op.SPARSE_PULL, table=spec.index, shard=shard, keys=keys).values

    def sparse_items(self, spec: TableSpec, shard: int) -> tuple[np.ndarray, np.ndarray]:
        """SPARSE_ITEMS of ``shard``: copies of its present keys and their rows."""
        msg = self.request(shard, Op.SPARSE_ITEMS, table=spec.index, shard=shard)
        return np.array(msg.keys), np.array(msg.values)
