"""The node agent: keeps a node's caches of remote shards in step with their owners.

Every node caches, in shared memory, each shard that another node owns; its
workers read and update those caches in place as if they were local. The
agent (the node's first server) turns that into cross-node traffic once per
clock, per node — not per worker:

1. **flush**: when every worker of the node has finished clock ``c``, the
   rows that changed since the last flush (``cache - snapshot``) are sent to
   their owners as one ``PUSH_ADD`` per shard; when all are acknowledged the
   agent tells every other agent ``NODE_CLOCK(node, c)``.
2. **refresh**: when every node has delivered clock ``m``, the agent pulls every remote
   shard and rebases the cache on it (``cache += fresh - snapshot``, keeping
   local updates made meanwhile), publishes ``m`` as the node's global view,
   and wakes the node's workers. A worker at clock ``c`` waits until the
   view is at least ``c - s``: a read then sees every update up to
   ``c - s - 1`` from every node. Under ASP the agent also refreshes after
   each of its own flushes (without moving the view), so workers see others'
   updates as soon as they reach the owners.

Exact tables (int64, ``exact=True``) are flushed and rebased under the cache
shard's lock, which pushes also hold, so counts stay exact.

The agent is a state machine driven by the server's poll loop: it never blocks.
"""

from __future__ import annotations

import itertools

import numpy as np
import zmq
from numba import njit

from ..tables.shard import Shard
from ..tables.spec import TableSpec
from ..transport.security import connect_dealer
from ..transport.wire import Op, WireError, decode, encode
from .link import frames_nbytes

__all__ = ["NodeAgent", "take_delta", "rebase", "CHUNK_BYTES"]

#: flushes are sent in messages of at most this many bytes of keys and values
CHUNK_BYTES = 16 << 20


@njit(cache=True, nogil=True)
def take_delta(cache, snap, delta, changed):
    """``delta = cache - snap`` row by row, and ``snap = cache`` (as read); returns the number of changed rows.

    ``changed[i]`` is set to the local row of the i-th changed row; ``delta[i]`` holds its change.
    """
    n = 0
    d = cache.shape[1]
    for r in range(cache.shape[0]):
        any_change = False
        for j in range(d):
            v = cache[r, j]
            diff = v - snap[r, j]
            delta[n, j] = diff
            snap[r, j] = v
            if diff != 0:
                any_change = True
        if any_change:
            changed[n] = r
            n += 1
    return n


@njit(cache=True, nogil=True)
def rebase(cache, snap, fresh):
    """``cache = fresh + (cache - snap)`` (exactly ``fresh`` where nothing changed here) and ``snap = fresh``."""
    d = cache.shape[1]
    for r in range(cache.shape[0]):
        for j in range(d):
            f = fresh[r, j]
            cache[r, j] = f + (cache[r, j] - snap[r, j])
            snap[r, j] = f


class _Cache:
    def __init__(self, shard: Shard):
        self.shard = shard
        self.snap = np.array(shard.array)

    def locked(self):
        return self.shard.spec.exact


class NodeAgent:
    """Flushes and refreshes the caches of one node; see the module docstring."""

    def __init__(self, server):
        self.server = server
        rt = server.rt
        self.rt = rt
        self.node = rt.node
        self.nodes = sorted(set(rt.layout.node_of))
        self.local_workers = np.array([rt.layout.index_of[r] for r in rt.layout.workers_on(rt.node)], dtype=np.int64)
        self.agents = {n: rt.layout.index_of[rt.layout.servers_on(n)[0]] for n in self.nodes}
        self.node_clock = {n: 0 for n in self.nodes}
        self.flushed = 0
        self.view = 0
        self.fresh = 0  # this node's clock at the start of the last refresh
        self.asp = rt.cfg.staleness < 0
        self.caches: dict[tuple[int, int], _Cache] = {}
        self.socks: dict[int, zmq.Socket] = {}
        self.pending: set[int] = set()
        self.phase: str | None = None
        self.target = 0
        self._ids = itertools.count(1)
        self._counter = rt.clocks.sent_bytes[rt.rank:rt.rank + 1]
        self.flushes = 0
        self.refreshes = 0

    # ------------------------------------------------------------------ set-up
    def create_caches(self, spec: TableSpec, shards: list[int], resume=None) -> dict:
        """Create this node's caches of ``shards`` of a table (filled from the checkpoint ``resume``
        when given); returns their names by shard."""
        from .server import restore
        names = {}
        own = self.server.shards.get(spec.index)
        if own is None or own.spec != spec:
            raise ValueError(f"table {spec.index} ({spec.name!r}) is not declared on this node")
        for s in shards:
            if (spec.index, s) in self.caches:
                raise ValueError(f"the cache of table {spec.name!r} shard {s} already exists")
            if not isinstance(s, int) or not 0 <= s < spec.nshards:
                raise ValueError(f"shard {s!r} of table {spec.name!r} does not exist")
            owner = self.rt.layout.servers[s]
            if self.rt.layout.node_of[owner] == self.node or not 0 <= s < spec.nshards:
                raise ValueError(f"shard {s} of table {spec.name!r} is not a remote shard of node {self.node}")
            sh = Shard.create(self.rt.job_id, spec, s, cache=True)
            try:
                if resume is not None:
                    restore(sh, resume)
            except BaseException:
                sh.unlink()
                sh.close()
                raise
            self.caches[(spec.index, s)] = _Cache(sh)
            names[str(s)] = sh.names
        return names

    def _sock(self, server: int) -> zmq.Socket:
        sock = self.socks.get(server)
        if sock is None:
            sock = connect_dealer(self.rt.ctx, self.rt.keys, self.rt.endpoints[server])
            self.socks[server] = sock
            if self._poller is not None:
                self._poller.register(sock, zmq.POLLIN)
        return sock

    _poller = None

    def register(self, poller: zmq.Poller) -> None:
        self._poller = poller
        for n, server in self.agents.items():
            if n != self.node:
                self._sock(server)
        for s in range(self.rt.nserver):
            if self.rt.layout.node_of[self.rt.layout.servers[s]] != self.node:
                self._sock(s)

    def _send(self, server: int, frames: list) -> None:
        self._sock(server).send_multipart([b"", *frames], copy=False)
        self._counter[0] += frames_nbytes(frames)

    # ------------------------------------------------------------------ events
    def on_worker_clock(self) -> None:
        self._advance()

    def on_node_clock(self, node: int, clock: int) -> None:
        if node in self.node_clock and clock > self.node_clock[node]:
            self.node_clock[node] = clock
        self._advance()

    def on_events(self, events: dict) -> None:
        for sock in list(self.socks.values()):
            if sock not in events:
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._on_reply(frames[1:])
        self._advance()

    def _on_reply(self, frames: list) -> None:
        try:
            msg = decode(frames)
        except WireError as exc:
            raise RuntimeError(f"node agent {self.node}: malformed reply from an owner: {exc}") from None
        if msg.reqid not in self.pending:
            return
        if msg.op == Op.ERROR:
            raise RuntimeError(f"node agent {self.node}: an owner refused a request: {msg.extra.decode(errors='replace')}")
        self.pending.discard(msg.reqid)
        if msg.op == Op.VALUES:
            cache = self.caches[(msg.table, msg.shard)]
            fresh = msg.values
            if cache.locked():
                cache.shard.lock.acquire()
            try:
                rebase(cache.shard.array, cache.snap, fresh)
            finally:
                if cache.locked():
                    cache.shard.lock.release()

    # ------------------------------------------------------------------ phases
    def _advance(self) -> None:
        """Start or finish a flush or a refresh, as far as the state allows (never blocks)."""
        while True:
            if self.phase is not None and self.pending:
                return
            if self.phase == "flush":
                self.phase = None
                self.node_clock[self.node] = self.target
                for n, server in self.agents.items():
                    if n != self.node:
                        self._send(server, encode(Op.NODE_CLOCK, table=self.node, clock=self.target))
                continue
            if self.phase == "refresh":
                self.phase = None
                if self.target > self.view:
                    self.view = self.target
                    self.rt.clocks.global_view[0] = self.view
                    self.rt.clocks.wake_all()
                continue
            local = int(self.rt.clocks.clocks[self.local_workers].min())
            if local > self.flushed:
                self._flush(local)
                continue
            goal = min(self.node_clock.values())
            if goal > self.view:
                self._refresh(goal)  # every node delivered ``goal``: publish it once refreshed
                continue
            if self.asp and self.node_clock[self.node] > self.fresh:
                self._refresh(self.view)  # ASP: pick up what the owners have now, the view stays
                continue
            return

    def _flush(self, clock: int) -> None:
        self.phase, self.target, self.flushed = "flush", clock, clock
        self.flushes += 1
        for (table, shard), cache in self.caches.items():
            arr = cache.shard.array
            spec = cache.shard.spec
            delta = np.empty_like(arr)
            changed = np.empty(arr.shape[0], dtype=np.int64)
            if cache.locked():
                cache.shard.lock.acquire()
            try:
                n = take_delta(arr, cache.snap, delta, changed)
            finally:
                if cache.locked():
                    cache.shard.lock.release()
            if n == 0:
                continue
            keys = changed[:n] * spec.nshards + shard
            step = max(1, CHUNK_BYTES // (8 + arr.shape[1] * arr.itemsize))
            for lo in range(0, n, step):
                reqid = next(self._ids)
                self.pending.add(reqid)
                self._send(shard, encode(Op.PUSH_ADD, table, shard, reqid, clock, keys=keys[lo:lo + step],
                                         values=delta[lo:min(lo + step, n)]))

    def _refresh(self, clock: int) -> None:
        self.phase, self.target = "refresh", clock
        self.fresh = self.node_clock[self.node]
        self.refreshes += 1
        for (table, shard) in self.caches:
            reqid = next(self._ids)
            self.pending.add(reqid)
            self._send(shard, encode(Op.PULL_SHARD, table, shard, reqid, clock))

    def close(self) -> None:
        for c in self.caches.values():
            c.shard.unlink()
            c.shard.close()
        self.caches.clear()
        for sock in self.socks.values():
            sock.close(linger=0)
        self.socks.clear()
