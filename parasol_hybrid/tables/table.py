"""The worker's handle on a table: pull, push and in-place access to its shards."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import TableError
from .kernels import BAD_VALUE, check_keys, first_bad_row, gather, gather_all, refusal, scatter_add, scatter_assign
from .cache import rebase_rows
from .remote import RemoteShards
from .rules import get_rule
from .shard import Shard
from .spec import TableSpec

__all__ = ["Table", "int64_keys"]


class Table:
    """A table as a worker sees it.

    The table protocol, the same for a dense :class:`Table` and a
    :class:`~parasol_hybrid.tables.sparse.SparseTable`:

    * ``pull(keys, out=None)``: rows ``keys`` as a ``len(keys) × dim`` array
      (into ``out`` when given);
    * ``push(keys, deltas, rule=None, **hyper)``: apply ``deltas`` with
      ``rule`` (default: the table's);
    * ``pull_all()``: the whole table. Dense: a ``rows × dim`` array, row
      ``k`` for key ``k``. Sparse: ``(keys, values)`` of every present key,
      sorted by key (``items()`` sorted);
    * ``save(path)``: write ``pull_all()`` to ``path`` atomically (dense: one
      ``.npy`` array; sparse: an ``.npz`` with arrays ``keys`` and ``values``).

    A push is refused with a :class:`TableError` naming the table and the row,
    and writes nothing, when a key is out of range, the deltas have the wrong
    shape or dtype, or a delta holds NaN or ±Inf (on every path: in the
    kernels' first pass on this node, before sending in cluster mode, and by
    the owner for pushes that arrive over the network).

    ``shards`` is the tuple of shard arrays for user kernels that read rows in
    place (row ``k`` is ``shards[k % S][k // S]``). Write in place only into
    a table that is not exact, or through ``with table.locked() as shards:``.

    Concurrent pushes from the workers of a node: integer tables (and tables
    declared ``exact=True``) take every shard's lock for the length of a push,
    so counts are exact; float tables are updated Hogwild-style (racy
    read-modify-write per element, no locks), as in Hogwild! SGD. An exact
    table's ``shards`` and ``states`` are read-only arrays: numpy and numba
    refuse to write them, so an in-place kernel that skips the locks fails
    instead of losing updates. :meth:`locked` holds the locks and yields
    writable arrays.

    ``shards`` (of the constructor) holds the shards mapped on this node (None
    for the others); ``remote`` names the shards owned on other nodes, and
    ``link`` (a :class:`~parasol_hybrid.tables.remote.RemoteShards`, given by
    the cluster layer) is how their owners are asked.
    """

    def __init__(self, spec: TableSpec, shards: list[Shard | None], remote: frozenset = frozenset(),
                 link: RemoteShards | None = None):
        self.spec = spec
        self._shards = [s for s in shards if s is not None]
        dtype = np.dtype(spec.dtype)
        empty = np.zeros((0, spec.dim), dtype=dtype)
        empty_state = np.zeros((0, spec.state_slots, spec.dim), dtype=dtype)
        writable = (tuple(s.array if s is not None else empty for s in shards),
                    tuple(s.state.array if s is not None else empty_state for s in shards))
        #: the writable shard and state arrays, for kernels that hold the locks (exact tables)
        self._rw = writable
        #: the shard arrays by shard index (in cluster mode, remote shards are this node's caches of them);
        #: read-only for exact tables except inside :meth:`locked`
        self.shards = _read_only(writable[0]) if spec.exact else writable[0]
        #: the optimiser state arrays by shard index (``rows_local × slots × dim``), read-only like ``shards``
        self.states = _read_only(writable[1]) if spec.exact else writable[1]
        self._public = (self.shards, self.states)
        self._locks = [s.lock for s in self._shards]
        #: by shard index: the Shard mapped here (None when not mapped)
        self._by_index = list(shards)
        #: snapshots of this node's caches of remote shards (empty for other shards); see tables/cache.py
        self.snaps = tuple(s.snap.array if s is not None and s.snap is not None else empty for s in shards)
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
        return int64_keys(keys, f"table {self.name!r}")

    def _values(self, keys: np.ndarray, values, what: str) -> np.ndarray:
        """``values`` as a C-contiguous ``len(keys) × dim`` array of the table's dtype.

        In cluster mode (some shards remote) it also refuses rows holding NaN or
        ±Inf here, before any of them is sent to an owner; on one node the
        kernels refuse them in their first pass.
        """
        if (type(values) is np.ndarray and values.dtype == self.dtype and values.ndim == 2
                and values.shape[0] == keys.shape[0] and values.shape[1] == self.spec.dim
                and values.flags.c_contiguous):
            if self.remote:
                self._finite(keys, values)
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
        values = np.ascontiguousarray(values)
        if self.remote:
            self._finite(keys, values)
        return values

    def _finite(self, keys: np.ndarray, values: np.ndarray) -> None:
        bad = first_bad_row(values)
        if bad >= 0:
            self._bad_key(keys, BAD_VALUE * keys.shape[0] + bad)

    def _bad_key(self, keys: np.ndarray, code: int):
        """Raise the TableError of a kernel's refusal code (see ``tables/kernels.py``)."""
        kind, pos = refusal(code, keys.shape[0])
        if kind == BAD_VALUE:
            raise TableError(f"table {self.name!r}: the deltas of row {int(keys[pos])} (position {pos}) hold "
                             f"NaN or ±Inf; nothing was written")
        raise TableError(
            f"table {self.name!r}: key {int(keys[pos])} at position {pos} is out of range [0, {self.rows})"
        )

    @contextmanager
    def locked(self):
        """``with table.locked() as shards:`` hold every shard lock of this table on the node, and
        write rows in place through ``shards`` (writable arrays, row ``k`` is ``shards[k % S][k // S]``).

        The locks are taken in shard order (so two holders never deadlock) and
        are the ones ``push`` takes on exact tables, so in-place writes made
        here and pushes of the node's other workers never interleave. Inside
        the block ``table.shards`` and ``table.states`` are writable too;
        outside it an exact table's are read-only. Not re-entrant: do not push
        to the same table inside the block.
        """
        for lock in self._locks:
            lock.acquire()
        try:
            self.shards, self.states = self._rw
            yield self._rw[0]
        finally:
            self.shards, self.states = self._public
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
        """A copy of the whole table (``rows × dim``; row ``k`` is key ``k``)."""
        out = np.empty(self.shape, dtype=self.dtype)
        gather_all(self.shards, out)
        return out

    def save(self, path) -> Path:
        """Write :meth:`pull_all` to ``path`` as one ``.npy`` array (atomically, at exactly ``path``)."""
        return _save_atomic(Path(path), lambda f: np.save(f, self.pull_all()))

    def push(self, keys, deltas, rule: str | None = None, **hyper) -> None:
        """Apply ``deltas`` to rows ``keys`` with ``rule`` (default: the table's rule).

        Hyper-parameters of the rule (``lr=...``) override the table's for this push.
        Nothing is written when a key is out of range or the deltas have the wrong shape.
        In cluster mode, an additive rule (``add``, ``sgd``, a rule registered
        ``additive=True``) updates this node's cache of remote shards, and the
        node agent sends the sum of the node's changes on at the next clock.
        Any other rule is applied to rows of remote shards by their owners,
        which return the resulting rows; they are written into this node's
        cache (plus what the node added since), so a rule means the same on
        every layout and the next pull sees this push.
        """
        keys = self._keys(keys)
        deltas = self._values(keys, deltas, "deltas")
        name = rule or self.spec.rule
        r = self._check_rule(name)
        if self.remote and not r.additive:
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
        """Have the owners apply ``rule`` to the rows of remote shards and write the rows they return
        into this node's caches; return the keys and deltas of the local rows."""
        self._hyper(self._check_rule(rule), hyper)  # unknown hyper-parameters fail here, before sending
        bad = check_keys(keys, self.rows)
        if bad >= 0:
            self._bad_key(keys, bad)
        shard_of = keys % self.nshards
        remote = np.array(sorted(self.remote), dtype=np.int64)
        parts = []
        for s in remote.tolist():
            sel = np.flatnonzero(shard_of == s)
            if sel.size:
                parts.append((s, keys[sel], deltas[sel]))
        if parts:
            for (s, skeys, _), (rows, version) in zip(parts, self._link.push_rule(self.spec, parts, rule, hyper)):
                self._write_back(s, skeys, rows, version)
        keep = ~np.isin(shard_of, remote)
        return np.ascontiguousarray(keys[keep]), np.ascontiguousarray(deltas[keep])

    def _write_back(self, s: int, keys: np.ndarray, rows: np.ndarray, version: int) -> None:
        """Rebase this node's cache rows of ``keys`` (remote shard ``s``) on the ``rows`` the owner returned
        (after its ``version``-th write)."""
        sh = self._by_index[s]
        if sh is None or sh.snap is None:
            return  # not cached on this node
        sh.lock.acquire()
        try:
            rebase_rows(sh.array, sh.snap.array, keys // self.nshards, rows, sh.ver.array, version)
        finally:
            sh.lock.release()

    def close(self) -> None:
        self.shards = ()
        self.states = ()
        self._rw = self._public = ((), ())
        for s in self._shards:
            s.close()


def int64_keys(keys, what: str, flat: bool = False) -> np.ndarray:
    """``keys`` as a C-contiguous 1-D int64 array (``flat``: of any shape, flattened), or a TableError
    that starts with ``what`` (the table): keys that are not integers, and integers that int64 cannot
    hold (an unsigned key of 2**63 or more, a Python int past 2**63 - 1), named with their position,
    never wrapped around into other keys."""
    given = keys
    keys = np.asarray(keys)
    if keys.dtype.kind in "fO" and not isinstance(given, np.ndarray):
        keys = np.asarray(given, dtype=object)  # Python ints past int64 make floats ([1, 2**63]) or objects
    if keys.ndim == 0 or flat:
        keys = keys.reshape(-1)
    if keys.ndim != 1:
        raise TableError(f"{what}: keys must be 1-D, got shape {keys.shape}")
    if keys.dtype == np.int64 or not keys.size:
        return np.ascontiguousarray(keys, dtype=np.int64)
    if keys.dtype == object:  # Python ints beyond int64, or not numbers at all
        for i, k in enumerate(keys.tolist()):
            if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
                raise TableError(f"{what}: keys must be integers, got {type(k).__name__} {k!r} at position {i}")
            if not -(1 << 63) <= int(k) < (1 << 63):
                raise TableError(f"{what}: key {int(k)} at position {i} does not fit in int64 "
                                 f"(keys are 0 .. 2**63 - 1)")
        return np.array(keys.tolist(), dtype=np.int64)
    if not np.issubdtype(keys.dtype, np.integer):
        raise TableError(f"{what}: keys must be integers, got dtype {keys.dtype}")
    if keys.dtype.kind == "u" and keys.dtype.itemsize == 8:
        big = keys > np.uint64((1 << 63) - 1)
        if big.any():
            i = int(np.argmax(big))
            raise TableError(f"{what}: key {int(keys[i])} at position {i} does not fit in int64 "
                             f"(keys are 0 .. 2**63 - 1)")
    return np.ascontiguousarray(keys.astype(np.int64))


def _read_only(arrays: tuple) -> tuple:
    """Read-only views of ``arrays`` (numpy refuses writes to them, and numba refuses to compile one)."""
    views = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        views.append(v)
    return tuple(views)


def _save_atomic(path: Path, write) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
