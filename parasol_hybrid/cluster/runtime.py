"""Start-up of a rank: config, job id, node, role, sockets; and the end of the job.

``Runtime.start`` runs on every rank of the MPI job. MPI is used here and for
rare collectives only; nothing here waits by spinning.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import zmq
from mpi4py import MPI

from ..config import Config
from ..tables.segment import check_job_id, new_job_id
from .collectives import allgather_obj, barrier, bcast_obj, wait
from .roles import Layout, assign_roles, simulated_nodes

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """What a rank knows about the job and itself."""

    cfg: Config
    job_id: str
    world: MPI.Comm
    layout: Layout
    rank: int
    role: str                 # "worker" or "server"
    index: int                # worker id or server id
    node: int
    role_comm: MPI.Comm       # the ranks of the same role
    node_role_comm: MPI.Comm  # the ranks of the same role on the same node
    endpoints: list           # control endpoint of every server, by server id
    ctx: zmq.Context
    host: str = field(default_factory=socket.gethostname)
    _control_sock: zmq.Socket | None = None
    _final: MPI.Request | None = None

    @classmethod
    def start(cls, cfg: Config) -> "Runtime":
        world = MPI.COMM_WORLD.Dup()
        rank, size = world.rank, world.size
        job_id = os.environ.get("PARASOL_JOB_ID") or None
        job_id = bcast_obj(world, job_id or new_job_id())
        check_job_id(job_id)

        if cfg.simulate_nodes > 1:
            node_keys = simulated_nodes(size, cfg.simulate_nodes)
        else:
            shared = world.Split_type(MPI.COMM_TYPE_SHARED)
            leader = bcast_obj(shared, rank)
            shared.Free()
            node_keys = allgather_obj(world, leader)
        layout = assign_roles(list(node_keys), cfg.nworker, cfg.nserver)
        is_server = layout.is_server[rank]
        role = "server" if is_server else "worker"
        node = layout.node_of[rank]
        role_comm = world.Split(1 if is_server else 0, rank)
        node_role_comm = role_comm.Split(node, rank)

        ctx = zmq.Context()
        sock = None
        endpoint = None
        if is_server:
            sock = ctx.socket(zmq.ROUTER)
            sock.linger = 0
            port = sock.bind_to_random_port("tcp://127.0.0.1")
            endpoint = f"tcp://127.0.0.1:{port}"
        eps = allgather_obj(world, endpoint)
        endpoints = [eps[r] for r in layout.servers]
        rt = cls(cfg, job_id, world, layout, rank, role, layout.index_of[rank], node, role_comm,
                 node_role_comm, endpoints, ctx)
        rt._control_sock = sock
        return rt

    # ------------------------------------------------------------------
    @property
    def nworker(self) -> int:
        return len(self.layout.workers)

    @property
    def nserver(self) -> int:
        return len(self.layout.servers)

    @property
    def nnodes(self) -> int:
        return self.layout.nnodes

    def describe(self) -> str:
        """``rank 3 (worker 1) on host h`` — how errors name a rank."""
        return f"rank {self.rank} ({self.role} {self.index}) on host {self.host}"

    def begin_end(self) -> None:
        """Enter the job's final barrier (non-blocking)."""
        if self._final is None:
            self._final = self.world.Ibarrier()

    def ended(self) -> bool:
        """Whether every rank has entered the final barrier."""
        self.begin_end()
        return bool(self._final.Test())

    def finish(self) -> None:
        """Wait (sleeping) until every rank has entered the final barrier, then close sockets."""
        self.begin_end()
        wait(self._final, max_sleep=0.01)
        self.close()

    def close(self) -> None:
        if self._control_sock is not None:
            self._control_sock.close(linger=0)
            self._control_sock = None
        self.ctx.destroy(linger=0)

    def node_barrier(self) -> None:
        barrier(self.node_role_comm)
