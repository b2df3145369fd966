"""The ``mf`` benchmark: MF-SGD jobs (1 and 2 workers, 1 server) vs a single-process numba loop.

Data: synthetic MovieLens-1M-shaped ratings (see ``ratings_data``), split
90/10 and written as TSV into the run's temporary folder. The jobs run
``algs/mf.py`` and report ``ratings_per_second`` (training rounds only) and
``test_rmse`` in ``<output>/metrics.json``. The limit is ``algs/mf_kernels.sgd_blocks``
called in this process on 1-tuples of plain arrays, with everything the job's
worker 0 would use when alone: the same rows (ids sorted as strings, as
``paralg.vocabulary`` does), the same initial factors (the tables' seeded
``fill_init``), the same per-round shuffles, hyper-parameters and mean. It is
timed the same way: the training rounds only (shuffle + epoch), after one
warm-up compile on a tiny slice.

One repeat runs the loop, the 1-worker job and the 2-worker job (the order
reversed every other repeat), each after waiting (up to ``quiet_wait`` s) for
other processes to leave the cores alone; figures are medians over repeats
of the per-repeat ratios, with the cores other processes used meanwhile.
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

import numpy as np

from . import ratings_data
from .common import REPO, figure, interleave, median, run_job, say, verdict

sys.path.insert(0, str(REPO / "algs"))
from mf_kernels import BLOCK, sgd_blocks, sse  # noqa: E402  (imported as algs/mf.py imports it)

from parasol_hybrid.data.exchange import RUN  # noqa: E402

from parasol_hybrid.tables.kernels import INIT_KINDS, fill_init  # noqa: E402

__all__ = ["run", "rows", "loop_train", "SPEED_GOAL", "RMSE_GOAL"]

SPEED_GOAL = 1.7   # 2 workers vs the loop
RMSE_GOAL = 1.01   # job test RMSE / loop test RMSE
HYPER = {"k": 32, "alpha": 0.01, "beta": 0.05, "init_std": 0.1, "seed": 0}
FULL = {"rounds": 10, "repeats": 5, "workers": [1, 2], "quiet_wait": 20.0, **ratings_data.ML1M}
QUICK = {"rounds": 3, "repeats": 2, "workers": [1, 2], "quiet_wait": 0.0, **ratings_data.QUICK}


def _rows_of(ids: np.ndarray, n: int) -> np.ndarray:
    """Row of each 0-based id when the rows are the 1-based ids present, sorted as strings; -1 if absent."""
    present = np.unique(ids)
    order = np.argsort((present + 1).astype(str), kind="stable")
    row = np.full(n, -1, dtype=np.int64)
    row[present[order]] = np.arange(len(present), dtype=np.int64)
    return row


def _table_seed(name: str, seed: int) -> int:
    """The seed ``paralg.table`` gives a table named ``name``."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**62)


def _init(rows: int, k: int, name: str, hyper: dict) -> np.ndarray:
    a = np.empty((rows, k), dtype=np.float32)
    fill_init(a, 0, 1, INIT_KINDS["normal"], 0.0, float(hyper["init_std"]), _table_seed(name, hyper["seed"]))
    return a


def loop_train(train, test, n_users: int, n_items: int, rounds: int, hyper: dict) -> dict:
    """Train on ``train`` with the bare kernel in this process; ratings/s and test RMSE."""
    urow, irow = _rows_of(train.users, n_users), _rows_of(train.items, n_items)
    u, i, r = urow[train.users], irow[train.items], train.values
    tu, ti = urow[test.users], irow[test.items]
    nu, ni, k = int(urow.max()) + 1, int(irow.max()) + 1, hyper["k"]
    P, Q = (_init(nu, k, "P", hyper),), (_init(ni, k, "Q", hyper),)
    BU, BI = (np.zeros((nu, 1), np.float32),), (np.zeros((ni, 1), np.float32),)
    mu = float(r.sum()) / len(r)
    lr, reg = float(hyper["alpha"]), float(hyper["beta"])

    tiny = slice(0, 10)  # warm-up compile (or cache load) on copies of a tiny slice
    sgd_blocks(tuple(x.copy() for x in P), tuple(x.copy() for x in Q), tuple(x.copy() for x in BU),
               tuple(x.copy() for x in BI), u[tiny], i[tiny], r[tiny], np.zeros(1, dtype=np.int64), BLOCK, 0, mu, lr,
               reg)
    sse(P, Q, BU, BI, tu[tiny], ti[tiny], test.values[tiny], mu)

    # shuffled once by runs of RUN ratings (as a worker of algs/mf.py receives them from load(shuffle=True)),
    # then blocks in a new order each round
    runs = np.random.default_rng([hyper["seed"], 0, 1 << 20]).permutation(-(-len(r) // RUN))
    perm = (runs[:, None] * RUN + np.arange(RUN)).ravel()
    perm = perm[perm < len(r)]
    u, i, r = u[perm], i[perm], r[perm]
    t0 = time.perf_counter()
    for rnd in range(rounds):
        rng = np.random.default_rng([hyper["seed"], 0, rnd])
        blocks = rng.permutation(-(-len(r) // BLOCK)).astype(np.int64)
        offset = int(rng.integers(len(r)))
        sgd_blocks(P, Q, BU, BI, u, i, r, blocks, BLOCK, offset, mu, lr, reg)
    seconds = time.perf_counter() - t0
    rmse = float(np.sqrt(sse(P, Q, BU, BI, tu, ti, test.values, mu) / len(test)))
    return {"ratings_per_second": len(r) * rounds / seconds, "seconds": seconds, "test_rmse": rmse}


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    """Run the benchmark; returns ``{"params": ..., "figures": {name: figure}, ...}``."""
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    if quiet_wait is not None:
        params["quiet_wait"] = quiet_wait
    hyper = dict(HYPER)
    t0 = time.perf_counter()
    data = ratings_data.synthetic(params["users"], params["items"], params["ratings"], seed=hyper["seed"])
    train, test = ratings_data.split(data, 0.1)
    train_tsv = ratings_data.write_tsv(train, workdir / "mf-train.tsv")
    test_tsv = ratings_data.write_tsv(test, workdir / "mf-test.tsv")
    say(f"mf: {len(train):,} train + {len(test):,} test ratings written in {time.perf_counter() - t0:.1f} s; "
        f"{params['repeats']} repeats of (loop, " + ", ".join(f"{w}-worker job" for w in params["workers"]) + ")")

    def job(nworker: int):
        def side() -> float:
            out = workdir / f"mf-out-w{nworker}"
            cfg = {"nworker": nworker, "nserver": 1, "input": str(train_tsv), "test_input": str(test_tsv),
                   "output": str(out), "rounds": params["rounds"], "staleness": 0, **hyper}
            metrics, wall = run_job(cfg, REPO / "algs" / "mf.py", workdir, f"mf-w{nworker}", direct=direct)
            details[f"job{nworker}"].append({**{k: metrics.get(k) for k in (
                "ratings_per_second", "test_rmse", "train_rmse", "seconds", "max_clock_lead")},
                "wall_seconds": round(wall, 2)})
            return metrics["ratings_per_second"]
        return side

    def loop() -> float:
        res = loop_train(train, test, params["users"], params["items"], params["rounds"], hyper)
        details["loop"].append(res)
        return res["ratings_per_second"]

    details: dict[str, list[dict]] = {"loop": [], **{f"job{w}": [] for w in params["workers"]}}
    sides = {"loop": loop, **{f"job{w}": job(w) for w in params["workers"]}}
    _, others = interleave(sides, params["repeats"], label="mf", quiet_wait=params["quiet_wait"])

    loop_rate = [d["ratings_per_second"] for d in details["loop"]]
    loop_rmse = [d["test_rmse"] for d in details["loop"]]
    figures = {}
    for w in params["workers"]:
        runs = details[f"job{w}"]
        load = [max(a, b) for a, b in zip(others[f"job{w}"], others["loop"])]
        speed = figure([d["ratings_per_second"] for d in runs], loop_rate, "ratings/s",
                       goal=f">= {SPEED_GOAL}" if w == 2 else None, others=load)
        speed["met"] = speed["ratio"] >= SPEED_GOAL if w == 2 else None
        rmse = figure([d["test_rmse"] for d in runs], loop_rmse, "test RMSE", goal=f"<= {RMSE_GOAL}",
                      others=[0.0] * len(runs))  # RMSE does not depend on load: every repeat counts
        rmse["met"] = rmse["ratio"] <= RMSE_GOAL
        figures[f"speed_{w}w"], figures[f"rmse_{w}w"] = speed, rmse
    params.update(hyper, train_ratings=len(train), test_ratings=len(test), nserver=1, staleness=0)
    return {"params": params, "figures": figures, "runs": details,
            "notes": {"data": "synthetic ML-1M-shaped ratings: clip(round(mu + bu + bi + p.q (rank 8) + "
                              "noise), 1, 5), 90/10 split, fixed seed",
                      "limit": "algs/mf_kernels.sgd_blocks in one process on 1-tuples of plain arrays, "
                               "same rows, init, shuffles and hyper-parameters as worker 0 alone",
                      "timing": "training rounds only (job: metrics.json ratings_per_second)",
                      "ratio": "median over quiet repeats (else all) of job/loop; a repeat's sides run back "
                               "to back; others_cores[r] is the larger load of the two sides"}}


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, job, loop, ratio, goal, verdict, load of other processes."""
    out = []
    figures = result["figures"]
    for name in sorted(figures, key=lambda n: (n.split("_")[0] != "speed", n)):  # speeds first
        fig = figures[name]
        kind, w = name.split("_")
        if kind == "speed":
            load = f"{median(fig['others_cores']):.2f} ({fig['quiet_repeats']}/{fig['repeats']})"
            out.append([f"{w[:-1]} worker(s) vs loop, ratings/s", f"{fig['api']:,.0f}", f"{fig['limit']:,.0f}",
                        f"{fig['ratio']:.2f}", fig["goal"] or "(info)", verdict(fig, fig["met"]), load])
        else:
            out.append([f"{w[:-1]} worker(s) vs loop, test RMSE", f"{fig['api']:.4f}", f"{fig['limit']:.4f}",
                        f"{fig['ratio']:.4f}", fig["goal"], verdict(fig, fig["met"]), ""])
    return out
