"""Tests of shared-memory tables in one process, without MPI: segments, shards, Table verbs and their errors."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from parasol_hybrid.errors import TableError
from parasol_hybrid.tables import segment
from parasol_hybrid.tables.segment import Segment, new_job_id, segment_name
from parasol_hybrid.tables.shard import Shard
from parasol_hybrid.tables.spec import TableSpec
from parasol_hybrid.tables.table import Table

pytestmark = pytest.mark.timeout(120)


class Node:
    """What a node holds for one table: the server's created shards and a worker's attached Table."""

    def __init__(self, spec: TableSpec, job_id: str):
        self.spec, self.job_id = spec, job_id
        self.created: list[Shard] = []
        self.attached: list[Shard] = []
        self.closed = False
        try:
            for s in range(spec.nshards):
                self.created.append(Shard.create(job_id, spec, s))
            for s, sh in enumerate(self.created):
                self.attached.append(Shard.attach(spec, s, sh.names))
        except BaseException:
            self.close()
            raise
        self.table = Table(spec, self.attached)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sh in self.created:
            sh.unlink()
        if hasattr(self, "table"):
            self.table.close()
        else:
            for sh in self.attached:
                sh.close()
        for sh in self.created:
            sh.close()


@pytest.fixture
def make_table():
    """``make_table(name, shape, nshards=..., **spec)`` -> Node; every node is unlinked and closed after the test."""
    nodes: list[Node] = []
    job_id = new_job_id()

    def make(name="t", shape=(10, 3), nshards=2, **kw) -> Node:
        spec = TableSpec.build(len(nodes), name, shape, nshards=nshards, **kw)
        node = Node(spec, job_id)
        nodes.append(node)
        return node

    make.job_id = job_id
    yield make
    for node in nodes:
        node.close()
    assert segment.leftovers(job_id) == []


# ----------------------------------------------------------------- verbs


@pytest.mark.parametrize("nshards", [1, 2, 3, 4])
def test_pull_push_pull_all_roundtrip(make_table, nshards):
    rows, dim = 23, 4
    node = make_table("weights", (rows, dim), nshards=nshards, dtype="float64", init="normal", b=0.5, seed=3)
    t = node.table
    start = t.pull_all()
    assert start.shape == (rows, dim) and start.dtype == np.float64
    assert np.unique(start).size == start.size  # initialised from the seed, not zeros
    rng = np.random.default_rng(nshards)
    keys = np.concatenate([rng.integers(0, rows, 50), [0, 0, rows - 1]])
    deltas = rng.standard_normal((len(keys), dim))
    t.push(keys, deltas)
    expected = start.copy()
    np.add.at(expected, keys, deltas)
    np.testing.assert_allclose(t.pull_all(), expected, rtol=1e-12)
    np.testing.assert_allclose(t.pull(keys[::-1]), expected[keys[::-1]], rtol=1e-12)
    out = np.empty((3, dim))
    assert t.pull([5, 1, 5], out=out) is out
    np.testing.assert_array_equal(out, expected[[5, 1, 5]])
    # the server's mapping sees the worker's pushes: it is the same memory
    for s, sh in enumerate(node.created):
        np.testing.assert_array_equal(sh.array, expected[s::nshards])


def test_pushes_with_rules_and_per_push_hyper_parameters(make_table):
    t = make_table("w", (6, 2), nshards=3, dtype="float32", rule="sgd", hyper={"lr": 0.5}).table
    g = np.array([[1.0, -2.0]], dtype=np.float32)
    t.push([4], g)  # the table's rule and hyper-parameters
    np.testing.assert_allclose(t.pull([4]), -0.5 * g)
    t.push([4], g, lr=0.25)  # this push only
    np.testing.assert_allclose(t.pull([4]), -0.75 * g)
    t.push([4], g, rule="assign")
    np.testing.assert_allclose(t.pull([4]), g)
    t.push([4], g)  # back to the table's lr
    np.testing.assert_allclose(t.pull([4]), 0.5 * g)
    assert (np.delete(t.pull_all(), 4, axis=0) == 0).all()


def test_dim_1_tables_take_1_d_values_and_scalar_keys(make_table):
    t = make_table("bias", 7, nshards=2, dtype="float64").table
    assert t.shape == (7, 1)
    t.push([1, 6, 1], np.array([1.0, 2.0, 3.0]))
    t.push(2, [[5.0]])
    np.testing.assert_array_equal(t.pull_all().ravel(), [0, 4, 5, 0, 0, 0, 2])


# ----------------------------------------------------------------- errors


def test_wrong_dtype_or_shape_raises_naming_the_table(make_table):
    t = make_table("counts", (8, 2), nshards=2, dtype="int64").table
    before = t.pull_all()
    with pytest.raises(TableError, match="counts") as info:
        t.push([1], np.array([[0.5, 1.5]]))  # float into int64
    assert "float64" in str(info.value) and "int64" in str(info.value)
    with pytest.raises(TableError, match=r"counts.*\(2, 2\)"):
        t.push([1, 2], np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TableError, match="counts"):
        t.push([1, 2], np.ones((3, 2), dtype=np.int64))
    with pytest.raises(TableError, match="counts"):
        t.push([[1, 2]], np.ones((2, 2), dtype=np.int64))  # 2-D keys
    with pytest.raises(TableError, match="counts"):
        t.push([1.5], np.ones((1, 2), dtype=np.int64))  # float keys
    with pytest.raises(TableError, match="counts"):
        t.pull([1], out=np.empty((1, 2), dtype=np.float64))
    np.testing.assert_array_equal(t.pull_all(), before)
    t.push([1], np.array([[2, 3]], dtype=np.int32))  # a safe integer cast is fine
    np.testing.assert_array_equal(t.pull([1]), [[2, 3]])


@pytest.mark.parametrize("rule", ["add", "assign", "sgd"])
@pytest.mark.parametrize("bad", [-1, "rows"])
def test_key_out_of_range_raises_and_leaves_the_table_unchanged(make_table, rule, bad):
    rows = 9
    t = make_table("emb", (rows, 2), nshards=3, dtype="float32", init="uniform", rule=rule).table
    bad = rows if bad == "rows" else bad
    before = t.pull_all()
    keys = [0, 4, bad, 8]  # valid keys before and after the bad one
    with pytest.raises(TableError) as info:
        t.push(keys, np.ones((4, 2), dtype=np.float32))
    msg = str(info.value)
    assert "emb" in msg and str(bad) in msg and "position 2" in msg
    np.testing.assert_array_equal(t.pull_all(), before)
    with pytest.raises(TableError, match="emb"):
        t.pull(keys)


def test_int64_tables_are_exact_and_hold_the_shard_locks(make_table):
    node = make_table("hits", (5, 1), nshards=2, dtype="int64", exact=False)
    t = node.table
    assert node.spec.exact  # an int64 table is always exact
    keys = np.array([3] * 1000 + [0] * 7, dtype=np.int64)
    t.push(keys, np.ones(len(keys), dtype=np.int64))
    assert t.pull_all().ravel().tolist() == [7, 0, 0, 1000, 0]

    # while another process of the node holds a shard lock, a push waits for it
    node.created[1].lock.acquire()
    done = threading.Event()
    pusher = threading.Thread(target=lambda: (t.push([2], [5]), done.set()), daemon=True)
    try:
        pusher.start()
        assert not done.wait(0.5), "the push did not wait for the shard lock"
    finally:
        node.created[1].lock.release()
    assert done.wait(10)
    pusher.join(10)
    assert t.pull([2]).item() == 5


def test_float_tables_are_not_locked_unless_declared_exact(make_table):
    loose = make_table("loose", (4, 1), nshards=1, dtype="float32")
    exact = make_table("exact", (4, 1), nshards=1, dtype="float32", exact=True)
    assert not loose.spec.exact and exact.spec.exact
    loose.created[0].lock.acquire()
    exact.created[0].lock.acquire()
    try:
        loose.table.push([1], [1.0])  # returns though the lock is held
        done = threading.Event()
        th = threading.Thread(target=lambda: (exact.table.push([1], [1.0]), done.set()), daemon=True)
        th.start()
        assert not done.wait(0.3)
    finally:
        loose.created[0].lock.release()
        exact.created[0].lock.release()
    assert done.wait(10)
    th.join(10)
    assert loose.table.pull([1]).item() == 1.0 and exact.table.pull([1]).item() == 1.0


BATCH = 20000


def _count(spec: TableSpec, names: list[dict], worker: int, pushes: int) -> None:
    """A forked 'worker': attach the shards by name and push +1s, many times, to shared keys."""
    shards = [Shard.attach(spec, s, n) for s, n in enumerate(names)]
    t = Table(spec, shards)
    rng = np.random.default_rng(worker)
    ones = np.ones((BATCH, spec.dim), dtype=np.int64)
    for _ in range(pushes):
        t.push(rng.integers(0, spec.rows, BATCH), ones)
    t.close()


def test_concurrent_pushes_from_processes_add_up_exactly(make_table):
    node = make_table("shared_counts", (6, 2), nshards=2, dtype="int64")
    names = [sh.names for sh in node.created]
    ctx = multiprocessing.get_context("fork")
    pushes = 60  # big pushes, so that the processes are inside the kernel at the same time
    procs = [ctx.Process(target=_count, args=(node.spec, names, w, pushes)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    table = node.table.pull_all()
    assert (table[:, 0] == table[:, 1]).all()
    assert int(table[:, 0].sum()) == 3 * pushes * BATCH, "increments were lost"
    expected = np.zeros(6, dtype=np.int64)
    for w in range(3):
        rng = np.random.default_rng(w)
        for _ in range(pushes):
            np.add.at(expected, rng.integers(0, 6, BATCH), 1)
    np.testing.assert_array_equal(table[:, 0], expected)


def test_a_rule_the_table_cannot_take_raises(make_table):
    t = make_table("plain", (4, 2), nshards=2, dtype="float32").table  # rule add: no state slots
    with pytest.raises(TableError, match=r"plain.*adagrad"):
        t.push([0], np.ones((1, 2), dtype=np.float32), rule="adagrad")
    ints = make_table("ints", (4, 2), nshards=2, dtype="int64").table
    with pytest.raises(TableError, match=r"ints.*sgd"):
        ints.push([0], np.ones((1, 2), dtype=np.int64), rule="sgd")
    assert (t.pull_all() == 0).all() and (ints.pull_all() == 0).all()
    # declared with the rule, the table has the state and the push works
    ada = make_table("ada", (4, 2), nshards=2, dtype="float32", rule="adagrad").table
    ada.push([0], np.ones((1, 2), dtype=np.float32))
    assert (ada.pull([0]) < 0).all()


# ----------------------------------------------------------------- segments


def test_segments_are_named_by_job_and_pid_and_go_away(make_table):
    job = make_table.job_id
    node = make_table("t", (10, 3), nshards=2, rule="adagrad")
    names = set(segment.leftovers(job))
    pattern = re.compile(rf"^(sem\.)?parasol-{job}-{os.getpid()}-t0s[01](st|lk)?$")
    assert names and all(pattern.match(n) for n in names), names
    for s in range(2):
        assert {f"parasol-{job}-{os.getpid()}-t0s{s}", f"parasol-{job}-{os.getpid()}-t0s{s}st",
                f"sem.parasol-{job}-{os.getpid()}-t0s{s}lk"} <= names
    for sh in node.created:
        sh.unlink()
    assert segment.leftovers(job) == []
    node.table.push([1], np.ones((1, 3), dtype=np.float32))  # the mappings outlive the names
    assert node.created[1].array[0].tolist() != [0.0, 0.0, 0.0]
    node.close()
    assert segment.leftovers(job) == []


def test_segment_create_attach_and_errors():
    job = new_job_id()
    seg = Segment.create(segment_name(job, "x"), (4, 2), np.float64)
    try:
        with pytest.raises(TableError, match="already exists"):
            Segment.create(seg.name, (4, 2), np.float64)
        other = Segment.attach(seg.name, (4, 2), np.float64)
        other.array[2, 1] = 7.5
        assert seg.array[2, 1] == 7.5
        with pytest.raises(TableError, match="bytes"):
            Segment.attach(seg.name, (40, 2), np.float64)
        other.close()
    finally:
        seg.unlink()
        seg.close()
    with pytest.raises(TableError, match="does not exist"):
        Segment.attach(seg.name, (4, 2), np.float64)
    assert segment.leftovers(job) == []


def test_sweep_removes_segments_of_dead_creators_only():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{dead_pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    job = new_job_id()
    made = [Segment.create(segment_name(job, "orphan", pid=dead_pid), (3,), np.int64),
            Segment.create(segment_name(job, "mine"), (3,), np.int64)]
    try:
        removed = segment.sweep()
        assert f"parasol-{job}-{dead_pid}-orphan" in removed
        assert segment.leftovers(job) == [f"parasol-{job}-{os.getpid()}-mine"]
        assert segment.sweep(job) == [f"parasol-{job}-{os.getpid()}-mine"]  # a job id sweeps live ones too
        assert segment.leftovers(job) == []
    finally:
        for seg in made:
            seg.unlink()
            seg.close()


# ----------------------------------------------------------------- bad values, in-place access, protocol (issue 9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", ["add", "assign", "sgd", "adagrad", "exact_add"])
def test_a_push_holding_nan_or_inf_is_refused_naming_table_and_row(make_table, kind, bad):
    rule = "adagrad" if kind == "adagrad" else "add"
    node = make_table("emb", (9, 3), nshards=2, dtype="float32", init="normal", seed=5, rule=rule,
                      exact=kind == "exact_add")
    t = node.table
    before = t.pull_all()
    keys = np.array([1, 8, 4], dtype=np.int64)
    deltas = np.ones((3, 3), dtype=np.float32)
    deltas[1, 2] = bad
    push_rule = kind if kind in ("assign", "sgd") else None
    with pytest.raises(TableError) as info:
        t.push(keys, deltas, rule=push_rule)
    msg = str(info.value)
    assert "'emb'" in msg and "row 8" in msg and "NaN" in msg, msg
    np.testing.assert_array_equal(t.pull_all(), before)
    assert all((s == 0).all() for s in t.states), "the optimiser state was written"
    t.push(keys, np.where(np.isfinite(deltas), deltas, 0))  # the same push, finite, goes through
    assert not np.array_equal(t.pull_all(), before)


def _add_one_in_place(shards, key, times):
    S = len(shards)
    for _ in range(times):
        shards[key % S][key // S, 0] += 1


def test_exact_tables_have_read_only_shards_and_locked_gives_writable_ones(make_table):
    from numba import njit
    from numba.core.errors import TypingError

    kernel = njit(_add_one_in_place)
    loose = make_table("loose", (6, 2), nshards=2, dtype="float64").table
    kernel(loose.shards, 3, 2)  # not exact: written in place, no locks
    assert loose.pull([3])[0, 0] == 2.0
    for t in (make_table("ex", (6, 2), nshards=2, dtype="float64", exact=True).table,
              make_table("ints", (6, 2), nshards=2, dtype="int64").table):
        with pytest.raises(ValueError, match="read-only"):
            t.shards[1][1, 0] += 1
        with pytest.raises(TypingError, match="readonly array"):
            kernel(t.shards, 3, 1)
        assert not any(s.flags.writeable for s in t.shards + t.states)
        with t.locked() as shards:
            assert all(s.flags.writeable for s in shards)
            kernel(shards, 3, 5)
            kernel(t.shards, 3, 1)  # inside the block the table's own arrays are writable too
        assert not any(s.flags.writeable for s in t.shards + t.states)  # and read-only again after it
        assert t.pull([3])[0, 0] == 6 and t.pull_all().sum() == 6
        t.push([3], np.ones((1, 2), dtype=t.dtype))  # pushes still take the locks and write
        assert t.pull([3]).tolist() == [[7, 1]]


def test_locked_holds_the_locks_that_pushes_take(make_table):
    node = make_table("held", (4, 1), nshards=2, dtype="int64")
    t = node.table
    done = threading.Event()
    with t.locked() as shards:
        for sh in node.created:  # every shard lock of the node is taken
            assert sh.lock.value == 0
        pusher = threading.Thread(target=lambda: (Table(node.spec, node.attached).push([1], [1]), done.set()),
                                  daemon=True)
        pusher.start()
        assert not done.wait(0.3), "a push went through while locked() held the locks"
        shards[1][0, 0] = 10
    assert done.wait(10)
    pusher.join(10)
    assert t.pull([1]).item() == 11


def test_dense_save_writes_pull_all_as_npy(make_table, tmp_path):
    t = make_table("w", (5, 2), nshards=3, dtype="float64", init="uniform", seed=1).table
    path = t.save(tmp_path / "w.npy")
    assert path == tmp_path / "w.npy" and sorted(p.name for p in tmp_path.iterdir()) == ["w.npy"]
    np.testing.assert_array_equal(np.load(path), t.pull_all())


def make_sparse(make_table, name: str, slots: int, nshards: int, capacity: int, dim: int = 2, dtype="int64"):
    """A SparseTable over two tables made here, as paralg.sparse_table declares them."""
    from parasol_hybrid.tables.sparse import SparseTable

    keys = make_table(name + "#keys", (slots, 1), nshards=nshards, dtype="int64", init="constant", a=-1.0)
    values = make_table(name, (slots, dim), nshards=nshards, dtype=dtype, exact=True)
    return SparseTable(keys.table, values.table, capacity)


def test_sparse_tables_answer_the_table_protocol(make_table, tmp_path):
    sp = make_sparse(make_table, "words", slots=12, nshards=3, capacity=8, dtype="float64")
    sp.push([10**15, 7, 3, 7], [[1, 2], [3, 4], [5, 6], [7, 8]])
    out = np.full((3, 2), -1.0)
    assert sp.pull([7, 99, 10**15], out=out) is out
    np.testing.assert_array_equal(out, [[10, 12], [0, 0], [1, 2]])  # keys never pushed read as zeros
    np.testing.assert_array_equal(sp.pull([3]), [[5, 6]])
    keys, values = sp.pull_all()
    assert keys.tolist() == [3, 7, 10**15]  # sorted by key
    np.testing.assert_array_equal(values, [[5, 6], [10, 12], [1, 2]])
    path = sp.save(tmp_path / "words.npz")
    with np.load(path) as z:
        np.testing.assert_array_equal(z["keys"], keys)
        np.testing.assert_array_equal(z["values"], values)
    with pytest.raises(TableError, match="out must be"):
        sp.pull([1], out=np.zeros((2, 2)))


def test_a_full_sparse_table_raises_naming_it_and_its_capacity_and_keeps_its_keys(make_table):
    sp = make_sparse(make_table, "counts", slots=6, nshards=2, capacity=4)
    sp.push([0, 1, 2], [[1, 1], [2, 2], [3, 3]])
    before = sp.pull_all()
    raw_keys = [a.copy() for a in sp._keys.shards]
    new = np.arange(10, 30, dtype=np.int64)  # more than the free slots of either shard
    with pytest.raises(TableError) as info:
        sp.push(new, np.ones((len(new), 2), dtype=np.int64))
    msg = str(info.value)
    assert "'counts'" in msg and "full" in msg and "room for 4 keys" in msg, msg
    after = sp.pull_all()
    np.testing.assert_array_equal(after[0], before[0])  # the keys it inserted before the full shard are gone
    np.testing.assert_array_equal(after[1], before[1])
    for a, b in zip(sp._keys.shards, raw_keys):  # and the probe sequences are as they were
        np.testing.assert_array_equal(a, b)
    sp.push([4], [[9, 9]])
    assert sp.pull([4, 2]).tolist() == [[9, 9], [3, 3]]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_sparse_push_holding_nan_or_inf_is_refused_and_inserts_nothing(make_table, bad):
    sp = make_sparse(make_table, "sp", slots=8, nshards=2, capacity=5, dtype="float32")
    sp.push([5], [[1, 1]])
    with pytest.raises(TableError) as info:
        sp.push([6, 70, 5], np.array([[1, 1], [1, bad], [1, 1]], dtype=np.float32))
    msg = str(info.value)
    assert "'sp'" in msg and "key 70" in msg and "NaN" in msg, msg
    keys, values = sp.pull_all()
    assert keys.tolist() == [5] and values.tolist() == [[1, 1]]
