"""A worker's ZeroMQ link to the servers: clock notices to its node agent, requests to remote owners."""

from __future__ import annotations

import itertools

import zmq

from ..errors import JobError, TableError
from ..transport.security import connect_dealer
from ..transport.wire import Message, Op, WireError, decode, encode

__all__ = ["NodeLink", "frames_nbytes"]


def frames_nbytes(frames) -> int:
    """Bytes in a list of frames (bytes, memoryviews or zmq.Frames)."""
    total = 0
    for f in frames:
        total += f.nbytes if isinstance(f, memoryview) else len(f)
    return total


class NodeLink:
    """DEALER sockets from one worker to servers, created on first use.

    ``request`` sends one message and waits (zmq poll, sleeping) for its reply;
    a server that does not answer within ``timeout`` seconds is a JobError, and
    an ERROR reply is a TableError carrying the server's message. Bytes sent to
    servers on other nodes are counted in this rank's slot of the node board.
    """

    def __init__(self, rt, timeout: float = 60.0):
        self.rt = rt
        self.timeout = timeout
        self._socks: dict[int, zmq.Socket] = {}
        self._ids = itertools.count(1)
        self._counter = rt.clocks.sent_bytes[rt.rank:rt.rank + 1]

    def _sock(self, server: int) -> zmq.Socket:
        sock = self._socks.get(server)
        if sock is None:
            sock = connect_dealer(self.rt.ctx, self.rt.keys, self.rt.endpoints[server])
            self._socks[server] = sock
        return sock

    def _remote(self, server: int) -> bool:
        return self.rt.layout.node_of[self.rt.layout.servers[server]] != self.rt.node

    def send(self, server: int, frames: list) -> None:
        """Send without waiting for a reply."""
        self._sock(server).send_multipart([b"", *frames], copy=False)
        if self._remote(server):
            self._counter[0] += frames_nbytes(frames)

    def worker_clock(self, clock: int) -> None:
        """Tell this node's agent that this worker finished ``clock``."""
        agent = self.rt.layout.index_of[self.rt.agent_rank]
        self.send(agent, encode(Op.WORKER_CLOCK, table=self.rt.index, clock=clock))

    def request(self, server: int, op: int, **fields) -> Message:
        """Send a request to server ``server`` (by server id) and return its reply."""
        reqid = next(self._ids)
        self.send(server, encode(op, reqid=reqid, **fields))
        sock = self._sock(server)
        while True:
            if not sock.poll(int(self.timeout * 1000)):
                rank = self.rt.layout.servers[server]
                raise JobError(f"server {server} (rank {rank}) did not answer {Op.NAMES[op]} within {self.timeout:.0f} s")
            frames = sock.recv_multipart(copy=False)
            try:
                msg = decode(frames[1:])
            except WireError as exc:
                raise JobError(f"server {server} sent a malformed reply: {exc}") from None
            if msg.reqid != reqid:
                continue  # a late reply to an earlier request that timed out
            if msg.op == Op.ERROR:
                raise TableError(f"server {server} refused {Op.NAMES[op]}: {msg.extra.decode(errors='replace')}")
            return msg

    def stream(self, server: int, requests, window: int = 8) -> int:
        """Send requests (dicts of ``op`` and fields) to ``server`` with at most ``window`` unanswered.

        For big transfers: the sends overlap the server's work and the
        replies, and the window bounds what is in flight (flow control).
        Returns the number of requests; an ERROR reply raises TableError.
        """
        sock = self._sock(server)
        outstanding: set[int] = set()
        sent = 0

        def collect(block: bool) -> None:
            while outstanding:
                if not sock.poll(int(self.timeout * 1000) if block else 0):
                    if block:
                        raise JobError(f"server {server} did not answer within {self.timeout:.0f} s")
                    return
                msg = decode(sock.recv_multipart(copy=False)[1:])
                if msg.op == Op.ERROR:
                    raise TableError(f"server {server} refused a request: {msg.extra.decode(errors='replace')}")
                outstanding.discard(msg.reqid)
                block = False

        for req in requests:
            while len(outstanding) >= window:
                collect(block=True)
            reqid = next(self._ids)
            fields = dict(req)
            op = fields.pop("op")
            self.send(server, encode(op, reqid=reqid, **fields))
            outstanding.add(reqid)
            sent += 1
        while outstanding:
            collect(block=True)
        return sent

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close(linger=0)
        self._socks.clear()
