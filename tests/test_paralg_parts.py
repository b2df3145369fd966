"""In-process tests of the parts of paralg that need no job: the environment table of config.py, the straggler
hook, and what ``clock()`` does around the tick (clock hooks, the bulk-synchronous rule). Milliseconds each."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from parasol_hybrid import paralg
from parasol_hybrid._straggler import clock_hook
from parasol_hybrid.config import ENVIRONMENT, environment_overrides, environment_value, load_config

BASE = {"nworker": 2, "nserver": 1}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


# ----------------------------------------------------------------- the environment table


def test_environment_overrides_lists_the_declared_variables_that_are_set():
    env = {"PARASOL_RESUME": "/ck", "PARASOL_QUIET": "", "PARASOL_JOB_ID": "abc", "HOME": "/root"}
    got = environment_overrides(env)
    assert [(name, value) for name, value, _ in got] == [("PARASOL_RESUME", "/ck"), ("PARASOL_JOB_ID", "abc")]
    assert all(meaning == ENVIRONMENT[name] for name, _, meaning in got)
    assert got[1][2].startswith("internal:")  # launcher -> rank plumbing is marked
    assert environment_overrides({}) == []


def test_environment_value_reads_only_declared_names(monkeypatch):
    monkeypatch.setenv("PARASOL_TTY", "1")
    assert environment_value("PARASOL_TTY") == "1"
    assert environment_value("PARASOL_TTY", {"PARASOL_TTY": ""}) is None  # empty counts as not set
    with pytest.raises(KeyError, match="not declared"):
        environment_value("PARASOL_NO_SUCH_VARIABLE")


def test_every_variable_the_library_reads_is_declared():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "parasol_hybrid"
    read = set()
    for path in root.rglob("*.py"):
        read |= set(re.findall(r"\"(PARASOL_[A-Z_]+)\"", path.read_text()))
    assert read <= set(ENVIRONMENT), f"read but not declared in config.ENVIRONMENT: {sorted(read - set(ENVIRONMENT))}"


def test_interface_and_resume_are_overridden_by_the_environment(monkeypatch):
    assert load_config(BASE).interface == "auto"
    monkeypatch.setenv("PARASOL_INTERFACE", "lo")
    monkeypatch.setenv("PARASOL_RESUME", "/somewhere")
    cfg = load_config(BASE)
    assert (cfg.interface, cfg.resume) == ("lo", "/somewhere")


# ----------------------------------------------------------------- the straggler


def test_straggler_hook_is_for_the_slowed_worker_only(monkeypatch):
    cfg = load_config({**BASE, "straggler": {"worker": 1, "slowdown": 3.0}})
    assert clock_hook(cfg, 0) is None
    assert clock_hook(load_config(BASE), 1) is None
    assert clock_hook(load_config({**BASE, "straggler": {"worker": 1, "slowdown": 1.0}}), 1) is None
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    clock_hook(cfg, 1)(0.25)
    assert slept == [0.5]  # (F - 1) x the iteration's wall time


# ----------------------------------------------------------------- clock() around the tick


class _FakeClocks:
    def __init__(self):
        self.ticks = []

    def tick(self, staleness=None):
        self.ticks.append(staleness)
        return len(self.ticks)


def _alg(cls, worker: int = 0, **config):
    """Worker ``worker`` of a paralg with a fake runtime and clock board: clock() runs, sync() is counted."""
    alg = cls(SimpleNamespace(cfg=load_config({**BASE, **config}), index=worker, role="worker"))
    alg._clocks = _FakeClocks()
    alg.synced = 0

    def sync():
        alg.synced += 1
    alg.sync = sync
    return alg


class _Plain(paralg):
    pass


class _Bulk(paralg):
    bulk_synchronous = True


@pytest.mark.parametrize("cls, staleness, syncs", [(_Plain, 2, 0), (_Plain, -1, 0), (_Bulk, 0, 0), (_Bulk, 2, 3),
                                                   (_Bulk, -1, 3)])
def test_a_bulk_synchronous_algorithm_syncs_after_every_clock_when_staleness_is_not_0(cls, staleness, syncs):
    alg = _alg(cls, staleness=staleness)
    assert [alg.clock() for _ in range(3)] == [1, 2, 3]
    assert alg.synced == syncs and alg.round == 3
    assert alg._clocks.ticks == [None] * 3  # the tick itself is unchanged
    assert alg.staleness == staleness  # the config's value, as written to metrics.json


def test_clock_hooks_get_the_iterations_wall_time():
    alg = _alg(_Plain)
    seen = []
    alg._clock_hooks.append(seen.append)
    alg._last_clock = time.perf_counter() - 0.2
    alg.clock()
    assert len(seen) == 1 and 0.2 <= seen[0] < 5.0
    straggler = {"worker": 1, "slowdown": 2.0}
    assert len(_alg(_Plain, worker=1, straggler=straggler)._clock_hooks) == 1
    assert _alg(_Plain, worker=0, straggler=straggler)._clock_hooks == []
