"""The hostile-traffic suites of ``tests/test_security.py``, in one process (``tests/inprocess.py``).

``tests/jobs/sec_fuzz_job.py``'s suites and checks run unchanged against an :class:`InProcessJob` of the same
layout (2 workers, 2 servers, 2 nodes; worker 0 attacks server 1 on the other node over its CURVE link);
:class:`FuzzWorker` gives them what they read of a ``paralg``. Each test is the multi-process test itself,
run with ``test_security.run_suite`` replaced by :func:`run_suite_inprocess`, so both check the same things.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zmq

import test_security
from inprocess import InProcessJob

_spec = importlib.util.spec_from_file_location("sec_fuzz_job", Path(__file__).parent / "jobs" / "sec_fuzz_job.py")
sec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sec)

pytestmark = pytest.mark.timeout(120)


class FuzzWorker:
    """Worker 0 of an InProcessJob, with the attributes ``SecFuzz``'s suites and checks read of a paralg."""

    check_server = sec.SecFuzz.check_server
    direct_pushes = sec.SecFuzz.direct_pushes
    suite_garbage = sec.SecFuzz.suite_garbage
    suite_reply_ops = sec.SecFuzz.suite_reply_ops
    suite_bad_specs = sec.SecFuzz.suite_bad_specs
    suite_outsiders = sec.SecFuzz.suite_outsiders
    rejected_locally = staticmethod(sec.SecFuzz.rejected_locally)

    def __init__(self, job: InProcessJob, tables: list, out: Path, **options):
        w = job.workers[0]
        self._net, self._rt = w.link, w.rt
        self.nworker, self.nserver = len(job.workers), len(job.servers)
        self._specs = [t[0].spec for t in tables]
        self.tf, self.ti = (t[0].spec.index for t in tables)
        self.cfg = SimpleNamespace(seed=job.cfg.seed, **options)
        self._out = out
        out.mkdir(parents=True, exist_ok=True)

    def output_path(self, name: str) -> Path:
        return self._out / name


def push_round(job: InProcessJob, f: list, i: list, rnd: int) -> None:
    """Every worker pushes its known values of round ``rnd``; then a clock, after which every worker sees them."""
    for w in job.workers:
        df, di = sec.round_values(w.id, rnd)
        f[w.id].push(np.arange(sec.F_ROWS), df)
        i[w.id].push(np.arange(sec.I_ROWS), di)
    job.clock_all()


def run_suite_inprocess(tmp_path: Path, suite: str, random_messages: int = 150, mutated_messages: int = 200) -> dict:
    """What ``sec_fuzz_job.SecFuzz.solve`` records in ``sec.json``, from an in-process job."""
    with InProcessJob(**{k: v for k, v in test_security.CLUSTER.items() if k != "simulate_nodes"},
                      nodes=test_security.CLUSTER["simulate_nodes"], output=str(tmp_path / "out")) as job:
        f = job.table("sec_f", (sec.F_ROWS, sec.F_DIM), "float32")
        i = job.table("sec_i", (sec.I_ROWS, 1), "int64")
        push_round(job, f, i, 1)
        alg = FuzzWorker(job, [f, i], tmp_path / "out", suite=suite, random_messages=random_messages,
                         mutated_messages=mutated_messages)
        rt, lay = alg._rt, job.layout
        # load the server's PUSH_RULE kernel now (zero deltas change nothing): a first load or compile in
        # the server's thread takes longer than the suite waits for an answer
        alg._net.push_rule(alg._specs[alg.tf], [(sec.TARGET, np.arange(1, 7, 2), np.zeros((3, sec.F_DIM), np.float32))],
                           "add", {})
        result = {"suite": suite, "nnodes": lay.nnodes, "checks": {}, "worker_node": rt.node,
                  "target_node": lay.node_of[lay.servers[sec.TARGET]], "target_is_remote": alg._net._remote(sec.TARGET),
                  "endpoints": list(rt.endpoints)}
        att = sec.Attacker(alg, sec.TARGET)
        result["checks"]["before"] = alg.check_server(att, direct=False)
        getattr(alg, "suite_" + suite)(att)
        result["drained_after_suite"] = att.drain()
        result["checks"]["after"] = alg.check_server(att, direct=False)
        result["checks"]["direct"] = alg.direct_pushes()
        direct = result["checks"]["direct"]["ok"]
        result["cases"], result["skipped"] = att.cases, att.skipped
        if suite == "outsiders":
            result["outsiders"] = alg.outsiders
        push_round(job, f, i, 2)
        ef, ei = sec.expected_tables(alg.nworker, direct)
        result["checks"]["final"] = []
        for w in job.workers:
            sf, si = f[w.id].pull_all(), i[w.id].pull_all()
            result["checks"]["final"].append({
                "worker": w.id, "float_ok": bool(np.array_equal(sf, ef)), "int_ok": bool(np.array_equal(si, ei)),
                "float_diff_rows": np.nonzero((sf != ef).any(1))[0].tolist(),
                "int_diff_rows": np.nonzero((si != ei).any(1))[0].tolist()})
        errors = sum(s.errors for s in job.servers)
        assert errors > 0 or suite == "outsiders", "the servers counted no bad request"
    return result


class _NoWaitSocket(zmq.Socket):
    """An outsider's socket whose sends never wait: after the server refuses its CURVE handshake, libzmq
    does not reconnect, the DEALER has no peer, and a blocking send would wait for good (a send that
    cannot be queued is not answered, which is what the suite checks)."""

    def send_multipart(self, msg_parts, flags=0, **kw):
        try:
            return super().send_multipart(msg_parts, flags | zmq.NOBLOCK, **kw)
        except zmq.Again:
            return None


class _OutsiderContext(zmq.Context):
    _socket_class = _NoWaitSocket


@pytest.fixture
def inprocess_suites(monkeypatch):
    monkeypatch.setattr(test_security, "run_suite", run_suite_inprocess)
    monkeypatch.setattr(sec, "OUTSIDER_WAIT", 0.25)  # CURVE refuses at once here: no need to wait 1.5 s
    monkeypatch.setattr(sec, "zmq", SimpleNamespace(**{**vars(zmq), "Context": _OutsiderContext}))


def test_garbage_gets_error_replies_and_changes_nothing(tmp_path, inprocess_suites):
    test_security.check_garbage_gets_error_replies_and_changes_nothing(tmp_path)


def test_reply_ops_sent_as_requests_get_error_replies(tmp_path, inprocess_suites):
    test_security.check_reply_ops_sent_as_requests_get_error_replies(tmp_path)


def test_bad_table_specs_are_refused_without_leaks(tmp_path, inprocess_suites):
    test_security.check_bad_table_specs_are_refused_without_leaks(tmp_path)


def test_outsiders_get_no_answer_and_endpoints_are_loopback(tmp_path, inprocess_suites):
    test_security.test_outsiders_get_no_answer_and_endpoints_are_loopback(tmp_path)
