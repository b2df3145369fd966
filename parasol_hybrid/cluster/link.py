"""A worker's ZeroMQ link to the servers: clock notices to its node agent, requests to remote owners.

Every wait on a peer is bounded by the config key ``peer_timeout``: a server
that does not take a message or does not answer within it ends the job with a
:class:`~parasol_hybrid.errors.JobError` naming this rank and node, the server
(id, rank, node, endpoint) and the request (operation, table, shard).
"""

from __future__ import annotations

import itertools
import re

import zmq

from ..errors import JobError, TableError
from ..transport.security import connect_dealer
from ..transport.wire import Message, Op, WireError, decode, encode
from .owners import OwnerRequests

__all__ = ["NodeLink", "frames_nbytes", "peer_name", "dealer_identity", "identity_rank"]

_SOCKETS = itertools.count(1)
_IDENTITY = re.compile(rb"^rank(\d+)\.\d+$")


def frames_nbytes(frames) -> int:
    """Bytes in a list of frames (bytes, memoryviews or zmq.Frames)."""
    total = 0
    for f in frames:
        total += f.nbytes if isinstance(f, memoryview) else len(f)
    return total


def dealer_identity(rank: int) -> bytes:
    """A routing id for a new DEALER socket of world rank ``rank`` (unique in the job)."""
    return b"rank%d.%d" % (rank, next(_SOCKETS))


def identity_rank(identity: bytes) -> int | None:
    """The world rank a routing id made by :func:`dealer_identity` names, else None."""
    m = _IDENTITY.match(bytes(identity))
    return int(m.group(1)) if m else None


def peer_name(rt, server: int) -> str:
    """``server 1 (rank 3, node 1, tcp://127.0.0.1:5555)`` — how errors name a server."""
    rank = rt.layout.servers[server]
    return f"server {server} (rank {rank}, node {rt.layout.node_of[rank]}, {rt.endpoints[server]})"


def request_name(op: int, fields: dict) -> str:
    """``PUSH_RULE of table 2 shard 1`` — how errors name a request."""
    return f"{Op.NAMES.get(op, op)} of table {fields.get('table', 0)} shard {fields.get('shard', 0)}"


class NodeLink(OwnerRequests):
    """DEALER sockets from one worker to servers, created on first use.

    ``request`` sends one message and waits (zmq poll, sleeping) for its reply,
    ``requests`` sends several (to different servers) and waits for all. A send
    that the server's queue does not take, or a reply that does not come,
    within ``timeout`` seconds (default: the config's ``peer_timeout``) is a
    JobError; an ERROR reply is a TableError carrying the server's message.
    Bytes sent to servers on other nodes are counted in this rank's slot of
    the node board. Its tables' requests to remote owners (``push_rule``,
    ``sparse_*``: the RemoteShards protocol) come from :class:`OwnerRequests`.
    """

    def __init__(self, rt, timeout: float | None = None):
        self.rt = rt
        self.timeout = float(rt.cfg.get("peer_timeout", 60.0) if timeout is None else timeout)
        self._socks: dict[int, zmq.Socket] = {}
        self._ids = itertools.count(1)
        self._counter = rt.clocks.sent_bytes[rt.rank:rt.rank + 1]

    def _sock(self, server: int) -> zmq.Socket:
        sock = self._socks.get(server)
        if sock is None:
            sock = connect_dealer(self.rt.ctx, self.rt.keys, self.rt.endpoints[server],
                                  identity=dealer_identity(self.rt.rank))
            self._socks[server] = sock
        return sock

    def _remote(self, server: int) -> bool:
        return self.rt.layout.node_of[self.rt.layout.servers[server]] != self.rt.node

    def _fail(self, server: int, what: str, problem: str) -> JobError:
        return JobError(f"{self.rt.describe()} on node {self.rt.node}: {peer_name(self.rt, server)} {problem} "
                        f"({what}, peer_timeout {self.timeout:g} s)")

    def send(self, server: int, frames: list, what: str = "a message") -> None:
        """Send without waiting for a reply; waits at most ``timeout`` s for room in the queue."""
        sock = self._sock(server)
        frames = [b"", *frames]
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if not sock.poll(int(self.timeout * 1000), zmq.POLLOUT):
                raise self._fail(server, what, "did not take a message") from None
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        if self._remote(server):
            self._counter[0] += frames_nbytes(frames)

    def worker_clock(self, clock: int) -> None:
        """Tell this node's agent that this worker finished ``clock``."""
        agent = self.rt.layout.index_of[self.rt.agent_rank]
        self.send(agent, encode(Op.WORKER_CLOCK, table=self.rt.index, clock=clock), f"WORKER_CLOCK {clock}")

    def _receive(self, server: int, what: str) -> Message:
        """The next reply from ``server``, waiting at most ``timeout`` s (``what``: the request, for errors)."""
        sock = self._sock(server)
        if not sock.poll(int(self.timeout * 1000)):
            raise self._fail(server, what, "did not answer")
        frames = sock.recv_multipart(copy=False)
        try:
            return decode(frames[1:])
        except WireError as exc:
            raise self._fail(server, what, f"sent a malformed reply: {exc}") from None

    def request(self, server: int, op: int, **fields) -> Message:
        """Send a request to server ``server`` (by server id) and return its reply."""
        return self.requests([(server, op, fields)])[0]

    def requests(self, batch: list) -> list[Message]:
        """Send ``(server, op, fields)`` requests (at most one per server) and return the replies in order.

        The requests are all sent before any reply is awaited, so the servers work on them together.
        """
        waiting = {}
        for pos, (server, op, fields) in enumerate(batch):
            if server in waiting:
                raise ValueError(f"two requests to server {server} in one batch")
            reqid = next(self._ids)
            what = request_name(op, fields)
            self.send(server, encode(op, reqid=reqid, **fields), what)
            waiting[server] = (pos, reqid, op, what)
        replies: list = [None] * len(batch)
        for server, (pos, reqid, op, what) in waiting.items():
            while True:
                msg = self._receive(server, what)
                if msg.reqid == reqid:
                    break  # anything else is a late reply to an earlier request that timed out
            if msg.op == Op.ERROR:
                raise TableError(f"server {server} refused {what}: {msg.extra.decode(errors='replace')}")
            replies[pos] = msg
        return replies

    def stream(self, server: int, requests, window: int = 8) -> int:
        """Send requests (dicts of ``op`` and fields) to ``server`` with at most ``window`` unanswered.

        For big transfers: the sends overlap the server's work and the
        replies, and the window bounds what is in flight (flow control).
        Returns the number of requests; an ERROR reply raises TableError.
        """
        sock = self._sock(server)
        outstanding: dict[int, str] = {}
        sent = 0

        def collect(block: bool) -> None:
            while outstanding:
                if not block and not sock.poll(0):
                    return
                msg = self._receive(server, next(iter(outstanding.values())))
                if msg.op == Op.ERROR:
                    raise TableError(f"server {server} refused a request: {msg.extra.decode(errors='replace')}")
                outstanding.pop(msg.reqid, None)
                block = False

        for req in requests:
            while len(outstanding) >= window:
                collect(block=True)
            reqid = next(self._ids)
            fields = dict(req)
            op = fields.pop("op")
            what = request_name(op, fields)
            self.send(server, encode(op, reqid=reqid, **fields), what)
            outstanding[reqid] = what
            sent += 1
        while outstanding:
            collect(block=True)
        return sent

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close(linger=0)
        self._socks.clear()
