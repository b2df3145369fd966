"""The algorithm base class: declare tables, pull before learning, push after, clock once per iteration.

Subclass :class:`paralg`, implement :meth:`paralg.solve`, and start it with
:func:`parasol_hybrid.run`::

    from parasol_hybrid import paralg, run, Option

    class Count(paralg):
        options = {"bins": Option(int, 10, "number of bins")}

        def solve(self):
            hist = self.table("hist", shape=(self.cfg.bins, 1), dtype="int64")
            for _ in range(self.cfg.rounds):
                keys = np.random.randint(0, self.cfg.bins, 1000)
                self.push(hist, keys, np.ones(1000, dtype=np.int64))
                self.clock()
            if self.is_master:
                print(self.pull_all(hist).ravel())

    if __name__ == "__main__":
        run(Count)

Every method here is called by every worker (collectives: ``table``, ``sync``,
``allreduce``, ``allgather``, ``vocabulary``) or by any worker on its own
(``pull``, ``push``, ``pull_all``, ``clock``, ``load``).

Every collective starts with a cheap check that every worker is at the same
call (:func:`~parasol_hybrid.cluster.collectives.agree`); a worker whose
``solve()`` returned takes part as "end of solve". On a mismatch every worker
raises :class:`~parasol_hybrid.errors.CollectiveError` naming each worker's call.
While a worker waits there, it keeps its clock caught up with the others
(:meth:`~parasol_hybrid.staleness.clock.Clocks.catch_up`), so a collective never
holds back the workers that are still clocking.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .cluster.collectives import agree_max, allgather_obj, allreduce, barrier, bcast_obj
from .cluster.control import ControlClient
from .cluster.link import NodeLink
from .cluster.watchdog import peak_rss_bytes
from .config import Config, Option
from . import checkpoint
from .errors import CheckpointError, CollectiveError, ConfigError, InputError, TableError
from .staleness.clock import Clocks
from .tables.shard import Shard
from .tables.sparse import SparseTable
from .tables.spec import TableSpec
from .tables.table import Table

__all__ = ["paralg"]


def _input_time(method):
    """Add the wall time of ``method`` (``load``, ``vocabulary``) to the worker's ``load_seconds``.
    Only the outermost of nested calls counts (a load that calls ``vocabulary`` is counted once)."""
    @functools.wraps(method)
    def timed(self, *args, **kwargs):
        if self._in_input:
            return method(self, *args, **kwargs)
        self._in_input = True
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._in_input = False
            self._load_seconds += time.perf_counter() - start
    return timed


class paralg:  # noqa: N801 - the original parasol's name, kept on purpose
    """Base class of a parameter-server algorithm. Override :meth:`solve`.

    ``options`` declares the algorithm's own config keys (beside the common
    ones: ``nworker``, ``nserver``, ``input``, ``test_input``, ``output``,
    ``rounds``, ``staleness``, ``seed``...); the launcher validates them before
    any rank starts.
    """

    options: dict[str, Option] = {}

    def __init__(self, runtime):
        self._rt = runtime
        self.cfg: Config = runtime.cfg
        self._tables: dict[str, Table | SparseTable] = {}
        self._specs: list[TableSpec] = []
        self._clients: dict[int, ControlClient] = {}
        self._clocks: Clocks | None = None
        self._net: NodeLink | None = None
        self._resume: Path | None = None
        self._manifest: dict | None = None
        self._round = 0
        self._seq = 0  # collectives started by this worker (the same on every worker)
        self._load_seconds = 0.0  # this worker's wall time in load() and vocabulary()
        self._in_input = False
        #: the job-wide maxima the last collective check agreed on: peak RSS (bytes), load time (µs)
        self._job_peak_rss = self._job_load_us = 0
        #: the first round to run: 0, or the round of the checkpoint the job resumed from
        self.start_round = 0
        self._t0 = time.perf_counter()
        self._progress_start: tuple[float, int] | None = None
        self._last_clock = time.perf_counter()
        path = os.environ.get("PARASOL_LOG_JSON")
        self._log_json = open(path, "a") if path and runtime.index == 0 and runtime.role == "worker" else None
        straggler = self.cfg.get("straggler")
        self._slowdown = float(straggler["slowdown"]) if straggler and straggler["worker"] == runtime.index else 1.0

    # ------------------------------------------------------------ identity
    @property
    def worker_id(self) -> int:
        """This worker's id, 0 .. nworker-1."""
        return self._rt.index

    @property
    def nworker(self) -> int:
        return self._rt.nworker

    @property
    def nserver(self) -> int:
        return self._rt.nserver

    @property
    def node_id(self) -> int:
        """The node this worker runs on (0 .. nnodes-1)."""
        return self._rt.node

    @property
    def nnodes(self) -> int:
        return self._rt.nnodes

    @property
    def is_master(self) -> bool:
        """True on worker 0, which prints progress and writes shared outputs."""
        return self._rt.index == 0

    @property
    def staleness(self) -> int:
        return int(self.cfg.staleness)

    # ------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        rt = self._rt
        self._clocks = rt.clocks
        self._resolve_resume()
        if rt.node_role_comm.rank == 0:
            self._clients = {rt.layout.index_of[r]: ControlClient(rt.ctx, rt.endpoints[rt.layout.index_of[r]], r, rt.keys)
                             for r in rt.layout.servers_on(rt.node)}
        if rt.cluster:
            self._net = NodeLink(rt)
            self._clocks.notify = self._net.worker_clock
        barrier(rt.node_role_comm)

    def _resolve_resume(self) -> None:
        """Find and check the checkpoint to resume from (worker 0), and tell every worker."""
        found = error = None
        if self.cfg.resume and self.is_master:
            try:
                path = checkpoint.find_latest(Path(self.cfg.resume))
                manifest = checkpoint.verify(path)
                checkpoint.check_config(manifest, self.cfg)
                found = (str(path.resolve()), manifest)
            except (CheckpointError, ConfigError) as exc:
                error = (type(exc).__name__, str(exc))
        found, error = bcast_obj(self._rt.role_comm, (found, error))
        if error is not None:
            raise (ConfigError if error[0] == "ConfigError" else CheckpointError)(error[1])
        if found is not None:
            self._resume, self._manifest = Path(found[0]), found[1]
            self.start_round = int(self._manifest["round"])
            self._round = self.start_round
            m, now = self._manifest, (self.nworker, self.nserver, self.nnodes)
            moved = "" if (m.get("nworker"), m.get("nserver"), m.get("nodes")) == now else (
                f"; saved with {m.get('nworker')} worker(s), {m.get('nserver')} server(s) on {m.get('nodes')} "
                f"node(s), now {now[0]}, {now[1]} on {now[2]}: tables re-sharded")
            self.log(f"resuming from {self._resume} (round {self.start_round}{moved})")

    def _stop(self) -> None:
        if self._log_json is not None:
            self._log_json.close()
            self._log_json = None
        for t in self._tables.values():
            t.close()
        self._tables.clear()
        for c in self._clients.values():
            c.close()
        self._clients = {}
        if self._net is not None:
            self._net.close()
            self._net = None

    def solve(self) -> None:
        """The algorithm. Runs on every worker."""
        raise NotImplementedError(f"{type(self).__name__} must implement solve()")

    def _end_solve(self) -> None:
        """After ``solve()`` returned: the last collective, so that a worker left in a collective
        that this one never called gets a CollectiveError instead of waiting for good."""
        self._collective("end of solve()")

    def _collective(self, call: str) -> None:
        """Start the collective ``call`` (e.g. ``"table('P')"``): check that every worker is at the same
        call, keeping this worker's clock caught up while it waits; raise CollectiveError if not.

        The same message carries the job-wide maxima of peak RSS (this node's board: every rank of
        the node, servers too) and of load time, which :meth:`write_metrics` reports."""
        self._seq += 1
        code = zlib.crc32(call.encode())
        rss = max(int(self._clocks.peak_rss.max()), peak_rss_bytes())
        ok, top = agree_max(self._rt.role_comm, self._seq, code, [rss, int(self._load_seconds * 1e6)],
                            idle=self._clocks.idle)
        self._job_peak_rss = max(self._job_peak_rss, int(top[0]))
        self._job_load_us = max(self._job_load_us, int(top[1]))
        if ok:
            return
        calls = allgather_obj(self._rt.role_comm, (self._seq, call))
        raise CollectiveError(_mismatch(calls))

    # ------------------------------------------------------------ tables
    def table(self, name: str, shape, dtype: str = "float32", init: str = "zeros", *,
              value: float = 0.0, low: float = 0.0, high: float = 1.0, mean: float = 0.0,
              std: float = 1.0, seed: int | None = None, rule: str = "add",
              hyper: dict[str, float] | None = None, exact: bool | None = None) -> Table:
        """Declare a dense table (collective: every worker declares the same tables in the same order).

        ``shape`` is ``(rows, dim)`` (or ``rows`` for ``dim == 1``); ``init`` is
        ``zeros``, ``constant`` (``value``), ``uniform`` (``low``, ``high``) or
        ``normal`` (``mean``, ``std``), seeded by ``seed`` (default: the
        config's seed and the table's name). ``rule`` is the default update rule
        of ``push`` and ``hyper`` its hyper-parameters.
        """
        self._collective(f"table({name!r})")
        if name in self._tables:
            raise TableError(f"table {name!r} is already declared")
        a, b = {"constant": (value, 0.0), "uniform": (low, high), "normal": (mean, std)}.get(init, (0.0, 0.0))
        if seed is None:
            seed = (int(self.cfg.seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**62)
        spec = TableSpec.build(len(self._specs), name, shape, dtype, init, a, b, seed, rule, exact,
                               self._rt.nserver, hyper)
        t = self._declare(spec)
        self._tables[name] = t
        return t

    def sparse_table(self, name: str, capacity: int, dim: int = 1, dtype: str = "int64") -> SparseTable:
        """Declare a table keyed by any non-negative int64 keys (collective), with room for ``capacity`` keys.

        For strings, key by :func:`parasol_hybrid.hash_strings` (63-bit blake2b).
        Pushes insert missing keys and add (exactly, under the shard locks).
        """
        self._collective(f"sparse_table({name!r})")
        if name in self._tables:
            raise TableError(f"table {name!r} is already declared")
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise TableError(f"sparse table {name!r}: capacity must be a positive integer, got {capacity!r}")
        S = self._rt.nserver
        slots = -(-int(capacity * 10 // 7 + 1) // S) * S  # load factor <= 0.7, a multiple of S
        kspec = TableSpec.build(len(self._specs), name + "#keys", (slots, 1), "int64", "constant", -1.0,
                                0.0, 0, "add", True, S)
        keys = self._declare(kspec, cached=False)
        vspec = TableSpec.build(len(self._specs), name, (slots, dim), dtype, "zeros", 0.0, 0.0, 0, "add",
                                True, S)
        values = self._declare(vspec, cached=False, sparse_keys=kspec.index)
        t = SparseTable(keys, values, int(capacity), self._net)
        self._tables[name] = t
        return t

    def _declare(self, spec: TableSpec, cached: bool = True, sparse_keys: int | None = None) -> Table:
        """Check the declaration is the same on every worker, have the servers create it, map it.

        Shards owned by this node's servers are mapped directly; in cluster
        mode the others are this node's caches of them (made by the node
        agent), or, for sparse tables (``cached=False``), reached over the network.
        """
        rt = self._rt
        specs = allgather_obj(rt.role_comm, spec)
        for w, other in enumerate(specs):
            if other != spec:
                raise TableError(f"table {spec.name!r}: worker {w} declared {other}, "
                                 f"worker {self.worker_id} declared {spec}")
        local = [rt.layout.index_of[r] for r in rt.layout.servers_on(rt.node)]
        remote = [s for s in range(rt.nserver) if s not in local]
        resume = None
        if self._resume is not None:  # the same table; its layout (nshards) may differ: the servers re-shard it
            checkpoint.check_table(self._manifest, self._resume, spec, sparse=not cached)
            resume = str(self._resume)
        if rt.node_role_comm.rank == 0:
            names = {}
            for s in local:
                names[s] = self._clients[s].call(op="create", spec=spec.as_dict(), shard=s,
                                                 sparse_keys=sparse_keys, resume=resume)["names"]
            if remote and cached:
                agent = rt.layout.index_of[rt.agent_rank]
                made = self._clients[agent].call(op="cache", spec=spec.as_dict(), shards=remote,
                                                 resume=resume)["names"]
                names.update({int(k): v for k, v in made.items()})
        else:
            names = None
        names = bcast_obj(rt.node_role_comm, names)
        shards = [Shard.attach(spec, s, names[s]) if s in names else None for s in range(rt.nserver)]
        barrier(rt.node_role_comm)
        if rt.node_role_comm.rank == 0:
            for sh in shards:
                if sh is not None:
                    sh.unlink()
        self._specs.append(spec)
        if rt.cluster:  # no worker may reach another node's shard before that node made it
            barrier(rt.role_comm)
        return Table(spec, shards, remote=frozenset(remote), link=self._net)

    def _table(self, table) -> Table | SparseTable:
        if isinstance(table, (Table, SparseTable)):
            return table
        try:
            return self._tables[table]
        except KeyError:
            raise TableError(f"unknown table {table!r} (declared: {', '.join(self._tables) or 'none'})") from None

    def pull(self, table, keys, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``keys`` of ``table`` (a Table, a SparseTable or its name) as a ``len(keys) × dim`` array
        (into ``out`` when given; a sparse table's keys never pushed read as zeros)."""
        return self._table(table).pull(keys, out=out)

    def push(self, table, keys, deltas, rule: str | None = None, **hyper) -> None:
        """Apply ``deltas`` to rows ``keys`` with ``rule`` (default: the table's)."""
        self._table(table).push(keys, deltas, rule, **hyper)

    def pull_all(self, table) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """A copy of the whole table: ``rows × dim`` for a dense table, ``(keys, values)`` sorted by key
        for a sparse one."""
        return self._table(table).pull_all()

    # ------------------------------------------------------------ clocks and collectives
    def clock(self) -> int:
        """End an iteration: advance this worker's clock and wait out the staleness bound.

        Every ``checkpoint_every`` rounds, the workers also wait for each other
        and save a checkpoint.
        """
        if self._progress_start is None:  # rounds are timed from the start of the first one
            self._progress_start = (self._last_clock, self._round)
        if self._slowdown > 1.0:  # a deliberate straggler: stretch this iteration
            time.sleep((self._slowdown - 1.0) * (time.perf_counter() - self._last_clock))
        self._round += 1
        every = self.cfg.checkpoint_every
        if every and self._round % every == 0:
            c = self._clocks.tick(staleness=0)
            self._collective("checkpoint()")
            self._save_checkpoint()
        else:
            c = self._clocks.tick()
        self._last_clock = time.perf_counter()
        return c

    @property
    def round(self) -> int:
        """How many rounds (``clock()`` calls) are done, counting those before a resume."""
        return self._round

    def checkpoint(self) -> Path | None:
        """Save a checkpoint now (collective); returns its folder on worker 0."""
        self._collective("checkpoint()")
        self._align_clocks()
        return self._save_checkpoint()

    def round_done(self) -> Path | None:
        """End a round of an algorithm that synchronises with :meth:`sync` instead of :meth:`clock`
        (collective): count it in :attr:`round` and, every ``checkpoint_every`` rounds, save a
        checkpoint (returns its folder on worker 0).

        Call it right after a :meth:`sync` (no push in between), where the tables hold all the
        state that resuming at this round needs: the sync has already delivered every update to
        its owner, so the servers save at once.
        """
        self._collective("round_done()")
        self._round += 1
        every = self.cfg.checkpoint_every
        if every and self._round % every == 0:
            return self._save_checkpoint()
        return None

    def _save_checkpoint(self) -> Path | None:
        rt = self._rt
        root = checkpoint.root_of(self.cfg)
        tmp = checkpoint.tmp_folder(root, self._round, rt.job_id)
        if self.is_master:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        barrier(rt.role_comm)
        files = []
        if rt.node_role_comm.rank == 0:
            for client in self._clients.values():
                files += client.call(op="save", dir=str(tmp.resolve()))["files"]
        parts = allgather_obj(rt.role_comm, files)
        final = None
        if self.is_master:
            manifest = {"round": self._round, "tables": [s.as_dict() for s in self._specs],
                        "config": checkpoint.fingerprint(self.cfg), "files": [f for p in parts for f in p],
                        "nworker": self.nworker, "nserver": self.nserver, "nodes": self.nnodes,
                        "striping": "global row k is in shard k % nshards at local row k // nshards",
                        "job_id": rt.job_id, "created": time.time()}
            final = checkpoint.finalize(tmp, checkpoint.final_folder(root, self._round), manifest)
        barrier(rt.role_comm)
        return final

    @property
    def clocks(self) -> Clocks:
        """The job's worker clocks (``.clock``, ``.slowest()``, ``.spread()``, ``.waited``, ``.max_lead``)."""
        return self._clocks

    def sync(self) -> None:
        """Barrier over all workers (sleeps while it waits).

        Workers may have made different numbers of ``clock()`` calls (ASP, or
        loops that stop on time): ``sync`` first brings every clock to the
        highest one. In cluster mode it is then also a clock with staleness 0:
        every node's updates are sent and every cache is refreshed before it returns.
        """
        self._collective("sync()")
        self._last_clock = time.perf_counter()
        self._align_clocks()
        barrier(self._rt.role_comm)

    def _align_clocks(self) -> None:
        """Inside a collective, after its check: every worker's clock to the highest, and in cluster mode
        one more clock with staleness 0, so every node's updates reach their owners and every cache is
        refreshed.

        The clock it ends at is the same on every worker (the agreed highest, plus one). A plain
        ``tick()`` here would not be: a worker still waiting in the check may have caught up
        (:meth:`Clocks.catch_up`) to a worker that already ticked, and its own tick would then take it
        one clock past the others, which would wait for it for good.
        """
        rt = self._rt
        top = int(allreduce(rt.role_comm, self._clocks.clock, op="max"))
        if self._clocks.clock < top:
            self._clocks.clocks[self.worker_id] = top
            self._clocks.wake_all()
        if rt.cluster:
            self._clocks.tick(staleness=0)

    def allreduce(self, value, op: str = "sum"):
        """Sum (or ``max``, ``min``, ``prod``) a number or array over the workers."""
        if isinstance(value, np.ndarray):
            kind = f"{value.dtype}{list(value.shape)}"
        else:
            kind = "int" if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else "float"
        self._collective(f"allreduce({kind}, op={op!r})")
        return allreduce(self._rt.role_comm, value, op)

    def allgather(self, obj) -> list:
        """Every worker's ``obj``, by worker id. For small results, not parameter traffic."""
        self._collective("allgather()")
        return allgather_obj(self._rt.role_comm, obj)

    def cross_node_bytes(self) -> int:
        """Bytes sent over ZeroMQ between nodes so far, by every process of the job (collective)."""
        self._collective("cross_node_bytes()")
        mine = int(self._clocks.sent_bytes.sum()) if self._rt.node_role_comm.rank == 0 else 0
        return int(allreduce(self._rt.role_comm, mine))

    @_input_time
    def vocabulary(self, ids) -> np.ndarray:
        """The sorted union of every worker's ``ids`` (strings): a consistent id → row map."""
        self._collective("vocabulary()")
        from .data.vocab import vocabulary_of_strings

        local = set(np.asarray(ids, dtype=object).ravel().tolist())
        strings = int(all(type(x) is str and _utf8(x) for x in local))
        if int(allreduce(self._rt.role_comm, strings, op="min")):  # each distinct id crosses once per worker
            return vocabulary_of_strings(self._rt.role_comm, local)
        merged = set()
        for part in allgather_obj(self._rt.role_comm, sorted(local)):
            merged.update(part)
        return np.array(sorted(merged), dtype=object)

    # ------------------------------------------------------------ input
    @_input_time
    def load(self, path=None, pattern: str = "linesplit", format: str = "lines",  # noqa: A002
             shared_ids: bool = False, weight_required: bool = True, shuffle: bool = False):
        """Load this worker's part of the input (default: the config's ``input``).

        ``pattern``: ``linesplit`` (byte ranges of the files, one per worker),
        ``fmap`` / ``smap`` / ``fsmap`` (rating or edge triples partitioned by
        row, column or both). ``format``: ``lines`` (list of ``Line``),
        ``ratings``, ``libsvm`` (0/1 labels), ``regression`` (libsvm rows with real-valued
        labels), ``documents`` (one document a line, lower-cased ``[a-z]`` words of 3+ letters:
        ``Documents``) or ``words`` (a Counter). ``fmap``-style patterns imply ``ratings``.

        With ``fmap`` / ``smap`` / ``fsmap`` the load is a collective: each worker parses only its byte
        range (compiled), the ids become rows of the job's vocabulary, and each triple is sent to its
        owner once (:mod:`parasol_hybrid.data.share`). The result is a
        :class:`~parasol_hybrid.data.share.RatingsShare`: ``u``, ``i`` (rows), ``values``, the
        vocabularies ``row_ids`` / ``col_ids`` (sorted as strings, the same on every worker; with
        ``shared_ids`` one vocabulary of the ids of both columns, for graphs) and ``bad_lines`` (this
        worker's byte range's). ``rows`` / ``cols`` give each triple's ids, as before. With
        ``weight_required`` False a line may have two fields (weight 1), as edge lists do. With
        ``shuffle`` each worker's triples come in a random order of runs of 64 consecutive triples (seeded by
        the config's ``seed`` and the worker id) instead of the files' order: what SGD wants, without a
        second copy of the share.
        """
        from . import data

        spec = path if path is not None else self.cfg.input
        if spec is None:
            raise InputError("no input: pass a path to load() or set the config key 'input'")
        files = data.expand_inputs(spec)
        policy = self.cfg.on_bad_line
        if pattern in ("fmap", "smap", "fsmap"):
            self._collective(f"load(pattern={pattern!r}, shared_ids={bool(shared_ids)}, shuffle={bool(shuffle)})")
            from .data.share import load_share
            own_shm = self.cfg.load_exchange == "shm"
            node_of = allgather_obj(self._rt.role_comm, self.node_id) if own_shm else None
            return load_share(self._rt.role_comm, files, pattern, on_bad_line=policy, shared_ids=shared_ids,
                              weight_required=weight_required, node_of=node_of,
                              job_id=self._rt.job_id if own_shm else None,
                              shuffle_seed=[self.cfg.seed, self.worker_id, 1 << 20] if shuffle else None)
        if pattern != "linesplit":
            raise InputError(f"unknown load pattern {pattern!r} (known: linesplit, fmap, smap, fsmap)")
        lines = data.read_lines(files, self.worker_id, self.nworker)
        if format == "lines":
            return list(lines)
        if format == "ratings":
            from .data.scan_ratings import scan_ratings
            return scan_ratings(files, self.worker_id, self.nworker, on_bad_line=policy,
                                weight_required=weight_required).as_ratings()
        if format == "libsvm":
            from .data.scan_text import scan_libsvm
            return scan_libsvm(files, self.worker_id, self.nworker, on_bad_line=policy)
        if format == "regression":
            from .data.scan_text import scan_libsvm
            return scan_libsvm(files, self.worker_id, self.nworker, on_bad_line=policy, labels="real")
        if format == "documents":
            from .data.scan_text import scan_documents
            return scan_documents(files, self.worker_id, self.nworker)
        if format == "words":
            from .data.scan_text import scan_words
            return scan_words(files, self.worker_id, self.nworker)
        raise InputError(f"unknown load format {format!r} (known: lines, ratings, libsvm, regression, documents, "
                         f"words)")

    # ------------------------------------------------------------ output
    @property
    def output_dir(self) -> Path:
        out = Path(self.cfg.output)
        out.mkdir(parents=True, exist_ok=True)
        return out

    def output_path(self, name: str) -> Path:
        """``<output>/<name>``, the folder created if needed."""
        return self.output_dir / name

    def write_json(self, name: str, obj: Any) -> Path | None:
        """Write ``obj`` as JSON to ``<output>/<name>`` atomically (on the master only)."""
        if not self.is_master:
            return None
        path = self.output_path(name)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    def write_metrics(self, metrics: dict) -> Path | None:
        """Write ``<output>/metrics.json`` (master only) with ``metrics``, the job's shape, and:

        ``peak_rss_bytes``: the largest peak RSS of any rank of the job (workers and servers, every
        node), as of the last collective (this node's ranks and this worker: as of now);
        ``load_seconds``: the largest wall time a worker spent in :meth:`load` and :meth:`vocabulary`,
        as of the last collective (this worker's: as of now).
        """
        rss = max(self._job_peak_rss, int(self._clocks.peak_rss.max()), peak_rss_bytes())
        load = max(self._job_load_us / 1e6, self._load_seconds)
        full = {"nworker": self.nworker, "nserver": self.nserver, "nodes": self.nnodes,
                "staleness": self.staleness, "peak_rss_bytes": rss, "load_seconds": round(load, 6)}
        full.update(metrics)
        return self.write_json("metrics.json", full)

    def save_table(self, table, name: str | None = None) -> Path | None:
        """Save the whole table (master only): a dense table as ``<output>/<name>.npy`` (its
        ``pull_all()``), a sparse one as ``<output>/<name>.npz`` with arrays ``keys`` (sorted) and
        ``values``. Returns the path (None on other workers)."""
        t = self._table(table)
        if not self.is_master:
            return None
        suffix = ".npz" if isinstance(t, SparseTable) else ".npy"
        return t.save(self.output_path((name or t.name) + suffix))

    def log(self, message: str) -> None:
        """Print a line on the master (flushed)."""
        if self.is_master:
            print(message, flush=True)

    def progress(self, round_: int, rounds: int, **figures) -> None:
        """Report a finished round on the master: one line (a bar when the launcher's output is a
        terminal), and one JSON object in the ``--log-json`` file.

        The line shows the round, the algorithm's ``figures`` (loss, quality,
        updates per second...), the spread of worker clocks (how stale the job
        runs) and the time left, estimated from the rounds so far.
        ``run_parasol --quiet`` silences the line, not the JSON log.
        """
        if not self.is_master:
            return
        now = time.perf_counter()
        t0, r0 = self._progress_start or (self._t0, 0)
        left = (now - t0) / (round_ - r0) * (rounds - round_) if round_ > r0 and rounds >= round_ else None
        spread = self._clocks.spread() if self._clocks is not None else 0
        if self._log_json is not None:
            record = {"round": round_, "rounds": rounds, "seconds": now - self._t0,
                      "train_seconds": now - t0, "clock_spread": spread,
                      "seconds_left": left, "worker": self.worker_id}
            record.update({k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
                           for k, v in figures.items()})
            self._log_json.write(json.dumps(record) + "\n")
            self._log_json.flush()
        if os.environ.get("PARASOL_QUIET"):
            return
        parts = [f"round {round_:>3}/{rounds}"]
        for key, val in figures.items():
            parts.append(f"{key} {_fmt(val)}")
        parts.append(f"clock spread {spread}")
        parts.append(f"{now - self._t0:.1f} s")
        if left is not None:
            parts.append(f"~{left:.1f} s left")
        line = "  ".join(parts)
        if os.environ.get("PARASOL_TTY") and rounds > 0:
            filled = int(20 * min(round_, rounds) / rounds)
            line = f"[{'#' * filled}{'.' * (20 - filled)}] " + line
        print(line, flush=True, file=sys.stdout)



def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as utf-8 (a lone surrogate does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mismatch(calls: list[tuple[int, str]]) -> str:
    """The message of a CollectiveError from every worker's (collective number, call), by worker id."""
    same_seq = len({seq for seq, _ in calls}) == 1
    groups: dict[tuple[int, str], list[int]] = {}
    for w, key in enumerate(calls):
        groups.setdefault(tuple(key), []).append(w)
    parts = []
    for (seq, call), workers in groups.items():
        who = (f"worker {workers[0]}" if len(workers) == 1
               else "workers " + ", ".join(str(w) for w in workers))
        what = "had already finished solve()" if call == "end of solve()" else f"called {call}"
        parts.append(f"{who} {what}" + ("" if same_seq else f" (its collective call {seq})"))
    where = f"at collective call {calls[0][0]}: " if same_seq else ""
    return (f"the workers are not at the same collective {where}{', '.join(parts)} "
            f"(every worker makes the same collective calls in the same order)")


def _fmt(value) -> str:
    """A figure for a progress line: 4 significant digits, thousands separators for big numbers."""
    if isinstance(value, (bool, str)) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"
