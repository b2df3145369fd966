"""CURVE keys made per job, and the sockets and authenticator that use them.

Rank 0 makes a server key pair and a client key pair when the job starts and
hands them to every rank over MPI (the channel ``mpiexec`` set up; nothing is
written to disk). Every server socket is a CURVE server that only accepts the
job's client key (a ZAP handler checks it), so a process without the job's
keys is refused, and all traffic is encrypted.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import zmq
from zmq.auth.thread import ThreadAuthenticator

__all__ = ["JobKeys", "secure_server", "secure_client", "connect_dealer", "start_authenticator", "ZAP_DOMAIN",
           "QUEUE_LIMIT"]

#: messages a socket queues per peer before a sender blocks (bounded queues)
QUEUE_LIMIT = 1000

ZAP_DOMAIN = "parasol"


@dataclass(frozen=True)
class JobKeys:
    """The job's CURVE key pairs (z85-encoded bytes)."""

    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def generate(cls) -> "JobKeys":
        sp, ss = zmq.curve_keypair()
        cp, cs = zmq.curve_keypair()
        return cls(sp, ss, cp, cs)


def secure_server(sock: zmq.Socket, keys: JobKeys) -> zmq.Socket:
    """Make ``sock`` a CURVE server of the job (set before bind)."""
    sock.zap_domain = ZAP_DOMAIN.encode()
    sock.curve_secretkey = keys.server_secret
    sock.curve_publickey = keys.server_public
    sock.curve_server = True
    return sock


def secure_client(sock: zmq.Socket, keys: JobKeys) -> zmq.Socket:
    """Make ``sock`` a CURVE client of the job (set before connect)."""
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.client_public
    sock.curve_secretkey = keys.client_secret
    return sock


def connect_dealer(ctx: zmq.Context, keys: JobKeys, endpoint: str, identity: bytes | None = None) -> zmq.Socket:
    """A DEALER socket of the job (CURVE client, bounded queues, no linger) connected to ``endpoint``.

    ``identity`` (unique per server socket it connects to) is the routing id the server sees, so that
    its errors can name the peer.
    """
    sock = secure_client(ctx.socket(zmq.DEALER), keys)
    if identity is not None:
        sock.routing_id = identity
    sock.linger = 0
    sock.sndhwm = QUEUE_LIMIT
    sock.rcvhwm = QUEUE_LIMIT
    sock.connect(endpoint)
    return sock


class _JobClientsOnly:
    """ZAP credentials provider: accept exactly the job's client key."""

    def __init__(self, keys: JobKeys):
        self._key = keys.client_public
        self.refused = 0

    def callback(self, domain: str, key: bytes) -> bool:
        ok = hmac.compare_digest(bytes(key), self._key)
        if not ok:
            self.refused += 1
        return ok


def start_authenticator(ctx: zmq.Context, keys: JobKeys) -> ThreadAuthenticator:
    """Start the ZAP handler of ``ctx`` that accepts only the job's client key."""
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("parasol.zap"))
    auth.start()
    provider = _JobClientsOnly(keys)
    auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=provider)
    auth.provider = provider
    return auth
