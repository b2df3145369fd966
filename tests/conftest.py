"""Checks every test gets for free: it leaves no parasol name in /dev/shm and no process behind.

Other sessions may run parasol jobs on this host while a test runs, so the
checks count only what this test process could have made: a new /dev/shm name
whose creator (the pid in ``parasol-<job>-<pid>-...``) is this process, one of
its descendants, or a process that has ended; and a new descendant process.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def leaves_nothing_behind():
    """Fail the test if it left a parasol segment/semaphore in /dev/shm or a process running."""
    shm_before = parasol_entries()
    procs_before = descendants()
    yield
    deadline = time.monotonic() + 5.0
    while True:
        mine = descendants() | {os.getpid()}
        new_shm = sorted(n for n in parasol_entries() - shm_before if _ours(n, mine))
        new_procs = sorted(descendants() - procs_before)
        if (not new_shm and not new_procs) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert new_shm == [], f"the test left shared-memory names in /dev/shm: {new_shm}"
    assert new_procs == [], f"the test left processes running: {new_procs}"
