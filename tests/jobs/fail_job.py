"""Test job: worker 1 raises in solve() after the tables exist; the others wait in a barrier."""

from __future__ import annotations

from parasol_hybrid import paralg, run


class FailJob(paralg):
    def solve(self) -> None:
        t = self.table("t", (10, 2), "float32", rule="adagrad")
        self.push(t, [self.worker_id], [[1.0, 1.0]])
        self.clock()
        self.sync()
        if self.worker_id == 1:
            raise RuntimeError("deliberate failure in the test job")
        self.sync()  # the other workers block here until the job is aborted
        self.write_json("not_reached.json", {})


if __name__ == "__main__":
    run(FailJob)
