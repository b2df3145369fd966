"""Start-up of a rank: config, job id, node, role, keys, sockets, clocks; and the end of the job.

``Runtime.start`` runs on every rank of the MPI job. MPI is used here and for
rare collectives only; nothing here waits by spinning.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field

import zmq
from mpi4py import MPI

from .._layout import Layout, assign_roles, simulated_nodes
from ..config import ENV_JOB_DIR, ENV_JOB_ID, Config, environment_value
from ..errors import ConfigError
from ..staleness.clock import Clocks
from ..tables.segment import check_job_id, new_job_id
from ..transport.security import QUEUE_LIMIT, JobKeys, secure_server, start_authenticator
from .collectives import allgather_obj, barrier, bcast_obj, wait
from .netif import bind_address
from .watchdog import FINISHED, RUNNING, Watchdog

__all__ = ["Runtime"]

#: a peer that sends a larger message is disconnected (flushes are chunked well below this)
MAX_MESSAGE_BYTES = 1 << 30


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
    node_comm: MPI.Comm       # every rank of the same node
    endpoints: list           # endpoint of every server, by server id
    ctx: zmq.Context
    keys: JobKeys
    clock_names: dict
    host: str = field(default_factory=socket.gethostname)
    sock: zmq.Socket | None = None   # a server's ROUTER socket
    clocks: Clocks | None = None     # the node's clock board
    watchdog: Watchdog | None = None
    _auth: object = None
    _final: MPI.Request | None = None

    @classmethod
    def start(cls, cfg: Config) -> "Runtime":
        """Set up this rank (collective). The ranks must have met already in a collective that sleeps
        while it waits (``run()``'s config check): MPICH's blocking ones below spin a core each."""
        world = MPI.COMM_WORLD.Dup()
        rank, size = world.rank, world.size
        job_id = environment_value(ENV_JOB_ID)
        job_id = bcast_obj(world, job_id or new_job_id())
        check_job_id(job_id)

        shared = world.Split_type(MPI.COMM_TYPE_SHARED)
        host_leader = bcast_obj(shared, rank)
        shared.Free()
        host_keys = allgather_obj(world, host_leader)
        single_host = len(set(host_keys)) == 1
        interface = cfg.interface  # PARASOL_INTERFACE, when set, is already in it (load_config)
        try:  # every rank knows these: each refuses, as for a bad config, and rank 0 says why
            if cfg.simulate_nodes > 1 and not single_host:
                raise ConfigError("simulate_nodes splits one host into nodes; this job already runs on several hosts")
            if interface == "auto" and not single_host:
                bind_address(interface, single_host)
        except ConfigError as exc:
            exc.every_rank = True
            raise
        node_keys = simulated_nodes(size, cfg.simulate_nodes) if cfg.simulate_nodes > 1 else host_keys
        layout = assign_roles(list(node_keys), cfg.nworker, cfg.nserver)
        is_server = layout.is_server[rank]
        role = "server" if is_server else "worker"
        node = layout.node_of[rank]
        role_comm = world.Split(1 if is_server else 0, rank)
        node_role_comm = role_comm.Split(node, rank)
        node_comm = world.Split(node, rank)

        keys = bcast_obj(world, JobKeys.generate() if rank == 0 else None)
        ctx = zmq.Context()
        sock = auth = endpoint = None
        if is_server:
            address = bind_address(interface, single_host)
            auth = start_authenticator(ctx, keys)
            sock = secure_server(ctx.socket(zmq.ROUTER), keys)
            sock.linger = 0
            sock.rcvhwm = QUEUE_LIMIT   # bounded queues: a fast sender blocks, it cannot
            sock.sndhwm = QUEUE_LIMIT   # exhaust a server's memory
            sock.maxmsgsize = MAX_MESSAGE_BYTES
            try:
                port = sock.bind_to_random_port(f"tcp://{address}")
            except zmq.ZMQError as exc:
                raise ConfigError(f"config key 'interface': cannot bind to {address} on host "
                                  f"{socket.gethostname()}: {exc}") from None
            endpoint = f"tcp://{address}:{port}"
        eps = allgather_obj(world, endpoint)
        endpoints = [eps[r] for r in layout.servers]

        # The node's first server makes the clock board; every rank of the node maps it.
        agent = layout.servers_on(node)[0]
        names = None
        if rank == agent:
            nworker = len(layout.workers)
            names = Clocks.create(job_id, nworker, size)
        names = bcast_obj(node_comm, names, root=_node_root(node_comm, world, agent))
        clocks = Clocks.attach(names, -1 if is_server else layout.index_of[rank], cfg.staleness)
        clocks.cluster = layout.nnodes > 1
        clocks.states[rank] = RUNNING
        pids = allgather_obj(node_comm, (rank, os.getpid()))
        barrier(node_comm)
        if rank == agent:
            Clocks.unlink(names)
        rt = cls(cfg, job_id, world, layout, rank, role, layout.index_of[rank], node, role_comm,
                 node_role_comm, node_comm, endpoints, ctx, keys, names)
        rt.clocks = clocks
        rt.sock = sock
        rt._auth = auth
        rt.watchdog = Watchdog(rt, dict(pids)).start()
        rt._register()
        return rt

    def _register(self) -> None:
        """Tell the launcher (through ``$PARASOL_JOB_DIR``) who this process is, so it can name a dead rank."""
        folder = environment_value(ENV_JOB_DIR)
        if not folder or not os.path.isdir(folder):
            return
        info = {"rank": self.rank, "role": self.role, "index": self.index, "node": self.node,
                "host": self.host, "pid": os.getpid()}
        tmp = os.path.join(folder, f".rank-{self.rank}.tmp")
        with open(tmp, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, os.path.join(folder, f"rank-{self.rank}.json"))

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

    @property
    def cluster(self) -> bool:
        """Whether the job spans several (real or simulated) nodes."""
        return self.layout.nnodes > 1

    @property
    def agent_rank(self) -> int:
        """World rank of this node's agent (its first server)."""
        return self.layout.servers_on(self.node)[0]

    @property
    def is_agent(self) -> bool:
        return self.rank == self.agent_rank

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
        """The end of a rank that did its part: wait (sleeping) until every rank has entered the final
        barrier, mark this rank finished, stop and join the watchdog, then close every socket and
        destroy the ZeroMQ context (linger 0).

        After it, no thread of this rank runs and no zmq frame is in flight, so the caller may
        unmap its shards; :meth:`close` (the clock board) comes last.
        """
        self.begin_end()
        wait(self._final, max_sleep=0.01)
        self.clocks.states[self.rank] = FINISHED
        self.watchdog.stop()
        self.close_sockets()

    def close_sockets(self) -> None:
        """Close this rank's sockets, the authenticator and the ZeroMQ context. Idempotent."""
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if not self.ctx.closed:
            self.ctx.destroy(linger=0)  # closes the sockets the workers' links and the agent made, too

    def close(self) -> None:
        """Release what is left: the watchdog, the sockets (if :meth:`finish` did not), and last the
        clock board. Idempotent."""
        if self.watchdog is not None:
            self.watchdog.stop()
        self.close_sockets()
        if self.clocks is not None:
            self.clocks.close()
            self.clocks = None

    def node_barrier(self) -> None:
        barrier(self.node_comm)


def _node_root(node_comm: MPI.Comm, world: MPI.Comm, world_rank: int) -> int:
    """The rank in ``node_comm`` of the process that is ``world_rank`` in ``world``."""
    return MPI.Group.Translate_ranks(world.group, [world_rank], node_comm.group)[0]
