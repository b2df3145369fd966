"""The table protocol's refusals, in one process (``tests/inprocess.py``): the ``full`` and ``nan`` cases of
``tests/jobs/table_protocol_job.py`` run unchanged (``Protocol.case_*``) on an :class:`InProcessJob` of the
same layouts, one thread per worker (``tests/inprocess_alg.py``), and their records go to
``test_table_protocol``'s own checks (``run_case`` replaced), so both check the same things.

Not here: ``protocol`` (it checks ``save_table``'s files, the output path of a real job) and ``exact``
(in-place adds of several processes under the shard locks: the point is real parallel processes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import test_table_protocol
from inprocess import InProcessJob
from inprocess_alg import run_workers

_spec = importlib.util.spec_from_file_location("table_protocol_job",
                                               Path(__file__).parent / "jobs" / "table_protocol_job.py")
job_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job_module)

pytestmark = pytest.mark.timeout(120)


def run_case_inprocess(tmp_path: Path, case: str, nworker: int, nserver: int, simulate_nodes: int = 1,
                       **options) -> tuple[dict, Path]:
    """What ``Protocol.solve`` writes to ``protocol.json``, from an in-process job."""
    with InProcessJob(nworker=nworker, nserver=nserver, nodes=simulate_nodes) as job:
        workers = run_workers(job, lambda alg: getattr(job_module.Protocol, "case_" + case)(alg), **options)
    return {"workers": workers, "nnodes": simulate_nodes}, tmp_path / "out"


@pytest.fixture(autouse=True)
def inprocess_cases(monkeypatch):
    monkeypatch.setattr(test_table_protocol, "run_case", run_case_inprocess)


@pytest.mark.parametrize("layout", test_table_protocol.LAYOUTS)
def test_a_full_sparse_table_raises_naming_the_table_and_its_capacity(tmp_path, layout):
    test_table_protocol.check_a_full_sparse_table_raises_naming_the_table_and_its_capacity(tmp_path, layout)


def test_nan_and_inf_pushes_are_refused_on_every_path_across_nodes(tmp_path):
    test_table_protocol.check_nan_and_inf_pushes_are_refused_on_every_path_across_nodes(tmp_path)
