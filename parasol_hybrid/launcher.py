"""run_parasol: check a job's config, start its ranks with mpiexec, tear it down, sweep its memory.

Usage::

    run_parasol --config mf.json python algs/mf.py [args...]   # nworker + nserver ranks
    run_parasol --config mf.json --dry-run python algs/mf.py   # print the mpiexec command
    run_parasol --cleanup                                      # remove dead jobs' segments

The config is validated before anything starts (with the algorithm's own keys
when the entry script defines a ``paralg`` subclass); an error exits with 2.
Each rank gets ``PARASOL_JOB_ID``, ``PARASOL_CONFIG``, ``PARASOL_JOB_DIR`` and
``PARASOL_LAUNCHER_PID`` with ``PARASOL_LAUNCHER_ID`` (what proves the pid is
still this launcher: see :mod:`parasol_hybrid.lifeline`). If the launcher is
killed (``kill -9``, the OOM killer), mpiexec gets SIGTERM from the kernel
(``PR_SET_PDEATHSIG``) and every rank, which watches the launcher, sweeps the
job's segments and exits: nothing of the job is left.

When the job fails, the summary line names the rank whose failure started
the end (the first one recorded in the job folder, see :mod:`parasol_hybrid.jobdir`)
and repeats its message.

When the launcher's stdout or stderr is a pipe (``run_parasol ... | head``),
mpiexec writes into a pipe of the launcher's, which forwards it; if the
reader goes away, that stream is dropped (and still drained) and the job
runs to its end: a closed pipe cannot kill it.

Hydra (MPICH's mpiexec) puts every rank in a session of its own, so the job's
processes are found by their ``PARASOL_JOB_ID`` in ``/proc/<pid>/environ``,
not by process group. On SIGINT/SIGTERM the launcher sends SIGINT to mpiexec
(which passes it to the ranks), waits ``--grace`` seconds, then SIGKILLs what
is left; in every case it ends with removing the job's shared-memory segments.

This module is the launcher's public face (the ``run_parasol`` entry point is
:func:`main`); the parts live in :mod:`parasol_hybrid._launcher`, one job each.
"""

from __future__ import annotations

from ._launcher.cleanup import unused_mpich_files  # noqa: F401 - importable from here, as before
from ._launcher.cli import main
from ._launcher.command import BLAS_THREAD_VARS, build_argv, entry_script, find_mpiexec  # noqa: F401
from ._launcher.entry import algorithm_options
from ._launcher.output import PROG, emit  # noqa: F401 - importable from here, as before
from ._launcher.procs import job_pids, pids_with_env
from .lifeline import mpich_files

__all__ = ["main", "build_argv", "find_mpiexec", "entry_script", "algorithm_options", "job_pids",
           "pids_with_env", "mpich_files"]
