"""POSIX shared-memory segments that hold table shards, named so that they can be swept.

Every segment and semaphore of a job is named
``parasol-<job id>-<creator pid>-<what>``. The creator's pid makes a leftover
segment attributable: :func:`sweep` removes the ones whose creator no longer
runs on this host (or every one of a given job, which the launcher does after
the job ends).

Segments are normally unlinked as soon as every process on the node has mapped
them (the mapping stays valid), so a crash cannot leak them; the sweep covers
the short window before that.
"""

from __future__ import annotations

import mmap
import os
import re
import secrets
from pathlib import Path

import numpy as np
import posix_ipc

from ..errors import TableError

__all__ = [
    "SHM_DIR",
    "PREFIX",
    "new_job_id",
    "segment_name",
    "Segment",
    "leftovers",
    "sweep",
]

SHM_DIR = Path("/dev/shm")
PREFIX = "parasol"
_NAME_RE = re.compile(r"^(?:sem\.)?parasol-(?P<job>[0-9a-f]+)-(?P<pid>\d+)-")
_JOB_RE = re.compile(r"^[0-9a-f]{4,32}$")


def new_job_id() -> str:
    """A fresh random job id (12 hex digits)."""
    return secrets.token_hex(6)


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is a valid job id (4-32 lowercase hex digits), else raise."""
    if not _JOB_RE.match(job_id):
        raise TableError(f"job id {job_id!r} is not 4-32 lowercase hex digits")
    return job_id


def segment_name(job_id: str, what: str, pid: int | None = None) -> str:
    """The POSIX name (with leading ``/``) of a segment or semaphore of ``job_id``."""
    pid = os.getpid() if pid is None else pid
    return f"/{PREFIX}-{job_id}-{pid}-{what}"


class Segment:
    """One shared-memory segment mapped as a numpy array.

    ``Segment.create`` makes a new segment (failing if the name exists) and
    sizes it (all zeros); ``Segment.attach`` maps an existing one. ``array`` is the
    numpy view; every view of it keeps the mapping alive. ``close()`` drops the
    view and unmaps if no other view lives; ``unlink()`` removes the name
    (mappings stay valid until closed).
    """

    def __init__(self, name: str, shape: tuple[int, ...], dtype, mm: mmap.mmap, created: bool):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._mm = mm
        self.created = created
        count = int(np.prod(self.shape, dtype=np.int64))
        # np.frombuffer holds a buffer export of the mmap: while this array or any view of it
        # lives, mm.close() raises BufferError and the mapping stays valid (np.ndarray(buffer=mm)
        # does not hold it, so a view could outlive its mapping and crash the process).
        self.array = (np.frombuffer(mm, dtype=self.dtype, count=count).reshape(self.shape) if count
                      else np.zeros(self.shape, self.dtype))

    @staticmethod
    def nbytes_for(shape, dtype) -> int:
        return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize

    @classmethod
    def create(cls, name: str, shape, dtype) -> "Segment":
        """Create (O_CREX), size and map a new segment; it reads as zeros, and its pages are
        allocated (in /dev/shm) as they are first written."""
        nbytes = max(cls.nbytes_for(shape, dtype), 1)
        try:
            shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=nbytes)
        except posix_ipc.ExistentialError as exc:
            raise TableError(f"shared-memory segment {name} already exists ({exc}); run `run_parasol --cleanup`") from exc
        try:
            mm = mmap.mmap(shm.fd, nbytes)
        finally:
            shm.close_fd()
        seg = cls(name, shape, dtype, mm, created=True)
        return seg

    @classmethod
    def attach(cls, name: str, shape, dtype) -> "Segment":
        """Map an existing segment created by another process of the job."""
        nbytes = max(cls.nbytes_for(shape, dtype), 1)
        try:
            shm = posix_ipc.SharedMemory(name)
        except posix_ipc.ExistentialError as exc:
            raise TableError(f"shared-memory segment {name} does not exist") from exc
        try:
            if shm.size < nbytes:
                raise TableError(f"shared-memory segment {name} has {shm.size} bytes, expected {nbytes}")
            mm = mmap.mmap(shm.fd, nbytes)
        finally:
            shm.close_fd()
        return cls(name, shape, dtype, mm, created=False)

    def unlink(self) -> None:
        """Remove the segment's name; existing mappings stay valid. Idempotent."""
        try:
            posix_ipc.unlink_shared_memory(self.name)
        except posix_ipc.ExistentialError:
            pass

    def close(self) -> None:
        """Drop this object's view and unmap the segment, unless a view of it is still alive
        elsewhere (a table, a zero-copy frame, a thread): then the mapping stays valid until the
        last view is gone or the process ends. Never leaves a view pointing at unmapped memory."""
        self.array = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a view still holds the buffer: the mapping lives on with it
            self._mm = None


def _entries() -> list[str]:
    try:
        return sorted(p.name for p in SHM_DIR.iterdir() if p.name.startswith(PREFIX) or p.name.startswith("sem." + PREFIX))
    except FileNotFoundError:
        return []


def leftovers(job_id: str | None = None) -> list[str]:
    """Names in /dev/shm (segments and ``sem.`` semaphores) that belong to parasol jobs (or one job)."""
    out = []
    for name in _entries():
        if job_id is None:
            out.append(name)
        else:
            m = _NAME_RE.match(name)
            if m and m.group("job") == job_id:
                out.append(name)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(job_id: str | None = None) -> list[str]:
    """Remove leftover segments and semaphores; return the /dev/shm names removed.

    With ``job_id``, remove every one of that job (the job has ended). Without,
    remove those whose creator process no longer runs on this host, and names
    that start with ``parasol`` but do not follow the naming scheme are kept.
    """
    removed = []
    for name in _entries():
        m = _NAME_RE.match(name)
        if m is None:
            continue
        if job_id is not None:
            if m.group("job") != job_id:
                continue
        elif _pid_alive(int(m.group("pid"))):
            continue
        path = SHM_DIR / name
        try:
            path.unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed
