"""Sends that never block a poll loop and are never dropped in silence.

A socket whose peer's queue is full (the high-water mark) refuses a
non-blocking send with ``zmq.Again``. :class:`Outbox` then keeps the message,
in order per peer, and sends it when room appears (:meth:`Outbox.flush`, called
by the loop, typically on ``POLLOUT``); :meth:`Outbox.oldest` tells the loop
how long the oldest message has waited, so that a peer that stops reading ends
the job after a bounded time instead of stalling it.
"""

from __future__ import annotations

import errno
import time
from collections import deque
from typing import Callable, Hashable

import zmq

__all__ = ["Outbox", "Unroutable"]


class Unroutable(Exception):
    """A ROUTER_MANDATORY socket has no peer with the message's identity (the peer disconnected)."""


class Outbox:
    """Messages waiting for room, per peer key, each with when it was queued and what it is.

    ``send(sock, key, frames, what)`` sends at once when nothing waits for
    ``key`` and the socket takes the message; otherwise queues it. ``what`` is
    a short description for error messages. ``len(outbox)`` is the number of
    waiting messages. ``on_unroutable(key, what)`` is called when a ROUTER
    has no such peer any more (default: raise :class:`Unroutable`).
    """

    def __init__(self, on_unroutable: Callable[[Hashable, str], None] | None = None):
        self._queues: dict[Hashable, deque] = {}
        self._count = 0
        self._on_unroutable = on_unroutable

    def __len__(self) -> int:
        return self._count

    def _try(self, sock: zmq.Socket, key, frames: list, what: str) -> bool:
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                raise
            if self._on_unroutable is None:
                raise Unroutable(f"{what}: the peer is not connected") from None
            self._on_unroutable(key, what)
            return True  # reported, not queued: nobody can take it

    def send(self, sock: zmq.Socket, key: Hashable, frames: list, what: str) -> None:
        q = self._queues.get(key)
        if not q and self._try(sock, key, frames, what):
            return
        if q is None:
            q = self._queues[key] = deque()
        q.append((time.monotonic(), sock, frames, what))
        self._count += 1

    def flush(self) -> None:
        """Send what the sockets take now, in order per peer."""
        if not self._count:
            return
        for key in list(self._queues):
            q = self._queues[key]
            while q:
                _, sock, frames, what = q[0]
                if not self._try(sock, key, frames, what):
                    break
                q.popleft()
                self._count -= 1
            if not q:
                del self._queues[key]

    def oldest(self) -> tuple[float, Hashable, str] | None:
        """``(seconds waited, key, what)`` of the message that has waited longest, or None."""
        best = None
        for key, q in self._queues.items():
            if q and (best is None or q[0][0] < best[0]):
                best = (q[0][0], key, q[0][3])
        if best is None:
            return None
        return time.monotonic() - best[0], best[1], best[2]

    def drop(self, key: Hashable) -> None:
        """Forget what waits for ``key`` (its socket is being closed)."""
        q = self._queues.pop(key, None)
        if q:
            self._count -= len(q)
