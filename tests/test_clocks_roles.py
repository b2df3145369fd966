"""Tests of the staleness rule and the shared clocks (staleness/clock.py), and of role assignment (cluster/roles.py)."""

from __future__ import annotations

import itertools
import multiprocessing
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parasol_hybrid.errors import ConfigError
from parasol_hybrid._layout import assign_roles, simulated_nodes
from parasol_hybrid.staleness.clock import Clocks, may_proceed
from parasol_hybrid.tables import segment

pytestmark = pytest.mark.timeout(60)


# ----------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "clock, slowest, staleness, ok",
    [
        (0, 0, 0, True),     # everyone at the start
        (3, 3, 0, True),     # BSP: the slowest has caught up
        (3, 2, 0, False),    # BSP: one worker still behind
        (3, 2, 1, True),     # SSP 1: one clock behind is allowed
        (3, 1, 1, False),    # SSP 1: two behind is not
        (5, 3, 2, True),
        (5, 2, 2, False),
        (100, 0, -1, True),  # ASP: never wait
        (2, 5, 0, True),     # the slowest can not be ahead of me, but if it is, go
    ],
)
def test_may_proceed_truth_table(clock, slowest, staleness, ok):
    assert may_proceed(clock, slowest, staleness) is ok


def test_may_proceed_means_lead_at_most_staleness():
    for clock, slowest, s in itertools.product(range(6), range(6), range(-1, 4)):
        assert may_proceed(clock, slowest, s) == (s < 0 or clock - slowest <= s)


# ----------------------------------------------------------------- the clocks


@pytest.fixture
def clocks():
    """``clocks(n, staleness)`` -> [Clocks of worker 0..n-1], attached in this process; closed after."""
    made: list[tuple[dict, list[Clocks]]] = []
    job_id = segment.new_job_id()

    def make(n: int, staleness: int) -> list[Clocks]:
        names = Clocks.create(job_id, n)
        try:
            cs = [Clocks.attach(names, w, staleness) for w in range(n)]
        finally:
            Clocks.unlink(names)
        made.append((names, cs))
        return cs

    make.job_id = job_id
    yield make
    for names, cs in made:
        for c in cs:
            c.close()
    assert segment.leftovers(job_id) == []


def test_ticks_slowest_and_spread(clocks):
    c = clocks(3, -1)  # ASP so that ticks here never block
    assert [x.clock for x in c] == [0, 0, 0] and c[0].slowest() == 0 and c[0].spread() == 0
    assert c[1].tick() == 1
    assert c[1].tick() == 2
    assert c[2].tick() == 1
    for x in c:  # one shared array: every worker sees the same clocks
        assert [y.clock for y in c] == [0, 2, 1]
        assert x.slowest() == 0 and x.spread() == 2
    assert c[1].max_lead == 2 and c[2].max_lead == 1
    c[0].tick()
    c[0].tick()
    assert c[0].slowest() == 1 and c[0].spread() == 1


def test_wait_for_returns_true_when_reached_and_false_on_timeout(clocks):
    c = clocks(3, 0)
    assert c[0].wait_for(0, timeout=0.1) is True
    t0 = time.monotonic()
    assert c[0].wait_for(1, timeout=0.3) is False
    assert 0.25 <= time.monotonic() - t0 < 2.0
    assert c[0].waited >= 0.25


def test_bsp_tick_in_one_process_with_every_worker_ready_does_not_block(clocks):
    c = clocks(2, 0)
    # worker 1 is ahead by nothing when worker 0 ticks second: both at 1, nobody waits
    c[1].clocks[1] = 1  # as if worker 1 had ticked already (its tick would block until worker 0's)
    t0 = time.monotonic()
    assert c[0].tick() == 1
    assert time.monotonic() - t0 < 0.5


def _tick_later(names: dict, workers: list[int], delay: float, queue) -> None:
    """Another process: attach to the clocks, wait ``delay`` s, tick ``workers``, report the time."""
    cs = [Clocks.attach(names, w, -1) for w in workers]
    queue.put("attached")
    time.sleep(delay)
    queue.put(time.monotonic())
    for c in cs:
        c.tick()
    for c in cs:
        c.close()


@pytest.mark.parametrize("how", ["tick", "wait_for"])
def test_a_blocked_worker_is_woken_by_another_process_without_spinning(clocks, how):
    job = clocks.job_id
    names = Clocks.create(job, 3)
    try:
        me = Clocks.attach(names, 0, 0)  # BSP
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        other = ctx.Process(target=_tick_later, args=(names, [1, 2], 0.5, queue))
        other.start()
        try:
            assert queue.get(timeout=30) == "attached"
        except BaseException:
            other.kill()
            other.join()
            raise
    finally:
        Clocks.unlink(names)
    try:
        cpu0, t0 = time.process_time(), time.monotonic()
        if how == "tick":
            assert me.tick() == 1  # blocks until workers 1 and 2 reach clock 1
        else:
            me.clocks[0] = 1  # this worker has finished iteration 1; it waits for the others
            assert me.wait_for(1, timeout=20) is True
        cpu, woke = time.process_time() - cpu0, time.monotonic()
        ticked = queue.get(timeout=10)
        other.join(10)
        assert other.exitcode == 0
        assert woke >= ticked, "the wait returned before the other process ticked"
        assert woke - t0 >= 0.4
        assert woke - ticked < 3.0, f"woken {woke - ticked:.2f} s after the tick"
        assert cpu < 0.2, f"the waiting process used {cpu:.3f} s of CPU: it spins"
        assert me.slowest() == 1
        assert me.waited >= 0.4
    finally:
        if other.is_alive():
            other.kill()
            other.join()
        me.close()
    assert segment.leftovers(job) == []


def _wakeups() -> int:
    """Voluntary context switches of the calling thread so far: each time it slept and was woken."""
    with open("/proc/thread-self/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/thread-self/status")


def _tick_slowly(names: dict, worker: int, ticks: int, every: float) -> None:
    """Another process: tick ``worker`` ``ticks`` times, one every ``every`` seconds."""
    c = Clocks.attach(names, worker, -1)
    for _ in range(ticks):
        time.sleep(every)
        c.tick()
    c.close()


def test_a_waiting_worker_wakes_only_when_another_ticks_not_in_a_polling_loop(clocks):
    """A polling loop (even ``sleep(0.005)``, cheap in CPU) wakes hundreds of times a second; a worker
    blocked on its semaphore wakes once per post, plus once per second of its timed wait."""
    c = clocks(2, 0)
    before = _wakeups()
    assert c[0].wait_for(1, timeout=1.5) is False  # nobody ticks
    woken = _wakeups() - before
    assert woken <= 10, f"a worker that nobody woke for 1.5 s woke up {woken} times: it polls"

    job = clocks.job_id
    names = Clocks.create(job, 2)
    ctx = multiprocessing.get_context("fork")
    other = ctx.Process(target=_tick_slowly, args=(names, 1, 10, 0.1))
    try:
        me = Clocks.attach(names, 0, 0)
        try:
            me.clocks[0] = 10
            other.start()
            before, t0 = _wakeups(), time.monotonic()
            assert me.wait_for(10, timeout=30) is True  # 10 ticks of worker 1, 0.1 s apart
            seconds, woken = time.monotonic() - t0, _wakeups() - before
        finally:
            me.close()
        other.join(10)
        assert other.exitcode == 0
        assert seconds >= 0.9
        assert woken <= 10 + 10, f"woken {woken} times in {seconds:.2f} s by 10 ticks: it polls"
    finally:
        if other.is_alive():
            other.kill()
            other.join()
        Clocks.unlink(names)


def test_tick_waits_by_the_staleness_rule_may_proceed(clocks, monkeypatch):
    """tick() decides with may_proceed itself (not a copy of the rule), so the rule's tests test the library."""
    from parasol_hybrid.staleness import clock as clock_module

    asked = []

    def rule(clock, slowest, staleness):
        asked.append((clock, slowest, staleness))
        return True  # a rule that always lets go: tick must not block even though BSP says wait

    monkeypatch.setattr(clock_module, "may_proceed", rule)
    c = clocks(2, 0)
    t0 = time.monotonic()
    assert c[0].tick() == 1  # BSP with worker 1 still at 0: only the rule lets it go
    assert time.monotonic() - t0 < 0.5
    assert asked == [(1, 0, 0)]
    assert c[0].wait_for(5, timeout=0.1) is True and asked[-1] == (5, 0, 0)


def test_catch_up_raises_a_waiting_worker_to_the_highest_clock_and_wakes_the_others(clocks):
    c = clocks(3, 0)
    told = []
    c[0].notify = told.append
    c[1].clocks[1] = 4
    c[2].clocks[2] = 2
    assert c[0].catch_up() == 4 and c[0].clock == 4 and told == [4]
    assert c[2].wait_for(2, timeout=0) is True and c[2].slowest() == 2
    assert c[0].catch_up() == 4 and told == [4], "no change, no notice"
    c[0].cluster = True  # in cluster mode the frontier (other nodes' delivered clock) counts too
    c[0].frontier[0] = 7
    assert c[0].catch_up() == 7 and c[0].clock == 7 and told == [4, 7]
    t0 = time.monotonic()
    c[0].idle(0.2)  # catch_up, then sleep on the semaphore: nobody posts, so the whole timeout
    assert time.monotonic() - t0 >= 0.15


# ----------------------------------------------------------------- roles


def test_assign_roles_spreads_servers_over_nodes():
    keys = ["a"] * 4 + ["b"] * 4
    layout = assign_roles(keys, nworker=4, nserver=4)
    assert layout.nnodes == 2 and layout.size == 8
    assert [len(layout.servers_on(n)) for n in range(2)] == [2, 2]
    assert [len(layout.workers_on(n)) for n in range(2)] == [2, 2]
    assert layout.servers == [r for r in range(8) if layout.is_server[r]]
    assert [layout.index_of[r] for r in layout.servers] == [0, 1, 2, 3]
    assert [layout.index_of[r] for r in layout.workers] == [0, 1, 2, 3]

    layout = assign_roles(["x", "x", "y", "y", "y"], nworker=3, nserver=2)
    assert layout.node_of == (0, 0, 1, 1, 1)
    assert [len(layout.servers_on(n)) for n in range(2)] == [1, 1]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data())
def test_assign_roles_properties(sizes, data):
    keys = [f"host{n}" for n, k in enumerate(sizes) for _ in range(k)]
    size, nnodes = len(keys), len(sizes)
    nserver = data.draw(st.integers(nnodes, size - 1) if size > nnodes else st.just(None))
    if nserver is None:
        return
    try:
        layout = assign_roles(keys, size - nserver, nserver)
    except ConfigError as exc:  # only when round robin would leave a node without a worker
        assert "servers only" in str(exc)
        return
    assert all(layout.workers_on(n) for n in range(nnodes)), "every node needs a worker"
    assert len(layout.servers) == nserver and len(layout.workers) == size - nserver
    per_node = [len(layout.servers_on(n)) for n in range(nnodes)]
    assert min(per_node) >= 1, "every node needs a server"
    # round robin: counts differ by at most one wherever a node still had ranks to give
    room = [n for n in range(nnodes) if per_node[n] < sizes[n]]
    if room:
        assert max(per_node) - min(per_node[n] for n in room) <= 1
    assert sorted(layout.index_of[r] for r in layout.servers) == list(range(nserver))
    assert [layout.index_of[r] for r in layout.workers] == list(range(size - nserver))


def test_assign_roles_errors():
    with pytest.raises(ConfigError, match=r"nserver \(1\).*nodes \(2\)"):
        assign_roles(["a", "a", "b", "b"], nworker=3, nserver=1)
    with pytest.raises(ConfigError, match=r"nworker \+ nserver") as info:
        assign_roles(["a"] * 4, nworker=2, nserver=1)
    assert "4 ranks" in str(info.value) and "3" in str(info.value)
    with pytest.raises(ConfigError, match="nworker"):
        assign_roles(["a", "a"], nworker=0, nserver=2)
    with pytest.raises(ConfigError, match="servers only"):
        assign_roles(["a", "a", "b"], nworker=1, nserver=2)


@pytest.mark.parametrize("size, k", [(1, 1), (4, 2), (5, 2), (7, 3), (8, 8), (10, 4)])
def test_simulated_nodes_are_consecutive_and_even(size, k):
    nodes = simulated_nodes(size, k)
    assert len(nodes) == size
    assert nodes == sorted(nodes) and set(nodes) == set(range(k))
    counts = [nodes.count(n) for n in range(k)]
    assert max(counts) - min(counts) <= 1
    layout = assign_roles(nodes, size - k, k) if size > k else None
    if layout is not None:
        assert layout.nnodes == k and all(layout.servers_on(n) for n in range(k))


@pytest.mark.parametrize("size, k", [(4, 0), (4, 5), (1, 2)])
def test_simulated_nodes_out_of_range(size, k):
    with pytest.raises(ConfigError, match="simulate_nodes"):
        simulated_nodes(size, k)
