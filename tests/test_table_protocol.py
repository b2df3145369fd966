"""Real jobs of the table protocol (issue 9 items 4, 7 and 10), on one node and on 2 simulated nodes.

Each test runs ``tests/jobs/table_protocol_job.py`` with one ``case`` through the launcher and checks
the ``protocol.json`` its master wrote (and the files ``save_table`` wrote) against values computed
here with plain numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid import launcher
from parasol_hybrid.testing import run_launcher, shm_leftovers, write_config

JOBS = Path(__file__).resolve().parent / "jobs"
SCRIPT = JOBS / "table_protocol_job.py"
JOB_TIMEOUT = 120.0
ROWS, DIM = 12, 3

pytestmark = pytest.mark.timeout(180)

LAYOUTS = {"one_node": {"nworker": 2, "nserver": 1},
           "two_nodes": {"nworker": 2, "nserver": 2, "simulate_nodes": 2}}


def run_case(tmp_path: Path, case: str, **config) -> tuple[dict, Path]:
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "cfg.json", output=str(out), case=case, **config)
    done = run_launcher(["--config", str(cfg), "python", str(SCRIPT)], timeout=JOB_TIMEOUT, cwd=tmp_path)
    m = re.search(r"run_parasol: job ([0-9a-f]+):", done.stderr)
    assert m, f"the launcher did not say which job it started:\n{done.stderr}"
    assert done.returncode == 0, f"job failed with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert launcher.job_pids(m.group(1)) == []
    assert shm_leftovers(m.group(1)) == []
    return json.loads((out / "protocol.json").read_text()), out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dense_and_sparse_tables_answer_the_same_calls(tmp_path, layout):
    res, out = run_case(tmp_path, "protocol", **LAYOUTS[layout])
    dense = np.zeros((ROWS, DIM))
    sparse: dict[int, np.ndarray] = {}
    for w in range(2):
        keys = [7 + 1000 * w, 3, 10**12 + w]
        deltas = np.arange(3 * DIM, dtype=np.float64).reshape(3, DIM) + w
        for k, d in zip(keys, deltas):
            dense[k % ROWS] += d
            sparse[k] = sparse.get(k, np.zeros(DIM)) + d
    probe = [3, 10**12, 10**12 + 1, 7, 7000, 5]
    want_pull = np.array([sparse.get(k, np.zeros(DIM)) for k in probe])
    want_keys = np.array(sorted(sparse))
    want_values = np.array([sparse[k] for k in want_keys])
    assert [r["node"] for r in res["workers"]] == ([0, 0] if layout == "one_node" else [0, 1])
    for r in res["workers"]:
        np.testing.assert_array_equal(r["sparse_pull"], want_pull)
        np.testing.assert_array_equal(r["sparse_pull_out"], want_pull)  # out= is filled, zeros for missing keys
        assert r["out_is_returned"]
        np.testing.assert_array_equal(r["dense_pull"], dense[np.array(probe) % ROWS])
        np.testing.assert_array_equal(r["sparse_all"][0], want_keys)  # sorted by key
        np.testing.assert_array_equal(r["sparse_all"][1], want_values)
        np.testing.assert_array_equal(r["dense_all"], dense)
    master, other = res["workers"]
    assert other["saved"] == [None, None, None]  # save_table writes on the master only
    assert master["saved"] == [str(out / "dense.npy"), str(out / "sparse.npz"), str(out / "renamed.npz")]
    np.testing.assert_array_equal(np.load(out / "dense.npy"), dense)
    for name in ("sparse.npz", "renamed.npz"):
        with np.load(out / name) as z:
            assert sorted(z.files) == ["keys", "values"]
            np.testing.assert_array_equal(z["keys"], want_keys)
            np.testing.assert_array_equal(z["values"], want_values)
    assert not list(out.glob("*.tmp*")), "a temporary file of save_table was left behind"


@pytest.mark.parametrize("layout", LAYOUTS)
# not collected here: tests/test_table_protocol_inprocess.py runs this on an in-process job
def check_a_full_sparse_table_raises_naming_the_table_and_its_capacity(tmp_path, layout):
    res, _ = run_case(tmp_path, "full", **LAYOUTS[layout])
    w0 = res["workers"][0]
    if layout == "two_nodes":
        assert w0["remote"] == [1] and w0["shard"] == 1, "the keys should land in the other node's shard"
    err = w0["error"]
    assert err is not None, "pushing 200 keys into a table with room for 4 did not raise"
    assert "'tiny'" in err and "full" in err and "room for 4 keys" in err, err
    assert w0["len_after"] == 0, "a refused push left keys in the table"
    assert w0["pull_after"] == [5]


# not collected here: tests/test_table_protocol_inprocess.py runs this on an in-process job
def check_nan_and_inf_pushes_are_refused_on_every_path_across_nodes(tmp_path):
    res, _ = run_case(tmp_path, "nan", **LAYOUTS["two_nodes"])
    w0 = res["workers"][0]
    assert w0["remote"] == [1] and w0["shard"] == 1
    errors = w0["errors"]
    assert set(errors) >= {"wire_push_add", "wire_push_rule", "wire_sparse_push"}
    key = 1 + 2  # the second key of the push, the row holding the bad value
    tables = {"dense": "'w'", "ada": "'ada'", "sparse": "'sp'", "wire_push_add": "'w'", "wire_push_rule": "'w'",
              "wire_sparse_push": "'sp'"}
    for what, msg in errors.items():
        assert msg is not None, f"{what}: a push holding NaN/Inf was accepted"
        table = next(name for prefix, name in tables.items() if what.startswith(prefix))
        assert table in msg and (f"row {key}" in msg or f"key {key}" in msg), f"{what}: {msg}"
        assert "NaN" in msg, f"{what}: {msg}"
    np.testing.assert_array_equal(w0["owner_rows"], np.ones((2, DIM)))  # the owner's rows as they were
    for r in res["workers"]:  # every worker reads the tables as declared: nothing of a refused push is there
        np.testing.assert_array_equal(r["dense_all"], np.ones((ROWS, DIM)))
        np.testing.assert_array_equal(r["ada_all"], np.ones((ROWS, DIM)))
        assert r["sparse_all"][0] == [0, 1]
        np.testing.assert_array_equal(r["sparse_all"][1], np.full((2, DIM), 2.0))  # each worker pushed ones


@pytest.mark.parametrize("layout", LAYOUTS)
def test_in_place_adds_inside_locked_are_exact(tmp_path, layout):
    adds = 2_500_000  # per worker, in blocks of 1,000 under the locks: the two workers interleave
    res, _ = run_case(tmp_path, "exact", adds=adds, batch=1000, **LAYOUTS[layout])
    for r in res["workers"]:
        assert r["outside_numpy"] is not None and "read-only" in r["outside_numpy"], r["outside_numpy"]
        assert r["outside_numba"] is not None and "readonly array" in r["outside_numba"], r["outside_numba"]
        np.testing.assert_array_equal(r["table"], np.full((ROWS, 2), 2.0 * adds),
                                      err_msg=f"worker {r['worker']}: in-place adds were lost")
