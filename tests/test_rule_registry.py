"""Tests of registering update rules (idempotent for the same function) and of their kernels' disk cache."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from parasol_hybrid.errors import RuleError
from parasol_hybrid.tables.rules import get_rule, update_rule

pytestmark = pytest.mark.timeout(120)


def _define(scale: float):
    """A rule function as a module imported twice would define it: equal code, a new function object."""
    def test_idem_scale(param, state, delta, hp):
        for j in range(param.shape[0]):
            param[j] += hp[0] * delta[j]
    return test_idem_scale


def test_registering_the_same_function_again_is_harmless_and_keeps_the_first():
    first = update_rule("test_idem_scale", hyper={"s": 2.0})(_define(2.0))
    rule = get_rule("test_idem_scale")
    again = update_rule("test_idem_scale", hyper={"s": 2.0})(_define(2.0))
    assert again is first
    assert get_rule("test_idem_scale") is rule
    shards, states = (np.zeros((3, 2)),), (np.zeros((3, 0, 2)),)
    assert rule.apply(shards, states, 3, np.array([1], dtype=np.int64), np.ones((1, 2)), rule.hyper_array()) == -1
    np.testing.assert_array_equal(shards[0][1], [2.0, 2.0])


def test_another_function_or_other_arguments_under_a_taken_name_still_raise():
    update_rule("test_idem_taken", hyper={"s": 1.0})(_define(1.0))

    def other(param, state, delta, hp):
        param[0] = 0.0

    for fn, kw in ((other, {"hyper": {"s": 1.0}}), (_define(1.0), {"hyper": {"s": 3.0}}),
                   (_define(1.0), {"hyper": {"s": 1.0}, "state_slots": 1})):
        with pytest.raises(RuleError, match="test_idem_taken.*already registered"):
            update_rule("test_idem_taken", **kw)(fn)
    assert get_rule("test_idem_taken").hyper == {"s": 1.0}


_USER = """
from parasol_hybrid.tables.rules import update_rule
SCALE = {scale}

@update_rule("test_cached_scale")
def test_cached_scale(param, state, delta, hp):
    for j in range(param.shape[0]):
        param[j] += SCALE * delta[j]
"""

_RUN = """
import numpy as np, user_rule
from parasol_hybrid.tables.rules import get_rule
r = get_rule("test_cached_scale")
shards, states = (np.zeros((4, 2)),), (np.zeros((4, 0, 2)),)
r.apply(shards, states, 4, np.array([1], dtype=np.int64), np.ones((1, 2)), r.hyper_array())
print(shards[0][1, 0], sum(r.apply.stats.cache_hits.values()), sum(r.apply.stats.cache_misses.values()))
"""


def test_a_rule_kernel_is_loaded_from_the_cache_by_the_next_process_and_an_edit_recompiles(tmp_path):
    def run() -> tuple[float, int, int]:
        out = subprocess.run([sys.executable, "-c", _RUN], cwd=tmp_path, capture_output=True, text=True,
                             timeout=100, check=True).stdout.split()
        return float(out[0]), int(out[1]), int(out[2])

    module = tmp_path / "user_rule.py"
    module.write_text(textwrap.dedent(_USER.format(scale=2.0)))
    assert run() == (2.0, 0, 1)   # compiled (and saved)
    assert run() == (2.0, 1, 0)   # loaded
    module.write_text(textwrap.dedent(_USER.format(scale=3.5)))
    assert run() == (3.5, 0, 1)   # the edit is a new kernel, never the stale one
