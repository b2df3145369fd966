"""algs/pagerank.py against an exact scipy power iteration on the same graph.

Graphs: the adjacent-word graph of gensim's Lee corpus (one node, and two
simulated nodes), MovieLens-100K as a user -> item bipartite graph (most
nodes dangling; three workers), and a tiny hand-written graph with string ids,
missing and zero weights, a self-loop and repeated edges. The reference is
computed here with a sparse matrix, the same damping and the same dangling
rule (a dangling node's rank is spread uniformly over all nodes), iterated
until the L1 change is below 1e-12. The job's ranks must be within 1e-6 of it
in L1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from parasol_hybrid.datasets import lee_word_graph, movielens_bipartite
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)

DAMPING = 0.85


def reference(path: Path, damping: float) -> dict[str, float]:
    """Exact PageRank of the ``src dst [w]`` file: power iteration until the L1 change is < 1e-12."""
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
    r = np.full(N, 1.0 / N)
    for _ in range(100_000):
        new = damping * (MT @ r) + (damping * r[dangling].sum() + 1.0 - damping) / N
        change = np.abs(new - r).sum()
        r = new
        if change < 1e-12:
            break
    else:
        raise AssertionError("the reference did not converge")
    return dict(zip(nodes, r.tolist()))


def run_pagerank(tmp_path: Path, graph: Path, **keys) -> tuple[dict, list[tuple[str, float]]]:
    out = tmp_path / "out"
    cfg = write_config(tmp_path, input=str(graph), output=str(out), damping=DAMPING, **keys)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "pagerank.py")], timeout=200)
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [(v, float(x)) for v, x in (line.split("\t") for line in (out / "pagerank.tsv").read_text().splitlines())]
    return json.loads((out / "metrics.json").read_text()), ranks


def check_ranks(metrics: dict, ranks: list[tuple[str, float]], want: dict[str, float], rounds: int) -> None:
    got = dict(ranks)
    assert len(got) == len(ranks) == len(want) == metrics["graph_nodes"]
    assert set(got) == set(want)
    l1 = sum(abs(got[v] - want[v]) for v in want)
    assert l1 < 1e-6, f"L1 distance to the exact ranks: {l1:.3g}"
    assert ranks == sorted(ranks, key=lambda p: (-p[1], p[0])), "pagerank.tsv is not sorted by rank"
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)
    assert metrics["rank_sum"] == pytest.approx(1.0, abs=1e-9)
    assert metrics["iterations"] < rounds and metrics["l1_change"] <= 1e-10, metrics


@pytest.fixture(scope="module")
def lee(tmp_path_factory):
    path = lee_word_graph(tmp_path_factory.mktemp("lee"))
    return path, reference(path, DAMPING)


@pytest.mark.parametrize("layout", [
    {"nworker": 2, "nserver": 1},
    {"nworker": 2, "nserver": 2, "simulate_nodes": 2},
], ids=["one-node", "two-nodes"])
def test_pagerank_lee_words_matches_scipy(tmp_path, lee, layout):
    path, want = lee
    metrics, ranks = run_pagerank(tmp_path, path, rounds=200, tol=1e-10, log_every=50, **layout)
    assert metrics["graph_nodes"] == 7393 and metrics["edges"] == 35735 and metrics["dangling"] == 32
    assert metrics["graph_nodes"] == len(want)
    assert metrics["nodes"] == layout.get("simulate_nodes", 1)  # the job's machine count, not the graph's
    if layout.get("simulate_nodes") == 2:
        assert metrics["cross_node_bytes"] > 0
    check_ranks(metrics, ranks, want, 200)


def test_pagerank_movielens_bipartite_three_workers(tmp_path):
    path = movielens_bipartite(tmp_path)
    want = reference(path, DAMPING)
    metrics, ranks = run_pagerank(tmp_path, path, nworker=3, nserver=1, rounds=200, tol=1e-10, log_every=50)
    assert metrics["graph_nodes"] == 2625 and metrics["dangling"] == 1682
    check_ranks(metrics, ranks, want, 200)


def test_pagerank_edge_cases(tmp_path):
    """String ids, missing weights (1), zero weights, a self-loop, repeated edges, a node whose only
    out-edge weighs 0 (so it is dangling), commas; three workers."""
    graph = tmp_path / "tiny.txt"
    graph.write_text(
        "# a comment line\n"
        "home,about-us,2\n"
        "home\tnews\n"
        "news\tnews\t0.5\n"           # a self-loop
        "news home 1\n"
        "about-us home\n"
        "x y\n"
        "x y 3\n"                     # a repeated edge adds up: x -> y weighs 4
        "y x 0\n"                     # y's only out-edge weighs 0: y is dangling
        "lonely-sink\tsink_2\n"       # sink_2 is dangling
    )
    want = reference(graph, DAMPING)
    metrics, ranks = run_pagerank(tmp_path, graph, nworker=3, nserver=1, rounds=500, tol=1e-12)
    assert metrics["graph_nodes"] == len(want)
    check_ranks(metrics, ranks, want, 500)


def test_pagerank_more_workers_than_nodes(tmp_path):
    """One edge, two nodes, three workers: two workers have no edge and one owns no node."""
    graph = tmp_path / "one_edge.txt"
    graph.write_text("a b\n")
    metrics, ranks = run_pagerank(tmp_path, graph, nworker=3, nserver=1, rounds=500, tol=1e-12)
    d = DAMPING
    a = 1 / (2 + d)  # a = (1-d)/2 + d*b/2 (b is dangling) and a + b = 1
    assert ranks[0][0] == "b" and ranks[1][0] == "a"
    assert dict(ranks)["a"] == pytest.approx(a, abs=1e-10)
    check_ranks(metrics, ranks, reference(graph, DAMPING), 500)
