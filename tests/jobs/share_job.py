"""A job whose workers load their share (``pattern`` option) and check it against the Python reference
(every line parsed by parse_ratings, then partition()); the master writes ``share.json``."""

from __future__ import annotations

import numpy as np

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.data import expand_inputs, parse_ratings, partition, read_all_lines


class ShareJob(paralg):
    options = {"pattern": Option(str, "fmap", "how triples are split", choices=("fmap", "smap", "fsmap"))}

    def solve(self) -> None:
        got = self.load(pattern=self.cfg.pattern)
        everything = parse_ratings(read_all_lines(expand_inputs(self.cfg.input)), on_bad_line=self.cfg.on_bad_line)
        ref = partition(everything, self.cfg.pattern, self.worker_id, self.nworker)
        same = (list(got.rows) == list(ref.rows) and list(got.cols) == list(ref.cols)
                and np.array_equal(got.values, ref.values)
                and list(got.row_ids) == sorted(set(everything.rows.tolist())))
        wrong = self.allreduce(0 if same else 1)
        triples = self.allreduce(len(got))
        bad = self.allreduce(got.bad_lines)
        self.write_json("share.json", {"wrong_workers": wrong, "triples": triples, "bad_lines": bad,
                                       "expected_triples": len(everything), "expected_bad": everything.bad_lines})


if __name__ == "__main__":
    run(ShareJob)
