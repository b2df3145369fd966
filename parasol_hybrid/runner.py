"""``run(MyAlg)``: what every rank of a job executes."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import traceback

from .errors import ParasolError

__all__ = ["run"]


def _parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(add_help=True, description="a parasol_hybrid algorithm (run under run_parasol or mpiexec)")
    parser.add_argument("--config", default=os.environ.get("PARASOL_CONFIG"),
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
    (say, its interface) and any error later print which rank failed and
    abort the whole MPI job.
    """
    from mpi4py import MPI

    from .cluster.runtime import Runtime
    from .cluster.server import Server
    from .config import load_config

    rank = MPI.COMM_WORLD.rank
    config_path, rest = _parse(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config(config_path, options=getattr(alg_cls, "options", {}))
    except ParasolError as exc:  # the same on every rank: each exits, rank 0 says why
        if rank == 0:
            print(f"parasol: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    try:
        rt = Runtime.start(cfg)
    except ParasolError as exc:  # may be one rank's alone (its interface, its host): end the job
        print(f"parasol: rank {rank} on host {socket.gethostname()}: error: {exc}", file=sys.stderr, flush=True)
        MPI.COMM_WORLD.Abort(2)
        os._exit(2)  # Abort may return before the process manager ends this rank
    signal.signal(signal.SIGTERM, _sigterm)
    alg = server = None
    try:
        if rt.role == "server":
            server = Server(rt, rt.sock)
            server.serve(rt.ended)
            server.close()
        else:
            alg = alg_cls(rt)
            alg.args = rest
            alg._start()
            alg.solve()
            alg._stop()
        rt.finish()
    except BaseException as exc:  # noqa: BLE001 - every failure ends the whole job
        if isinstance(exc, KeyboardInterrupt):
            msg = f"parasol: {rt.describe()} interrupted"
        elif isinstance(exc, ParasolError):
            msg = f"parasol: {rt.describe()} failed: {type(exc).__name__}: {exc}"
        else:
            msg = f"parasol: {rt.describe()} failed:\n{traceback.format_exc()}"
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
