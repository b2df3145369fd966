"""The job folder (``$PARASOL_JOB_DIR``, made by the launcher): who the ranks are, and which one failed first.

Each rank writes ``rank-<n>.json`` (rank, role, index, node, host, pid) once it
has started, so the launcher can name a rank that dies. A rank that fails (an
exception in ``solve()`` or in a server, a start-up error), or a watchdog that
sees a node-mate die, writes ``failure.json`` before the job is torn down:
only the first one of the job is kept (the file is made complete under a
temporary name and linked into place, which fails if it exists), so the
launcher names the rank whose failure started the end, not the first rank
that happened to be killed afterwards. Plain stdlib (and :mod:`.errors`): the launcher imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import traceback

from .config import ENV_JOB_DIR, environment_value
from .errors import ParasolError

__all__ = ["ENV", "FAILURE", "folder", "record_failure", "read_failure", "describe_failure", "error_line"]

ENV = ENV_JOB_DIR
FAILURE = "failure.json"


def folder() -> str | None:
    """The job folder, if this process runs under the launcher on the launcher's host."""
    path = environment_value(ENV)
    return path if path and os.path.isdir(path) else None


def error_line(exc: BaseException) -> str:
    """One line for an error: ``Type: message`` (a ParasolError's message names the offending thing;
    for another error it is the last line of its traceback)."""
    if isinstance(exc, ParasolError):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = traceback.format_exception_only(type(exc), exc)[-1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " / ".join(lines) if lines else type(exc).__name__


def record_failure(rank: int, role: str | None, index: int | None, cause: str, *, pid: int | None = None,
                   host: str | None = None, noticed_by: int | None = None) -> bool:
    """Write ``failure.json`` unless another rank of the job did first; returns whether this one won.

    ``cause`` is one line (``failed: InputError: ...``, ``died (killed by SIGKILL)``). Never raises:
    a rank on its way out must not fail again here.
    """
    path = folder()
    if path is None:
        return False
    record = {"rank": int(rank), "role": role, "index": None if index is None else int(index),
              "host": host or socket.gethostname(), "pid": int(os.getpid() if pid is None else pid),
              "cause": cause, "noticed_by": noticed_by}
    tmp = os.path.join(path, f".failure-{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as fh:
            json.dump(record, fh)
        try:
            os.link(tmp, os.path.join(path, FAILURE))  # atomic, complete, and only if none is there yet
            return True
        except FileExistsError:
            return False
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_failure(path: str | None) -> dict | None:
    """The first failure recorded in job folder ``path``, or None."""
    if not path:
        return None
    try:
        with open(os.path.join(path, FAILURE)) as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "rank" in record and "cause" in record else None


def describe_failure(record: dict) -> str:
    """``rank 1 (worker 1) on host h (pid 123) failed: RuleError: ...`` — the launcher's summary of it."""
    who = f"rank {record['rank']}"
    if record.get("role") is not None:
        who += f" ({record['role']} {record['index']})"
    who += f" on host {record.get('host', '?')} (pid {record.get('pid', '?')})"
    text = f"{who} {record['cause']}"
    if record.get("noticed_by") is not None:
        text += f" (noticed by rank {record['noticed_by']})"
    return text
