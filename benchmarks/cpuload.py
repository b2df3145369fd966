"""How busy the machine was with other work while something was timed.

Figures on a shared 2-core machine mean little without this: a 2-worker job
needs both cores, so another process's load hurts it more than the
single-process limit it is compared with. :class:`CpuMeter` reads
``/proc/stat`` and this process's own (and waited-for children's) CPU time,
and reports the difference as cores used by *other* processes (plus the
hypervisor's ``steal``).
"""

from __future__ import annotations

import os
import resource
import time

__all__ = ["CpuMeter", "wait_quiet", "QUIET_CORES"]

#: a sample is "quiet" when other processes used at most this many cores meanwhile
QUIET_CORES = 0.3

_HZ = os.sysconf("SC_CLK_TCK")


def _snapshot() -> tuple[float, float, float, float]:
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        v = [0] * 8
    busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / _HZ  # user nice system irq softirq
    steal = v[7] / _HZ
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        own += ru.ru_utime + ru.ru_stime
    return time.monotonic(), busy, steal, own


class CpuMeter:
    """``with CpuMeter() as m: ...`` then ``m.others`` (cores used by other processes) and ``m.steal``.

    Own CPU counts this process and the children it has waited for, so it
    fits a subprocess that has ended, or work done in this process.
    """

    def __init__(self):
        self.others = self.steal = 0.0

    def __enter__(self) -> "CpuMeter":
        self._start = _snapshot()
        return self

    def __exit__(self, *exc) -> None:
        t1, busy1, steal1, own1 = _snapshot()
        t0, busy0, steal0, own0 = self._start
        dt = max(t1 - t0, 1e-9)
        self.others = max(0.0, (busy1 - busy0) - (own1 - own0)) / dt
        self.steal = (steal1 - steal0) / dt


def wait_quiet(max_wait: float = 20.0, threshold: float = QUIET_CORES, window: float = 0.5) -> float:
    """Sleep until other processes use less than ``threshold`` cores (over ``window`` s), at most ``max_wait`` s.

    Returns the seconds waited. Other sessions' test runs come in bursts on
    a shared machine; a sample taken between bursts is worth more.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        with CpuMeter() as meter:
            time.sleep(window)
        if meter.others + meter.steal < threshold:
            break
    return time.monotonic() - t0
