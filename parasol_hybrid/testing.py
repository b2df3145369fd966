"""Helpers for tests that launch real jobs: run the launcher, write configs, check for leftovers.

Usage::

    cfg = write_config(tmp_path, nworker=2, nserver=1)
    done = run_launcher(["--config", str(cfg), "python", str(script)], timeout=60)
    assert done.returncode == 0, done.stderr
    assert shm_leftovers() == []
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from ._warm_launcher import WarmLaunchers
from ._warm_launcher import exit_code as _warm_exit_code
from .launcher import pids_with_env
from .tables import segment

__all__ = ["shm_leftovers", "run_launcher", "start_warm_launchers", "start_launcher", "stop_launcher", "write_config",
           "pid_alive", "alive_pids"]

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
#: the warm launcher server of this process (started on first use)
WARM = WarmLaunchers()


def shm_leftovers(job_id: str | None = None) -> list[str]:
    """The /dev/shm names (segments and ``sem.`` semaphores) of parasol jobs, or of one job."""
    return segment.leftovers(job_id)


def _launcher_env(env: dict[str, str] | None) -> dict[str, str]:
    """``env`` (default: os.environ) with this package importable via PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _PACKAGE_PARENT not in parts:
        env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_PARENT, *parts])
    return env


def start_launcher(args: list[str], cwd=None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -m parasol_hybrid *args`` in a new session, with text pipes for its output."""
    return subprocess.Popen([sys.executable, "-m", "parasol_hybrid", *args], cwd=cwd, env=_launcher_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def stop_launcher(proc: subprocess.Popen, grace: float) -> tuple[str, str]:
    """SIGINT the launcher (it then ends its job); after ``grace`` s SIGKILL it and its job; return its output."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_launcher(proc.pid)
    try:
        return proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        return "", "(output lost: the pipes stayed open)"


def _kill_launcher(pid: int) -> None:
    """SIGKILL the launcher ``pid`` (its process group) and its job's processes, which run in other sessions."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for other in pids_with_env("PARASOL_LAUNCHER_PID", str(pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(other, signal.SIGKILL)


def start_warm_launchers() -> bool:
    """Start this process's warm launcher server now (:func:`run_launcher` does on first use); False if it
    cannot run here. A test suite that checks for processes left behind starts it before its first test."""
    return WARM.start(_launcher_env(None))


def run_launcher(args: list[str], timeout: float, cwd=None, env: dict[str, str] | None = None,
                 fresh: bool = False) -> subprocess.CompletedProcess:
    """Run the launcher to completion and capture its output (text).

    ``env`` is the whole environment (default os.environ); the directory that
    holds ``parasol_hybrid`` is put on PYTHONPATH. On timeout the launcher
    gets SIGINT (it then stops its job) and, 10 s later, its process group
    SIGKILL; then AssertionError is raised with the output so far.

    The launcher is forked from a warm server that has already imported the
    library (``parasol_hybrid._warm_launcher``): the same launcher in a process
    of its own, without a second of imports per job. ``fresh=True`` (or no
    server) starts ``python -m parasol_hybrid`` instead.
    """
    argv = [sys.executable, "-m", "parasol_hybrid", *args]
    full_env = _launcher_env(env)
    warm = None if fresh or not start_warm_launchers() else WARM.launch(args, cwd, full_env)
    if warm is None:
        proc = start_launcher(args, cwd=cwd, env=env)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = stop_launcher(proc, grace=10.0)
            raise AssertionError(f"launcher timed out after {timeout:g} s: {argv}\n"
                                 f"--- stdout ---\n{out}\n--- stderr ---\n{err}") from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)
    pid, out_fd, err_fd, reply = warm
    deadline = time.monotonic() + timeout
    with reply, _Pipes(out_fd, err_fd) as pipes:
        if pipes.read_until(deadline):
            rc = _warm_exit_code(reply, deadline - time.monotonic())
            if rc is not None:
                return subprocess.CompletedProcess(argv, rc, *pipes.text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        grace = time.monotonic() + 10.0
        if not (pipes.read_until(grace) and _warm_exit_code(reply, grace - time.monotonic()) is not None):
            _kill_launcher(pid)
            pipes.read_until(time.monotonic() + 10.0)
        out, err = pipes.text()
    raise AssertionError(f"launcher timed out after {timeout:g} s: {argv}\n"
                         f"--- stdout ---\n{out}\n--- stderr ---\n{err}")


class _Pipes:
    """A launcher's stdout and stderr pipes (read ends), read until both end."""

    def __init__(self, out_fd: int, err_fd: int):
        self.fds = (out_fd, err_fd)
        self.data = {out_fd: bytearray(), err_fd: bytearray()}
        self.open = set(self.fds)

    def read_until(self, deadline: float) -> bool:
        """Read until both pipes end (True) or ``deadline`` (False)."""
        with selectors.DefaultSelector() as sel:
            for fd in self.open:
                sel.register(fd, selectors.EVENT_READ)
            while self.open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for key, _ in sel.select(left):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        self.data[key.fd] += chunk
                    else:
                        sel.unregister(key.fd)
                        self.open.discard(key.fd)
        return True

    def text(self) -> tuple[str, str]:
        """Both outputs as text, newlines translated as ``subprocess``'s text mode does."""
        return tuple(self.data[fd].decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
                     for fd in self.fds)

    def __enter__(self) -> _Pipes:
        return self

    def __exit__(self, *exc) -> None:
        for fd in self.fds:
            os.close(fd)


def write_config(tmp_path, **keys) -> Path:
    """Write ``keys`` as a JSON config; ``tmp_path`` is a directory (file config.json) or a .json path."""
    path = Path(tmp_path)
    if path.suffix != ".json":
        path = path / "config.json"
    path.write_text(json.dumps(keys, indent=2) + "\n")
    return path


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def alive_pids(pids, wait: float = 0.0) -> list[int]:
    """The ``pids`` still running, after waiting up to ``wait`` seconds for them to end."""
    deadline = time.monotonic() + wait
    while True:
        alive = [p for p in pids if pid_alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)
