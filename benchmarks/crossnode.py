"""The ``crossnode`` benchmark: pull/push between two nodes through the API vs raw pyzmq on loopback.

One job on two simulated nodes (see ``crossnode_job.py``): the API side is
worker 0 asking the server of the other node (CURVE-encrypted, validated,
applied to the shard); the limit is raw pyzmq between the same two processes'
nodes on 127.0.0.1 — REQ/REP round trips for small requests, pipelined
DEALER/ROUTER pulls and PUSH/PULL streams for 1 MiB batches, plain and with
CURVE. Both sides are timed in alternation within the job.
"""

from __future__ import annotations

from pathlib import Path

from .common import BENCH_DIR, figure, run_job, say, verdict

__all__ = ["run", "rows", "GOALS"]

GOALS = {"pull_1mib": 0.7, "push_1mib": 0.7, "pull_small": 0.5, "push_small": 0.5}
ORDER = ("pull_small", "push_small", "pull_1mib", "push_1mib", "pull_1mib_vs_curve", "push_1mib_vs_curve")
LABELS = {
    "pull_small": "pull 1,000 rows x 32 f32 (vs REQ/REP)",
    "push_small": "push 1,000 rows x 32 f32 (vs REQ/REP)",
    "pull_1mib": "pull 1 MiB batches, MB/s (vs DEALER/ROUTER)",
    "push_1mib": "push 1 MiB batches, MB/s (vs PUSH/PULL)",
    "pull_1mib_vs_curve": "pull 1 MiB, MB/s (vs raw with CURVE, info)",
    "push_1mib_vs_curve": "push 1 MiB, MB/s (vs raw with CURVE, info)",
}
FULL = {"rows": 100_000, "repeats": 5, "small_count": 300, "big_count": 48}
QUICK = {"rows": 20_000, "repeats": 2, "small_count": 50, "big_count": 8}


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None,
        seed: int = 0) -> dict:
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    out = workdir / "crossnode-out"
    config = {"nworker": 2, "nserver": 2, "simulate_nodes": 2, "output": str(out), "seed": seed,
              "_result": "crossnode.json", **params}
    say(f"crossnode: 2 simulated nodes, {params['repeats']} interleaved repeats")
    data, wall = run_job(config, BENCH_DIR / "crossnode_job.py", workdir, "crossnode", direct=direct)
    figures = {}
    for name in ORDER:
        res = data["results"][name]
        scale = data["batch_bytes"][name] / 1e6 if "1mib" in name else 1.0
        api = [x * scale for x in res["api"]]
        lim = [x * scale for x in res["limit"]]
        goal = GOALS.get(name)
        fig = figure(api, lim, "MB/s" if "1mib" in name else res["unit"], goal=f">= {goal}" if goal else None)
        fig["met"] = (fig["ratio"] >= goal) if goal else None
        figures[name] = fig
    params["job_seconds"] = round(wall, 1)
    return {"params": params, "figures": figures,
            "notes": {"api": "requests from a worker to the server of the other node: CURVE-encrypted and "
                             "authenticated, checked, applied to (or gathered from) the shard",
                      "limit": "raw pyzmq between the two nodes on 127.0.0.1, no encryption unless 'with CURVE'",
                      "1mib": "8,192 rows x 32 float32 = 1 MiB of values (+64 KiB of keys) per batch, 8 in flight"}}


def rows(result: dict) -> list[list[str]]:
    out = []
    for name in ORDER:
        fig = result["figures"][name]
        out.append([LABELS[name], f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}", f"{fig['ratio']:.2f}",
                    fig["goal"] or "", verdict(fig, fig["met"]), "-"])
    return out
