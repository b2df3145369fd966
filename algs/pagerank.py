"""PageRank by power iteration, with the rank vector in tables of the parameter server.

Input: edge lines ``src dst [weight]`` (tabs, commas or spaces; node ids are
any strings; the weight defaults to 1 and must be >= 0; repeated edges add
up). Edges are split over the workers by source (``fmap``), so each worker
knows the whole out-weight of its sources.

With ``N`` nodes, damping ``d`` and ``out(u)`` the summed weight of ``u``'s
out-edges, one step is

    r'(v) = (1 - d) / N + d * ( sum over edges u->v of r(u) * w(u,v) / out(u)  +  D / N )

where ``D`` is the rank held by the dangling nodes (``out(u) == 0``): their
rank is spread uniformly over all nodes, so the ranks always sum to 1. The
start is ``r = 1/N``.

Two exact ``float64`` tables ``rank0`` and ``rank1`` (``N × 1``) alternate as
the current and the next vector. In a step each worker pulls the current
ranks of its sources, computes its part ``c_w`` of the next vector (its
edges' shares, plus the uniform term on the nodes it owns: ``v % nworker ==
worker``) and pushes, with the ``add`` rule, the change ``c_w − c_w(old)``
against what it last added to that table; so the table holds ``Σ_w c_w``
without being zeroed, and nobody writes the vector others are reading. A
``sync()`` ends the step (bulk-synchronous whatever ``staleness`` says).
Then every worker sums the L1 change and the dangling rank over the nodes
it owns (one ``allreduce``); the job stops when the change is below ``tol``
or after ``rounds`` steps.

Outputs in ``output``: ``pagerank.tsv`` (``node<TAB>rank``, rank descending,
ties by node id; ranks printed with 17 significant digits) and
``metrics.json`` with ``iterations``, ``l1_change`` (of the last step),
``seconds``, ``graph_nodes`` (the graph's; ``nodes`` is the job's machine count, as in
every metrics.json), ``edges``, ``dangling``, ``rank_sum``,
``cross_node_bytes``.

With ``checkpoint_every``, both tables are saved every that many steps; a
resumed job (``--resume``, with any ``nworker``/``nserver``) continues from the
saved step (``metrics.json`` says ``start_round``).

    run_parasol --config algs/configs/pagerank.json python algs/pagerank.py
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.errors import InputError


@njit(cache=True, nogil=True)
def spread(src, dst, share, rank_src, out):
    """``out[dst[e]] += share[e] * rank_src[src[e]]`` over every edge ``e`` (``out`` zeroed first)."""
    for v in range(out.shape[0]):
        out[v] = 0.0
    for e in range(dst.shape[0]):
        out[dst[e]] += share[e] * rank_src[src[e]]


def ranking(nodes, rank: np.ndarray) -> list[tuple[str, float]]:
    """(node, rank) pairs, rank descending, ties by node id."""
    return sorted(zip((str(x) for x in nodes), rank.tolist()), key=lambda p: (-p[1], p[0]))


class PageRank(paralg):
    """Power iteration on a weighted directed graph; dangling rank spread uniformly."""

    options = {
        "damping": Option(float, 0.85, "probability of following an edge (1 - teleport probability)",
                          check=lambda v: None if 0.0 <= v < 1.0 else "must be in [0, 1)"),
        "tol": Option(float, 1e-10, "stop when the L1 change of a step is at most this",
                      check=lambda v: None if v >= 0 else "must be >= 0"),
    }

    bulk_synchronous = True  # a step reads the whole vector the last one wrote (it ends with a sync())

    def load_edges(self):
        """This worker's edges (by source), with weights defaulting to 1."""
        spec = self.cfg.input
        if spec is None:
            raise InputError("no input: set the config key 'input' to the edge file(s)")
        edges = self.load(pattern="fmap", shared_ids=True, weight_required=False)
        negative = self.allreduce(int(np.sum(edges.values < 0)))
        if negative:
            raise InputError(f"edge weights must be >= 0; the input has {negative} negative")
        return edges

    def solve(self) -> None:
        cfg = self.cfg
        d = float(cfg.damping)
        edges = self.load_edges()
        nodes = edges.row_ids  # one vocabulary of sources and targets
        N = len(nodes)
        n_edges = self.allreduce(len(edges.values))
        bad = self.allreduce(int(edges.bad_lines))
        if N == 0:
            raise InputError(f"the input {cfg.input!r} has no edges")

        src_global = edges.u.astype(np.int64)
        dst = edges.i.astype(np.int64)
        srcs, src = np.unique(src_global, return_inverse=True)  # this worker's sources; edge -> position
        out_weight = np.bincount(src, weights=edges.values, minlength=len(srcs))
        share = np.zeros(len(dst))
        live = out_weight[src] > 0
        share[live] = d * edges.values[live] / out_weight[src][live]
        src = src.astype(np.int64)

        # nodes this worker owns: the uniform term, the L1 change and the dangling rank are summed over them
        owned = np.arange(self.worker_id, N, self.nworker, dtype=np.int64)
        has_out = np.zeros(N, dtype=bool)
        has_out[srcs[out_weight > 0]] = True
        has_out = self.allreduce(has_out.astype(np.int64)) > 0
        dangling_owned = ~has_out[owned]
        n_dangling = self.allreduce(int(dangling_owned.sum()))

        R = (self.table("rank0", (N, 1), "float64", "constant", value=1.0 / N, exact=True),
             self.table("rank1", (N, 1), "float64", exact=True))
        # what this worker has added to each table so far (rank0 starts at 1/N: count it as worker 0's)
        added = [np.full(N, 1.0 / N) if self.is_master else np.zeros(N), np.zeros(N)]
        part = np.empty(N)

        if self.start_round and self.is_master:
            # resumed (perhaps with another nworker): the master counts both tables' contents as its own
            # additions, so every worker's next change against ``added`` still leaves the exact sum
            added = [self.pull_all(R[0])[:, 0], self.pull_all(R[1])[:, 0]]
        elif self.start_round:
            added = [np.zeros(N), np.zeros(N)]

        spread(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1), np.zeros(1), np.zeros(1))  # load the kernel
        self.sync()
        start = time.perf_counter()
        cur = self.start_round % 2  # R[cur] holds the ranks: 1/N, or those of the checkpoint's step
        r_owned = self.pull(R[cur], owned)[:, 0]
        dangling_rank = float(self.allreduce(float(r_owned[dangling_owned].sum())))
        l1 = float("inf")
        steps = self.start_round
        for rnd in range(self.start_round, cfg.rounds):
            nxt = 1 - cur
            spread(src, dst, share, self.pull(R[cur], srcs)[:, 0], part)
            part[owned] += (1.0 - d) / N + d * dangling_rank / N
            delta = part - added[nxt]
            keys = np.flatnonzero(delta).astype(np.int64)
            if len(keys):
                self.push(R[nxt], keys, delta[keys])
            added[nxt], part = part, added[nxt]
            self.sync()
            new_owned = self.pull(R[nxt], owned)[:, 0]
            sums = self.allreduce(np.array([np.abs(new_owned - r_owned).sum(), new_owned[dangling_owned].sum()]))
            l1, dangling_rank = float(sums[0]), float(sums[1])  # the same on every worker: they stop together
            r_owned, cur, steps = new_owned, nxt, rnd + 1
            if steps % cfg.log_every == 0 or l1 <= cfg.tol or steps == cfg.rounds:
                self.progress(steps, cfg.rounds, l1_change=l1, dangling_rank=dangling_rank)
            self.round_done()  # a checkpoint every checkpoint_every steps: both tables are complete here
            if l1 <= cfg.tol:
                break
        seconds = self.allreduce(time.perf_counter() - start, op="max")
        rank_sum = float(self.allreduce(float(r_owned.sum())))
        cross = self.cross_node_bytes()
        if self.is_master:
            rank = self.pull_all(R[cur])[:, 0]
            top = ranking(nodes, rank)
            self.output_path("pagerank.tsv").write_text("".join(f"{v}\t{x:.17g}\n" for v, x in top))
            metrics = {
                "iterations": steps,
                "start_round": self.start_round,
                "l1_change": l1,
                "seconds": seconds,
                "graph_nodes": N,
                "edges": n_edges,
                "dangling": n_dangling,
                "bad_lines": bad,
                "rank_sum": rank_sum,
                "damping": d,
                "tol": cfg.tol,
                "rounds": cfg.rounds,
                "cross_node_bytes": cross,
            }
            self.write_metrics(metrics)
            self.log(f"done: {N:,} nodes, {n_edges:,} edges ({n_dangling} dangling nodes); {steps} steps, "
                     f"L1 change {l1:.3g}; top: " + ", ".join(f"{v} {x:.4g}" for v, x in top[:5])
                     + f"; {seconds:.2f} s")
        self.sync()


if __name__ == "__main__":
    run(PageRank)
