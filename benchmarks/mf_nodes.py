"""The ``mfnodes`` benchmark: MF with 4 workers on 2 simulated nodes against 4 workers on 1 node.

Same data (synthetic, MovieLens-1M-shaped), same hyper-parameters; the two
layouts run in alternation. Reports ratings/s and test RMSE of each, and the
bytes that cross between nodes per round: measured by MF in all
(``cross_node_bytes_per_round``: pushes, cache refreshes, acknowledgements
and clock notices), and, for the pushes alone, what the node agents send (the
union of each node's workers' rows) against what workers sending their own
updates would send (the sum of their rows), counted from the rows each worker
updates by ``mf_traffic_job.py`` (run once: the count does not change between
repeats).
"""

from __future__ import annotations

import time
from pathlib import Path

from . import ratings_data
from .common import REPO, figure, interleave, median, run_job, say, verdict
from .mf_bench import HYPER

__all__ = ["run", "rows"]

FULL = {"rounds": 10, "repeats": 3, "workers": 4, "quiet_wait": 10.0, **ratings_data.ML1M}
QUICK = {"rounds": 3, "repeats": 1, "workers": 4, "quiet_wait": 0.0, **ratings_data.QUICK}
TRAFFIC_JOB = REPO / "benchmarks" / "mf_traffic_job.py"  # writes <output>/traffic.json (its RESULT)


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    if quiet_wait is not None:
        params["quiet_wait"] = quiet_wait
    hyper = dict(HYPER)
    data = ratings_data.synthetic(params["users"], params["items"], params["ratings"], seed=hyper["seed"])
    train, test = ratings_data.split(data, 0.1)
    train_tsv = ratings_data.write_tsv(train, workdir / "mfn-train.tsv")
    test_tsv = ratings_data.write_tsv(test, workdir / "mfn-test.tsv")
    runs: dict[str, list[dict]] = {"1node": [], "2nodes": []}

    def config(nodes: int, out: Path) -> dict:
        return {"nworker": params["workers"], "nserver": nodes, "simulate_nodes": nodes, "input": str(train_tsv),
                "test_input": str(test_tsv), "output": str(out), "rounds": params["rounds"], "staleness": 0, **hyper}

    def side(nodes: int):
        def go() -> float:
            cfg = config(nodes, workdir / f"mfn-out-{nodes}")
            m, wall = run_job(cfg, REPO / "algs" / "mf.py", workdir, f"mfn-{nodes}", direct=direct)
            runs["1node" if nodes == 1 else "2nodes"].append({k: m.get(k) for k in (
                "ratings_per_second", "test_rmse", "cross_node_bytes", "cross_node_bytes_per_round", "rounds")})
            return m["ratings_per_second"]
        return go

    traffic, _ = run_job({**config(2, workdir / "mfn-traffic"), "_result": "traffic.json"}, TRAFFIC_JOB, workdir,
                         "mfn-traffic", direct=direct)

    t0 = time.perf_counter()
    say(f"mfnodes: {len(train):,} ratings, {params['workers']} workers on 1 node vs on 2 simulated nodes, "
        f"{params['repeats']} repeats")
    _, others = interleave({"1node": side(1), "2nodes": side(2)}, params["repeats"], label="mfnodes",
                           quiet_wait=params["quiet_wait"])
    one, two = runs["1node"], runs["2nodes"]
    load = [max(a, b) for a, b in zip(others["1node"], others["2nodes"])]
    figures = {
        "speed": figure([r["ratings_per_second"] for r in two], [r["ratings_per_second"] for r in one],
                        "ratings/s", others=load),
        "rmse": figure([r["test_rmse"] for r in two], [r["test_rmse"] for r in one], "test RMSE",
                       goal="<= 1.01", others=[0.0] * len(two)),
        "push_bytes": figure([traffic["push_bytes_per_round_node_aggregated"]],
                             [traffic["push_bytes_per_round_per_worker"]], "bytes/round", others=[0.0]),
    }
    figures["speed"]["met"] = None
    figures["rmse"]["met"] = figures["rmse"]["ratio"] <= 1.01
    figures["push_bytes"]["met"] = None
    params.update(hyper, cross_node_bytes_per_round=round(median([r["cross_node_bytes_per_round"] for r in two])),
                  seconds=round(time.perf_counter() - t0, 1))
    return {"params": params, "figures": figures, "runs": runs,
            "notes": {"cross_node_bytes_per_round": "measured by MF: all bytes sent between the nodes (pushes, cache "
                                                    "refreshes, acks, clock notices) in the training rounds and the "
                                                    "closing sync, / rounds, median run",
                      "push_bytes": "rows of remote shards the workers update per round, x (key + row) bytes: "
                                    "per node (what the agents send) vs summed per worker (without aggregation), "
                                    "counted by benchmarks/mf_traffic_job.py"}}


def rows(result: dict) -> list[list[str]]:
    f = result["figures"]
    p = result["params"]
    return [
        ["ratings/s, 2 nodes vs 1 node (4 workers)", f"{f['speed']['api']:,.0f}", f"{f['speed']['limit']:,.0f}",
         f"{f['speed']['ratio']:.2f}", "", "", f"{median(f['speed']['others_cores']):.2f}"],
        ["test RMSE, 2 nodes vs 1 node", f"{f['rmse']['api']:.4f}", f"{f['rmse']['limit']:.4f}",
         f"{f['rmse']['ratio']:.3f}", "<= 1.01", verdict(f["rmse"], f["rmse"]["met"]), "-"],
        ["push bytes/round: node-aggregated vs per worker", f"{f['push_bytes']['api']:,.0f}",
         f"{f['push_bytes']['limit']:,.0f}", f"{f['push_bytes']['ratio']:.2f}", "", "", "-"],
        ["cross-node bytes/round, all traffic (2 nodes)", f"{p['cross_node_bytes_per_round']:,}", "", "", "", "", "-"],
    ]
