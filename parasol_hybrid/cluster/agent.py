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

The snapshot lives in shared memory next to the cache (``Shard.snap``): a
worker whose push had a rule applied at the owner writes the returned rows
into the cache and its snapshot (``tables/cache.py``), so they are not sent
again. Flushes, refreshes and those write-backs hold the cache shard's lock,
so they never interleave (exact tables' pushes hold it too: counts stay exact).

The agent is a state machine driven by the server's poll loop: it never
blocks, and every wait on a peer is bounded by ``peer_timeout`` (see
:meth:`NodeAgent.tick`): a request not answered, a message a peer's queue does
not take, or another node's agent silent for that long ends the job with a
JobError naming this node, the peer and the request. Agents send their node's
clock to each other every ``peer_timeout / 4`` s, so a lost ``NODE_CLOCK`` is
repeated and a silent agent is noticed.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

import numpy as np
import zmq

from ..errors import JobError
from ..tables.cache import rebase, take_delta
from ..tables.kernels import first_bad_row
from ..tables.shard import Shard
from ..tables.spec import TableSpec
from ..transport.outbox import Outbox
from ..transport.security import connect_dealer
from ..transport.wire import Op, WireError, decode, encode
from .declare import new_shard
from .link import dealer_identity, frames_nbytes, peer_name

__all__ = ["NodeAgent", "take_delta", "rebase", "CHUNK_BYTES"]  # the kernels live in tables/cache.py

#: flushes are sent in messages of at most this many bytes of keys and values
CHUNK_BYTES = 16 << 20


class _Cache:
    def __init__(self, shard: Shard):
        self.shard = shard
        shard.snap.array[...] = shard.array  # after a restore, too: the snapshot is what the owner holds
        shard.ver.array[...] = 0
        self.snap = shard.snap.array

    def __enter__(self):
        self.shard.lock.acquire()
        return self

    def __exit__(self, *exc):
        self.shard.lock.release()


class NodeAgent:
    """Flushes and refreshes the caches of one node; see the module docstring.

    ``rt`` is the runtime of the server it runs in, ``declared(table)`` the spec
    of a table whose shard that server holds (else None): all it needs of the
    server. The server feeds it events (:meth:`on_worker_clock`,
    :meth:`on_node_clock`, :meth:`on_events`) and calls :meth:`tick`.
    """

    def __init__(self, rt, declared: Callable[[int], TableSpec | None]):
        self.declared = declared
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
        #: reqid -> (monotonic time sent, server, op, table, shard), oldest first
        self.pending: dict[int, tuple] = {}
        self.timeout = float(rt.cfg.get("peer_timeout", 60.0))
        self.outbox = Outbox()
        now = time.monotonic()
        self.heard = {n: now for n in self.nodes if n != self.node}  # last message from each other agent
        self._beat = now
        self.phase: str | None = None
        self.target = 0
        self._ids = itertools.count(1)
        self._counter = rt.clocks.sent_bytes[rt.rank:rt.rank + 1]
        self.flushes = 0
        self.refreshes = 0

    # ------------------------------------------------------------------ set-up
    def create_caches(self, spec: TableSpec, shards: list[int], resume: Path | None = None) -> dict:
        """Create this node's caches of ``shards`` of a table (filled from the checkpoint ``resume``
        when given); returns their names by shard."""
        names = {}
        if self.declared(spec.index) != spec:
            raise ValueError(f"table {spec.index} ({spec.name!r}) is not declared on this node")
        for s in shards:
            if (spec.index, s) in self.caches:
                raise ValueError(f"the cache of table {spec.name!r} shard {s} already exists")
            if not isinstance(s, int) or not 0 <= s < spec.nshards:
                raise ValueError(f"shard {s!r} of table {spec.name!r} does not exist")
            owner = self.rt.layout.servers[s]
            if self.rt.layout.node_of[owner] == self.node or not 0 <= s < spec.nshards:
                raise ValueError(f"shard {s} of table {spec.name!r} is not a remote shard of node {self.node}")
            sh = new_shard(self.rt.job_id, spec, s, resume, cache=True)
            self.caches[(spec.index, s)] = _Cache(sh)
            names[str(s)] = sh.names
        return names

    def _sock(self, server: int) -> zmq.Socket:
        sock = self.socks.get(server)
        if sock is None:
            sock = connect_dealer(self.rt.ctx, self.rt.keys, self.rt.endpoints[server],
                                  identity=dealer_identity(self.rt.rank))
            self.socks[server] = sock
            if self._poller is not None:
                self._poller.register(sock, zmq.POLLIN)
        return sock

    _poller = None

    def register(self, poller: zmq.Poller) -> None:
        self._poller = poller
        now = time.monotonic()
        self.heard = {n: now for n in self.heard}
        self._beat = now
        for n, server in self.agents.items():
            if n != self.node:
                self._sock(server)
        for s in range(self.rt.nserver):
            if self.rt.layout.node_of[self.rt.layout.servers[s]] != self.node:
                self._sock(s)

    def _send(self, server: int, frames: list, what: str) -> None:
        """Send without blocking: what the peer's queue does not take now waits in the outbox."""
        self.outbox.send(self._sock(server), server, [b"", *frames], what)
        self._counter[0] += frames_nbytes(frames)

    def _request(self, server: int, op: int, table: int, shard: int, clock: int, **fields) -> None:
        reqid = next(self._ids)
        self.pending[reqid] = (time.monotonic(), server, op, table, shard)
        self._send(server, encode(op, table, shard, reqid, clock, **fields),
                   f"{Op.NAMES[op]} of table {table} shard {shard}")

    def _fail(self, problem: str) -> JobError:
        return JobError(f"node agent of node {self.node} ({self.rt.describe()}): {problem} "
                        f"(peer_timeout {self.timeout:g} s)")

    def tick(self, listening: bool = True) -> None:
        """Called by the poll loop every round: send what waits, beat, and bound every wait on a peer.

        ``listening`` is False while the server reads no requests (its reply queue is full): the other
        agents' clock messages wait unread then, so their silence says nothing and is not counted (the
        server names the peer that does not take its replies instead).
        """
        self.outbox.flush()
        now = time.monotonic()
        if not listening:
            self.heard = {n: now for n in self.heard}
        if now - self._beat >= self.timeout / 4:
            self._beat = now
            self._announce()
        if self.pending:
            sent, server, op, table, shard = next(iter(self.pending.values()))
            if now - sent > self.timeout:
                raise self._fail(f"{peer_name(self.rt, server)} did not answer {Op.NAMES[op]} of table {table} "
                                 f"shard {shard} within {now - sent:.1f} s")
        stuck = self.outbox.oldest()
        if stuck is not None and stuck[0] > self.timeout:
            raise self._fail(f"{peer_name(self.rt, stuck[1])} did not take {stuck[2]} for {stuck[0]:.1f} s")
        for n, t in self.heard.items():
            if now - t > self.timeout:
                raise self._fail(f"no word from the agent of node {n}, {peer_name(self.rt, self.agents[n])}, "
                                 f"for {now - t:.1f} s (it last reported clock {self.node_clock[n]}; "
                                 f"this node is at {self.node_clock[self.node]})")

    def heard_from(self, node: int) -> None:
        """A message from the agent of ``node`` arrived (it is alive)."""
        if node in self.heard:
            self.heard[node] = time.monotonic()

    def _announce(self) -> None:
        """Tell every other agent this node's clock (also the heartbeat: repeats are harmless)."""
        clock = self.node_clock[self.node]
        for n, server in self.agents.items():
            if n != self.node:
                self._send(server, encode(Op.NODE_CLOCK, table=self.node, clock=clock), f"NODE_CLOCK {clock}")

    # ------------------------------------------------------------------ events
    def on_worker_clock(self) -> None:
        self._advance()

    def on_node_clock(self, node: int, clock: int) -> None:
        self.heard_from(node)
        if node in self.node_clock and clock > self.node_clock[node]:
            self.node_clock[node] = clock
            if clock > int(self.rt.clocks.frontier[0]):
                # a worker of this node waiting in a collective catches up to it (Clocks.catch_up)
                self.rt.clocks.frontier[0] = clock
                self.rt.clocks.wake_all()
        self._advance()

    def on_events(self, events: dict) -> None:
        for server, sock in list(self.socks.items()):
            if sock not in events:
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._on_reply(server, frames[1:])
        self._advance()

    def _on_reply(self, server: int, frames: list) -> None:
        try:
            msg = decode(frames)
        except WireError as exc:
            raise JobError(f"node agent of node {self.node}: malformed reply from {peer_name(self.rt, server)}: "
                           f"{exc}") from None
        req = self.pending.get(msg.reqid)
        if req is None or req[1] != server:
            return  # not an answer to a request of ours to this peer (the reply of a heartbeat, say)
        del self.pending[msg.reqid]
        _, server, op, table, shard = req
        asked = f"{Op.NAMES[op]} of table {table} shard {shard}"
        if msg.op == Op.ERROR:
            raise JobError(f"node agent of node {self.node}: {peer_name(self.rt, server)} refused {asked}: "
                           f"{msg.extra.decode(errors='replace')}")
        want = Op.VALUES if op == Op.PULL_SHARD else Op.ACK
        if msg.op != want or (msg.table, msg.shard) != (table, shard):
            raise JobError(f"node agent of node {self.node}: {peer_name(self.rt, server)} answered {asked} with "
                           f"{msg.name} of table {msg.table} shard {msg.shard}")
        if op == Op.PULL_SHARD:
            cache = self.caches[(table, shard)]
            arr = cache.shard.array
            if msg.values is None or msg.values.shape != arr.shape or msg.values.dtype != arr.dtype:
                got = None if msg.values is None else (msg.values.dtype, msg.values.shape)
                raise JobError(f"node agent of node {self.node}: {peer_name(self.rt, server)} answered {asked} "
                               f"with values {got}, the cache is {arr.dtype} {arr.shape}")
            with cache:
                rebase(arr, cache.snap, msg.values, cache.shard.ver.array, msg.clock)

    # ------------------------------------------------------------------ phases
    def _advance(self) -> None:
        """Start or finish a flush or a refresh, as far as the state allows (never blocks)."""
        while True:
            if self.phase is not None and self.pending:
                return
            if self.phase == "flush":
                self.phase = None
                self.node_clock[self.node] = self.target
                self._announce()
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
            with cache:
                n = take_delta(arr, cache.snap, delta, changed)
            if n == 0:
                continue
            keys = changed[:n] * spec.nshards + shard
            bad = first_bad_row(delta[:n])
            if bad >= 0:  # the owner would refuse it; say which row, not which message
                raise JobError(f"node agent of node {self.node}: table {spec.name!r} row {int(keys[bad])}: the "
                               f"change this node made to it is NaN or ±Inf (the row overflowed, or an in-place "
                               f"kernel wrote a non-finite value), so it cannot be sent to its owner")
            step = max(1, CHUNK_BYTES // (8 + arr.shape[1] * arr.itemsize))
            for lo in range(0, n, step):
                self._request(shard, Op.PUSH_ADD, table, shard, clock, keys=keys[lo:lo + step],
                              values=delta[lo:min(lo + step, n)])

    def _refresh(self, clock: int) -> None:
        self.phase, self.target = "refresh", clock
        self.fresh = self.node_clock[self.node]
        self.refreshes += 1
        for (table, shard) in self.caches:
            self._request(shard, Op.PULL_SHARD, table, shard, clock)

    def close(self) -> None:
        for c in self.caches.values():
            c.shard.unlink()
            c.shard.close()
        self.caches.clear()
        for server, sock in self.socks.items():
            self.outbox.drop(server)
            sock.close(linger=0)
        self.socks.clear()
