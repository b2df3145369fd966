"""The server role: owns its shards of every table and answers control requests until the job ends."""

from __future__ import annotations

import sys

import zmq

from ..errors import ParasolError
from ..tables.shard import Shard
from ..tables.spec import TableSpec
from .collectives import wait  # noqa: F401  (kept for symmetry with workers)
from .control import decode_request

__all__ = ["Server"]


class Server:
    """Serves one shard index (its server id) of every table declared in the job.

    The loop sleeps in ``zmq.Poller.poll`` and returns when every worker has
    reached the end of the job (the job's final barrier completes).
    """

    def __init__(self, runtime, sock: zmq.Socket):
        self.rt = runtime
        self.sock = sock
        self.shards: dict[int, Shard] = {}
        self.errors = 0

    def _handle(self, payload: bytes) -> dict:
        try:
            msg = decode_request(payload)
            if msg["op"] == "ping":
                return {"ok": True, "rank": self.rt.rank}
            spec = TableSpec(**msg["spec"])
            shard = int(msg["shard"])
            if shard != self.rt.index:
                raise ValueError(f"this server owns shard {self.rt.index}, not {shard}")
            if spec.index in self.shards:
                raise ValueError(f"table {spec.index} ({spec.name!r}) already exists")
            sh = Shard.create(self.rt.job_id, spec, shard)
            self.shards[spec.index] = sh
            return {"ok": True, "names": sh.names}
        except (ValueError, TypeError, KeyError, ParasolError) as exc:
            self.errors += 1
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def serve(self, done) -> None:
        """Answer requests until ``done()`` is true."""
        import json

        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not done():
            if not poller.poll(20):
                continue
            frames = self.sock.recv_multipart()
            if len(frames) < 3:
                self.errors += 1
                continue
            reply = self._handle(frames[-1])
            self.sock.send_multipart(frames[:-1] + [json.dumps(reply).encode()])

    def close(self) -> None:
        for sh in self.shards.values():
            sh.unlink()
            sh.close()
        self.shards.clear()
        sys.stdout.flush()
