"""The worker's handle on a table: pull, push and in-place access to its shards."""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np

from ..errors import TableError
from ..transport.wire import Op
from .kernels import check_keys, gather, gather_all, scatter_add, scatter_assign
from .rules import get_rule
from .shard import Shard
from .spec import TableSpec

__all__ = ["Table"]


class Table:
    """A table as a worker sees it.

    ``pull``/``push`` copy rows out and apply deltas in with numba kernels over
    the shared shards; ``shards`` is the tuple of shard arrays for user
    kernels that update rows in place (row ``k`` is ``shards[k % S][k // S]``).

    Concurrent pushes from the workers of a node: integer tables (and tables
    declared ``exact=True``) take every shard's lock for the length of a push,
    so counts are exact; float tables are updated Hogwild-style (racy
    read-modify-write per element, no locks), as in Hogwild! SGD.
    """

    def __init__(self, spec: TableSpec, shards: list[Shard | None], remote: frozenset = frozenset(), link=None):
        self.spec = spec
        self._shards = [s for s in shards if s is not None]
        dtype = np.dtype(spec.dtype)
        empty = np.zeros((0, spec.dim), dtype=dtype)
        empty_state = np.zeros((0, spec.state_slots, spec.dim), dtype=dtype)
        #: the shard arrays by shard index (in cluster mode, remote shards are this node's caches of them)
        self.shards = tuple(s.array if s is not None else empty for s in shards)
        self.states = tuple(s.state.array if s is not None else empty_state for s in shards)
        self._locks = [s.lock for s in self._shards]
        #: shard indices owned by servers on other nodes
        self.remote = remote
        self._link = link
        self._rule = get_rule(spec.rule)
        self._checked: dict[str, object] = {}  # rule name -> Rule, once checked against this table
        self._hp = self._rule.hyper_array(dict(spec.hyper))
        self.dtype = np.dtype(spec.dtype)

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def rows(self) -> int:
        return self.spec.rows

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def shape(self) -> tuple[int, int]:
        return self.spec.shape

    @property
    def nshards(self) -> int:
        return len(self.shards)

    def __repr__(self) -> str:
        return f"Table({self.name!r}, shape={self.shape}, dtype={self.dtype}, rule={self.spec.rule!r})"

    # ------------------------------------------------------------------ checks
    def _keys(self, keys) -> np.ndarray:
        if type(keys) is np.ndarray and keys.dtype == np.int64 and keys.ndim == 1 and keys.flags.c_contiguous:
            return keys  # the common case, checked in a few attribute reads
        keys = np.asarray(keys)
        if keys.ndim == 0:
            keys = keys.reshape(1)
        if keys.ndim != 1:
            raise TableError(f"table {self.name!r}: keys must be 1-D, got shape {keys.shape}")
        if keys.dtype != np.int64:
            if keys.size and not np.issubdtype(keys.dtype, np.integer):
                raise TableError(f"table {self.name!r}: keys must be integers, got dtype {keys.dtype}")
            keys = keys.astype(np.int64)
        return np.ascontiguousarray(keys)

    def _values(self, keys: np.ndarray, values, what: str) -> np.ndarray:
        if (type(values) is np.ndarray and values.dtype == self.dtype and values.ndim == 2
                and values.shape[0] == keys.shape[0] and values.shape[1] == self.spec.dim
                and values.flags.c_contiguous):
            return values  # the common case
        values = np.asarray(values)
        if values.dtype != self.dtype:
            if not np.can_cast(values.dtype, self.dtype, casting="same_kind"):
                raise TableError(
                    f"table {self.name!r}: cannot push {values.dtype} {what} into a {self.dtype} table"
                )
            values = values.astype(self.dtype)
        if values.ndim == 1 and self.dim == 1 and values.shape[0] == keys.shape[0]:
            values = values.reshape(-1, 1)
        if values.shape != (keys.shape[0], self.dim):
            raise TableError(
                f"table {self.name!r}: {what} must have shape ({keys.shape[0]}, {self.dim}), got {values.shape}"
            )
        return np.ascontiguousarray(values)

    def _bad_key(self, keys: np.ndarray, pos: int):
        raise TableError(
            f"table {self.name!r}: key {int(keys[pos])} at position {pos} is out of range [0, {self.rows})"
        )

    @contextmanager
    def locked(self):
        """Hold every shard lock of this table on the node (in shard order, so no deadlock)."""
        for lock in self._locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(self._locks):
                lock.release()

    # ------------------------------------------------------------------ verbs
    def pull(self, keys, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``keys`` as a ``len(keys) × dim`` array (into ``out`` when given)."""
        keys = self._keys(keys)
        if out is None:
            out = np.empty((keys.shape[0], self.dim), dtype=self.dtype)
        elif out.shape != (keys.shape[0], self.dim) or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise TableError(
                f"table {self.name!r}: out must be a C-contiguous {self.dtype} array of shape "
                f"({keys.shape[0]}, {self.dim}), got {out.dtype} {out.shape}"
            )
        bad = gather(self.shards, self.rows, keys, out)
        if bad >= 0:
            self._bad_key(keys, bad)
        return out

    def pull_all(self) -> np.ndarray:
        """A copy of the whole table (``rows × dim``)."""
        out = np.empty(self.shape, dtype=self.dtype)
        gather_all(self.shards, out)
        return out

    def push(self, keys, deltas, rule: str | None = None, **hyper) -> None:
        """Apply ``deltas`` to rows ``keys`` with ``rule`` (default: the table's rule).

        Hyper-parameters of the rule (``lr=...``) override the table's for this push.
        Nothing is written when a key is out of range or the deltas have the wrong shape.
        In cluster mode, rows of remote shards go to their owners when the rule
        keeps state (the state lives with the owner); other rules update this
        node's cache, which the node agent sends on at the next clock.
        """
        keys = self._keys(keys)
        deltas = self._values(keys, deltas, "deltas")
        name = rule or self.spec.rule
        r = self._check_rule(name)
        if r.state_slots and self.remote:
            keys, deltas = self._forward(keys, deltas, name, hyper)  # before taking any lock
        if self.spec.exact:
            with self.locked():
                self._push_unlocked(keys, deltas, rule, **hyper)
        elif name == "add":  # the hot path: straight to the kernel
            bad = scatter_add(self.shards, self.spec.rows, keys, deltas)
            if bad >= 0:
                self._bad_key(keys, bad)
        else:
            self._push_unlocked(keys, deltas, rule, **hyper)

    def _check_rule(self, name: str):
        r = self._checked.get(name)
        if r is not None:
            return r
        r = self._rule if name == self.spec.rule else get_rule(name)
        if self.dtype.name not in r.dtypes:
            raise TableError(f"table {self.name!r}: rule {name!r} does not apply to {self.dtype} tables")
        if r.state_slots > self.spec.state_slots:
            raise TableError(
                f"table {self.name!r}: rule {name!r} needs {r.state_slots} state slot(s) per row; "
                f"declare the table with rule={name!r}"
            )
        self._checked[name] = r
        return r

    def _push_unlocked(self, keys: np.ndarray, deltas: np.ndarray, rule: str | None, **hyper) -> None:
        """``push`` on checked keys and deltas of local (or cached) rows, without taking the locks."""
        name = rule or self.spec.rule
        r = self._check_rule(name)
        if name == "add":
            bad = scatter_add(self.shards, self.rows, keys, deltas)
        elif name == "assign":
            bad = scatter_assign(self.shards, self.rows, keys, deltas)
        else:
            hp = self._hyper(r, hyper)
            bad = r.apply(self.shards, self.states, self.rows, keys, deltas, hp)
        if bad >= 0:
            self._bad_key(keys, bad)

    def _hyper(self, r, hyper: dict) -> np.ndarray:
        if r is self._rule:
            return self._hp if not hyper else r.hyper_array({**dict(self.spec.hyper), **hyper})
        return r.hyper_array(hyper)

    def _forward(self, keys: np.ndarray, deltas: np.ndarray, rule: str, hyper: dict):
        """Send the rows of remote shards to their owners (a stateful rule runs where its state is);
        return the keys and deltas of the local rows."""
        self._hyper(self._check_rule(rule), hyper)  # unknown hyper-parameters fail here, before sending
        extra = json.dumps({"rule": rule, "hyper": {k: float(v) for k, v in hyper.items()}}).encode()
        bad = check_keys(keys, self.rows)
        if bad >= 0:
            self._bad_key(keys, bad)
        S = self.nshards
        shard_of = keys % S
        is_remote = np.isin(shard_of, np.fromiter(self.remote, dtype=np.int64))
        for s in sorted(self.remote):
            sel = shard_of == s
            if sel.any():
                self._link.request(s, Op.PUSH_RULE, table=self.spec.index, shard=s, keys=keys[sel],
                                   values=deltas[sel], extra=extra)
        keep = ~is_remote
        return np.ascontiguousarray(keys[keep]), np.ascontiguousarray(deltas[keep])

    def close(self) -> None:
        self.shards = ()
        self.states = ()
        for s in self._shards:
            s.close()
