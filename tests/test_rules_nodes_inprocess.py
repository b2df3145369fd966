"""Update rules on rows of remote shards, in one process (``tests/inprocess.py``): the cases of
``tests/jobs/rules_nodes_job.py`` run unchanged (``RulesJob.case_*``) on an :class:`InProcessJob` of the
same layouts (3 workers, 2 servers, one node or two), one thread per worker (``tests/inprocess_alg.py``),
and their records go to ``test_rules_nodes``'s own checks (its ``layout_run`` fixture and ``run_rules``
replaced), so both check the same things.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import test_rules_nodes
from inprocess import InProcessJob
from inprocess_alg import run_workers

_spec = importlib.util.spec_from_file_location("rules_nodes_job", Path(__file__).parent / "jobs" / "rules_nodes_job.py")
job_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job_module)  # registers the job's user rules (test_box_sgd, test_momentum)
RulesJob = job_module.RulesJob

pytestmark = pytest.mark.timeout(120)


def run_rules_inprocess(tmp_path, name: str, cases: str, simulate_nodes: int = 1, staleness: int = 0,
                        **options) -> dict:
    """What ``RulesJob.solve`` writes to ``rules.json``, from an in-process job."""
    options = {"steps": 4, "momentum_steps": 600, "steps_per_clock": 30, **options}

    def solve(alg):
        rec = {case: getattr(RulesJob, "case_" + case)(alg) for case in cases.split(",")}
        return {"worker": alg.worker_id, "node": alg.node_id, **rec}
    with InProcessJob(nworker=test_rules_nodes.NWORKER, nserver=2, nodes=simulate_nodes, staleness=staleness) as job:
        workers = run_workers(job, solve, **options)
    return {"nnodes": simulate_nodes, "workers": workers}


@pytest.fixture(scope="module", params=sorted(test_rules_nodes.LAYOUTS))
def layout_run(request):
    """One run of the assign, sgd and box cases (SSP, staleness 1) per layout."""
    out = run_rules_inprocess(None, request.param, cases="assign,sgd,box", staleness=1,
                              **test_rules_nodes.LAYOUTS[request.param])
    return request.param, out


def test_assign_on_remote_rows_is_last_write_wins(layout_run):
    test_rules_nodes.check_assign_on_remote_rows_is_last_write_wins(layout_run)


def test_sgd_on_remote_rows_matches_the_one_node_result(layout_run):
    test_rules_nodes.check_sgd_on_remote_rows_matches_the_one_node_result(layout_run)


def test_stateless_user_rule_on_remote_rows_matches_the_one_node_result(layout_run):
    test_rules_nodes.check_stateless_user_rule_on_remote_rows_matches_the_one_node_result(layout_run)


@pytest.mark.parametrize("staleness", [0, 2])
@pytest.mark.parametrize("layout", sorted(test_rules_nodes.LAYOUTS))
def test_momentum_regression_converges_on_every_layout(tmp_path, layout, staleness, monkeypatch):
    monkeypatch.setattr(test_rules_nodes, "run_rules", run_rules_inprocess)
    test_rules_nodes.test_momentum_regression_converges_on_every_layout(tmp_path, layout, staleness)
