"""Tables in :class:`~parasol_hybrid.paralg`: declaring them (a collective: every worker declares the same
tables in the same order) and the ``pull`` / ``push`` / ``pull_all`` facade over them.

A declaration is checked to be the same on every worker, created by the servers (restored from the
checkpoint being resumed, if any), and mapped: shards of this node's servers directly, the others as this
node's caches of them (in cluster mode), or over the network for sparse tables.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import checkpoint
from ..cluster.collectives import allgather_obj, barrier, bcast_obj
from ..errors import TableError
from ..tables.shard import Shard
from ..tables.sparse import SparseTable
from ..tables.spec import TableSpec
from ..tables.table import Table

if TYPE_CHECKING:
    from ..cluster.control import ControlClient
    from ..cluster.link import NodeLink
    from ..cluster.runtime import Runtime
    from ..config import Config

__all__ = ["TablesMixin"]


class TablesMixin:
    """``table``, ``sparse_table`` (collectives) and ``pull``, ``push``, ``pull_all`` (any worker, any time)."""

    _rt: Runtime
    cfg: Config
    _tables: dict[str, Table | SparseTable]   # by name
    _specs: list[TableSpec]                   # by table index (a sparse table has two)
    _clients: dict[int, ControlClient]        # this node's servers, by server id (node leader only)
    _net: NodeLink | None                     # the link to the other nodes (cluster mode)
    _resume: Path | None                      # the checkpoint the job resumes from
    _manifest: dict | None                    # and its manifest

    def table(self, name: str, shape, dtype: str = "float32", init: str = "zeros", *,
              value: float = 0.0, low: float = 0.0, high: float = 1.0, mean: float = 0.0,
              std: float = 1.0, seed: int | None = None, rule: str = "add",
              hyper: dict[str, float] | None = None, exact: bool | None = None) -> Table:
        """Declare a dense table (collective: every worker declares the same tables in the same order).

        ``shape`` is ``(rows, dim)`` (or ``rows`` for ``dim == 1``); ``init`` is
        ``zeros``, ``constant`` (``value``), ``uniform`` (``low``, ``high``) or
        ``normal`` (``mean``, ``std``), seeded by ``seed`` (default: the
        config's seed and the table's name). ``rule`` is the default update rule
        of ``push`` and ``hyper`` its hyper-parameters.
        """
        self._collective(f"table({name!r})")
        if name in self._tables:
            raise TableError(f"table {name!r} is already declared")
        a, b = {"constant": (value, 0.0), "uniform": (low, high), "normal": (mean, std)}.get(init, (0.0, 0.0))
        if seed is None:
            seed = (int(self.cfg.seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**62)
        spec = TableSpec.build(len(self._specs), name, shape, dtype, init, a, b, seed, rule, exact,
                               self._rt.nserver, hyper)
        t = self._declare(spec)
        self._tables[name] = t
        return t

    def sparse_table(self, name: str, capacity: int, dim: int = 1, dtype: str = "int64") -> SparseTable:
        """Declare a table keyed by any non-negative int64 keys (collective), with room for ``capacity`` keys.

        For strings, key by :func:`parasol_hybrid.hash_strings` (63-bit blake2b).
        Pushes insert missing keys and add (exactly, under the shard locks).
        """
        self._collective(f"sparse_table({name!r})")
        if name in self._tables:
            raise TableError(f"table {name!r} is already declared")
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise TableError(f"sparse table {name!r}: capacity must be a positive integer, got {capacity!r}")
        S = self._rt.nserver
        slots = -(-int(capacity * 10 // 7 + 1) // S) * S  # load factor <= 0.7, a multiple of S
        kspec = TableSpec.build(len(self._specs), name + "#keys", (slots, 1), "int64", "constant", -1.0,
                                0.0, 0, "add", True, S)
        keys = self._declare(kspec, cached=False)
        vspec = TableSpec.build(len(self._specs), name, (slots, dim), dtype, "zeros", 0.0, 0.0, 0, "add",
                                True, S)
        values = self._declare(vspec, cached=False, sparse_keys=kspec.index)
        t = SparseTable(keys, values, int(capacity), self._net)
        self._tables[name] = t
        return t

    def _declare(self, spec: TableSpec, cached: bool = True, sparse_keys: int | None = None) -> Table:
        """Check the declaration is the same on every worker, have the servers create it, map it.

        Shards owned by this node's servers are mapped directly; in cluster
        mode the others are this node's caches of them (made by the node
        agent), or, for sparse tables (``cached=False``), reached over the network.
        """
        rt = self._rt
        specs = allgather_obj(rt.role_comm, spec)
        for w, other in enumerate(specs):
            if other != spec:
                raise TableError(f"table {spec.name!r}: worker {w} declared {other}, "
                                 f"worker {self.worker_id} declared {spec}")
        local = [rt.layout.index_of[r] for r in rt.layout.servers_on(rt.node)]
        remote = [s for s in range(rt.nserver) if s not in local]
        resume = None
        if self._resume is not None:  # the same table; its layout (nshards) may differ: the servers re-shard it
            checkpoint.check_table(self._manifest, self._resume, spec, sparse=not cached)
            resume = str(self._resume)
        if rt.node_role_comm.rank == 0:
            names = {}
            for s in local:
                names[s] = self._clients[s].call(op="create", spec=spec.as_dict(), shard=s,
                                                 sparse_keys=sparse_keys, resume=resume)["names"]
            if remote and cached:
                agent = rt.layout.index_of[rt.agent_rank]
                made = self._clients[agent].call(op="cache", spec=spec.as_dict(), shards=remote,
                                                 resume=resume)["names"]
                names.update({int(k): v for k, v in made.items()})
        else:
            names = None
        names = bcast_obj(rt.node_role_comm, names)
        shards = [Shard.attach(spec, s, names[s]) if s in names else None for s in range(rt.nserver)]
        barrier(rt.node_role_comm)
        if rt.node_role_comm.rank == 0:
            for sh in shards:
                if sh is not None:
                    sh.unlink()
        self._specs.append(spec)
        if rt.cluster:  # no worker may reach another node's shard before that node made it
            barrier(rt.role_comm)
        return Table(spec, shards, remote=frozenset(remote), link=self._net)

    def _table(self, table) -> Table | SparseTable:
        if isinstance(table, (Table, SparseTable)):
            return table
        try:
            return self._tables[table]
        except KeyError:
            raise TableError(f"unknown table {table!r} (declared: {', '.join(self._tables) or 'none'})") from None

    def pull(self, table, keys, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``keys`` of ``table`` (a Table, a SparseTable or its name) as a ``len(keys) × dim`` array
        (into ``out`` when given; a sparse table's keys never pushed read as zeros)."""
        return self._table(table).pull(keys, out=out)

    def push(self, table, keys, deltas, rule: str | None = None, **hyper) -> None:
        """Apply ``deltas`` to rows ``keys`` with ``rule`` (default: the table's)."""
        self._table(table).push(keys, deltas, rule, **hyper)

    def pull_all(self, table) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """A copy of the whole table: ``rows × dim`` for a dense table, ``(keys, values)`` sorted by key
        for a sparse one."""
        return self._table(table).pull_all()
