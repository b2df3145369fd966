"""The control channel between a node's workers and its servers (JSON over ZeroMQ REQ/ROUTER).

Control messages are rare (declaring a table); they are JSON objects with an
``op`` that must be one of the known operations. A malformed request gets an
error reply, never an exception in the server.
"""

from __future__ import annotations

import json

import zmq

from ..errors import JobError
from ..transport.security import secure_client

__all__ = ["ControlClient", "decode_request", "OPS"]

OPS = ("create", "cache", "save", "ping")


def decode_request(payload: bytes) -> dict:
    """Parse and check a control request; raise ValueError with the reason when it is bad."""
    try:
        msg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request is not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise ValueError("request is not a JSON object")
    op = msg.get("op")
    if op not in OPS:
        raise ValueError(f"unknown op {op!r} (known: {', '.join(OPS)})")
    return msg


class ControlClient:
    """A REQ socket to one server, with a timeout so a dead server is an error, not a hang."""

    def __init__(self, ctx: zmq.Context, endpoint: str, server_rank: int, keys, timeout: float = 120.0):
        self.endpoint = endpoint
        self.server_rank = server_rank
        self.sock = secure_client(ctx.socket(zmq.REQ), keys)
        self.sock.linger = 0
        self.sock.rcvtimeo = int(timeout * 1000)
        self.sock.sndtimeo = int(timeout * 1000)
        self.sock.connect(endpoint)

    def call(self, **msg) -> dict:
        """Send a request and return the reply; an error reply or a timeout raises JobError."""
        try:
            self.sock.send(json.dumps(msg).encode())
            reply = json.loads(self.sock.recv())
        except zmq.Again:
            raise JobError(f"server rank {self.server_rank} at {self.endpoint} did not answer {msg.get('op')!r}") from None
        if not reply.get("ok"):
            raise JobError(f"server rank {self.server_rank} refused {msg.get('op')!r}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        self.sock.close(linger=0)
