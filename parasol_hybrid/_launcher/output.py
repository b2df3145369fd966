"""What the launcher writes: its own lines, and mpiexec's output forwarded through pipes.

When the launcher's stdout or stderr is a pipe (``run_parasol ... | head``),
mpiexec writes into a pipe of the launcher's, which :class:`Forward` copies
to ours; if the reader goes away, that stream is dropped (and still drained)
and the job runs to its end: a closed pipe cannot kill it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

__all__ = ["PROG", "emit", "is_pipe", "quiet_fd", "Forward"]

PROG = "run_parasol"


def is_pipe(fd: int) -> bool:
    """Whether ``fd`` is a pipe or socket (writing to it can fail with EPIPE once its reader is gone)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def quiet_fd(fd: int) -> None:
    """Point ``fd`` at /dev/null (its reader is gone), so nothing at exit fails writing to it."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


def emit(line: str, fd: int = 2) -> bool:
    """Write one line of the launcher's own to ``fd``; a closed pipe is not an error (returns False)."""
    stream = sys.stderr if fd == 2 else sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
        return True
    except (BrokenPipeError, ValueError):
        quiet_fd(fd)
        return False
    except OSError:
        return False


class Forward:
    """mpiexec's stdout or stderr, read from a pipe (non-blocking) and written to ours.

    When writing to ours fails (its reader is gone), forwarding stops but the
    pipe is still drained, so mpiexec and the ranks never block nor die on it.
    """

    def __init__(self, read_fd: int, out_fd: int):
        self.fd, self.out_fd = read_fd, out_fd
        os.set_blocking(read_fd, False)
        self.broken = False
        self.open = True

    def pump(self) -> bool:
        """Move what is readable now (at most 1 MiB, so other events are not starved); returns False
        at end of file."""
        for _ in range(16):
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                return False
            if not self.broken:
                self._write(data)
        return True

    def close(self) -> None:
        """Close the read end (once)."""
        if self.open:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.open = False

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.out_fd, view):]
        except BlockingIOError:
            pass  # our own output is non-blocking and full: drop this chunk rather than stall the job
        except OSError:  # EPIPE (the reader went away), EIO...: stop forwarding, keep draining
            self.broken = True
            quiet_fd(self.out_fd)
