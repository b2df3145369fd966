"""What the ranks are started with: the mpiexec to use, its argv, and the ranks' environment.

Each rank gets ``PARASOL_JOB_ID``, ``PARASOL_CONFIG``, ``PARASOL_JOB_DIR`` and
``PARASOL_LAUNCHER_PID`` with ``PARASOL_LAUNCHER_ID`` (what proves the pid is
still this launcher: see :mod:`parasol_hybrid.lifeline`), and one BLAS thread
unless the caller chose otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from .. import jobdir, lifeline
from ..config import Config
from ..errors import JobError

__all__ = ["BLAS_THREAD_VARS", "find_mpiexec", "build_argv", "entry_script", "rank_env"]

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_PYTHON_RE = re.compile(r"^python(3(\.\d+)?)?$")
_PY_OPTS_WITH_VALUE = ("-W", "-X", "--check-hash-based-pycs")


def find_mpiexec(explicit: str | None = None) -> str:
    """The mpiexec to use: ``explicit``, else the one next to this Python, else the one on PATH."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise JobError(f"mpiexec {explicit!r} (from --mpiexec) is not an executable file")
        return found
    beside = Path(sys.executable).parent / "mpiexec"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise JobError("no mpiexec found next to the Python interpreter nor on PATH: run `pip install mpich`")
    return found


def build_argv(cfg: Config | dict, command: list[str], mpiexec: str) -> list[str]:
    """The mpiexec argv that starts ``nworker + nserver`` ranks of ``command``.

    A leading ``python``/``python3`` becomes this interpreter; a leading
    ``X.py`` is run with this interpreter.
    """
    if not command:
        raise JobError("no command to run")
    first, rest = command[0], list(command[1:])
    if _PYTHON_RE.match(first):
        command = [sys.executable, *rest]
    elif first.endswith(".py"):
        command = [sys.executable, first, *rest]
    nranks = int(cfg["nworker"]) + int(cfg["nserver"])
    return [mpiexec, "-n", str(nranks), *command]


def entry_script(command: list[str]) -> Path | None:
    """The ``.py`` file that ``command`` runs (``python [opts] X.py ...`` or ``X.py ...``), if any."""
    if not command:
        return None
    if command[0].endswith(".py"):
        return Path(command[0])
    if not (_PYTHON_RE.match(os.path.basename(command[0])) or command[0] == sys.executable):
        return None
    args = iter(command[1:])
    for arg in args:
        if arg in ("-m", "-c", "-"):
            return None
        if arg in _PY_OPTS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return Path(arg) if arg.endswith(".py") else None
    return None


def rank_env(config_path: str | os.PathLike, job_id: str, job_dir: str,
             environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of job ``job_id``'s ranks: ``environ`` (default: ours) with the job's variables."""
    env = dict(os.environ if environ is None else environ, PARASOL_JOB_ID=job_id,
               PARASOL_CONFIG=str(config_path), **lifeline.launcher_env())
    env[jobdir.ENV] = job_dir
    for var in BLAS_THREAD_VARS:  # one BLAS thread per rank: the ranks already fill the cores
        env.setdefault(var, "1")
    return env
