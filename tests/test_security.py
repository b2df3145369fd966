"""Real jobs on 2 simulated nodes: hostile traffic to a server on the other node, and clients without the keys.

Each test runs ``tests/jobs/sec_fuzz_job.py`` with one ``suite`` through the launcher
(``{"nworker": 2, "nserver": 2, "simulate_nodes": 2}``: worker 0 and server 0 are node 0, worker 1
and server 1 node 1). Worker 0 sends the suite's messages to server 1 over its CURVE link and
records every answer in ``<output>/sec.json``; the tests check that each bad message got an ERROR
reply (or a refused JSON reply), that the server still answers, that valid pushes still work, and
that after two rounds of known pushes every worker reads exactly the expected tables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parasol_hybrid import launcher
from parasol_hybrid.testing import run_launcher, shm_leftovers, write_config

JOBS = Path(__file__).resolve().parent / "jobs"
SCRIPT = JOBS / "sec_fuzz_job.py"
JOB_TIMEOUT = 90.0

pytestmark = pytest.mark.timeout(150)

CLUSTER = {"nworker": 2, "nserver": 2, "simulate_nodes": 2}


def run_suite(tmp_path: Path, suite: str, **config) -> dict:
    """Run the job with ``suite``; check it ended cleanly and return its sec.json."""
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "cfg.json", output=str(out), suite=suite, **CLUSTER, **config)
    done = run_launcher(["--config", str(cfg), "python", str(SCRIPT)], timeout=JOB_TIMEOUT, cwd=tmp_path)
    m = re.search(r"run_parasol: job ([0-9a-f]+):", done.stderr)
    assert m, f"the launcher did not say which job it started:\n{done.stderr}"
    job_id = m.group(1)
    progress = out / "sec_progress.txt"
    last = progress.read_text().split()[-1:] if progress.exists() else []
    assert done.returncode == 0, (f"the job failed ({done.returncode}); the last message worker 0 sent to server 1 "
                                  f"was of case {last}:\n{done.stdout}\n{done.stderr[-6000:]}")
    assert "failed" not in done.stderr, done.stderr
    assert launcher.job_pids(job_id) == [], "processes of the job are still running"
    assert shm_leftovers(job_id) == []
    swept = re.search(rf"removed \d+ segment\(s\) of job {job_id}[^\n]*", done.stderr)
    assert swept is None, f"the server leaked segments that only the launcher's sweep removed: {swept.group(0)}"
    return json.loads((out / "sec.json").read_text())


def check_job_survived(res: dict) -> None:
    """Server 1 was on the other node, still answered afterwards, and nothing but valid pushes changed the tables."""
    assert res["nnodes"] == 2
    assert res["worker_node"] == 0 and res["target_node"] == 1 and res["target_is_remote"]
    checks = res["checks"]
    assert checks["before"]["ok"], f"server 1 did not answer valid requests before the suite: {checks['before']}"
    assert checks["after"]["ok"], f"server 1 stopped answering valid requests after the suite: {checks['after']}"
    assert checks["direct"]["ok"], f"a valid PUSH_ADD to server 1 failed after the suite: {checks['direct']}"
    assert res["drained_after_suite"] == 0, "server 1 sent replies that nobody asked for"
    for seen in checks["final"]:
        assert seen["float_ok"] and seen["int_ok"], (
            f"worker {seen['worker']} reads wrong tables after the suite and a second round of pushes "
            f"(rows differing: float {seen['float_diff_rows']}, int {seen['int_diff_rows']})")


def unexpected(res: dict) -> dict:
    return {case: rec["unexpected"] for case, rec in res["cases"].items() if rec["unexpected"]}


def first_error(res: dict, case: str) -> str:
    errors = res["cases"][case]["errors"]
    assert errors, f"case {case} got no error reply: {res['cases'][case]}"
    return errors[0]


# ----------------------------------------------------------------- garbage


# not collected here: tests/test_security_inprocess.py runs this on an in-process job
def check_garbage_gets_error_replies_and_changes_nothing(tmp_path):
    res = run_suite(tmp_path, "garbage", random_messages=150, mutated_messages=200)
    cases = res["cases"]
    sent = sum(rec["sent"] for rec in cases.values())
    assert sent >= 450, f"only {sent} messages were sent"
    assert unexpected(res) == {}, f"messages not answered with ERROR (or answered wrongly): {unexpected(res)}"
    # every message got an answer (none was dropped silently), and the answers were well formed
    for case, rec in cases.items():
        assert set(rec["kinds"]) <= {"error", "json_refused", "ok", "json_ok"}, (case, rec["kinds"])
        assert sum(rec["kinds"].values()) == rec["sent"]
    errors = sum(rec["kinds"].get("error", 0) + rec["kinds"].get("json_refused", 0) for rec in cases.values())
    assert errors >= 430, f"only {errors} ERROR replies"

    # what the server says names the problem: malformed frames are rejected by the wire format ...
    assert cases["random"]["sent"] >= 140 and cases["random"]["kinds"] == {"error": cases["random"]["sent"]}
    mutated = [c for c in cases if c.startswith("mutated_") and c != "mutated_still_valid"]
    assert len(mutated) >= 8 and sum(cases[c]["sent"] for c in mutated) >= 150
    for case in mutated + ["random", "unknown_op", "header_truncated", "keys_truncated", "values_one_row_short",
                           "values_missing", "extra_frame", "rule_name_missing", "count_huge", "dim_huge",
                           "dtype_code_unknown", "magic_wrong"]:
        assert first_error(res, case).startswith("malformed message"), (case, first_error(res, case))
    assert cases["unknown_op"]["sent"] == 24
    # ... and well-formed requests that do not fit the table are refused by the server, saying why
    for case, words in {
        "key_out_of_range": ["out of range"], "key_negative": ["out of range"], "key_huge": ["out of range"],
        "mixed_one_key_out_of_range": ["out of range"], "key_wrong_shard": ["shard"],
        "mixed_one_key_wrong_shard": ["shard"], "header_other_shard": ["shard"],
        "wrong_dtype_float64": ["float64", "float32"], "wrong_dtype_float_into_int": ["float32", "int64"],
        "wrong_dim_more": ["4", "3"], "unknown_table": ["unknown table", "7"],
        "pull_unknown_table": ["unknown table"], "pull_key_out_of_range": ["out of range"],
        "rule_unknown": ["nope"], "rule_code_like": ["unknown update rule"], "rule_stateful_on_plain_table": ["adagrad"],
        "rule_float_only_on_int_table": ["sgd"], "sparse_push_on_dense": ["sparse"],
        "json_unknown_op": ["nope"], "json_create_existing_table": ["already exists"],
    }.items():
        text = first_error(res, case)
        assert all(w in text for w in words), f"{case}: the error {text!r} does not name {words}"
    # mutations that stayed valid were answered one way or the other (their bases change nothing)
    assert cases.get("mutated_still_valid", {"kinds": {}})["kinds"].get("none", 0) == 0

    check_job_survived(res)
    assert all(ep.startswith("tcp://127.0.0.1:") for ep in res["endpoints"]), res["endpoints"]


# not collected here: tests/test_security_inprocess.py runs this on an in-process job
def check_reply_ops_sent_as_requests_get_error_replies(tmp_path):
    """ACK, VALUES, ERROR and ITEMS naming a real table and shard are not requests: ERROR, and the server lives on."""
    res = run_suite(tmp_path, "reply_ops")
    assert set(res["cases"]) == {"ack_as_request", "values_as_request", "error_as_request", "items_as_request"}
    assert unexpected(res) == {}, f"reply operations not refused with ERROR: {unexpected(res)}"
    for case in res["cases"]:
        assert "not a request" in first_error(res, case) or "malformed" in first_error(res, case), first_error(res, case)
    check_job_survived(res)


# not collected here: tests/test_security_inprocess.py runs this on an in-process job
def check_bad_table_specs_are_refused_without_leaks(tmp_path):
    """Control requests whose spec a declaration could never produce: refused, no segment left, caches untouched."""
    res = run_suite(tmp_path, "bad_specs")
    assert len(res["cases"]) >= 18
    assert unexpected(res) == {}, f"bad specs accepted or not answered: {unexpected(res)}"
    check_job_survived(res)


# ----------------------------------------------------------------- outsiders


def test_outsiders_get_no_answer_and_endpoints_are_loopback(tmp_path):
    res = run_suite(tmp_path, "outsiders")
    endpoints = res["endpoints"]
    assert len(endpoints) == 2
    assert all(ep.startswith("tcp://127.0.0.1:") for ep in endpoints), f"a server binds beyond loopback: {endpoints}"

    records = res["outsiders"]["records"]
    assert {(r["server"], r["client"]) for r in records} == {
        (s, c) for s in (0, 1) for c in ("plain", "other_job_keys", "foreign_client_key")}
    answered = [r for r in records if r["answered"]]
    assert answered == [], f"a client without the job's keys got an answer: {answered}"
    insiders = res["outsiders"]["insiders"]
    assert [r["server"] for r in insiders] == [0, 1]
    assert all(r["answered"] and r["op"] == "VALUES" for r in insiders), insiders
    check_job_survived(res)
