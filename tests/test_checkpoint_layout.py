"""Checkpoints do what the config says: a job resumes on another layout (nworker, nserver, nodes) with every
row as saved, MF resumes with more rounds, PageRank and SVD checkpoint, Lasso refuses checkpoint_every.

The reference for "as saved" is a plain numpy reconstruction of the checkpoint files (global row ``k`` of a
table is row ``k // S`` of file ``t<i>s<k % S>.npy``), independent of the servers' re-sharding code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid import checkpoint
from parasol_hybrid.datasets import movielens_100k, split_ratings
from parasol_hybrid.errors import CheckpointError
from parasol_hybrid.tables.spec import TableSpec
from parasol_hybrid.testing import _launcher_env, run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "tests" / "jobs" / "reshard_job.py"
MF = REPO / "algs" / "mf.py"
pytestmark = pytest.mark.timeout(300)


def tables_of(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every table of a checkpoint, whole (values, state), rebuilt from its shard files with numpy."""
    manifest = json.loads((folder / checkpoint.MANIFEST).read_text())
    out = {}
    for i, t in enumerate(manifest["tables"]):
        S = t["nshards"]
        values = np.zeros((t["rows"], t["dim"]), dtype=t["dtype"])
        state = np.zeros((t["rows"], t["state_slots"], t["dim"]), dtype=t["dtype"])
        for s in range(S):
            values[s::S] = np.load(folder / f"t{i}s{s}.npy")
            state[s::S] = np.load(folder / f"t{i}s{s}.state.npy")
        out[t["name"]] = (values, state)
    return out


def _run(args, what):
    done = run_launcher(args, timeout=200)
    assert done.returncode == 0, f"{what}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of the job's tables made by 1 worker and 2 servers on 1 node."""
    tmp = tmp_path_factory.mktemp("saved")
    cfg = write_config(tmp / "train.json", nworker=1, nserver=2, rounds=2, checkpoint_every=2,
                       checkpoint_dir=str(tmp / "ckpt"), output=str(tmp / "train"))
    _run(["--config", str(cfg), "python", str(JOB)], "train")
    return checkpoint.find_latest(tmp / "ckpt")


# fewer servers; more workers on the same servers; more servers on more nodes (each a job of its own)
LAYOUTS = {"nserver2to1": dict(nworker=1, nserver=1), "nworker1to3": dict(nworker=3, nserver=2),
           "nodes1to2_nserver3": dict(nworker=2, nserver=3, simulate_nodes=2)}


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_tables_resume_on_another_layout_row_for_row(saved, tmp_path, layout):
    keys = LAYOUTS[layout]
    cfg = write_config(tmp_path / "dump.json", rounds=2, checkpoint_every=1, checkpoint_dir=str(tmp_path / "again"),
                       output=str(tmp_path / "out"), **keys)
    done = _run(["--resume", str(saved), "--config", str(cfg), "python", str(JOB)], layout)
    assert "tables re-sharded" in done.stdout
    before = tables_of(saved)
    assert json.loads((saved / checkpoint.MANIFEST).read_text())["nserver"] == 2
    assert before["emb"][1].any(), "adagrad state should be saved"
    again = checkpoint.find_latest(tmp_path / "again")
    manifest = json.loads((again / checkpoint.MANIFEST).read_text())
    assert [t["nshards"] for t in manifest["tables"]] == [keys["nserver"]] * 3
    after = tables_of(again)
    for name in ("emb", "cnt", "w"):
        pulled = np.load(tmp_path / "out" / f"{name}.npy")  # the master's pull_all: local shards and caches
        assert np.array_equal(pulled, before[name][0]), name
        assert np.array_equal(after[name][0], before[name][0]), name   # what the new servers hold
        assert np.array_equal(after[name][1], before[name][1]), name   # and their optimiser state


def test_sparse_table_resumes_with_another_nworker_but_not_another_nserver(tmp_path):
    cfg = write_config(tmp_path / "train.json", nworker=1, nserver=2, rounds=2, checkpoint_every=2, sparse=True,
                       checkpoint_dir=str(tmp_path / "ckpt"), output=str(tmp_path / "train"))
    _run(["--config", str(cfg), "python", str(JOB)], "train")
    saved = checkpoint.find_latest(tmp_path / "ckpt")
    ok = write_config(tmp_path / "ok.json", nworker=2, nserver=2, simulate_nodes=2, rounds=2, sparse=True,
                      checkpoint_dir=str(tmp_path / "again"), output=str(tmp_path / "out"))
    _run(["--resume", str(saved), "--config", str(ok), "python", str(JOB)], "nworker 2")
    want = np.tile(np.arange(1, 10)[:, None], (1, 2)) * (1 + 2)  # the job's 9 keys, pushed at rounds 1 and 2
    assert np.array_equal(np.load(tmp_path / "out" / "sparse.npy"), want)
    bad = write_config(tmp_path / "bad.json", nworker=1, nserver=1, rounds=2, sparse=True,
                       checkpoint_dir=str(tmp_path / "again"), output=str(tmp_path / "out2"))
    done = run_launcher(["--resume", str(saved), "--config", str(bad), "python", str(JOB)], timeout=200)
    assert done.returncode != 0
    assert "CheckpointError: sparse table 'sp'" in done.stderr and "nserver 2" in done.stderr, done.stderr


def test_gather_shard_matches_numpy_striping(tmp_path):
    rng = np.random.default_rng(3)
    spec_of = lambda S: TableSpec.build(0, "x", (13, 2), "float64", rule="adagrad", nshards=S)  # noqa: E731
    full = rng.standard_normal((13, 2))
    state = rng.standard_normal((13, 1, 2))
    for old in (1, 2, 3, 5, 16):
        folder = tmp_path / f"s{old}"
        folder.mkdir()
        for s in range(old):
            checkpoint.write_shard(folder, 0, s, full[s::old], state[s::old])
        for new in (1, 2, 3, 4, 13, 20):
            for s in range(new):
                data, st = checkpoint.gather_shard(folder, spec_of(new), s, old)
                assert np.array_equal(data, full[s::new]) and np.array_equal(st, state[s::new]), (old, new, s)


def test_a_different_table_is_refused_whatever_the_layout(tmp_path):
    spec = TableSpec.build(0, "P", (10, 4), "float32", "normal", 0.0, 0.1, 7, "adagrad", nshards=2)
    manifest = {"tables": [json.loads(json.dumps(spec.as_dict()))]}
    assert checkpoint.check_table(manifest, tmp_path, TableSpec.build(0, "P", (10, 4), "float32", "normal", 0.0, 0.1,
                                                                      7, "adagrad", nshards=5)) == 2
    for other, field in ((TableSpec.build(0, "P", (11, 4), "float32", "normal", 0.0, 0.1, 7, "adagrad"), "rows"),
                         (TableSpec.build(0, "P", (10, 4), "float64", "normal", 0.0, 0.1, 7, "adagrad"), "dtype"),
                         (TableSpec.build(0, "P", (10, 4), "float32", "normal", 0.0, 0.1, 7, "add"), "rule"),
                         (TableSpec.build(0, "P", (10, 4), "float32", "uniform", 0.0, 0.1, 7, "adagrad"), "init"),
                         (TableSpec.build(0, "Q", (10, 4), "float32", "normal", 0.0, 0.1, 7, "adagrad"), "name")):
        with pytest.raises(CheckpointError, match=f"{field}: checkpoint"):
            checkpoint.check_table(manifest, tmp_path, other)
    with pytest.raises(CheckpointError, match="not in the checkpoint"):
        checkpoint.check_table(manifest, tmp_path, TableSpec.build(1, "R", 3))


# ---------------------------------------------------------------- MF


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    return split_ratings(movielens_100k(), tmp_path_factory.mktemp("ml"))


def _mf_config(path: Path, ml, name: str, **keys) -> Path:
    train, test = ml
    base = dict(nworker=1, nserver=1, input=str(train), test_input=str(test), k=8, checkpoint_dir=str(path / "ckpt"),
                output=str(path / name))
    base.update(keys)
    return write_config(path / f"{name}.json", **base)


def test_mf_resumes_with_more_rounds_than_it_started_with(tmp_path, ml):
    full = _mf_config(tmp_path, ml, "full", rounds=8)
    _run(["--config", str(full), "python", str(MF)], "uninterrupted")
    first = _mf_config(tmp_path, ml, "first", rounds=4, checkpoint_every=2)
    _run(["--config", str(first), "python", str(MF)], "4 rounds")
    more = _mf_config(tmp_path, ml, "first", rounds=8, checkpoint_every=2)
    log = tmp_path / "log.jsonl"
    _run(["--log-json", str(log), "--resume", str(tmp_path / "ckpt"), "--config", str(more), "python", str(MF)],
         "resumed with 8 rounds")
    metrics = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert metrics["start_round"] == 4 and metrics["rounds"] == 8
    records = [json.loads(line) for line in log.read_text().splitlines()]
    shown = {r["round"]: r["train_rmse"] for r in records if "train_rmse" in r}
    assert sorted(shown) == [5, 6, 7, 8], records
    assert all(r is not None and 0.3 < r < 1.5 for r in shown.values()), shown  # the ring's sums, complete
    for name in ("P", "Q", "bu", "bi"):  # one worker: the same SGD steps as the uninterrupted run
        a, b = np.load(tmp_path / "full" / f"{name}.npy"), np.load(tmp_path / "first" / f"{name}.npy")
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=name)
    whole = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert abs(metrics["test_rmse"] - whole["test_rmse"]) <= 1e-6


def test_mf_resumed_on_another_layout_is_as_good(tmp_path, ml):
    full = _mf_config(tmp_path, ml, "full", rounds=12)
    _run(["--config", str(full), "python", str(MF)], "uninterrupted")
    half = _mf_config(tmp_path, ml, "half", rounds=6, checkpoint_every=6, nserver=2)
    _run(["--config", str(half), "python", str(MF)], "first 6 rounds")
    rest = _mf_config(tmp_path, ml, "rest", rounds=12, checkpoint_every=6, nworker=2, nserver=3, simulate_nodes=2)
    _run(["--resume", str(tmp_path / "ckpt"), "--config", str(rest), "python", str(MF)], "resumed on 2 nodes")
    whole = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "rest" / "metrics.json").read_text())
    early = json.loads((tmp_path / "half" / "metrics.json").read_text())
    assert resumed["start_round"] == 6 and resumed["nodes"] == 2
    # 6 more rounds from the saved tables: as good as 12 uninterrupted, clearly better than 6
    assert abs(resumed["test_rmse"] - whole["test_rmse"]) <= 0.003 * whole["test_rmse"], (resumed, whole)
    assert early["test_rmse"] - whole["test_rmse"] > 0.003 * whole["test_rmse"], (early, whole)


# ---------------------------------------------------------------- lasso, pagerank, svd


def _regression(path: Path) -> Path:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 6))
    y = X @ np.array([1.5, -2.0, 0.0, 0.5, 0.0, 3.0]) + 0.1 * rng.standard_normal(60)
    path.write_text("".join(f"{t} " + " ".join(f"{j}:{v}" for j, v in enumerate(row)) + "\n" for t, row in zip(y, X)))
    return path


def test_lasso_refuses_checkpoint_every_before_any_rank_starts(tmp_path):
    cfg = write_config(tmp_path / "lasso.json", nworker=2, nserver=1, input=str(_regression(tmp_path / "r.txt")),
                       alpha=0.1, checkpoint_every=5, output=str(tmp_path / "out"))
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "lasso.py")], timeout=60)
    assert done.returncode == 2
    assert "checkpoint_every" in done.stderr and "lasso does not save checkpoints" in done.stderr, done.stderr
    assert "job " not in done.stderr  # refused by the launcher: no mpiexec was started
    # a plain mpiexec start refuses it too (runner.run validates with the algorithm's options)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    plain = subprocess.run([str(mpiexec), "-n", "2", sys.executable, str(REPO / "algs" / "lasso.py"), "--config",
                            str(cfg)], capture_output=True, text=True, timeout=60, env=_launcher_env(None))
    assert plain.returncode != 0 and "lasso does not save checkpoints" in plain.stderr, plain.stderr
    assert not (tmp_path / "out").exists()


def _graph(path: Path) -> Path:
    rng = np.random.default_rng(11)
    edges = {(int(a), int(b)) for a, b in rng.integers(0, 40, (160, 2)) if a != b}
    path.write_text("".join(f"n{a} n{b} {1 + (a * b) % 3}\n" for a, b in sorted(edges)))
    return path


def _ranks(out: Path) -> dict[str, float]:
    return {v: float(x) for v, x in (line.split("\t") for line in (out / "pagerank.tsv").read_text().splitlines())}


def test_pagerank_checkpoints_and_resumes_on_another_layout(tmp_path):
    graph = _graph(tmp_path / "g.txt")
    base = dict(input=str(graph), tol=0.0, checkpoint_dir=str(tmp_path / "ckpt"))
    PR = REPO / "algs" / "pagerank.py"
    full = write_config(tmp_path / "full.json", nworker=1, nserver=1, rounds=12, output=str(tmp_path / "full"),
                        **base)
    _run(["--config", str(full), "python", str(PR)], "uninterrupted")
    first = write_config(tmp_path / "first.json", nworker=1, nserver=2, rounds=5, checkpoint_every=5,
                         output=str(tmp_path / "first"), **base)
    _run(["--config", str(first), "python", str(PR)], "5 steps")
    assert checkpoint.find_latest(tmp_path / "ckpt").name == "ckpt-000000005"
    rest = write_config(tmp_path / "rest.json", nworker=3, nserver=1, rounds=12, checkpoint_every=5,
                        output=str(tmp_path / "rest"), **base)
    _run(["--resume", str(tmp_path / "ckpt"), "--config", str(rest), "python", str(PR)], "resumed")
    metrics = json.loads((tmp_path / "rest" / "metrics.json").read_text())
    assert metrics["start_round"] == 5 and metrics["iterations"] == 12
    a, b, early = _ranks(tmp_path / "full"), _ranks(tmp_path / "rest"), _ranks(tmp_path / "first")
    assert sum(abs(a[v] - b[v]) for v in a) <= 1e-12
    assert sum(abs(a[v] - early[v]) for v in a) > 1e-6  # 7 more steps do change the ranks: the test can fail


def _matrix(path: Path) -> Path:
    rng = np.random.default_rng(2)
    A = rng.standard_normal((30, 5)) @ rng.standard_normal((5, 20)) + 0.3 * rng.standard_normal((30, 20))
    A[rng.random(A.shape) < 0.3] = 0.0
    path.write_text("".join(f"r{i} c{j} {float(A[i, j])!r}\n" for i, j in zip(*np.nonzero(A))))
    return path


def test_svd_checkpoints_and_resumes_on_another_layout(tmp_path):
    matrix = _matrix(tmp_path / "a.txt")
    base = dict(input=str(matrix), k=3, oversample=0, checkpoint_dir=str(tmp_path / "ckpt"))
    SVD = REPO / "algs" / "svd.py"
    full = write_config(tmp_path / "full.json", nworker=1, nserver=1, rounds=6, output=str(tmp_path / "full"), **base)
    _run(["--config", str(full), "python", str(SVD)], "uninterrupted")
    first = write_config(tmp_path / "first.json", nworker=1, nserver=2, rounds=2, checkpoint_every=2,
                         output=str(tmp_path / "first"), **base)
    _run(["--config", str(first), "python", str(SVD)], "first rounds")
    assert checkpoint.find_latest(tmp_path / "ckpt").name == "ckpt-000000002"
    rest = write_config(tmp_path / "rest.json", nworker=2, nserver=3, simulate_nodes=2, rounds=6, checkpoint_every=2,
                        output=str(tmp_path / "rest"), **base)
    _run(["--resume", str(tmp_path / "ckpt"), "--config", str(rest), "python", str(SVD)], "resumed")
    m_full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    m_rest = json.loads((tmp_path / "rest" / "metrics.json").read_text())
    m_first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert m_rest["start_round"] == 2 and m_rest["rounds_done"] == 6
    np.testing.assert_allclose(m_rest["singular_values"], m_full["singular_values"], rtol=1e-10)
    # the same subspace iteration: U and V agree too (both are sign-normalised)
    for name in ("U", "V"):
        np.testing.assert_allclose(np.load(tmp_path / "rest" / f"{name}.npy"),
                                   np.load(tmp_path / "full" / f"{name}.npy"), atol=1e-8)
    assert np.max(np.abs(np.array(m_first["singular_values"]) - m_full["singular_values"])) > 1e-8
