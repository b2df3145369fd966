"""The compiled load path (issue 10): byte-range parsing, the job's vocabulary, triples sent to their owners.

References are the Python parsers of ``parasol_hybrid.data.parsers`` over ``read_lines`` (one line at a
time, ``float()``, ``str.split()``) and ``partition()`` over every line: the old path, kept as the spec.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parasol_hybrid.data import parse_ratings, read_lines
from parasol_hybrid.data.chunks import read_chunks
from parasol_hybrid.data.scan_ratings import scan_ratings
from parasol_hybrid.data.vocab import _POW10_INT, int_text_hash, int_text_order
from parasol_hybrid.data.partition import stable_hash
from parasol_hybrid.errors import InputError
from parasol_hybrid.testing import run_launcher, write_config

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
JOB = REPO / "tests" / "jobs" / "share_check.py"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")

TOKENS = ["1", "2", "10", "007", "0", "a", "b,", "#x", "3.5", "-0", "1e3", "1e", "inf", "nan", "1_0", "0x1", "5.",
          "\u3002", ".5", "-.5e-3", "1.2345678901234567", "4\r", "\u00e9", "9" * 20, "1e400", "\x1f", "",
          "\u00a0", "12345678901234567890", "\xff", "2147483646", "2147483647", "2147483648", "999999999999999999"]


def _texts(keys: np.ndarray, table) -> list[str]:
    names = table.texts()
    return [names[-1 - k] if k < 0 else str(k) for k in keys.tolist()]


def _random_file(path: Path, rnd: random.Random) -> Path:
    lines = [" ".join(rnd.choice(TOKENS) for _ in range(rnd.randint(0, 4))) for _ in range(rnd.randint(0, 15))]
    raw = ("\n".join(lines) + rnd.choice(["", "\n", "\r\n"])).encode("utf-8")
    if rnd.random() < 0.2:
        raw = raw.replace(b"\xc3\xbf", b"\xff")  # invalid utf-8
    path.write_bytes(raw)
    return path


def test_scan_gives_what_the_python_parser_gives(tmp_path):
    rnd = random.Random(7)
    for trial in range(250):
        path = _random_file(tmp_path / f"f{trial}", rnd)
        nworker = rnd.randint(1, 3)
        required = rnd.random() < 0.5
        for policy in ("skip", "error"):
            for w in range(nworker):
                try:
                    ref, ref_err = parse_ratings(read_lines([path], w, nworker), policy, required), None
                except InputError as exc:
                    ref, ref_err = None, str(exc)
                try:
                    got = scan_ratings([path], w, nworker, policy, required, chunk_bytes=rnd.choice([1, 5, 64, 1 << 20]))
                    got_err = None
                except InputError as exc:
                    got, got_err = None, str(exc)
                where = (path.read_bytes(), w, nworker, policy, required)
                assert got_err == ref_err, where
                if ref is None:
                    continue
                assert _texts(got.rows, got.row_ids) == list(ref.rows), where
                assert _texts(got.cols, got.col_ids) == list(ref.cols), where
                assert np.array_equal(got.values.view(np.int64), ref.values.view(np.int64)), where
                assert got.bad_lines == ref.bad_lines, where


def test_weights_are_bit_identical_to_float(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(20000) * 10.0 ** rng.integers(-25, 25, 20000)
    texts = [repr(float(v)) for v in x] + ["%.6g" % v for v in x] + ["%.3f" % v for v in x[:3000]]
    texts += ["%de%d" % (rng.integers(0, 10 ** 15), rng.integers(-30, 30)) for _ in range(3000)]
    path = tmp_path / "w.txt"
    path.write_text("".join(f"u i {t}\n" for t in texts))
    got = scan_ratings([path], 0, 1)
    ref = np.array([float(t) for t in texts])
    assert np.array_equal(got.values.view(np.int64), ref.view(np.int64))


def test_a_bad_line_deep_in_a_later_range_is_named_by_file_and_line(tmp_path):
    path = tmp_path / "r.txt"
    lines = [f"{k} {k % 7} 1" for k in range(5000)]
    lines[4321] = "17 3 four"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"{path}:4322: weight 'four' is not a finite number"):
        scan_ratings([path], 1, 2, chunk_bytes=4096)
    assert scan_ratings([path], 1, 2, "skip", chunk_bytes=4096).bad_lines == 1
    assert scan_ratings([path], 0, 2, "skip", chunk_bytes=4096).bad_lines == 0


def test_chunks_hold_the_lines_of_the_range(tmp_path):
    rnd = random.Random(5)
    for trial in range(200):
        files = []
        for k in range(rnd.randint(1, 3)):
            lines = ["x" * rnd.choice([0, 1, 2, 5, 30]) for _ in range(rnd.randint(0, 12))]
            p = tmp_path / f"c{trial}_{k}"
            p.write_bytes(("\n".join(lines) + (rnd.choice(["", "\n"]) if lines else "")).encode())
            files.append(p)
        nworker, size = rnd.randint(1, 5), rnd.choice([1, 2, 3, 7, 64])
        for w in range(nworker):
            ref = [(line.path, line.text) for line in read_lines(files, w, nworker)]
            got = []
            for chunk in read_chunks(files, w, nworker, size):
                pieces = bytes(chunk.data).split(b"\n")
                if pieces[-1] == b"":
                    pieces.pop()
                got += [(chunk.path, x.decode()) for x in pieces]
            assert got == ref, (trial, w, nworker, size)


def test_integer_ids_order_and_hash_as_their_text():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.integers(0, 10 ** 18, 3000), rng.integers(0, 1000, 3000), [0, 9, 10, 99, 100]])
    order = np.argsort(int_text_order(values, _POW10_INT), kind="stable")
    assert [str(v) for v in values[order]] == sorted(str(v) for v in values)
    assert np.array_equal(int_text_hash(values, _POW10_INT), stable_hash(np.array([str(v) for v in values],
                                                                                   dtype=object)))


# ------------------------------------------------------------------ the exchange, in real MPI processes

def _ratings_file(path: Path, kind: str, n: int = 3000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    if kind == "int":
        rows, cols = rng.integers(0, 400, n).astype(str), rng.integers(0, 60, n).astype(str)
    elif kind == "mid":  # int32 keys, but too sparse for the direct table: the sorted path
        rows = (rng.integers(0, 400, n) * 1_000_003 + 300_000_000).astype(str)
        cols = rng.integers(0, 60, n).astype(str)
    elif kind == "big":  # ids at and above 2^31 (int64 keys), one column sparse enough for the sorted path
        rows = (rng.integers(0, 400, n) + (1 << 31) - 200).astype(str)
        cols = rng.integers(0, 1 << 50, n).astype(str)
    else:  # strings, integer-looking ids, non-canonical integers and utf-8 in one column
        names = [f"u{k}" for k in range(100)] + [str(k) for k in range(100)] + ["007", "-3", "\u00e9t\u00e9"]
        rows = np.array(names, dtype=object)[rng.integers(0, len(names), n)]
        cols = rng.integers(0, 60, n).astype(str)
    vals = rng.integers(1, 6, n)
    body = "".join(f"{r},{c}\t{v}\n" for r, c, v in zip(rows, cols, vals))
    path.write_text("# a comment\n" + body + "x y nan\n\n" + "only-one-field\n")
    return path


@pytest.mark.parametrize("pattern, nworker, nodes", [("fmap", 1, None), ("fmap", 3, None), ("smap", 2, "0,0"),
                                                     ("fsmap", 4, "0,1,0,1"), ("fmap", 3, "0,0,0")])
def test_each_worker_gets_the_share_partition_gives(tmp_path, pattern, nworker, nodes):
    """``nodes``: the node of each rank (ranks of one node exchange through shared memory), None: MPI only.

    One job loads the files of each kind of ids in turn (int, mixed, mid, big), each checked on its own.
    """
    files: list[str] = []
    for kind in ["int", "mixed", "mid", "big"]:
        a = _ratings_file(tmp_path / f"{kind}-a.txt", kind, seed=1)
        b = _ratings_file(tmp_path / f"{kind}-b.txt", kind, n=500, seed=2)
        files += [*(["+"] if files else []), str(a), str(b)]
    env = dict(os.environ, **({"SHARE_NODES": nodes} if nodes else {}))
    done = subprocess.run([MPIEXEC, "-n", str(nworker), sys.executable, str(JOB), pattern, "skip", "1", "0",
                           *files], capture_output=True, text=True, timeout=100, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("nodes", [None, "0,0,1"])
def test_a_shuffled_share_holds_the_same_triples_in_a_seeded_order(tmp_path, nodes):
    a = _ratings_file(tmp_path / "a.txt", "mixed", seed=5)
    env = dict(os.environ, SHARE_SHUFFLE="1", **({"SHARE_NODES": nodes} if nodes else {}))
    done = subprocess.run([MPIEXEC, "-n", "3", sys.executable, str(JOB), "fmap", "skip", "1", "0", str(a)],
                          capture_output=True, text=True, timeout=100, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shared_ids_give_one_vocabulary_of_both_columns(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("a b\nb c 2\nc a\nd a 0.5\n7 a\n")
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(JOB), "fmap", "error", "0", "1", str(path)],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_line_in_the_last_range_ends_the_job_naming_it(tmp_path):
    """Worker 1 meets the bad line while worker 0 waits in the exchange: the job ends, naming it."""
    path = tmp_path / "r.txt"
    lines = [f"{k} {k % 7} 1" for k in range(4000)]
    lines[3999] = "1 2"
    path.write_text("\n".join(lines) + "\n")
    cfg = write_config(tmp_path, nworker=2, nserver=1, input=str(path), output=str(tmp_path / "out"), rounds=1)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "mf.py")], timeout=90)
    assert done.returncode != 0
    assert f"{path}:4000: expected at least 3 fields (row col weight), got 2" in done.stderr, done.stderr


@pytest.mark.parametrize("exchange", ["mpi", "shm"])
def test_a_two_node_job_loads_the_same_shares_either_way(tmp_path, exchange):
    """3 workers on 2 simulated nodes (two share node 0): through MPI only, or the job's own segments."""
    import json

    from parasol_hybrid.testing import shm_leftovers

    data = _ratings_file(tmp_path / "r.txt", "mixed", n=4000, seed=4)
    cfg = write_config(tmp_path, nworker=3, nserver=2, simulate_nodes=2, input=str(data), on_bad_line="skip",
                       output=str(tmp_path / "out"), load_exchange=exchange, pattern="fsmap")
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "tests" / "jobs" / "share_job.py")], timeout=90)
    assert done.returncode == 0, done.stderr
    got = json.loads((tmp_path / "out" / "share.json").read_text())
    assert got["wrong_workers"] == 0 and got["triples"] == got["expected_triples"] == 4000, got
    assert got["bad_lines"] == got["expected_bad"] == 2, got
    job = re.search(r"run_parasol: job ([0-9a-f]+):", done.stderr).group(1)
    assert shm_leftovers(job) == []


def test_a_bad_line_ends_a_bare_load_on_every_worker(tmp_path):
    """Without the launcher too: the worker that meets the bad line raises it, the others raise naming it."""
    path = tmp_path / "r.txt"
    lines = [f"{k} {k % 7} 1" for k in range(4000)]
    lines[3999] = "1 2 x"
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(JOB), "fmap", "error", "1", "0", str(path)],
                          capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    said = f"InputError: {path}:4000: weight 'x' is not a finite number ('1 2 x')"
    # the two ranks' stderr reach mpiexec interleaved, so a newline need not follow the finder's own line
    assert re.search(re.escape(said) + r"(?! \(met by)", out), out
    assert said + " (met by worker 1)" in out, out
