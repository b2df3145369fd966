"""Checks every test gets for free: it leaves no parasol name in /dev/shm, no process, no thread and no
open ZeroMQ socket or context behind; and the ``inprocess_job`` fixture (``tests/inprocess.py``).

Other sessions may run parasol jobs on this host while a test runs, so the
checks count only what this test process could have made: a new /dev/shm name
whose creator (the pid in ``parasol-<job>-<pid>-...``) is this process, one of
its descendants, or a process that has ended; a new descendant process; a
thread of this process started during the test; and a zmq context or socket
created in this process during the test (every ``zmq.Context`` and socket made
is recorded while the test runs, as pyzmq's own test fixtures do).
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from pathlib import Path

import pytest
import zmq

SHM = Path("/dev/shm")
_NAME = re.compile(r"^(?:sem\.)?parasol-[0-9a-f]+-(?P<pid>\d+)-")


def parasol_entries() -> set[str]:
    """Names in /dev/shm that start with ``parasol`` or ``sem.parasol``."""
    return {p.name for p in SHM.iterdir() if p.name.startswith(("parasol", "sem.parasol"))}


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live, non-zombie process."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            out[int(entry.name)] = int(fields[1])
    return out


def descendants(root: int | None = None) -> set[int]:
    """Live pids below ``root`` (default: this process) in the process tree."""
    root = os.getpid() if root is None else root
    parents = _parents()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


def _ours(name: str, mine: set[int]) -> bool:
    m = _NAME.match(name)
    if m is None:
        return True  # not a library name: nobody else should make it either
    pid = int(m.group("pid"))
    return pid in mine or not os.path.exists(f"/proc/{pid}")


class ZmqRecorder:
    """Records every zmq context and socket this process makes while it is installed (weakly: one that
    was garbage-collected is gone, and pyzmq closed it)."""

    def __init__(self):
        self.contexts: weakref.WeakSet = weakref.WeakSet()
        self.sockets: weakref.WeakSet = weakref.WeakSet()
        self._init = zmq.Context.__init__
        self._socket = zmq.Context.socket

    def install(self) -> None:
        recorder, init, socket = self, self._init, self._socket

        def __init__(ctx, *args, **kw):
            init(ctx, *args, **kw)
            recorder.contexts.add(ctx)

        def make_socket(ctx, *args, **kw):
            sock = socket(ctx, *args, **kw)
            recorder.sockets.add(sock)
            return sock
        zmq.Context.__init__ = __init__
        zmq.Context.socket = make_socket

    def uninstall(self) -> None:
        zmq.Context.__init__ = self._init
        zmq.Context.socket = self._socket

    def open(self) -> list[str]:
        """What is still open: sockets (type and last endpoint) and contexts."""
        left = [f"socket {s.socket_type!r} {s.get(zmq.LAST_ENDPOINT)!r}" for s in list(self.sockets) if not s.closed]
        return left + [f"context {c!r}" for c in list(self.contexts) if not c.closed]


def _new_threads(before: set) -> list[str]:
    return sorted(f"{t.name} ({t.ident})" for t in threading.enumerate() if t not in before and t.is_alive())


@pytest.fixture(scope="session", autouse=True)
def warm_launchers():
    """The warm launcher server (``parasol_hybrid._warm_launcher``) of this test process, started before the
    first test so that no test sees it as a process it left behind."""
    from parasol_hybrid.testing import WARM, start_warm_launchers

    start_warm_launchers()
    yield
    WARM.close()


@pytest.fixture(autouse=True)
def leaves_nothing_behind():
    """Fail the test if it left a parasol segment/semaphore in /dev/shm, a process or a thread running,
    or a zmq socket or context of this process open (after a grace of 5 s for things that are ending)."""
    shm_before = parasol_entries()
    procs_before = descendants()
    threads_before = set(threading.enumerate())
    zmq_made = ZmqRecorder()
    zmq_made.install()
    try:
        yield
    finally:
        zmq_made.uninstall()
    deadline = time.monotonic() + 5.0
    while True:
        mine = descendants() | {os.getpid()}
        new_shm = sorted(n for n in parasol_entries() - shm_before if _ours(n, mine))
        new_procs = sorted(descendants() - procs_before)
        new_threads = _new_threads(threads_before)
        open_zmq = zmq_made.open()
        if (not new_shm and not new_procs and not new_threads and not open_zmq) or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    assert new_shm == [], f"the test left shared-memory names in /dev/shm: {new_shm}"
    assert new_procs == [], f"the test left processes running: {new_procs}"
    assert new_threads == [], f"the test left threads running: {new_threads}"
    assert open_zmq == [], f"the test left zmq sockets or contexts open: {open_zmq}"


@pytest.fixture
def inprocess_job():
    """``inprocess_job(nworker=2, nserver=2, nodes=2, **config)``: start an :class:`InProcessJob`
    (``tests/inprocess.py``); every job made is closed after the test, also when it fails."""
    from inprocess import InProcessJob  # here: a test without it does not import the cluster modules

    jobs: list[InProcessJob] = []

    def make(nworker: int = 2, nserver: int = 2, nodes: int = 2, **config) -> InProcessJob:
        job = InProcessJob(nworker, nserver, nodes, **config)
        jobs.append(job)
        return job.start()
    yield make
    for job in reversed(jobs):
        job.close()
