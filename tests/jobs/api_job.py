"""Test job: tables, pushes, pulls, collectives and a custom rule, seen from every worker.

The master writes ``<output>/api.json``: ``{"workers": [record of worker 0, 1, ...], "tables": {...}}``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobdata import (COUNT_DIM, COUNT_ROWS, FLOAT_DIM, FLOAT_ROWS, FLOAT_SEED,  # noqa: E402
                     float_delta, increments, scaled_delta)

from parasol_hybrid import Option, TableError, paralg, run, update_rule  # noqa: E402


@update_rule("test_scale_add", hyper={"scale": 2.0})
def scale_add(param, state, delta, hp):
    for j in range(param.shape[0]):
        param[j] += hp[0] * delta[j]


def error_of(fn) -> str | None:
    """The message of the TableError ``fn()`` raises, or None if it raises nothing."""
    try:
        fn()
    except TableError as exc:
        return str(exc)
    return None


class ApiJob(paralg):
    options = {"pushes": Option(int, 200, "count pushes per worker")}

    def solve(self) -> None:
        w, n = self.worker_id, self.nworker
        rec: dict = {"worker_id": w, "nworker": n, "pid": os.getpid()}
        counts = self.table("counts", (COUNT_ROWS, COUNT_DIM), "int64")
        floats = self.table("floats", (FLOAT_ROWS, FLOAT_DIM), "float32", "normal", seed=FLOAT_SEED)
        scaled = self.table("scaled", (FLOAT_ROWS, FLOAT_DIM), "float32")
        marks = self.table("marks", (n, 1), "int64")

        # sync: worker 0 marks late; after the barrier every worker sees every mark
        if w == 0:
            time.sleep(0.3)
        self.push(marks, [w], [1])
        self.sync()
        rec["marks_after_sync"] = self.pull_all(marks).ravel().tolist()

        # many concurrent integer pushes to overlapping keys
        for step in range(self.cfg.pushes):
            self.push(counts, *increments(w, step))
        # float pushes to this worker's rows; the custom rule, with its default and an explicit scale
        mine = np.arange(w, FLOAT_ROWS, n)
        self.push(floats, mine, float_delta(mine))
        self.push(scaled, mine, scaled_delta(mine, 0), rule="test_scale_add")
        self.push(scaled, mine, scaled_delta(mine, 1), rule="test_scale_add", scale=0.5)
        self.sync()

        # pull_all equals pulls, in any key order
        order = np.random.default_rng(w).permutation(COUNT_ROWS)
        rec["pull_matches_pull_all"] = bool(np.array_equal(self.pull(counts, order), self.pull_all(counts)[order]))
        forder = np.random.default_rng(w).permutation(FLOAT_ROWS)
        rec["float_pull_matches_pull_all"] = bool(
            np.array_equal(self.pull("floats", forder), self.pull_all("floats")[forder]))

        # bad pushes: every worker tries at once; nothing may change
        self.sync()
        before = [self.pull_all(t) for t in (counts, floats)]
        one = np.ones((1, COUNT_DIM), dtype=np.int64)
        rec["errors"] = {
            "key_eq_rows": error_of(lambda: self.push(counts, [0, 1, COUNT_ROWS], np.repeat(one, 3, 0))),
            "key_negative": error_of(lambda: self.push(counts, [-1], one)),
            "float_key": error_of(lambda: self.push(floats, [2, FLOAT_ROWS + 5],
                                                     np.ones((2, FLOAT_DIM), dtype=np.float32))),
            "float_into_int": error_of(lambda: self.push(counts, [0], one * 0.5)),
            "pull_bad_key": error_of(lambda: self.pull(counts, [COUNT_ROWS])),
            "unknown_table": error_of(lambda: self.pull("nope", [0])),
        }
        self.sync()
        rec["unchanged_after_bad_pushes"] = all(
            np.array_equal(b, self.pull_all(t)) for b, t in zip(before, (counts, floats)))

        # collectives
        rec["allreduce_int_sum"] = self.allreduce(w + 1)
        rec["allreduce_float_max"] = self.allreduce(float(w) * 1.5, op="max")
        rec["allreduce_array_sum"] = self.allreduce(np.array([w, 1.0, 2.0 * w]), op="sum").tolist()
        rec["allgather"] = self.allgather({"worker": w, "pid": os.getpid()})

        records = self.allgather(rec)
        if self.is_master:
            self.write_json("api.json", {
                "workers": records,
                "tables": {name: self.pull_all(name).tolist() for name in ("counts", "floats", "scaled")},
            })
        self.sync()


if __name__ == "__main__":
    run(ApiJob)
