"""The server role: owns one shard of every table, answers requests, and (the node's first server)
keeps the node's caches of remote shards in step.

One ROUTER socket takes everything: JSON control requests from the node's
workers (declare a table), binary wire messages from workers and other nodes'
agents (push, pull, clock notices). Every request is checked before it is
used; a bad one gets an ERROR reply and is counted, and the tables are left
as they were.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import zmq

from .. import checkpoint
from ..errors import JobError, ParasolError
from ..tables.kernels import first_bad_row, refusal, scatter_add
from ..tables.rules import get_rule
from ..tables.shard import Shard
from ..tables.sparse import insert_rows, lookup_rows, shard_items
from ..tables.spec import TableSpec
from ..transport.outbox import Outbox
from ..transport.wire import Message, Op, WireError, decode, encode
from .agent import NodeAgent
from .control import decode_request
from .declare import RequestError, check_spec, folder_inside, new_shard
from .link import frames_nbytes, identity_rank

__all__ = ["Server", "RequestError"]


REQUESTS = (Op.PUSH_ADD, Op.PUSH_RULE, Op.PULL, Op.PULL_SHARD, Op.SPARSE_PUSH, Op.SPARSE_PULL, Op.SPARSE_ITEMS,
            Op.NODE_CLOCK, Op.WORKER_CLOCK)


#: replies waiting for room (a full peer queue) before the server stops reading new requests
OUTBOX_LIMIT = 4096


class AgentFailure(Exception):
    """Carries an error of the node agent's own work (a flush, a refresh) out of request handling."""


class Server:
    """Serves shard ``rt.index`` of every table; on the node's first server also runs the NodeAgent."""

    def __init__(self, runtime, sock: zmq.Socket):
        self.rt = runtime
        self.sock = sock
        self.shards: dict[int, Shard] = {}
        self.sparse_keys: dict[int, int] = {}   # values table -> keys table of a sparse table
        self._placeholders: dict[int, tuple] = {}
        self.errors = 0
        self.handled = 0
        self._counter = runtime.clocks.sent_bytes[runtime.rank:runtime.rank + 1]
        self.timeout = float(runtime.cfg.get("peer_timeout", 60.0))
        self.writes: dict[int, int] = {}  # table -> pushes applied to its shard here (copies carry it)
        self.outbox = Outbox(self._unroutable)
        self.agent = NodeAgent(runtime, self.declared) if runtime.is_agent and runtime.cluster else None

    def declared(self, table: int) -> TableSpec | None:
        """The spec of ``table`` when this server holds its shard (what the node agent may cache)."""
        sh = self.shards.get(table)
        return None if sh is None else sh.spec

    # ------------------------------------------------------------------ control
    def _control(self, payload: bytes) -> dict:
        try:
            msg = decode_request(payload)
            if msg["op"] == "ping":
                return {"ok": True, "rank": self.rt.rank}
            if msg["op"] == "save":
                return {"ok": True, "files": self._save(folder_inside(msg.get("dir"), checkpoint.root_of(self.rt.cfg),
                                                                      "checkpoint"))}
            spec = check_spec(msg.get("spec"), self.rt.nserver)
            resume = None
            if msg.get("resume"):
                if not self.rt.cfg.resume:
                    raise RequestError("this job does not resume from a checkpoint")
                resume = folder_inside(msg["resume"], Path(self.rt.cfg.resume), "resume")
            if msg["op"] == "cache":
                if self.agent is None:
                    raise RequestError("only a node agent in cluster mode keeps caches")
                return {"ok": True, "names": self.agent.create_caches(spec, [int(s) for s in msg["shards"]], resume)}
            shard = int(msg["shard"])
            if shard != self.rt.index:
                raise RequestError(f"this server owns shard {self.rt.index}, not {shard}")
            if spec.index in self.shards:
                raise RequestError(f"table {spec.index} ({spec.name!r}) already exists")
            sparse = msg.get("sparse_keys")
            if sparse is not None and (not isinstance(sparse, int) or sparse not in self.shards):
                raise RequestError(f"sparse_keys {sparse!r} is not a table of this server")
            sh = new_shard(self.rt.job_id, spec, shard, resume)
            self.shards[spec.index] = sh
            if sparse is not None:
                self.sparse_keys[spec.index] = sparse
            return {"ok": True, "names": sh.names}
        except Exception as exc:  # noqa: BLE001 - a bad request never takes the server down
            self.errors += 1
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _save(self, folder: Path) -> list[dict]:
        """Write every owned shard (values and state) into ``folder``; the job is quiescent meanwhile."""
        files = []
        for idx, sh in sorted(self.shards.items()):
            data = self._apply(sh, lambda: np.array(sh.array))
            files += checkpoint.write_shard(folder, idx, sh.shard, data, sh.state.array)
        return files

    # ------------------------------------------------------------------ data
    def _shard(self, msg: Message) -> Shard:
        sh = self.shards.get(msg.table)
        if sh is None:
            raise RequestError(f"unknown table {msg.table}")
        if msg.shard != self.rt.index:
            raise RequestError(f"this server owns shard {self.rt.index}, not {msg.shard}")
        return sh

    def _tuple(self, sh: Shard) -> tuple:
        """The shard's array in a tuple of ``nshards`` (placeholders elsewhere), as kernels index it."""
        S = sh.spec.nshards
        ph = self._placeholders.get(sh.spec.index)
        if ph is None or ph[sh.shard] is not sh.array:
            dummy = np.zeros((1, sh.spec.dim), dtype=sh.array.dtype)
            ph = tuple(sh.array if s == sh.shard else dummy for s in range(S))
            self._placeholders[sh.spec.index] = ph
        return ph

    def _check_keys(self, sh: Shard, keys: np.ndarray) -> None:
        spec = sh.spec
        if keys.size == 0:
            return
        if keys.min() < 0 or keys.max() >= spec.rows:
            raise RequestError(f"table {spec.name!r}: key out of range [0, {spec.rows})")
        if np.any(keys % spec.nshards != sh.shard):
            raise RequestError(f"table {spec.name!r}: key not in shard {sh.shard}")

    def _check_values(self, sh: Shard, msg: Message) -> None:
        """Refuse pushed values of the wrong dtype or width, or holding NaN or ±Inf (naming the row's key)."""
        if msg.dtype != sh.array.dtype or msg.dim != sh.spec.dim:
            raise RequestError(f"table {sh.spec.name!r}: values are {msg.dtype} × {msg.dim}, "
                               f"the table is {sh.array.dtype} × {sh.spec.dim}")
        if msg.values is not None and msg.values.dtype.kind == "f":
            bad = first_bad_row(msg.values)
            if bad >= 0:
                row = f"row {int(msg.keys[bad])}" if msg.keys is not None else f"value row {bad}"
                raise RequestError(f"table {sh.spec.name!r}: the deltas of {row} hold NaN or ±Inf; "
                                   f"nothing was written")

    def _apply(self, sh: Shard, fn):
        if sh.spec.exact:
            sh.lock.acquire()
            try:
                return fn()
            finally:
                sh.lock.release()
        return fn()

    def _data(self, msg: Message) -> list | None:
        op = msg.op
        if op not in REQUESTS:
            raise RequestError(f"{msg.name} is not a request")
        if op == Op.WORKER_CLOCK or op == Op.NODE_CLOCK:
            if self.agent is None:
                raise RequestError(f"{msg.name} sent to a server that is not a node agent")
            if op == Op.NODE_CLOCK and (msg.table == self.rt.node or msg.table not in self.agent.node_clock):
                raise RequestError(f"NODE_CLOCK from node {msg.table}: not another node of this job")
            try:  # what the agent does then is the job's work, not a check of the message: it must not fail quietly
                if op == Op.WORKER_CLOCK:
                    self.agent.on_worker_clock()
                else:
                    self.agent.on_node_clock(msg.table, msg.clock)
            except Exception as exc:
                raise AgentFailure(exc) from exc
            return None
        if op in (Op.SPARSE_PUSH, Op.SPARSE_PULL, Op.SPARSE_ITEMS):
            return self._sparse(msg)
        sh = self._shard(msg)
        if op == Op.PULL_SHARD:  # the copy carries the number of writes applied so far (tables/cache.py)
            out = self._apply(sh, lambda: np.array(sh.array))
            return encode(Op.VALUES, msg.table, msg.shard, msg.reqid, self.writes.get(msg.table, 0), values=out)
        self._check_keys(sh, msg.keys)
        if op == Op.PULL:
            rows = msg.keys // sh.spec.nshards
            out = self._apply(sh, lambda: sh.array[rows])
            return encode(Op.VALUES, msg.table, msg.shard, msg.reqid, values=out)
        self._check_values(sh, msg)
        self.writes[msg.table] = self.writes.get(msg.table, 0) + 1
        if op == Op.PUSH_ADD:
            self._apply(sh, lambda: scatter_add(self._tuple(sh), sh.spec.rows, msg.keys, msg.values))
        elif op == Op.PUSH_RULE:  # answered with the rows as the rule left them (the pusher's cache follows)
            rule, hp = self._rule_of(sh, msg.extra)
            states = tuple(sh.state.array if s == sh.shard
                           else np.zeros((1, sh.spec.state_slots, sh.spec.dim), sh.array.dtype)
                           for s in range(sh.spec.nshards))
            rows = msg.keys // sh.spec.nshards

            def apply_rule():
                rule.apply(self._tuple(sh), states, sh.spec.rows, msg.keys, np.ascontiguousarray(msg.values), hp)
                return sh.array[rows]
            return encode(Op.VALUES, msg.table, msg.shard, msg.reqid, self.writes[msg.table],
                          values=self._apply(sh, apply_rule))
        else:
            raise RequestError(f"{msg.name} is not a request")
        return encode(Op.ACK, msg.table, msg.shard, msg.reqid)

    @staticmethod
    def _rule_of(sh: Shard, extra: bytes):
        """The rule and hyper-parameters a PUSH_RULE names (JSON ``{"rule": name, "hyper": {...}}``)."""
        try:
            req = json.loads(extra.decode("utf-8"))
            name, hyper = req["rule"], req.get("hyper", {})
            if not isinstance(name, str) or not isinstance(hyper, dict):
                raise TypeError("rule must be a string and hyper an object")
            rule = get_rule(name)
            base = dict(sh.spec.hyper) if name == sh.spec.rule else {}
            hp = rule.hyper_array({**base, **hyper})
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, ParasolError) as exc:
            raise RequestError(f"bad PUSH_RULE rule {bytes(extra[:80])!r} (want JSON {{\"rule\": name, "
                               f"\"hyper\": {{...}}}}): {exc}") from None
        if sh.array.dtype.name not in rule.dtypes or rule.state_slots > sh.spec.state_slots:
            raise RequestError(f"rule {rule.name!r} does not apply to table {sh.spec.name!r}")
        return rule, hp

    def _sparse(self, msg: Message) -> list:
        sh = self._shard(msg)
        kidx = self.sparse_keys.get(msg.table)
        if kidx is None:
            raise RequestError(f"table {msg.table} is not a sparse table")
        ksh = self.shards[kidx]
        if msg.op == Op.SPARSE_ITEMS:
            keys, values = self._apply(sh, lambda: shard_items(ksh.array, sh.array))
            return encode(Op.ITEMS, msg.table, msg.shard, msg.reqid, keys=keys, values=values)
        keys = msg.keys
        if keys.size and (keys.min() < 0 or np.any(keys % sh.spec.nshards != sh.shard)):
            raise RequestError(f"sparse table {sh.spec.name!r}: key negative or not in shard {sh.shard}")
        if msg.op == Op.SPARSE_PULL:
            out = np.zeros((keys.shape[0], sh.spec.dim), dtype=sh.array.dtype)
            lookup_rows(self._tuple(ksh), self._tuple(sh), sh.spec.rows, keys, out)  # keys checked: no refusal
            return encode(Op.VALUES, msg.table, msg.shard, msg.reqid, values=out)
        self._check_values(sh, msg)
        values = np.ascontiguousarray(msg.values)
        code = self._apply(sh, lambda: insert_rows(self._tuple(ksh), self._tuple(sh), sh.spec.rows, keys, values))
        if code >= 0:  # keys and values were checked: the shard is full (and left as it was)
            i = refusal(code, keys.shape[0])[1]
            raise RequestError(f"sparse table {sh.spec.name!r} is full: shard {sh.shard} has no free slot "
                               f"for key {int(keys[i])} among its {ksh.array.shape[0]}; nothing was "
                               f"written; declare a larger capacity")
        return encode(Op.ACK, msg.table, msg.shard, msg.reqid)

    def _peer(self, identity) -> str:
        """How errors name the peer behind a ROUTER identity."""
        rank = identity_rank(bytes(identity))
        if rank is None or not 0 <= rank < len(self.rt.layout.node_of):
            return f"peer {bytes(identity)[:16]!r}"
        role = "server" if self.rt.layout.is_server[rank] else "worker"
        return f"rank {rank} ({role} {self.rt.layout.index_of[rank]}, node {self.rt.layout.node_of[rank]})"

    def _unroutable(self, identity, what: str) -> None:
        self.errors += 1
        print(f"parasol: {self.rt.describe()}: reply {what} not sent: {self._peer(identity)} is not connected "
              f"(it left before its answer)", file=sys.stderr, flush=True)

    def _reply(self, envelope: list, frames: list, remote_peer: bool, what: str = "") -> None:
        """Send without blocking (ROUTER_MANDATORY): what a full queue does not take waits in the outbox."""
        identity = envelope[0].bytes if hasattr(envelope[0], "bytes") else bytes(envelope[0])
        self.outbox.send(self.sock, identity, envelope + frames, what)
        if remote_peer:
            self._counter[0] += frames_nbytes(frames)

    def _handle(self, frames: list) -> None:
        # [identity, b"", payload...]
        if len(frames) < 3 or frames[1].bytes != b"":
            self.errors += 1
            return
        envelope = frames[:2]
        first = frames[2].bytes if len(frames) == 3 else None
        if first is not None and first[:1] == b"{":
            self._reply(envelope, [json.dumps(self._control(first)).encode()], False, "a control reply")
            return
        self.handled += 1
        try:
            msg = decode(frames[2:])
        except WireError as exc:
            self.errors += 1
            self._reply(envelope, encode(Op.ERROR, extra=f"malformed message: {exc}".encode()), True)
            return
        try:
            reply = self._data(msg)
        except AgentFailure as exc:  # the node agent's own work failed: that ends the job
            raise exc.__cause__ from None
        except Exception as exc:  # noqa: BLE001 - a bad request never takes the server down
            self.errors += 1
            reply = encode(Op.ERROR, msg.table, msg.shard, msg.reqid, extra=f"{exc}".encode()[:4000])
        if reply is not None:
            self._reply(envelope, reply, msg.op in (Op.PULL_SHARD, Op.PULL, Op.SPARSE_PULL, Op.SPARSE_ITEMS,
                                                   Op.PUSH_ADD, Op.PUSH_RULE, Op.SPARSE_PUSH),
                        f"to {msg.name} of table {msg.table} shard {msg.shard}")

    # ------------------------------------------------------------------ loop
    def serve(self, done) -> None:
        """Answer requests until ``done()`` is true.

        Never blocks on a peer: replies that a full queue does not take wait in
        a bounded outbox (while it is full, no new request is read), and one
        that waits longer than ``peer_timeout`` ends the job with an error
        naming the peer; the node agent bounds its own waits (``NodeAgent.tick``).
        """
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises, it does not vanish
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        if self.agent is not None:
            self.agent.register(poller)
        reading = True
        while not done():
            waiting = len(self.outbox) or (self.agent is not None and len(self.agent.outbox))
            events = dict(poller.poll(2 if waiting else 20))
            self.outbox.flush()
            full = len(self.outbox) >= OUTBOX_LIMIT
            if full == reading:  # a full outbox: stop reading requests (and stop polling for them, or poll
                reading = not full  # returns at once and the loop spins) until the peers take their replies
                poller.modify(self.sock, zmq.POLLIN if reading else 0)
            if reading and self.sock in events:
                for _ in range(64):
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(frames)
            self._check_outbox()
            if self.agent is not None:
                self.agent.on_events(events)
                self.agent.tick(listening=reading)

    def _check_outbox(self) -> None:
        stuck = self.outbox.oldest()
        if stuck is not None and stuck[0] > self.timeout:
            raise JobError(f"{self.rt.describe()} on node {self.rt.node}: {self._peer(stuck[1])} did not take the "
                           f"reply {stuck[2]} for {stuck[0]:.1f} s (peer_timeout {self.timeout:g} s)")

    def close(self) -> None:
        """Unlink and unmap this server's shards and the agent's caches.

        At the end of a job it runs after ``Runtime.finish`` (sockets closed, zmq context destroyed,
        so no frame points into a shard any more); on a failure it may run before, and a shard
        that a view or frame still uses then stays mapped until that is gone (see ``Segment.close``).
        """
        if self.agent is not None:
            self.agent.close()
        for sh in self.shards.values():
            sh.unlink()
            sh.close()
        self.shards.clear()
        self._placeholders.clear()
        sys.stdout.flush()

