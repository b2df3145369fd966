"""Keys at and above 2**31: sparse tables keyed up to 2**63 - 1 (push, pull, pull_all, save; a 2-node job that
pushes, checkpoints, resumes and pulls) and dense tables with row numbers past 2**31, against a Python dict.

Dense tables of more than 2**31 rows are tested on lazily allocated numpy arrays (``np.zeros`` maps pages
only where they are written), so a 2**31 + 16-row table costs a few pages, not 8 GB.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid import checkpoint
from parasol_hybrid.errors import TableError
from parasol_hybrid.tables.segment import new_job_id
from parasol_hybrid.tables.shard import Shard
from parasol_hybrid.tables.sparse import SparseTable
from parasol_hybrid.tables.spec import TableSpec
from parasol_hybrid.tables.table import Table
from parasol_hybrid.testing import run_launcher, shm_leftovers, write_config
from parasol_hybrid.transport.wire import Op, decode, encode

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "tests" / "jobs" / "big_keys_job.py"
sys.path.insert(0, str(JOB.parent))
import big_keys_job as job  # noqa: E402  (the job's key set and deltas, shared with the reference)

pytestmark = pytest.mark.timeout(240)

EDGES = [2**31 - 5, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**40, 2**63 - 1]


# ----------------------------------------------------------------- sparse tables on one node, in process

class _Made:
    """Shards created and attached in this process, closed and unlinked at the end."""

    def __init__(self):
        self.created: list[Shard] = []
        self.tables: list[Table] = []

    def table(self, job_id: str, spec: TableSpec) -> Table:
        made = [Shard.create(job_id, spec, s) for s in range(spec.nshards)]
        self.created += made
        t = Table(spec, [Shard.attach(spec, s, sh.names) for s, sh in enumerate(made)])
        self.tables.append(t)
        return t

    def close(self) -> None:
        for t in self.tables:
            t.close()
        for sh in self.created:
            sh.unlink()
            sh.close()


@pytest.fixture
def sparse():
    made = _Made()
    job_id = new_job_id()

    def make(name="big", capacity=1024, nshards=3, dim=2, dtype="int64") -> SparseTable:
        slots = -(-(capacity * 10 // 7 + 1) // nshards) * nshards  # as paralg.sparse_table sizes it
        k = made.table(job_id, TableSpec.build(len(made.tables), name + "#keys", (slots, 1), "int64", "constant",
                                               -1.0, 0.0, 0, "add", True, nshards))
        v = made.table(job_id, TableSpec.build(len(made.tables), name, (slots, dim), dtype, "zeros", 0.0, 0.0, 0,
                                               "add", True, nshards))
        return SparseTable(k, v, capacity)

    yield make
    made.close()
    assert shm_leftovers(job_id) == []


def _keys(rng, n: int) -> np.ndarray:
    """``n`` keys (with repeats) from a few hundred spread over [2**31 - 5, 2**40] and the EDGES."""
    pool = np.unique(np.concatenate([np.array(EDGES, np.int64), rng.integers(2**31 - 5, 2**40 + 1, 300)]))
    return pool[rng.integers(0, len(pool), n)]


@pytest.mark.parametrize("nshards", [1, 2, 3])
def test_sparse_keys_past_2_31_push_pull_pull_all_and_save_like_a_dict(sparse, tmp_path, nshards):
    sp = sparse(nshards=nshards)
    rng = np.random.default_rng(nshards)
    want: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _ in range(5):
        keys = _keys(rng, 150)
        rows = rng.integers(-9, 10, (150, 2)).astype(np.int64)
        sp.push(keys, rows)
        for k, r in zip(keys.tolist(), rows.tolist()):
            want[k][0] += r[0]
            want[k][1] += r[1]
    for k in EDGES:  # every edge is present, whatever the draw
        sp.push(np.array([k]), np.array([[k % 1000, 1]]))
        want[k][0] += k % 1000
        want[k][1] += 1
    ask = np.array(sorted(want) + [2**31 + 12345, 2**33 + 1, 2**62], dtype=np.int64)  # the last ones: never pushed
    got = sp.pull(ask)
    expect = [want.get(k, [0, 0]) for k in ask.tolist()]
    assert got.tolist() == expect
    keys, values = sp.pull_all()
    assert keys.dtype == np.int64 and keys.tolist() == sorted(want)
    assert values.tolist() == [want[k] for k in sorted(want)]
    assert len(sp) == len(want)
    with np.load(sp.save(tmp_path / "big.npz")) as z:
        assert z["keys"].tolist() == sorted(want)
        assert z["values"].tolist() == [want[k] for k in sorted(want)]
    # the raw key arrays hold the keys themselves (no truncation on the way in)
    raw = np.concatenate([s[:, 0] for s in sp._keys.shards])
    assert sorted(raw[raw >= 0].tolist()) == sorted(want)


def test_sparse_keys_of_every_integer_type_are_the_same_keys(sparse):
    sp = sparse(nshards=2)
    sp.push(np.array([2**31, 2**32], dtype=np.uint64), [[1, 1], [2, 2]])
    sp.push([2**31, 2**63 - 1], [[10, 10], [3, 3]])  # Python ints
    sp.push(np.array([[2**31 - 1]], dtype=np.int64), [[5, 5]])  # any shape: flattened
    assert sp.pull(np.array([2**31, 2**32, 2**63 - 1, 2**31 - 1], dtype=np.uint64)).tolist() == [
        [11, 11], [2, 2], [3, 3], [5, 5]]


@pytest.mark.parametrize("bad, shown", [
    (-1, "key -1"),
    (-(2**40), f"key {-(2**40)}"),
    (np.array([2**31, 2**63], dtype=np.uint64), f"key {2**63}"),
    ([2**31, 2**64 + 3], f"key {2**64 + 3}"),
    ([2**31, -(2**63) - 1], f"key {-(2**63) - 1}"),
])
def test_sparse_keys_out_of_int64_or_negative_are_refused_naming_the_table_and_key(sparse, bad, shown):
    sp = sparse(name="hashed", nshards=2)
    sp.push([2**31 + 1], [[1, 1]])
    keys = np.atleast_1d(np.asarray(bad, dtype=object if isinstance(bad, list) else None))
    for verb in ("push", "pull"):
        with pytest.raises(TableError) as info:
            if verb == "push":
                sp.push(bad, np.ones((len(keys), 2), dtype=np.int64))
            else:
                sp.pull(bad)
        msg = str(info.value)
        assert "'hashed'" in msg and shown in msg, f"{verb}: {msg}"
    assert sp.pull_all()[0].tolist() == [2**31 + 1]  # nothing was written


# ----------------------------------------------------------------- dense tables past 2**31 rows

class _LazyShard:
    """A shard on a lazily allocated numpy array (what Table uses of a Shard)."""

    def __init__(self, spec: TableSpec, s: int):
        n = len(range(s, spec.rows, spec.nshards))
        self.array = np.zeros((n, spec.dim), dtype=spec.dtype)
        self.state = type("State", (), {"array": np.zeros((n, spec.state_slots, spec.dim), dtype=spec.dtype)})()
        self.lock = threading.Lock()
        self.snap = None

    def close(self) -> None:
        self.array = self.state = None


def _lazy_table(rows: int, nshards: int, dtype="float64", rule="add", exact=None) -> Table:
    spec = TableSpec.build(0, "wide", (rows, 1), dtype, rule=rule, exact=exact, nshards=nshards)
    return Table(spec, [_LazyShard(spec, s) for s in range(nshards)])


DENSE_ROWS = 2**31 + 16
DENSE_KEYS = [0, 7, 2**31 - 5, 2**31 - 1, 2**31, 2**31 + 1, 2**31 + 15]


@pytest.mark.parametrize("nshards", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_dense_rows_past_2_31_push_and_pull_like_a_dict(nshards, dtype):
    t = _lazy_table(DENSE_ROWS, nshards, dtype)
    rng = np.random.default_rng(1)
    want: dict[int, int] = defaultdict(int)
    for _ in range(4):
        keys = np.array(DENSE_KEYS, np.int64)[rng.integers(0, len(DENSE_KEYS), 20)]
        rows = rng.integers(-9, 10, (20, 1))
        t.push(keys, rows.astype(dtype))
        for k, r in zip(keys.tolist(), rows[:, 0].tolist()):
            want[k] += r
    got = t.pull(np.array(DENSE_KEYS, np.int64))
    assert got[:, 0].tolist() == [want[k] for k in DENSE_KEYS]
    # row k lives in shard k % S at local row k // S
    for k in DENSE_KEYS:
        assert t.shards[k % nshards][k // nshards, 0] == want[k]
    t.push(np.array([2**31 + 3], np.uint64), np.array([[4]], dtype=dtype), rule="assign")
    assert t.pull([2**31 + 3]).tolist() == [[4]]
    t.close()


def test_dense_rule_kernels_reach_rows_past_2_31():
    t = _lazy_table(DENSE_ROWS, 1, "float64", rule="adagrad")
    t.push([2**31 + 2, 2**31 + 2], [[1.0], [1.0]])
    lr, g2 = 0.1, 0.0
    x = 0.0
    for _ in range(2):  # adagrad by hand
        g2 += 1.0
        x -= lr * 1.0 / (np.sqrt(g2) + 1e-8)
    assert t.pull([2**31 + 2])[0, 0] == pytest.approx(x)
    assert t.states[0][2**31 + 2, 0, 0] == 2.0
    assert t.pull([2**31 + 1])[0, 0] == 0.0
    t.close()


@pytest.mark.parametrize("bad", [DENSE_ROWS, 2**40, 2**63 - 1, -1, -(2**31)])
def test_dense_keys_past_the_rows_or_negative_are_refused_naming_table_and_key(bad):
    t = _lazy_table(DENSE_ROWS, 2, "float64")
    for verb in ("push", "pull"):
        with pytest.raises(TableError) as info:
            if verb == "push":
                t.push([2**31, bad], [[1.0], [1.0]])
            else:
                t.pull([2**31, bad])
        msg = str(info.value)
        assert "'wide'" in msg and f"key {bad} " in msg and f"[0, {DENSE_ROWS})" in msg, msg
    assert t.pull([2**31])[0, 0] == 0.0  # nothing was written
    with pytest.raises(TableError, match=f"'wide'.*key {2**63} at position 1 does not fit in int64"):
        t.push(np.array([1, 2**63], dtype=np.uint64), [[1.0], [1.0]])
    t.close()


def test_wire_carries_keys_past_2_31_unchanged():
    keys = np.array(EDGES + [2**62 + 7], dtype=np.int64)
    values = np.arange(len(keys) * 2, dtype=np.int64).reshape(-1, 2)
    frames = [bytes(f) for f in encode(Op.SPARSE_PUSH, table=3, shard=1, reqid=2**40, clock=2**33,
                                       keys=keys, values=values)]
    msg = decode(frames)
    assert msg.keys.dtype == np.int64 and msg.keys.tolist() == keys.tolist()
    assert msg.values.tolist() == values.tolist() and (msg.reqid, msg.clock) == (2**40, 2**33)


# ----------------------------------------------------------------- a 2-node job: push, checkpoint, resume, pull

def _reference(seed: int, nworker: int, rounds) -> dict[int, list[int]]:
    want: dict[int, list[int]] = defaultdict(lambda: [0] * job.DIM)
    for rnd in rounds:
        for w in range(nworker):
            keys, rows = job.deltas(seed, w, rnd)
            for k, r in zip(keys.tolist(), rows.tolist()):
                for j in range(job.DIM):
                    want[k][j] += r[j]
    return want


def _from_checkpoint(folder: Path) -> dict[int, list[int]]:
    """The sparse table of a checkpoint, read from its files with numpy: table 0 holds the keys
    (``-1`` empty), table 1 the rows, shard by shard, slot for slot."""
    manifest = json.loads((folder / checkpoint.MANIFEST).read_text())
    assert [t["name"] for t in manifest["tables"]] == ["big#keys", "big"]
    out = {}
    for s in range(manifest["tables"][0]["nshards"]):
        keys = np.load(folder / f"t0s{s}.npy")[:, 0]
        rows = np.load(folder / f"t1s{s}.npy")
        assert keys.dtype == np.int64
        for k, r in zip(keys.tolist(), rows.tolist()):
            if k >= 0:
                assert k % manifest["tables"][0]["nshards"] == s
                out[k] = r
    return out


def _run(args, where: Path, what: str):
    done = run_launcher(args, timeout=200, cwd=where)
    assert done.returncode == 0, f"{what}:\n{done.stdout}\n{done.stderr}"
    return done


def _check_output(out: Path, nworker: int, want: dict) -> None:
    ask = job.query_keys().tolist()
    expect = [want.get(k, [0] * job.DIM) for k in ask]
    for w in range(nworker):
        assert np.load(out / f"pull_w{w}.npy").tolist() == expect, f"worker {w}: pull"
    with np.load(out / "big.npz") as z:
        assert z["keys"].tolist() == sorted(want)
        assert z["values"].tolist() == [want[k] for k in sorted(want)]


def test_two_nodes_push_checkpoint_resume_and_pull_keys_past_2_31(tmp_path):
    lay = dict(nworker=2, nserver=2, simulate_nodes=2, seed=5)
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path / "train.json", rounds=4, checkpoint_every=2, checkpoint_dir=str(ckpt),
                       output=str(tmp_path / "train"), **lay)
    _run(["--config", str(cfg), "python", str(JOB)], tmp_path, "train")
    _check_output(tmp_path / "train", 2, _reference(5, 2, range(4)))
    for w in range(2):
        refused = json.loads((tmp_path / "train" / f"refused_w{w}.json").read_text())
        assert len(refused) == 2 and all("'big'" in m and "negative" in m for m in refused), refused
        assert "key -1 " in refused[0] and f"key {-(2**40)} " in refused[1], refused

    second = checkpoint.final_folder(ckpt, 2)  # resume from round 2, not the newest (round 4)
    assert _from_checkpoint(second) == _reference(5, 2, range(2))
    assert _from_checkpoint(checkpoint.final_folder(ckpt, 4)) == _reference(5, 2, range(4))

    cfg = write_config(tmp_path / "resume.json", rounds=5, checkpoint_every=0, checkpoint_dir=str(ckpt),
                       output=str(tmp_path / "resumed"), **lay)
    done = _run(["--resume", str(second), "--config", str(cfg), "python", str(JOB)], tmp_path, "resume")
    assert "resuming from" in done.stdout
    _check_output(tmp_path / "resumed", 2, _reference(5, 2, range(5)))
