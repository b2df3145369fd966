"""``run(MyAlg)``: what every rank of a job executes."""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import gc
import os
import signal
import socket
import sys
import traceback

from . import jobdir
from .config import ENV_CONFIG, environment_value
from .errors import ParasolError
from .lifeline import end_orphaned

__all__ = ["run", "RunWithoutMPI"]


#: set by the launcher while it imports an entry script (whether or not MPI is initialized there)
IMPORTING_ENTRY: contextvars.ContextVar[bool] = contextvars.ContextVar("parasol_importing_entry", default=False)


class RunWithoutMPI(BaseException):
    """``run()`` was reached while MPI is not initialized: the launcher imports an entry script this way.

    The launcher reads ``alg_cls``'s config keys from it and stops the import
    there, so a script that calls ``run(MyAlg)`` at module level (without an
    ``if __name__ == "__main__"`` guard) is never run outside its job. A
    ``BaseException``, so that a script's ``except Exception`` does not swallow it.
    """

    def __init__(self, alg_cls) -> None:
        super().__init__(f"run({alg_cls.__name__}) was called while MPI is not initialized "
                         "(mpi4py.rc.initialize is False); start the script with run_parasol or mpiexec")
        self.alg_cls = alg_cls


def _parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(add_help=True, description="a parasol_hybrid algorithm (run under run_parasol or mpiexec)")
    parser.add_argument("--config", default=environment_value(ENV_CONFIG),
                        help="the job's JSON config (default: $PARASOL_CONFIG, set by run_parasol)")
    args, rest = parser.parse_known_args(argv)
    if not args.config:
        parser.error("no config: pass --config CFG or start the job with run_parasol --config CFG")
    return args.config, rest


def _sigterm(signum, frame):  # pragma: no cover - exercised by launcher tests
    raise KeyboardInterrupt(f"signal {signum}")


def run(alg_cls, argv: list[str] | None = None) -> None:
    """Run the algorithm class ``alg_cls`` on this rank: servers serve, workers ``solve()``.

    Reads the config from ``--config`` or ``$PARASOL_CONFIG``. An invalid
    config exits with status 2 on every rank; a start-up error on some rank
    (say, its interface) and any error later print which rank failed, record
    it for the launcher (the first failure of the job is the one it names)
    and abort the whole MPI job.

    The end of a rank that did its part, in this order: the final barrier and
    the watchdog joined, sockets and the ZeroMQ context gone
    (``Runtime.finish``), then the shards unmapped, then the clock board.
    Then ``gc.freeze()``: the objects alive at that point are never collected,
    so the process exits at once (code after ``run()`` still has a working
    garbage collector for what it makes). So a ``__del__`` of an object left
    in a reference cycle does not run at exit: close what ``solve()`` opens.
    """
    from mpi4py import MPI

    if IMPORTING_ENTRY.get() or not MPI.Is_initialized():
        raise RunWithoutMPI(alg_cls)

    from .cluster.collectives import allreduce
    from .cluster.runtime import Runtime
    from .cluster.server import Server
    from .config import load_config

    rank = MPI.COMM_WORLD.rank
    config_path, rest = _parse(sys.argv[1:] if argv is None else argv)
    error = None
    try:
        cfg = load_config(config_path, options=getattr(alg_cls, "options", {}))
    except ParasolError as exc:  # usually the same on every rank; not always (a file missing on one host)
        error = exc
    # The ranks' first meeting, in a collective that sleeps while it waits: they finish importing at
    # different times, and MPICH's blocking collectives in Runtime.start would spin a core each meanwhile.
    failed = int(allreduce(MPI.COMM_WORLD, int(error is not None)))
    if failed:
        _refuse(rank, error, every_rank=failed == MPI.COMM_WORLD.size)
    try:
        rt = Runtime.start(cfg)
    except Exception as exc:  # noqa: BLE001 - may be one rank's alone (its interface, its host): end the job
        if getattr(exc, "every_rank", False):  # decided on what every rank knows (say, its hosts)
            _refuse(rank, exc, every_rank=True)
        detail = str(exc) if isinstance(exc, ParasolError) else traceback.format_exc()
        print(f"parasol: rank {rank} on host {socket.gethostname()}: error: {detail}",
              file=sys.stderr, flush=True)
        jobdir.record_failure(rank, None, None, f"failed at start-up: {jobdir.error_line(exc)}")
        MPI.COMM_WORLD.Abort(2)
        os._exit(2)  # Abort may return before the process manager ends this rank
    signal.signal(signal.SIGTERM, _sigterm)
    alg = server = None
    try:
        if rt.role == "server":
            server = Server(rt, rt.sock)
            server.serve(rt.ended)
        else:
            alg = alg_cls(rt)
            alg.args = rest
            alg._start()
            alg.solve()
            alg._end_solve()  # the last collective: a worker still in another one gets an error
        rt.finish()  # every rank is done; no thread, socket or zmq frame of this rank is left
        if server is not None:
            server.close()  # now the shards may be unmapped
        if alg is not None:
            alg._stop()
        rt.close()  # the clock board, last
    except BaseException as exc:  # noqa: BLE001 - every failure ends the whole job
        _fail(rt, exc, server, alg)
    # What is alive now lives until the process ends: the interpreter's last collections skip it
    # (they took 0.7-1.6 s of every rank's exit here, numba's objects mostly).
    gc.freeze()


def _refuse(rank: int, exc: Exception | None, every_rank: bool) -> None:
    """A start-up error of the config or the layout: every rank exits with status 2.

    Met by ``every_rank`` alike, rank 0 says why; met by some ranks only, each of them does (``exc`` is None
    on the others). No ``Abort``: it could end the process manager before the message reached the
    terminal; a barrier has every message out before any rank ends.
    """
    from mpi4py import MPI

    from .cluster.collectives import barrier

    if exc is not None and (rank == 0 or not every_rank):
        where = "" if every_rank else f"rank {rank} on host {socket.gethostname()}: "
        print(f"parasol: {where}error: {exc}", file=sys.stderr, flush=True)
        jobdir.record_failure(rank, None, None, f"failed: {jobdir.error_line(exc)}")
    barrier(MPI.COMM_WORLD)
    sys.exit(2)


def _fail(rt, exc: BaseException, server, alg) -> None:
    """Say which rank failed and why, record it for the launcher, release what can be, abort the job."""
    from mpi4py import MPI

    line = rt.watchdog.lifeline if rt.watchdog is not None else None
    lost = line.check() if line is not None else None
    if lost is not None:  # the launcher or the parent is gone (mpiexec passed its SIGTERM on): nobody to abort to
        end_orphaned(line, (rt.rank, rt.role, rt.index), rt.describe(), rt.job_id, lost)
    if isinstance(exc, KeyboardInterrupt):
        msg = f"parasol: {rt.describe()} interrupted"
    else:
        jobdir.record_failure(rt.rank, rt.role, rt.index, f"failed: {jobdir.error_line(exc)}", host=rt.host)
        if isinstance(exc, ParasolError):
            msg = f"parasol: {rt.describe()} failed: {type(exc).__name__}: {exc}"
        else:
            msg = f"parasol: {rt.describe()} failed:\n{traceback.format_exc()}"
    with contextlib.suppress(Exception):  # a closed stderr must not keep the job from ending
        print(msg, file=sys.stderr, flush=True)
    try:
        if server is not None:
            server.close()
        if alg is not None:
            alg._stop()
    finally:
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
        MPI.COMM_WORLD.Abort(code)
        os._exit(code)
