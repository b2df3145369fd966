"""Warm launchers for tests: ``run_parasol`` forked from a process that has already imported the library.

A test that runs a job starts ``python -m parasol_hybrid``, which spends about a
second of CPU importing numpy, numba and the library before it reads its
config; a suite that runs hundreds of jobs spends minutes on it. The
:class:`WarmLaunchers` of a test process start one server (``python -c
"...serve(FD)"``) that imports all that once. For each job the test sends
the launcher's arguments, working folder and environment, and the write ends
of two pipes for its output; the server forks a monitor, the monitor forks the
launcher, which takes the pipes as its stdout and stderr, starts a session of
its own (as ``start_new_session`` does) and runs :func:`parasol_hybrid.launcher.main`;
the monitor reports the launcher's pid, then its exit code.

From there on it is the real launcher: the same code, the same mpiexec, the
same ranks, in a process of its own that the test can signal. What differs
from a fresh ``python -m parasol_hybrid`` is only what the server imported
before the fork (the library, numpy, numba, mpi4py without MPI initialized),
which the launcher imports first in any case.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback

__all__ = ["WarmLaunchers", "serve"]

_MAX_REQUEST = 1 << 20
_PREIMPORT = "from parasol_hybrid._warm_launcher import serve; serve({fd})"


class WarmLaunchers:
    """One warm server per process, started on first use (or by :meth:`start`); :meth:`launch` a launcher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: subprocess.Popen | None = None
        self._channel: socket.socket | None = None

    def start(self, env: dict[str, str]) -> bool:
        """Start the server if it is not running; False if it cannot be (then launch a process instead)."""
        with self._lock:
            if self._server is not None and self._server.poll() is None:
                return True
            if self._channel is not None:  # the channel of a server that has ended
                self._channel.close()
                self._channel = None
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._server = subprocess.Popen(
                    [sys.executable, "-c", _PREIMPORT.format(fd=theirs.fileno())], env=env,
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
            except OSError:
                ours.close()
                return False
            finally:
                theirs.close()
            self._channel = ours
            return True

    def launch(self, args: list[str], cwd, env: dict[str, str]) -> tuple[int, int, int, socket.socket] | None:
        """Fork a launcher running ``run_parasol *args`` in ``cwd`` with ``env``.

        Returns ``(pid, stdout_fd, stderr_fd, reply)``: the launcher's pid, the
        read ends of its output pipes, and the socket its exit code arrives on
        (:func:`exit_code`). None if the server is not running (:meth:`start`; launch a process instead).
        """
        if self._channel is None:
            return None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        reply, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        request = json.dumps({"args": list(args), "cwd": None if cwd is None else os.fspath(cwd),
                              "env": env}).encode()
        try:
            with self._lock:
                socket.send_fds(self._channel, [request], [out_w, err_w, theirs.fileno()])
            pid = struct.unpack("q", reply.recv(8))[0]
        except (OSError, struct.error):
            for fd in (out_r, err_r):
                os.close(fd)
            reply.close()
            return None
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
            theirs.close()
        return pid, out_r, err_r, reply

    def close(self) -> None:
        """End the server (it also ends when this process does: its channel closes)."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
            if self._server is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._server.wait(timeout=5)
                if self._server.poll() is None:
                    self._server.kill()
                    self._server.wait()
                self._server = None


def exit_code(reply: socket.socket, timeout: float) -> int | None:
    """The launcher's exit code, from the socket :meth:`WarmLaunchers.launch` returned; None if it has
    not ended within ``timeout`` s."""
    reply.settimeout(max(timeout, 0.001))
    try:
        data = reply.recv(8)
    except TimeoutError:
        return None
    return struct.unpack("q", data)[0] if len(data) == 8 else 1


def serve(fd: int) -> None:
    """The server's loop: one monitor per request, until the channel closes."""
    from parasol_hybrid import launcher  # noqa: F401 - what every launcher imports first
    from parasol_hybrid._launcher.entry import mpi_not_initialized

    with mpi_not_initialized():
        from parasol_hybrid import algorithm  # noqa: F401 - numpy, numba and the rest of the library

    channel = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the test run ends the server by its channel
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(channel, _MAX_REQUEST, 3)
        except OSError:
            return
        if not msg:
            return
        if len(fds) != 3:
            for f in fds:
                os.close(f)
            continue
        if os.fork() == 0:
            channel.close()
            _monitor(json.loads(msg), *fds)
        for f in fds:
            os.close(f)


def _monitor(request: dict, out_w: int, err_w: int, reply_fd: int) -> None:
    """Fork the launcher, report its pid, wait for it, report its exit code; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        reply = socket.socket(fileno=reply_fd)
        pid = os.fork()
        if pid == 0:
            reply.close()
            _launcher(request, out_w, err_w)
        os.close(out_w)
        os.close(err_w)
        reply.send(struct.pack("q", pid))
        _, status = os.waitpid(pid, 0)
        reply.send(struct.pack("q", os.waitstatus_to_exitcode(status)))
        code = 0
    finally:
        os._exit(code)


def _launcher(request: dict, out_w: int, err_w: int) -> None:
    """In the forked launcher: become what ``python -m parasol_hybrid`` started that way would be; never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (devnull, out_w, err_w):
            os.close(fd)
        if request["cwd"] is not None:
            os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
        sys.path[1:1] = extra  # where python would have put them, after the script's folder
        sys.argv = [sys.executable, *request["args"]]
        from parasol_hybrid.launcher import main
        try:
            code = main(request["args"])
        except SystemExit as exc:  # argparse's errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except KeyboardInterrupt:  # as python ends on one: killed by SIGINT
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001 - as an uncaught exception ends python
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os._exit(code)
