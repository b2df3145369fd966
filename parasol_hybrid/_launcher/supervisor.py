"""One mpiexec run: start it, forward signals and output, see the first rank end, end every process.

On SIGINT/SIGTERM/SIGHUP the launcher sends SIGINT to mpiexec (which passes
it to the ranks), waits the grace period, then SIGKILLs what is left (a second
signal: at once). If the launcher itself is killed (``kill -9``, the OOM
killer), mpiexec gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``) and every
rank, which watches the launcher, sweeps the job's segments and exits.
MPICH files that the job's processes map are noted while it runs and removed
when every process of the job is gone.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from typing import Callable

from .. import jobdir
from ..errors import JobError
from ..lifeline import mpich_files
from .cleanup import remove_files
from .output import Forward, is_pipe
from .procs import dies_with_us, job_pids, kill
from .ranks import RankWatch, describe_failure

__all__ = ["Job"]


class Job:
    """One mpiexec run of ``argv`` with ``env``: :meth:`run` it, then ask :meth:`describe_failure`."""

    def __init__(self, argv: list[str], env: dict[str, str], job_id: str, grace: float,
                 say: Callable[[str], None]):
        self.argv, self.env, self.job_id, self.grace, self.say = argv, env, job_id, grace, say
        self.proc: subprocess.Popen | None = None
        self.signum: int | None = None   # the first signal the launcher got, if any
        self.deadline: float | None = None   # when stopping: when the grace period ends
        self.mpich_files: set[str] = set()
        self._next_scan = self._started = 0.0
        self._poll = select.poll()
        self._streams: dict[int, Forward] = {}
        self.watch = RankWatch(env.get(jobdir.ENV), self._poll)

    def run(self) -> int:
        """Run the job to its end; returns the launcher's exit code (128 + signal if it was stopped)."""
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        saved = {s: signal.signal(s, self._on_signal) for s in sigs}
        try:
            self._start()
            self._wait_mpiexec()
            # mpiexec is now a zombie, so its process group id cannot be reused yet
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self._end_stragglers():
                self._remove_mpich_files()
            self._drain(time.monotonic() + 2.0)
            rc = self.proc.wait()
        finally:
            for fwd in list(self._streams.values()):
                self._unregister_stream(fwd)
            for s, handler in saved.items():
                signal.signal(s, handler)
        if self.signum is not None:
            return 128 + self.signum
        return 128 - rc if rc < 0 else rc

    def describe_failure(self) -> str | None:
        """Why the job failed (see :func:`.ranks.describe_failure`), or None if nothing says."""
        return describe_failure(self.watch, self.proc)

    def _on_signal(self, signum, frame) -> None:
        if self.signum is not None:  # a second signal: no more grace
            self.say(f"{signal.Signals(signum).name} again: killing the job")
            self.deadline = 0.0
            return
        self._scan()
        self.signum = signum
        self.deadline = time.monotonic() + self.grace
        self.say(f"{signal.Signals(signum).name}: stopping the job (SIGKILL in {self.grace:g} s)")
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)

    def _start(self) -> None:
        """Start mpiexec in a session of its own; our stdout/stderr that are pipes get forwarded."""
        piped = [fd for fd in (1, 2) if is_pipe(fd)]
        try:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, start_new_session=True, preexec_fn=dies_with_us(),
                stdout=subprocess.PIPE if 1 in piped else None, stderr=subprocess.PIPE if 2 in piped else None)
        except OSError as exc:
            raise JobError(f"cannot start {self.argv[0]}: {exc}") from exc
        for out_fd, pipe in ((1, self.proc.stdout), (2, self.proc.stderr)):
            if pipe is not None:
                fwd = Forward(os.dup(pipe.fileno()), out_fd)
                pipe.close()
                self._streams[fwd.fd] = fwd
                self._poll.register(fwd.fd, select.POLLIN)
        self._started = time.monotonic()
        if self.signum is not None:
            self.proc.send_signal(signal.SIGINT)

    def _scan(self) -> None:
        """Note the MPICH files the job maps, to remove them if its ranks die without doing so."""
        self.mpich_files |= mpich_files(job_pids(self.job_id))

    def _watch_ranks(self, timeout: float) -> None:
        """Read the ranks' registrations, then wait up to ``timeout`` s for one of them to end
        (forwarding output meanwhile)."""
        self.watch.read_registrations()
        if not self.watch.watching and not self._streams:
            time.sleep(timeout)
            return
        dead = []
        for fd, _ in self._poll.poll(timeout * 1000):
            if fd in self._streams:
                self._pump(self._streams[fd])
            elif self.watch.owns(fd):
                dead.append(fd)
        self.watch.ended(dead)

    def _pump(self, fwd: Forward) -> None:
        if not fwd.pump():
            self._unregister_stream(fwd)

    def _unregister_stream(self, fwd: Forward) -> None:
        self._streams.pop(fwd.fd, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._poll.unregister(fwd.fd)
        fwd.close()

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, forwarding mpiexec's output meanwhile."""
        if not self._streams:
            time.sleep(seconds)
            return
        for fd, _ in self._poll.poll(seconds * 1000):
            if fd in self._streams:
                self._pump(self._streams[fd])

    def _drain(self, deadline: float) -> None:
        """Forward what is left in mpiexec's pipes, until they end or ``deadline``."""
        while self._streams and time.monotonic() < deadline:
            self._pause(0.05)

    def _exited(self) -> bool:
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _wait_mpiexec(self) -> None:
        """Until mpiexec exits: note MPICH files, SIGKILL the job once the grace period is over."""
        killed = False
        while not self._exited():
            if time.monotonic() >= self._next_scan:  # often while ranks start, then rarely
                self._scan()
                # reading every rank's /proc maps costs ~10 ms: 20 times a second took a fifth of a core
                self._next_scan = time.monotonic() + (0.25 if time.monotonic() < self._started + 10 else 1.0)
            if not killed and self.deadline is not None and time.monotonic() >= self.deadline:
                self.say(f"job {self.job_id} did not stop within the grace period: SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                kill(job_pids(self.job_id), signal.SIGKILL)
                killed = True
            self._watch_ranks(0.02)
        self.watch.close()
        for fwd in list(self._streams.values()):  # what mpiexec wrote last
            self._pump(fwd)

    def _end_stragglers(self) -> bool:
        """Ranks still running after mpiexec: wait out the grace period if stopping, then SIGKILL.

        Returns whether every process of the job has ended."""
        while (pids := job_pids(self.job_id)) and time.monotonic() < (self.deadline or 0.0):
            self._pause(0.02)
        give_up = time.monotonic() + 5.0
        while pids and time.monotonic() < give_up:
            self.mpich_files |= mpich_files(pids)
            kill(pids, signal.SIGKILL)
            self._pause(0.02)
            pids = job_pids(self.job_id)
        if pids:
            self.say(f"processes of job {self.job_id} survived SIGKILL: {pids}")
        return not pids

    def _remove_mpich_files(self) -> None:
        removed = [os.path.basename(path) for path in remove_files(self.mpich_files)]
        if removed:
            self.say(f"removed {len(removed)} MPICH segment(s) of job {self.job_id}: {' '.join(removed)}")
