"""The ``peers`` benchmark: our MF and LR jobs against what a Python user would otherwise pick.

Peers are installed only by the ``bench`` extra (``pip install '.[bench]'``:
``ray``, ``scikit-learn``); a part whose peer is missing is skipped and says
why, the other part still runs.

**MF vs a Ray parameter server.** ``algs/mf.py`` (2 workers, 1 server,
staleness 0) against ``benchmarks/peers_ray.py``: biased MF by SGD on Ray
the way Ray's documentation shows a parameter server (a ``ParameterServer``
actor holding the parameters, 2 ``DataWorker`` actors pulling the rows of a
mini-batch, computing the gradients with numpy and pushing them), run in a
subprocess, its workers at nice 0 as ours (Ray's default is 15). Same data,
same partition by user, same ``k``, ``alpha``, ``beta``, ``init_std`` and
epochs; Ray runs at each mini-batch size of ``ray_batches`` and is compared
at its fastest whose test RMSE is at most ours x 1.01. Data: MovieLens-100K
(``parasol_hybrid.datasets.split_ratings(movielens_100k(), dir)``, 80/20);
the full run adds the synthetic ML-1M-shaped set of the ``mf`` benchmark.
Figures: ratings/s of the training epochs (each side's own clock, start-up
excluded) and their ratio (goal: ours >= 20x Ray's), test RMSE (goal: ours
<= Ray's x 1.01, i.e. the speed is not bought with quality), and the wall
time of the whole run, start-up included. The single-process numba loop
(``mf_bench.loop_train``, the limit) is run on the same data as an info row;
the ``mf`` and ``pushpull`` benchmarks measure the job and the raw kernel
against that limit in depth.

**LR vs scikit-learn.** ``algs/lr.py`` (2 workers, 1 server; ``sgd`` and
``lbfgs``) against ``LogisticRegression`` (lbfgs) and
``SGDClassifier(loss="log_loss")``, both with our objective (mean log-loss +
``beta/2 ||w||^2``, ``beta = 1/n``, i.e. ``C = 1``; ``SGDClassifier(alpha=beta)``)
on breast cancer and, in the full run, digits (8 vs the rest) and
MovieLens-100K "liked" (rating >= 4 from one-hot user and item, sparse).
Target: each peer's test log-loss at its own default stopping, plus
``LR_TOL`` (0.001 nats). Each side's time to the target is that of the
fewest rounds (ours) or ``max_iter`` (the peer's) that reach it, found by
doubling then bisection (to within 1/8), every try a fresh run. Ours: the
job's training ``seconds`` (slowest worker, start-up excluded) and the wall
time of the whole job, medians of ``repeats`` jobs with those rounds. The
peer's: ``fit`` in this process (median of ``repeats`` samples, each the
mean of as many fits as take 0.2 s, after a warm-up fit) and the wall time
of a fresh ``python`` that imports scikit-learn, loads the file and fits.
``--quick`` runs one job per method with fixed rounds and reports whether
it reached the target.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import mf_bench, peers_ray, ratings_data
from .common import REPO, BenchError, _run, figure, interleave, median, run_job, say, verdict

__all__ = ["LR_TOL", "RMSE_GOAL", "SPEED_GOAL", "rows", "run"]

SPEED_GOAL = 20.0  # ours / Ray, ratings per second
RMSE_GOAL = 1.01   # ours / Ray, test RMSE
LR_TOL = 0.001     # a run reaches a peer's test log-loss L when its own is <= L + LR_TOL (nats)
HYPER = dict(mf_bench.HYPER)  # k 32, alpha 0.01, beta 0.05, init_std 0.1, seed 0
LR_METHODS = {"sgd": {"method": "sgd", "alpha": 1.0, "decay": 0.1, "batch": 16},
              "lbfgs": {"method": "lbfgs", "tol": 1e-6, "memory": 10}}
FULL = {"repeats": 3, "quiet_wait": 10.0, "mf_rounds": 20, "ray_batches": (1000, 4000, 16000), "synthetic": True,
        "synthetic_rounds": 10, "lr_sets": ("breast_cancer", "digits8", "ml100k_liked"),
        "lr_first": {"sgd": 1, "lbfgs": 2}, "lr_cap": {"sgd": 64, "lbfgs": 256}, "ray_timeout": 1800.0}
QUICK = {"repeats": 1, "quiet_wait": 0.0, "mf_rounds": 3, "ray_batches": (1000,), "synthetic": False,
         "synthetic_rounds": 0, "lr_sets": ("breast_cancer",),
         "lr_first": {"sgd": 32, "lbfgs": 64}, "lr_cap": {"sgd": 32, "lbfgs": 64}, "ray_timeout": 600.0}


# ---------------------------------------------------------------------------------------------- MF


def _ml100k(workdir: Path):
    """MovieLens-100K 80/20 split: (train.tsv, test.tsv, train Ratings, test Ratings) with 0-based int ids."""
    from parasol_hybrid.datasets import movielens_100k, split_ratings

    train_tsv, test_tsv = split_ratings(movielens_100k(), workdir / "ml-100k")
    return train_tsv, test_tsv, _read_tsv(train_tsv), _read_tsv(test_tsv)


def _read_tsv(path: Path) -> ratings_data.Ratings:
    a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    return ratings_data.Ratings(a[:, 0].astype(np.int64) - 1, a[:, 1].astype(np.int64) - 1, a[:, 2])


def _synthetic(workdir: Path):
    data = ratings_data.synthetic(**{k: ratings_data.ML1M[k] for k in ("users", "items", "ratings")},
                                  seed=HYPER["seed"])
    train, test = ratings_data.split(data, 0.1)
    return (ratings_data.write_tsv(train, workdir / "syn-train.tsv"),
            ratings_data.write_tsv(test, workdir / "syn-test.tsv"), train, test)


def _ray_side(workdir: Path, name: str, train_tsv: Path, test_tsv: Path, rounds: int, batch: int,
              timeout: float) -> dict:
    """Run ``peers_ray`` in a subprocess (Ray starts and ends with it); its JSON result.

    Ray runs its workers at nice 15 by default (``RAY_worker_niceness``); ours run at 0, so on a machine
    shared with other work Ray would get a smaller share of the cores. Both sides run at 0 here.
    """
    out = workdir / f"{name}-ray{batch}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "benchmarks.peers_ray", "--train", str(train_tsv), "--test", str(test_tsv),
            "--out", str(out), "--rounds", str(rounds), "--batch", str(batch), "--nworker", "2",
            "--k", str(HYPER["k"]), "--alpha", str(HYPER["alpha"]), "--beta", str(HYPER["beta"]),
            "--init-std", str(HYPER["init_std"]), "--seed", str(HYPER["seed"]),
            "--temp-dir", str(workdir / "ray")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("RAY_worker_niceness", "0")
    log = workdir / f"{name}-ray{batch}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        code = _run(argv, env, f, timeout)
    if code != 0 or not out.exists():
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise BenchError(f"Ray run {name} (batch {batch}) failed (exit {code}); log {log}:\n{tail}")
    res = json.loads(out.read_text())
    res["process_wall_seconds"] = time.perf_counter() - t0
    return res


def _mf_compare(workdir: Path, name: str, data, rounds: int, repeats: int, params: dict, direct: bool) -> dict:
    """One data set: ours, Ray at each mini-batch size of ``ray_batches``, and the loop, interleaved
    ``repeats`` times. The headline figures take Ray at its fastest batch among those whose test RMSE is
    at most ours x ``RMSE_GOAL`` (Ray at its best at equal quality)."""
    train_tsv, test_tsv, train, test = data
    n_users = int(max(train.users.max(), test.users.max())) + 1
    n_items = int(max(train.items.max(), test.items.max())) + 1
    batches = list(params["ray_batches"])
    runs: dict = {"ours": [], "loop": [], "ray": {str(b): [] for b in batches}}

    def ours() -> float:
        cfg = {"nworker": 2, "nserver": 1, "input": str(train_tsv), "test_input": str(test_tsv),
               "output": str(workdir / f"{name}-ours"), "rounds": rounds, "staleness": 0, "log_every": 1000,
               **HYPER}
        metrics, wall = run_job(cfg, REPO / "algs" / "mf.py", workdir, f"{name}-ours", direct=direct)
        runs["ours"].append({"ratings_per_second": metrics["ratings_per_second"], "train_seconds": metrics["seconds"],
                             "test_rmse": metrics["test_rmse"], "train_rmse": metrics["train_rmse"],
                             "wall_seconds": wall})
        return metrics["ratings_per_second"]

    def ray_side(batch: int):
        def side() -> float:
            res = _ray_side(workdir, name, train_tsv, test_tsv, rounds, batch, params["ray_timeout"])
            runs["ray"][str(batch)].append(res)
            return res["ratings_per_second"]
        return side

    def loop() -> float:
        res = mf_bench.loop_train(train, test, n_users, n_items, rounds, HYPER)
        runs["loop"].append(res)
        return res["ratings_per_second"]

    sides = {"ours": ours, **{f"ray{b}": ray_side(b) for b in batches}, "loop": loop}
    _, others = interleave(sides, repeats, label=f"peers {name}", quiet_wait=params["quiet_wait"])
    o_rate = [r["ratings_per_second"] for r in runs["ours"]]
    o_rmse = median([r["test_rmse"] for r in runs["ours"]])

    def versus(batch: int) -> dict:
        ray_runs = runs["ray"][str(batch)]
        # Ray's processes are not this process's waited-for children: the Ray side measures the other
        # processes' load itself (its own tree excluded), over its training epochs
        load = [max(a, r["others_cores"]) for a, r in zip(others["ours"], ray_runs)]
        speed = figure(o_rate, [r["ratings_per_second"] for r in ray_runs], "ratings/s",
                       goal=f">= {SPEED_GOAL:g}", others=load)
        speed["met"] = speed["ratio"] >= SPEED_GOAL
        rmse = figure([r["test_rmse"] for r in runs["ours"]], [r["test_rmse"] for r in ray_runs], "test RMSE",
                      goal=f"<= {RMSE_GOAL}", others=[0.0] * repeats)
        rmse["met"] = rmse["ratio"] <= RMSE_GOAL
        wall = figure([1.0 / r["wall_seconds"] for r in runs["ours"]],
                      [1.0 / r["process_wall_seconds"] for r in ray_runs], "runs/s (1 / wall seconds)", others=load)
        wall["met"] = None
        return {"speed": speed, "rmse": rmse, "wall": wall}

    by_batch = {str(b): versus(b) for b in batches}
    equal = [b for b in batches if by_batch[str(b)]["rmse"]["limit"] <= o_rmse * RMSE_GOAL]
    best = (max(equal, key=lambda b: by_batch[str(b)]["speed"]["limit"]) if equal
            else min(batches, key=lambda b: by_batch[str(b)]["rmse"]["limit"]))
    vs_loop = figure(o_rate, [r["ratings_per_second"] for r in runs["loop"]], "ratings/s",
                     others=[max(a, b) for a, b in zip(others["ours"], others["loop"])])
    vs_loop["met"] = None
    figs = {**by_batch[str(best)], "vs_loop": vs_loop}
    return {"figures": figs, "ray_batch": best, "ray_equal_rmse_batches": equal, "by_batch": by_batch,
            "runs": runs, "ratings": {"train": len(train), "test": len(test)}, "rounds": rounds,
            "goal_met": bool(figs["speed"]["met"] and figs["rmse"]["met"])}


# ---------------------------------------------------------------------------------------------- LR


def _lr_data(name: str, workdir: Path) -> tuple[Path, Path, str]:
    """(train.svm, test.svm, description) of an LR data set, written under ``workdir``."""
    from parasol_hybrid.datasets import breast_cancer, write_libsvm

    out = workdir / f"lr-{name}"
    if name == "breast_cancer":
        train, test = breast_cancer(out)
        return train, test, "breast cancer, 569 x 30, 75/25 stratified, standardised"
    if name == "digits8":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        y = (y == 8).astype(int)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        mu, sd = Xtr.mean(0), Xtr.std(0)
        sd = np.where(sd > 0, sd, 1.0)  # constant pixels stay 0 (a test image may have ink there)
        return (write_libsvm(out / "train.svm", (Xtr - mu) / sd, ytr),
                write_libsvm(out / "test.svm", (Xte - mu) / sd, yte),
                "digits, 8 vs the rest, 1,797 x 64, 75/25 stratified, standardised")
    if name == "ml100k_liked":
        from parasol_hybrid.datasets import movielens_100k, split_ratings

        train_tsv, test_tsv = split_ratings(movielens_100k(), workdir / "ml-100k")
        tr, te = _read_tsv(train_tsv), _read_tsv(test_tsv)
        n_users = int(max(tr.users.max(), te.users.max())) + 1
        n_items = int(max(tr.items.max(), te.items.max())) + 1
        out.mkdir(parents=True, exist_ok=True)
        for part, path in ((tr, out / "train.svm"), (te, out / "test.svm")):
            path.write_text("".join(f"{int(v >= 4)} {u}:1 {n_users + i}:1\n" for u, i, v in
                                    zip(part.users.tolist(), part.items.tolist(), part.values.tolist())))
        return (out / "train.svm", out / "test.svm",
                f"MovieLens-100K 80/20, liked = rating >= 4, one-hot user + item ({n_users + n_items:,} features)")
    raise BenchError(f"unknown LR data set {name!r} (known: breast_cancer, digits8, ml100k_liked)")


def _load_svm(train: Path, test: Path):
    from sklearn.datasets import load_svmlight_files

    X, y, Xt, yt = load_svmlight_files([str(train), str(test)], zero_based=True)  # one feature count
    for M in (X, Xt):  # SGDClassifier wants 32-bit sparse indices
        M.indices = M.indices.astype(np.int32)
        M.indptr = M.indptr.astype(np.int32)
    return X, y, Xt, yt


def _peer_model(peer: str, beta: float, max_iter: int | None):
    """A scikit-learn peer with our objective; ``max_iter=None``: its own default stopping."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    if peer == "LogisticRegression":
        return LogisticRegression(C=1.0, tol=1e-6, max_iter=max_iter or 10_000)
    if peer == "SGDClassifier":
        return SGDClassifier(loss="log_loss", alpha=beta, random_state=0, max_iter=max_iter or 1000)
    raise BenchError(f"unknown peer {peer!r} (known: {', '.join(PEERS)})")


PEERS = ("LogisticRegression", "SGDClassifier")
SHORT = {"LogisticRegression": "LogReg", "SGDClassifier": "SGDClf"}  # in the table
_COLD = """
import sys, warnings
warnings.simplefilter("ignore")
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression, SGDClassifier
X, y = load_svmlight_file(sys.argv[1], zero_based=True, n_features=int(sys.argv[4]))
X.indices = X.indices.astype("int32"); X.indptr = X.indptr.astype("int32")
peer, max_iter = sys.argv[2], int(sys.argv[3])
if peer == "LogisticRegression":
    model = LogisticRegression(C=1.0, tol=1e-6, max_iter=max_iter)
else:
    model = SGDClassifier(loss="log_loss", alpha=1.0 / X.shape[0], random_state=0, max_iter=max_iter)
model.fit(X, y)
"""  # what a user's script does: the same models as _peer_model, nothing of ours imported


def _cold_fit_seconds(train: Path, peer: str, max_iter: int, n_features: int) -> float:
    """Wall seconds of a fresh python that imports scikit-learn, loads ``train`` and fits ``peer``."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _COLD, str(train), peer, str(max_iter), str(n_features)], check=True,
                   timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _reach(get, threshold: float, first: int, cap: int) -> dict:
    """The fewest rounds whose run reaches test log-loss ``threshold``: doubling from ``first`` up to
    ``cap``, then bisection to within 1/8. ``get(rounds)`` runs (or recalls) one run and returns its
    ``test_logloss``, ``seconds`` and ``wall_seconds``."""
    hit, miss, r = None, first - 1, first
    while True:
        if get(r)["test_logloss"] <= threshold:
            hit = r
            break
        miss = r
        if r >= cap:
            break
        r = min(2 * r, cap)
    if hit is None:
        last = get(miss)
        return {"reached": False, "rounds": miss, "test_logloss": last["test_logloss"], "seconds": last["seconds"],
                "wall_seconds": last["wall_seconds"]}
    while hit - miss > max(1, hit // 8) and miss >= first:
        mid = (hit + miss) // 2
        if get(mid)["test_logloss"] <= threshold:
            hit = mid
        else:
            miss = mid
    m = get(hit)
    return {"reached": True, "rounds": hit, "test_logloss": m["test_logloss"], "seconds": m["seconds"],
            "wall_seconds": m["wall_seconds"]}


def _lr_compare(workdir: Path, name: str, params: dict, direct: bool) -> dict:
    """One data set: per peer, the target (its test log-loss + ``LR_TOL``) and each side's time to it."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import log_loss

    train, test, about = _lr_data(name, workdir)
    X, y, Xt, yt = _load_svm(train, test)
    n = X.shape[0]
    beta = 1.0 / n

    def fit(peer: str, max_iter: int | None) -> tuple[float, float, int]:
        model = _peer_model(peer, beta, max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            model.fit(X, y)
            seconds = time.perf_counter() - t0
        return seconds, float(log_loss(yt, model.predict_proba(Xt))), int(np.max(model.n_iter_))

    def timed_fit(peer: str, max_iter: int, at_least: float = 0.2) -> float:
        """Seconds of one fit: the mean over as many fits as take ``at_least`` s (at most 50), so that a
        millisecond fit is not one timer reading."""
        total, count = 0.0, 0
        while total < at_least and count < 50:
            total += fit(peer, max_iter)[0]
            count += 1
        return total / count

    jobs: dict[str, dict[int, dict]] = {m: {} for m in LR_METHODS}

    def job(method: str, rounds: int, again: bool = False) -> dict:
        """The job with ``rounds`` (run once and remembered; ``again``: run it once more, and the seconds
        become the medians of all its runs)."""
        done = jobs[method]
        if rounds not in done or again:
            cfg = {"nworker": 2, "nserver": 1, "input": str(train), "test_input": str(test),
                   "output": str(workdir / f"lr-{name}-{method}-out"), "rounds": rounds, "seed": 0,
                   "log_every": 1000, "beta": beta, **LR_METHODS[method]}
            metrics, wall = run_job(cfg, REPO / "algs" / "lr.py", workdir, f"lr-{name}-{method}", direct=direct)
            say(f"peers lr {name} {method}: rounds {rounds}: test log-loss {metrics['test_logloss']:.5f}, "
                f"{metrics['seconds']:.3f} s training, {wall:.1f} s wall")
            rec = done.setdefault(rounds, {"test_logloss": metrics["test_logloss"], "seconds_samples": [],
                                           "wall_samples": [], "test_logloss_samples": [],
                                           "train_logloss": metrics["train_logloss"]})
            rec["test_logloss_samples"].append(metrics["test_logloss"])  # runs differ: Hogwild, async pushes
            rec["seconds_samples"].append(metrics["seconds"])
            rec["wall_samples"].append(wall)
            rec["seconds"], rec["wall_seconds"] = median(rec["seconds_samples"]), median(rec["wall_samples"])
        return done[rounds]

    peers, ours = {}, {m: {} for m in LR_METHODS}
    for peer in PEERS:
        fit(peer, None)  # warm-up, untimed
        full_seconds, full_loss, full_iter = fit(peer, None)
        threshold = full_loss + LR_TOL
        tried: dict[int, dict] = {}

        def peer_run(max_iter: int, peer=peer, tried=tried) -> dict:
            if max_iter not in tried:
                seconds, loss, _ = fit(peer, max_iter)
                tried[max_iter] = {"test_logloss": loss, "seconds": seconds, "wall_seconds": seconds}
            return tried[max_iter]

        reach = _reach(peer_run, threshold, 1, full_iter)
        fits = [timed_fit(peer, reach["rounds"]) for _ in range(params["repeats"])]
        reach.update(seconds=median(fits), fit_samples=fits,
                     wall_seconds=_cold_fit_seconds(train, peer, reach["rounds"], X.shape[1]))
        peers[peer] = {"test_logloss": full_loss, "threshold": threshold, "full_fit_seconds": full_seconds,
                       "full_iterations": full_iter, "reach": reach}
        say(f"peers lr {name}: {peer} test log-loss {full_loss:.5f} ({full_iter} iterations, {full_seconds:.4f} s); "
            f"to <= {threshold:.5f}: {reach['rounds']} iterations, {reach['seconds']:.4f} s "
            f"(fresh process {reach['wall_seconds']:.1f} s)")
        for method in LR_METHODS:
            reach = _reach(lambda r, m=method: job(m, r), threshold, params["lr_first"][method],
                           params["lr_cap"][method])
            if reach["reached"]:  # one run found it: time that many rounds ``repeats`` times in all
                while len(job(method, reach["rounds"])["seconds_samples"]) < params["repeats"]:
                    job(method, reach["rounds"], again=True)
                rec = job(method, reach["rounds"])
                reach.update(seconds=rec["seconds"], wall_seconds=rec["wall_seconds"],
                             seconds_samples=rec["seconds_samples"], wall_samples=rec["wall_samples"],
                             test_logloss_samples=rec["test_logloss_samples"],
                             runs_reached=sum(x <= threshold for x in rec["test_logloss_samples"]))
            ours[method][peer] = reach
    return {"data": about, "train_rows": n, "test_rows": Xt.shape[0], "features": X.shape[1], "beta": beta,
            "peers": peers, "ours": {m: {"reach": ours[m], "jobs": {str(k): v for k, v in sorted(jobs[m].items())}}
                                     for m in LR_METHODS}}


# ---------------------------------------------------------------------------------------------- run


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    """Run the benchmark; returns ``{"params", "mf", "lr", "skipped", "notes"}``."""
    params = dict(QUICK if quick else FULL)
    if repeats:
        params["repeats"] = repeats
    if quiet_wait is not None:
        params["quiet_wait"] = quiet_wait
    result: dict = {"params": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
                               **{f"mf_{k}": v for k, v in HYPER.items()}, "nworker": 2, "nserver": 1,
                               "lr_methods": LR_METHODS, "lr_tol": LR_TOL},
                    "mf": {}, "lr": {}, "skipped": {}, "errors": []}
    t0 = time.perf_counter()

    if not peers_ray.available():
        result["skipped"]["mf"] = peers_ray.WHY_MISSING
        say(f"peers: MF vs Ray skipped: {peers_ray.WHY_MISSING}")
    else:
        import ray

        result["params"]["ray"] = ray.__version__
        sets = [("ml100k", _ml100k, params["mf_rounds"], params["repeats"])]
        if params["synthetic"]:
            sets.append(("ml1m_synthetic", _synthetic, params["synthetic_rounds"], 1))
        for name, load, rounds, reps in sets:
            try:
                data = load(workdir)
            except Exception as exc:  # noqa: BLE001 - e.g. recbole (MovieLens-100K) not installed
                result["skipped"][f"mf_{name}"] = f"{type(exc).__name__}: {exc}"
                say(f"peers: MF on {name} skipped: {exc}")
                continue
            say(f"peers: MF on {name}: {len(data[2]):,} train ratings, {rounds} epochs, {reps} repeat(s) of "
                f"(ours, Ray, loop)")
            result["mf"][name] = _mf_compare(workdir, name, data, rounds, reps, params, direct)

    if importlib.util.find_spec("sklearn") is None:
        result["skipped"]["lr"] = "scikit-learn is not installed (pip install '.[bench]')"
    else:
        for name in params["lr_sets"]:
            try:
                result["lr"][name] = _lr_compare(workdir, name, params, direct)
            except BenchError as exc:
                result["errors"].append(f"lr {name}: {exc}")
                say(f"peers: LR on {name} failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - a missing data package must not hide the rest
                result["skipped"][f"lr_{name}"] = f"{type(exc).__name__}: {exc}"
                say(f"peers: LR on {name} skipped: {exc}")
    if not result["mf"] and not result["lr"]:
        raise BenchError("nothing ran: " + "; ".join(f"{k}: {v}" for k, v in result["skipped"].items())
                         + "; ".join(result["errors"]))
    if result["errors"]:
        raise BenchError("; ".join(result["errors"]))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["notes"] = {
        "mf": "ours = algs/mf.py, 2 workers + 1 server, staleness 0; Ray = benchmarks/peers_ray.py, a ParameterServer "
              "actor + 2 DataWorker actors (numpy gradients, mini-batches of each of ray_batches ratings; the figures "
              "use the fastest whose test RMSE <= ours x 1.01), Ray in a subprocess with num_cpus=2 and "
              "RAY_worker_niceness=0; ratings/s over the training epochs only (each side's own clock); wall includes "
              "start-up (ours: launcher + MPI + imports + data; Ray: python + ray.init + data + actors)",
        "mf_loop": "mf_bench.loop_train, the single-process numba loop (the limit), on the same data",
        "lr": "target = the peer's test log-loss at its default stopping + lr_tol; each side: the fewest rounds "
              "(ours) / max_iter (peer) reaching it (doubling then bisection, a fresh run each); ours: the job's "
              "training seconds and its wall with start-up (medians of repeats jobs); peer: fit() in this process "
              "(median of repeats means over >= 0.2 s of fits, after a warm-up) and a fresh python importing "
              "scikit-learn + load + fit",
        "limits": "raw-kernel pull/push: the pushpull benchmark; job vs numba loop on ML-1M-shaped data: mf"}
    return result


# ---------------------------------------------------------------------------------------------- table


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, ours, peer (or the limit), ratio, goal, verdict, load of other processes."""
    out = []
    for name, res in result.get("mf", {}).items():
        f = res["figures"]
        s, r, w, lp = f["speed"], f["rmse"], f["wall"], f["vs_loop"]
        load = f"{median(s['others_cores']):.2f} ({s['quiet_repeats']}/{s['repeats']})"
        b = res["ray_batch"]
        out.append([f"MF {name}: ratings/s, ours vs Ray PS batch {b} (limit col.: Ray)", f"{s['api']:,.0f}",
                    f"{s['limit']:,.0f}", f"{s['ratio']:.1f}", s["goal"], verdict(s, s["met"]), load])
        out.append([f"MF {name}: test RMSE, ours vs Ray PS batch {b}", f"{r['api']:.4f}", f"{r['limit']:.4f}",
                    f"{r['ratio']:.4f}", r["goal"], verdict(r, r["met"]), ""])
        out.append([f"MF {name}: wall s with start-up, ours vs Ray batch {b}", f"{1 / w['api']:.1f} s",
                    f"{1 / w['limit']:.1f} s", f"{w['ratio']:.2f}", "(info)", "", ""])
        for other, fo in res["by_batch"].items():
            if int(other) != b:
                so, ro = fo["speed"], fo["rmse"]
                out.append([f"MF {name}: ours vs Ray batch {other}: ratings/s (RMSE {ro['limit']:.4f})",
                            f"{so['api']:,.0f}", f"{so['limit']:,.0f}", f"{so['ratio']:.1f}", "(info)", "",
                            f"{median(so['others_cores']):.2f} ({so['quiet_repeats']}/{so['repeats']})"])
        out.append([f"MF {name}: ratings/s, ours vs numba loop (limit)", f"{lp['api']:,.0f}", f"{lp['limit']:,.0f}",
                    f"{lp['ratio']:.2f}", "(info)", "", ""])
    for name, res in result.get("lr", {}).items():
        for peer, p in res["peers"].items():
            pr = p["reach"]
            for method, ours in res["ours"].items():
                reach = ours["reach"][peer]
                short = SHORT[peer]
                label = (f"LR {name}: s to logloss <= {p['threshold']:.4f} ({short}'s + {LR_TOL:g}): "
                         f"{method} {reach['rounds']} rnd vs {short} {pr['rounds']} it")
                samples = reach.get("test_logloss_samples", [])
                if len(samples) > 1:  # the same rounds run again: did every run reach the target?
                    label += f" ({reach['runs_reached']}/{len(samples)} runs reach)"
                if not reach["reached"]:
                    out.append([label, f"not reached ({reach['test_logloss']:.4f})", f"{pr['seconds']:.4f} s", "-",
                                "(info)", "", ""])
                    continue
                out.append([label, f"{reach['seconds']:.4f} s", f"{pr['seconds']:.4f} s",
                            f"{pr['seconds'] / max(reach['seconds'], 1e-9):.2f}", "(info)", "", ""])
                out.append([f"LR {name}: same, wall s with start-up (job vs fresh python)",
                            f"{reach['wall_seconds']:.1f} s", f"{pr['wall_seconds']:.1f} s",
                            f"{pr['wall_seconds'] / max(reach['wall_seconds'], 1e-9):.2f}", "(info)", "", ""])
    for part, why in result.get("skipped", {}).items():
        out.append([f"{part}: skipped: {why}", "", "", "", "", "", ""])
    for err in result.get("errors", []):
        out.append([f"ERROR {err}", "", "", "", "", "", ""])
    return out
