"""k-means by Lloyd's algorithm on the parameter server.

Input: libsvm lines ``label idx:val ...`` (0-based or 1-based indices are
kept as written; the label is read and ignored, so use ``0``). Each worker
reads its byte range of the input (``linesplit``).

Each round every worker assigns its points to the nearest of the current
centres and sums, per centre, its points and their count; one ``allreduce``
adds the workers' sums, and every worker computes the same new centres
``sum / count`` (a centre that got no point keeps its place). The master
assigns the round's sums to the float64 table ``sums`` (``k`` rows of
``features + 1``), which holds the initial centres at the start: the table is
what a checkpoint keeps, and a resumed job starts from its rows. The rounds
are bulk-synchronous whatever ``staleness`` says.

Like scikit-learn, it stops at ``rounds`` rounds, when no label changed
(strict convergence), or when the squared centre shift summed over centres
is at most ``tol × mean per-feature variance``; the final labels and the
``inertia`` (sum of squared distances) are then recomputed for the final centres.

Keys: ``k``, ``init`` (``k-means++``: seeded by ``seed``, run by the master
over the whole input; ``first``: the first ``k`` rows of the input), ``tol``,
``features`` (0: one more than the largest index seen), ``rounds`` (the
iteration cap), ``write_assignments``.

Outputs in ``output``: ``centroids.npy`` (``k × features``),
``init_centroids.npy``, ``assignments.txt`` (the centre of each parsed row,
in input order, one per line) and ``metrics.json`` with ``inertia``,
``iterations``, ``converged``, ``seconds``, ``cross_node_bytes``.

    run_parasol --config algs/configs/kmeans.json python algs/kmeans.py
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from kmeans_kernels import assign_and_sum, inertia_of, kmeans_plus_plus, min_sq_dist

from parasol_hybrid import InputError, Option, paralg, run
from parasol_hybrid import data as loaders


class KMeans(paralg):
    """Lloyd's k-means with per-centre sums and counts in a parameter table."""

    options = {
        "k": Option(int, 8, "number of clusters", check=lambda v: None if v >= 1 else "must be at least 1"),
        "init": Option(str, "k-means++", "initial centres", choices=("k-means++", "first")),
        "tol": Option(float, 1e-4, "stop when the summed squared centre shift <= tol * mean feature variance",
                      check=lambda v: None if v >= 0 else "must be >= 0"),
        "features": Option(int, 0, "number of features (0: largest index + 1)",
                           check=lambda v: None if v >= 0 else "must be >= 0"),
        "write_assignments": Option(bool, True, "write assignments.txt"),
    }

    bulk_synchronous = True  # Lloyd's rounds: every worker assigns its points to the same centres

    def solve(self) -> None:
        cfg = self.cfg
        k = cfg.k
        rows = self.load(format="libsvm")
        n = len(rows.labels)
        n_total = self.allreduce(n)
        bad = self.allreduce(int(rows.bad_lines))
        seen = self.allreduce(int(rows.n_features), op="max")
        d = cfg.features or seen
        if seen > d:
            raise InputError(f"the input has feature index {seen - 1}, but features is {d}")
        if n_total < k:
            raise InputError(f"k={k} clusters need at least {k} rows; the input has {n_total}")
        indptr, indices, values = rows.indptr, rows.indices, rows.data
        tol_abs = cfg.tol * self._mean_variance(indices, values, d, n_total)

        # the per-centre sums and counts of the last round (at the start: the initial centres, count 1)
        sums = self.table("sums", (k, d + 1), "float64", exact=True)
        every = np.arange(k, dtype=np.int64)

        self._warm_up(k, d)
        self.sync()
        start = time.perf_counter()
        if self.start_round == 0:
            if self.is_master:
                init = self._initial_centres(d)
                sums.push(every, np.hstack([init, np.ones((k, 1))]), rule="assign")
            self.sync()
        centres = self._centres(sums.pull(every), None)
        init_centres = centres.copy()

        labels = np.full(n, -1, dtype=np.int64)
        local = np.zeros((k, d + 1))
        iterations, converged = self.start_round, False
        for rnd in range(self.start_round, cfg.rounds):
            local[:] = 0.0
            cnorm = np.einsum("ij,ij->i", centres, centres)
            changed, _ = assign_and_sum(indptr, indices, values, np.ascontiguousarray(centres.T), cnorm, labels,
                                        local)
            summed = self.allreduce(local)
            if self.is_master:
                sums.push(every, summed, rule="assign")  # what a checkpoint at this clock keeps
            self.clock()
            new = self._centres(summed, centres)
            shift = float(((new - centres) ** 2).sum())
            total = self.allreduce(np.array([float(changed), shift]))
            changed_total, shift = int(total[0]), float(total[1]) / self.nworker
            centres = new
            iterations = rnd + 1
            if self.is_master and (rnd + 1) % cfg.log_every == 0:
                self.progress(rnd + 1, cfg.rounds, changed=changed_total, shift=shift)
            if changed_total == 0 or shift <= tol_abs:
                converged = True
                break

        cnorm = np.einsum("ij,ij->i", centres, centres)
        assign_and_sum(indptr, indices, values, np.ascontiguousarray(centres.T), cnorm, labels, np.zeros((k, d + 1)))
        inertia = self.allreduce(float(inertia_of(indptr, indices, values, centres, labels)))
        sizes = self.allreduce(np.bincount(labels, minlength=k).astype(np.int64))
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        if cfg.write_assignments:
            self._write_assignments(labels)
        cross = self.cross_node_bytes()
        if self.is_master:
            np.save(self.output_path("centroids.npy"), centres)
            np.save(self.output_path("init_centroids.npy"), init_centres)
            metrics = {"inertia": inertia, "iterations": iterations, "converged": converged, "seconds": seconds,
                       "points": n_total, "features": d, "k": k, "init": cfg.init, "tol_abs": tol_abs,
                       "empty_clusters": int((sizes == 0).sum()), "cluster_sizes": sizes.tolist(),
                       "bad_lines": bad, "start_round": self.start_round, "cross_node_bytes": cross}
            self.write_metrics(metrics)
            self.log(f"done: inertia {inertia:.6g}  iterations {iterations}  "
                     f"{'converged' if converged else 'not converged'}  {seconds:.2f} s")
        self.sync()

    @staticmethod
    def _warm_up(k: int, d: int) -> None:
        """Load the kernels (numba start-up, ~1 s on a busy machine) before the clock starts."""
        rows = np.zeros((k, d + 1))
        indptr, indices, values = np.zeros(2, np.int64), np.zeros(0, np.int64), np.zeros(0)
        centres = np.zeros((k, d))
        labels = np.full(1, -1, dtype=np.int64)
        assign_and_sum(indptr, indices, values, np.ascontiguousarray(centres.T), np.zeros(k), labels, rows)
        inertia_of(indptr, indices, values, centres, labels)
        min_sq_dist(indptr, indices, values, centres[0], 0.0, np.zeros(1))

    def _mean_variance(self, indices, values, d: int, n_total: int) -> float:
        """The mean over features of the per-feature variance of the whole input (scikit-learn's tol scale)."""
        col = np.zeros((2, d))
        np.add.at(col[0], indices, values)
        np.add.at(col[1], indices, values * values)
        col = self.allreduce(col)
        mean = col[0] / n_total
        return float(np.mean(np.maximum(col[1] / n_total - mean * mean, 0.0)))

    def _initial_centres(self, d: int) -> np.ndarray:
        """The master's initial centres (``k × d``): k-means++ over the whole input, or its first k rows."""
        cfg = self.cfg
        lines = loaders.read_all_lines(loaders.expand_inputs(cfg.input))
        if cfg.init == "first":
            lines = itertools.islice((ln for ln in lines if ln.text.split("#", 1)[0].strip()), cfg.k)
        rows = loaders.parse_libsvm(lines, on_bad_line=cfg.on_bad_line)
        if cfg.init == "first":
            dense = np.zeros((cfg.k, d))
            for i in range(len(rows.labels)):
                lo, hi = rows.indptr[i], rows.indptr[i + 1]
                dense[i, rows.indices[lo:hi]] = rows.data[lo:hi]
            return dense
        return kmeans_plus_plus(rows.indptr, rows.indices, rows.data, d, cfg.k, cfg.seed)

    def _centres(self, summed: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """``sum / count`` per centre; a centre without points keeps ``previous`` (or stays at 0)."""
        d = summed.shape[1] - 1
        counts = summed[:, d]
        out = np.zeros((summed.shape[0], d)) if previous is None else previous.copy()
        has = counts > 0
        out[has] = summed[has, :d] / counts[has, None]
        return out

    def _write_assignments(self, labels: np.ndarray) -> None:
        """Each worker writes its part; the master joins them in worker (= input) order."""
        part = self.output_path(f".assignments.part{self.worker_id}")
        part.write_text("".join(f"{c}\n" for c in labels.tolist()))
        self.sync()
        if self.is_master:
            out = self.output_path("assignments.txt")
            tmp = out.with_name(out.name + ".tmp")
            with open(tmp, "w") as f:
                for w in range(self.nworker):
                    p = self.output_path(f".assignments.part{w}")
                    f.write(p.read_text())
                    p.unlink()
            tmp.replace(out)


if __name__ == "__main__":
    run(KMeans)
