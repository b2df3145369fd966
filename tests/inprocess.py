"""A whole job's servers, node agents, control channel and clock boards in this one process, without MPI.

In the spirit of dask distributed's ``gen_cluster``: :class:`InProcessJob` lays a job out as the launcher
would (``nworker``, ``nserver``, ``nodes`` simulated nodes), runs every server's real
:class:`~parasol_hybrid.cluster.server.Server` loop (and so every node's real
:class:`~parasol_hybrid.cluster.agent.NodeAgent`) in a thread of its own, on real CURVE ZeroMQ sockets
bound to ``tcp://127.0.0.1`` and real POSIX shared memory (one clock board per node, shards, caches).
The workers are driven from the test's thread: each has the real worker-side
:class:`~parasol_hybrid.cluster.link.NodeLink` and :class:`~parasol_hybrid.cluster.control.ControlClient`,
and :meth:`InProcessJob.table` declares a table the way ``paralg.table`` does, handing back one real
:class:`~parasol_hybrid.tables.table.Table` per worker. Only MPI is faked: :class:`FakeRuntime` has the
attributes of :class:`~parasol_hybrid.cluster.runtime.Runtime` that the server, the agent and the link read
(its derived properties are Runtime's own; importing that module loads mpi4py, but nothing calls MPI).

Usage (or the ``inprocess_job`` fixture of ``tests/conftest.py``)::

    with InProcessJob(nworker=2, nserver=2, nodes=2, peer_timeout=0.5) as job:
        t = job.table("t", (8, 2), "float64", exact=True)       # t[w]: worker w's Table
        t[0].push(np.arange(8), np.ones((8, 2)))
        job.clock_all()                                           # every worker ends clock 1 and waits
        err = job.failure(1, timeout=2)                           # what ended server 1's loop, if anything

Leaving the ``with`` block (also on an exception) stops and joins every thread, closes every table,
shard, socket and board, unlinks every name it made, and fails if a server's loop ended with an error
the test did not take with :meth:`InProcessJob.failure`. This module is for the library's own tests (it
wires internals together); users test their rules with :mod:`parasol_hybrid.testing` and real jobs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import zmq

from parasol_hybrid._layout import Layout, assign_roles, simulated_nodes
from parasol_hybrid.cluster.control import ControlClient
from parasol_hybrid.cluster.link import NodeLink
from parasol_hybrid.cluster.runtime import Runtime
from parasol_hybrid.cluster.server import Server
from parasol_hybrid.cluster.watchdog import FINISHED, RUNNING
from parasol_hybrid.config import Config, load_config
from parasol_hybrid.staleness.clock import Clocks
from parasol_hybrid.tables.segment import new_job_id
from parasol_hybrid.tables.shard import Shard
from parasol_hybrid.tables.sparse import SparseTable
from parasol_hybrid.tables.spec import TableSpec
from parasol_hybrid.tables.table import Table
from parasol_hybrid.transport.security import QUEUE_LIMIT, JobKeys, secure_server, start_authenticator

__all__ = ["FakeRuntime", "InProcessJob", "InProcessWorker"]

#: seconds ``close`` waits for a server thread to end before it calls the test a failure
JOIN_TIMEOUT = 10.0


@dataclass
class FakeRuntime:
    """What :class:`Server`, :class:`NodeAgent` and :class:`NodeLink` read of a rank's ``Runtime``, without MPI."""

    cfg: Config
    job_id: str           # per node: the segment names of two nodes must not meet in one process
    layout: Layout
    rank: int
    ctx: zmq.Context
    keys: JobKeys
    endpoints: list
    clocks: Clocks
    sock: zmq.Socket | None = None
    host: str = "inprocess"

    @property
    def role(self) -> str:
        return "server" if self.layout.is_server[self.rank] else "worker"

    @property
    def index(self) -> int:
        return self.layout.index_of[self.rank]

    @property
    def node(self) -> int:
        return self.layout.node_of[self.rank]

    # what the server, the agent and the link read of the job, as the real runtime derives it
    nworker = Runtime.nworker
    nserver = Runtime.nserver
    nnodes = Runtime.nnodes
    cluster = Runtime.cluster
    agent_rank = Runtime.agent_rank
    is_agent = Runtime.is_agent
    describe = Runtime.describe


class InProcessWorker:
    """One worker of an :class:`InProcessJob`: its runtime, clock, link to the servers and control clients."""

    def __init__(self, rt: FakeRuntime):
        self.rt = rt
        self.clocks = rt.clocks
        self.link = NodeLink(rt) if rt.cluster else None
        if self.link is not None:
            self.clocks.notify = self.link.worker_clock
        self._clients: dict[int, ControlClient] = {}

    @property
    def id(self) -> int:
        return self.rt.index

    def control(self, server: int, timeout: float = 10.0) -> ControlClient:
        """The control client (REQ socket) of this worker to server ``server`` (made on first use)."""
        client = self._clients.get(server)
        if client is None:
            rank = self.rt.layout.servers[server]
            client = ControlClient(self.rt.ctx, self.rt.endpoints[server], rank, self.rt.keys, timeout=timeout)
            self._clients[server] = client
        return client

    def advance(self, to: int | None = None) -> int:
        """End this worker's clock (as ``Clocks.tick`` does, without waiting), or move it to ``to``:
        returns the new clock."""
        c = self.clocks.clock + 1 if to is None else to
        self.clocks._publish(c)  # sets the clock, wakes the node's workers, tells the agent (WORKER_CLOCK)
        return c

    def wait(self, timeout: float = 10.0, staleness: int | None = None) -> bool:
        """Wait until the staleness bound (default: the job's) lets this worker run its current clock;
        False on timeout."""
        s = self.clocks.staleness if staleness is None else staleness
        return self.clocks.wait_until(self.clocks.clock, s, timeout)

    def tick(self, timeout: float = 10.0, staleness: int | None = None) -> int:
        """``Clocks.tick`` with a bound: end the clock, wait out the staleness bound (AssertionError after
        ``timeout`` s); returns the new clock."""
        c = self.advance()
        assert self.wait(timeout, staleness), (f"worker {self.id} (node {self.rt.node}) waited {timeout:g} s at "
                                               f"clock {c}: the view is {int(self.clocks.global_view[0])}")
        return c

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.link is not None:
            self.link.close()
            self.clocks.notify = None


class InProcessJob:
    """A job's servers (threads) and workers (driven by the test) in one process; see the module docstring.

    ``config`` keys go to :func:`load_config` (``peer_timeout``, ``staleness``...).
    """

    def __init__(self, nworker: int = 2, nserver: int = 2, nodes: int = 2, **config):
        size = nworker + nserver
        self.cfg = load_config({"nworker": nworker, "nserver": nserver, "simulate_nodes": nodes, **config},
                               check_files=False)
        self.layout = assign_roles(simulated_nodes(size, nodes), nworker, nserver)
        base = new_job_id()
        self.job_ids = [f"{base}{n:02x}" for n in range(self.layout.nnodes)]
        self.ctx = zmq.Context()
        self.keys = JobKeys.generate()
        self._auth = None
        self._boards: list[dict] = []
        self._socks: list[zmq.Socket] = []
        self.servers: list[Server] = []
        self.workers: list[InProcessWorker] = []
        self._ntables = 0  # specs declared so far: the next table's index
        self._open: list[Table] = []  # every Table mapped here, closed by close()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._failures: dict[int, BaseException] = {}
        self._changed = threading.Condition()
        self._closed = False
        try:
            self._build()
        except BaseException:
            self.close(check=False)
            raise

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        lay, cfg = self.layout, self.cfg
        self._auth = start_authenticator(self.ctx, self.keys)
        endpoints = []
        for _ in lay.servers:
            sock = secure_server(self.ctx.socket(zmq.ROUTER), self.keys)
            sock.linger = 0
            sock.rcvhwm = sock.sndhwm = QUEUE_LIMIT
            self._socks.append(sock)
            endpoints.append(f"tcp://127.0.0.1:{sock.bind_to_random_port('tcp://127.0.0.1')}")
        for n in range(lay.nnodes):
            self._boards.append(Clocks.create(self.job_ids[n], len(lay.workers), lay.size))
        runtimes = []
        try:
            for rank in range(lay.size):
                node = lay.node_of[rank]
                worker = -1 if lay.is_server[rank] else lay.index_of[rank]
                clocks = Clocks.attach(self._boards[node], worker, cfg.staleness)
                clocks.cluster = lay.nnodes > 1
                clocks.states[rank] = RUNNING
                rt = FakeRuntime(cfg, self.job_ids[node], lay, rank, self.ctx, self.keys, endpoints, clocks)
                if lay.is_server[rank]:
                    rt.sock = self._socks[lay.index_of[rank]]
                runtimes.append(rt)
        finally:
            for names in self._boards:  # every rank mapped its board (as Runtime.start does)
                Clocks.unlink(names)
        self.runtimes = runtimes
        self.servers = [Server(runtimes[r], runtimes[r].sock) for r in lay.servers]
        self.workers = [InProcessWorker(runtimes[r]) for r in lay.workers]

    def start(self) -> "InProcessJob":
        """Start every server's loop in a thread of its own."""
        for server in self.servers:
            th = threading.Thread(target=self._serve, args=(server,), name=f"inprocess-server-{server.rt.index}",
                                  daemon=True)
            self._threads.append(th)
            th.start()
        return self

    def _serve(self, server: Server) -> None:
        try:
            server.serve(self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - kept for the test: failure() or close() reports it
            with self._changed:
                self._failures[server.rt.index] = exc
                self._changed.notify_all()

    def __enter__(self) -> "InProcessJob":
        return self.start()

    def __exit__(self, kind, exc, tb) -> None:
        self.close(check=kind is None)

    # ------------------------------------------------------------------ driving
    @property
    def stopping(self) -> threading.Event:
        """Set when :meth:`close` begins: a patched server loop that idles must end when it is."""
        return self._stop

    def agent(self, node: int):
        """The NodeAgent of ``node`` (None on one node)."""
        return self.servers[self.layout.index_of[self.layout.servers_on(node)[0]]].agent

    def failure(self, server: int, timeout: float = 0.0) -> BaseException | None:
        """The error that ended server ``server``'s loop, waiting up to ``timeout`` s for one; the test
        takes it (close() no longer reports it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while server not in self._failures:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self._failures.pop(server)

    def on_node(self, node: int) -> list[InProcessWorker]:
        return [w for w in self.workers if w.rt.node == node]

    def clock_all(self, timeout: float = 10.0, staleness: int | None = None) -> int:
        """Every worker ends its clock, then each waits out the staleness bound (default: the job's);
        returns the new clock."""
        clocks = [w.advance() for w in self.workers]
        for w in self.workers:
            assert w.wait(timeout, staleness), (f"worker {w.id} (node {w.rt.node}) waited {timeout:g} s at clock "
                                                f"{w.clocks.clock}: the view is {int(w.clocks.global_view[0])}")
        return max(clocks)

    def each_worker(self, fn, timeout: float = 30.0) -> list:
        """Run ``fn(worker)`` for every worker at once, one thread each (a worker's sockets stay in its
        thread); returns the results by worker id, or raises the first worker's error."""
        results: list = [None] * len(self.workers)
        errors: list = []

        def run(w: InProcessWorker) -> None:
            try:
                results[w.id] = fn(w)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)
        threads = [threading.Thread(target=run, args=(w,), name=f"inprocess-worker-{w.id}", daemon=True)
                   for w in self.workers]
        for th in threads:
            th.start()
        deadline = time.monotonic() + timeout
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        stuck = [th.name for th in threads if th.is_alive()]
        if errors:  # the first real one: a worker that failed broke the others' barriers
            raise sorted(errors, key=lambda e: isinstance(e, threading.BrokenBarrierError))[0]
        assert not stuck, f"workers still running after {timeout:g} s: {stuck}"
        return results

    def sync(self, timeout: float = 10.0) -> int:
        """What ``paralg.sync`` does to the clocks: every worker to the highest clock, then one more clock
        with staleness 0 (every node's updates reach their owners and every cache is refreshed)."""
        top = max(w.clocks.clock for w in self.workers)
        for w in self.workers:
            if w.clocks.clock < top:
                w.advance(top)
        return self.clock_all(timeout, staleness=0)

    def table(self, name: str, shape, dtype: str = "float32", init: str = "zeros", *, rule: str = "add",
              exact: bool | None = None, a: float = 0.0, b: float = 1.0, seed: int = 0,
              hyper: dict | None = None) -> list[Table]:
        """Declare a table as ``paralg.table`` does; returns each worker's Table, by worker id."""
        spec = TableSpec.build(self._ntables, name, shape, dtype, init, a, b, seed, rule, exact,
                               len(self.layout.servers), hyper)
        return self._declare(spec)

    def sparse_table(self, name: str, capacity: int, dim: int = 1, dtype: str = "int64") -> list[SparseTable]:
        """Declare a sparse table as ``paralg.sparse_table`` does; returns each worker's SparseTable."""
        S = len(self.layout.servers)
        slots = -(-int(capacity * 10 // 7 + 1) // S) * S
        kspec = TableSpec.build(self._ntables, name + "#keys", (slots, 1), "int64", "constant", -1.0,
                                0.0, 0, "add", True, S)
        keys = self._declare(kspec, cached=False)
        vspec = TableSpec.build(self._ntables, name, (slots, dim), dtype, "zeros", 0.0, 0.0, 0, "add", True, S)
        values = self._declare(vspec, cached=False, sparse_keys=kspec.index)
        return [SparseTable(k, v, int(capacity), w.link) for k, v, w in zip(keys, values, self.workers)]

    def _declare(self, spec: TableSpec, cached: bool = True, sparse_keys: int | None = None) -> list[Table]:
        lay = self.layout
        tables: list[Table | None] = [None] * len(self.workers)
        for node in range(lay.nnodes):
            first = self.on_node(node)[0]
            local = [lay.index_of[r] for r in lay.servers_on(node)]
            remote = [s for s in range(len(lay.servers)) if s not in local]
            names = {s: first.control(s).call(op="create", spec=spec.as_dict(), shard=s,
                                              sparse_keys=sparse_keys)["names"] for s in local}
            if remote and cached:
                made = first.control(lay.index_of[lay.servers_on(node)[0]]).call(
                    op="cache", spec=spec.as_dict(), shards=remote)["names"]
                names.update({int(k): v for k, v in made.items()})
            mapped = []
            try:
                for w in self.on_node(node):
                    shards = [Shard.attach(spec, s, names[s]) if s in names else None for s in range(len(lay.servers))]
                    mapped.append(shards)
                    tables[w.id] = Table(spec, shards, remote=frozenset(remote), link=w.link)
            finally:
                for sh in (mapped[0] if mapped else []):
                    if sh is not None:
                        sh.unlink()
        self._ntables += 1
        self._open += tables  # type: ignore[arg-type]
        return tables  # type: ignore[return-value]

    # ------------------------------------------------------------------ the end
    def close(self, check: bool = True) -> None:
        """Stop and join the server threads, then close and unlink everything; idempotent.

        With ``check``, a server loop that ended with an error nobody took, or a thread that did not
        end, fails (AssertionError) after everything is released.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        stuck = []
        for th in self._threads:
            th.join(JOIN_TIMEOUT)
            if th.is_alive():
                stuck.append(th.name)
        for t in self._open if not stuck else []:
            t.close()
        for w in self.workers:
            w.close()
        for rt in getattr(self, "runtimes", []):
            if rt.role == "server":
                rt.clocks.states[rt.rank] = FINISHED
        if not stuck:  # a live thread may still use a shard or a socket
            for server in self.servers:
                server.close()
            for sock in self._socks:
                sock.close(linger=0)
            if self._auth is not None:
                self._auth.stop()
            open_socks = [s for s in list(self.ctx._sockets) if not s.closed]
            self.ctx.destroy(linger=0)
            for rt in getattr(self, "runtimes", []):
                rt.clocks.close()
        else:
            open_socks = []
        for names in self._boards:
            Clocks.unlink(names)
        if check:
            assert not stuck, f"server threads did not end within {JOIN_TIMEOUT:g} s: {stuck}"
            assert not open_socks, f"sockets left open after every part was closed: {open_socks}"
            left = {s: f"{type(e).__name__}: {e}" for s, e in self._failures.items()}
            assert not left, f"server loops ended with errors the test did not expect: {left}"
