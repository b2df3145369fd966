"""The ``pagerank`` algorithm benchmark: algs/pagerank.py (2 workers, 1 server) vs a scipy power iteration.

Graphs: the adjacent-word graph of gensim's Lee corpus (7,393 nodes, 35,735
edges) and MovieLens-100K as a user -> item bipartite graph (2,625 nodes,
100,000 edges, 1,682 dangling), both from ``parasol_hybrid.datasets``.
Quality is the L1 distance to the exact ranks (a scipy power iteration run
until the L1 change is below 1e-14), for the job and for the reference: the
same scipy iteration stopped at the job's tolerance (1e-10). Job time is
the job's own ``seconds`` (the iterations, after loading); the launcher's
wall time is reported too. Medians over repeats.

    python -c "from benchmarks.alg_pagerank import bench; print(bench(quick=True))"
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from parasol_hybrid.datasets import lee_word_graph, movielens_bipartite

from .common import REPO, run_job, say

__all__ = ["bench"]

DAMPING, TOL, ROUNDS = 0.85, 1e-10, 300


def read_graph(path: Path):
    """(node ids sorted as strings, the transposed row-normalised matrix, the dangling mask)."""
    src, dst, w = [], [], []
    for line in path.read_text().splitlines():
        f = line.replace(",", " ").split()
        if f and not f[0].startswith("#"):
            src.append(f[0])
            dst.append(f[1])
            w.append(float(f[2]) if len(f) > 2 else 1.0)
    nodes = sorted(set(src) | set(dst))
    idx = {v: i for i, v in enumerate(nodes)}
    N = len(nodes)
    W = sp.coo_matrix((w, ([idx[v] for v in src], [idx[v] for v in dst])), shape=(N, N)).tocsr()
    out = np.asarray(W.sum(axis=1)).ravel()
    dangling = out == 0
    MT = (sp.diags(np.where(dangling, 0.0, 1.0 / np.where(dangling, 1.0, out))) @ W).T.tocsr()
    return nodes, MT, dangling


def power_iteration(MT, dangling, tol: float, damping: float = DAMPING) -> tuple[np.ndarray, int]:
    """PageRank with uniform dangling redistribution, until the L1 change is at most ``tol``."""
    N = MT.shape[0]
    r = np.full(N, 1.0 / N)
    for it in range(1, 100_000):
        new = damping * (MT @ r) + (damping * r[dangling].sum() + 1.0 - damping) / N
        change = np.abs(new - r).sum()
        r = new
        if change <= tol:
            return r, it
    raise RuntimeError("the reference power iteration did not converge")


def _one_graph(name: str, path: Path, work: Path, repeats: int) -> dict:
    nodes, MT, dangling = read_graph(path)
    exact, _ = power_iteration(MT, dangling, 1e-14)

    seconds, walls, errors, iters = [], [], [], []
    for r in range(repeats):
        out = work / f"{name}-out{r}"
        cfg = {"nworker": 2, "nserver": 1, "input": str(path), "output": str(out), "rounds": ROUNDS,
               "damping": DAMPING, "tol": TOL, "log_every": ROUNDS}
        metrics, wall = run_job(cfg, REPO / "algs" / "pagerank.py", work, f"pagerank-{name}{r}")
        got = dict((v, float(x)) for v, x in (line.split("\t") for line in
                                              (out / "pagerank.tsv").read_text().splitlines()))
        errors.append(float(sum(abs(got[v] - e) for v, e in zip(nodes, exact))))
        seconds.append(metrics["seconds"])
        walls.append(wall)
        iters.append(metrics["iterations"])

    ref_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref, ref_iters = power_iteration(MT, dangling, TOL)
        ref_times.append(time.perf_counter() - t0)
    row = {"bench": "pagerank", "graph": name, "graph_nodes": len(nodes), "edges": int(MT.nnz),
           "ours_seconds": statistics.median(seconds), "ours_wall_seconds": statistics.median(walls),
           "ours_iterations": max(iters), "ours_quality": max(errors),
           "ref_seconds": statistics.median(ref_times), "ref_iterations": ref_iters,
           "ref_quality": float(np.abs(ref - exact).sum()),
           "metric": f"L1 distance to the exact ranks (damping {DAMPING}, dangling rank spread uniformly; "
                     f"both stopped at L1 change <= {TOL:g})",
           "reference": "scipy.sparse power iteration (CSR matrix-vector products, one process)"}
    say(f"pagerank {name}: job {row['ours_seconds']:.2f} s ({row['ours_iterations']} steps, L1 "
        f"{row['ours_quality']:.1e}), scipy {row['ref_seconds'] * 1e3:.1f} ms (L1 {row['ref_quality']:.1e})")
    return row


def bench(quick: bool = False) -> list[dict]:
    """Run the job and the reference on each graph; one row per graph."""
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-pagerank-") as tmp:
        work = Path(tmp)
        return [_one_graph("lee_words", lee_word_graph(work), work, repeats),
                _one_graph("ml100k_bipartite", movielens_bipartite(work), work, repeats)]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench(quick="--quick" in sys.argv), indent=2))
