"""The ``scale`` benchmark: MF, LR and word count on big inputs, each side by side with its peer.

Data come from ``scale_data`` (fixed seed, generated once into the cache,
never committed). Every job runs through the launcher with 2 workers and 1
server; each peer runs in its own fresh ``python`` (its import excluded from
its time), so its memory is gone before the next side starts.

**MF** (``algs/mf.py``, k 32, 10 rounds, staleness 0) on Netflix-shaped
ratings at 1 M, 10 M and 100 M (``--quick``: 20 k, 200 k): load seconds
(``metrics.json`` ``load_seconds``: the slowest worker's time in ``load`` and
``vocabulary``, i.e. reading, partitioning and the id maps) against
``pandas.read_csv`` of the same file in one process (C engine, ``sep=" "``,
int32 / int32 / float32 columns), and both per 10 M ratings; training
ratings/s (``ratings_per_second``) against the smallest size's; test RMSE
against the Bayes predictor's on the same test file; ``peak_rss_bytes`` (the
largest over the job's ranks) against issue 10's bound for a worker,
``2 x 16 bytes x ratings / workers`` plus the bytes of the tables
(``(users + items) x (k + 1) x 4``).

**LR** (``algs/lr.py``, L-BFGS by default: a round is one full pass) on a
hashed sparse set (2^24 features, ~20 non-zeros a row, 10 M rows;
``--quick``: 2^20, 20 k): load seconds against scikit-learn's
``load_svmlight_file`` of the same file (``n_features=2^bits``,
``zero_based=True``), seconds per round (training ``seconds`` / rounds
run), test log-loss against the true model's.

**Word count** (``algs/wordcount.py``, ``topk`` 0: every word) on the Linux
sources of Debian's ``linux-source`` (installed with apt and extracted into
the cache when missing; the row is skipped, saying why, when that fails;
``--quick``: their ``lib/`` folder if already extracted, else a made-up
text): the job's ``seconds`` (load, count, merge; start-up excluded) against
``collections.Counter`` over ``parasol_hybrid.data.parsers.tokenize`` of
each file (reading included) and against ``LC_ALL=C tr -cs 'A-Za-z0-9_-'
'\\n' | sort | uniq -c`` over the same files concatenated beforehand (a
newline after each). The three results must be equal.

Goals (issue 10): load of the largest size <= ``pandas.read_csv``; load <= 2 s
per 10 M ratings at every size; peak RSS <= the bound; ratings/s at the
largest size >= at the smallest; word count <= the faster peer.

Environment: ``PARASOL_SCALE_SIZES`` (MF sizes, e.g. ``1M,10M``),
``PARASOL_SCALE_LR_ROWS`` (e.g. ``1M``) and ``PARASOL_SCALE_PARTS`` (a subset
of ``mf,lr,wordcount``) narrow a run;
``PARASOL_BENCH_CACHE`` moves the cache (see ``scale_data.cache_dir``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import scale_data
from .common import REPO, BenchError, figure, median, run_job, say, verdict, wait_quiet
from .cpuload import CpuMeter

__all__ = ["run", "rows", "FULL", "QUICK", "LOAD_PER_10M_GOAL"]

LOAD_PER_10M_GOAL = 2.0  # seconds of loading per 10 M ratings, at any size
HYPER = {"k": 32, "alpha": 0.01, "beta": 0.05, "init_std": 0.1, "seed": 0}
LR_HYPER = {"method": "lbfgs", "beta": 1e-6, "memory": 5, "tol": 1e-6, "seed": 0}
PARTS = ("mf", "lr", "wordcount")
FULL = {"sizes": [1_000_000, 10_000_000, 100_000_000], "rounds": 10, "lr_rows": 10_000_000, "lr_bits": 24,
        "lr_rounds": 10, "text": "linux", "repeats": 1, "quiet_wait": 10.0}
QUICK = {"sizes": [20_000, 200_000], "rounds": 10, "lr_rows": 20_000, "lr_bits": 20, "lr_rounds": 3,
         "text": "linux lib/ (else synthetic)", "repeats": 1, "quiet_wait": 0.0}

_PANDAS = """
import json, resource, sys, time
import numpy as np
import pandas as pd
t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1], sep=" ", header=None, names=["user", "item", "rating"], engine="c",
                 dtype={"user": np.int32, "item": np.int32, "rating": np.float32})
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rows": len(df), "pandas": pd.__version__,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

_SVMLIGHT = """
import json, resource, sys, time
import sklearn
from sklearn.datasets import load_svmlight_file
t0 = time.perf_counter()
X, y = load_svmlight_file(sys.argv[1], n_features=int(sys.argv[2]), zero_based=True)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rows": X.shape[0], "nonzeros": int(X.nnz), "sklearn": sklearn.__version__,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

_COUNTER = """
import json, resource, sys, time
from collections import Counter
from parasol_hybrid.data.parsers import tokenize
files = json.loads(open(sys.argv[1]).read())
t0 = time.perf_counter()
counts = Counter()
for path in files:
    with open(path, "rb") as f:
        counts.update(tokenize(f.read().decode("utf-8", errors="replace")))
seconds = time.perf_counter() - t0
with open(sys.argv[2], "w") as out:
    out.write("".join(f"{w}\\t{c}\\n" for w, c in counts.items()))
print(json.dumps({"seconds": seconds, "distinct_words": len(counts), "total_words": sum(counts.values()),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

_TR = "set -o pipefail; tr -cs 'A-Za-z0-9_-' '\\n' < \"$1\" | sort | uniq -c > \"$2\""


def _size(n: int) -> str:
    return scale_data._size(n)


def _parse_size(text: str) -> int:
    t = text.strip()
    mult = {"k": 1_000, "M": 1_000_000}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise BenchError(f"PARASOL_SCALE_SIZES / PARASOL_SCALE_LR_ROWS: {text!r} is not a size like 20k, 1M "
                         "or 1000000") from None


def _params(quick: bool, repeats: int | None, quiet_wait: float | None) -> dict:
    params = dict(QUICK if quick else FULL)
    if os.environ.get("PARASOL_SCALE_SIZES"):
        params["sizes"] = [_parse_size(s) for s in os.environ["PARASOL_SCALE_SIZES"].split(",") if s.strip()]
    if os.environ.get("PARASOL_SCALE_LR_ROWS"):
        params["lr_rows"] = _parse_size(os.environ["PARASOL_SCALE_LR_ROWS"])
    parts = [p.strip() for p in os.environ.get("PARASOL_SCALE_PARTS", ",".join(PARTS)).split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise BenchError(f"PARASOL_SCALE_PARTS: unknown part(s) {unknown} (known: {list(PARTS)})")
    params["parts"] = parts
    if repeats:
        params["repeats"] = repeats
    if quiet_wait is not None:
        params["quiet_wait"] = quiet_wait
    return params


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _peer(argv: list[str], name: str, timeout: float, env: dict | None = None) -> dict:
    """Run a peer to its end; its last stdout line as JSON (``python -c`` peers) or ``{}``."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env or _env(), cwd=REPO)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{name} timed out after {timeout:g} s") from None
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise BenchError(f"{name} failed (exit {done.returncode}): {tail}")
    last = done.stdout.strip().splitlines()[-1:] or ["{}"]
    return json.loads(last[0]) if last[0].startswith("{") else {}


def _has(module: str) -> bool:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, env=_env())
    return done.returncode == 0


def _timed(params: dict, fn):
    """``fn()`` after waiting for quiet cores; (its result, cores other processes used meanwhile)."""
    if params["quiet_wait"] > 0:
        wait_quiet(max_wait=params["quiet_wait"])
    with CpuMeter() as meter:
        out = fn()
    return out, round(meter.others + meter.steal, 3)


def _fig(api: list, limit: list, unit: str, others: list, goal: str | None = None, met=None) -> dict | None:
    """A :func:`common.figure` of the repeats where both sides have a value; None when there is none."""
    keep = [r for r in range(len(api)) if api[r] is not None and limit[r] is not None]
    if not keep:
        return None
    fig = figure([float(api[r]) for r in keep], [float(limit[r]) for r in keep], unit, goal=goal,
                 others=[others[r] for r in keep])
    fig["met"] = met(fig["ratio"]) if met else None
    return fig


# ---------------------------------------------------------------------------------------------- MF


def _mf(workdir: Path, params: dict, direct: bool, has_pandas: bool, result: dict) -> None:
    sizes = params["sizes"]
    for n in sizes:
        label = _size(n)
        t0 = time.perf_counter()
        data = scale_data.netflix(n, seed=HYPER["seed"])
        say(f"scale: MF {label}: data ready in {time.perf_counter() - t0:.1f} s ({data.train})")
        runs: dict = {"job": [], "pandas": [], "job_others": [], "pandas_others": []}
        timeout = 900.0 + 40.0 * n / 1e6

        def job():
            out = workdir / f"scale-mf-{label}"
            cfg = {"nworker": 2, "nserver": 1, "input": str(data.train), "test_input": str(data.test),
                   "output": str(out), "rounds": params["rounds"], "staleness": 0, "log_every": 1000, **HYPER}
            metrics, wall = run_job(cfg, REPO / "algs" / "mf.py", workdir, f"scale-mf-{label}", timeout=timeout,
                                    direct=direct, retries=0)
            return {**{k: metrics.get(k) for k in ("load_seconds", "ratings_per_second", "test_rmse", "train_rmse",
                                                   "seconds", "peak_rss_bytes", "users", "items", "ratings",
                                                   "bad_lines")}, "wall_seconds": round(wall, 2)}

        def pandas():
            return _peer([sys.executable, "-c", _PANDAS, str(data.train)], f"pandas.read_csv of {data.train}",
                         timeout)

        sides = {"job": job, **({"pandas": pandas} if has_pandas else {})}
        for r in range(params["repeats"]):
            for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                try:
                    value, others = _timed(params, sides[name])
                except BenchError as exc:
                    result["errors"].append(f"MF {label} {name}: {exc}")
                    say(f"scale: MF {label} {name} failed: {exc}")
                    value, others = None, 0.0
                runs[name].append(value)
                runs[f"{name}_others"].append(others)
            say(f"scale: MF {label} repeat {r + 1}: " + "  ".join(
                f"{s} {json.dumps(runs[s][-1])}" for s in sides))
        result["mf"][label] = {"ratings": n, "test_ratings": data.meta["test"]["ratings"],
                               "file_bytes": data.meta["train"]["bytes"],
                               "oracle_test_rmse": data.meta["test"]["oracle_rmse"], "runs": runs}
    _mf_figures(result, sizes, params)


def _mf_figures(result: dict, sizes: list[int], params: dict) -> None:
    first, last = _size(sizes[0]), _size(sizes[-1])
    base = result["mf"].get(first)
    for n in sizes:
        label = _size(n)
        entry = result["mf"].get(label)
        if entry is None:
            continue
        runs = entry["runs"]
        jobs = [j or {} for j in runs["job"]]
        peers = [p or {} for p in runs.get("pandas") or [{}] * len(jobs)]
        others = [max(a, b) for a, b in zip(runs["job_others"], runs.get("pandas_others") or runs["job_others"])]
        load = [j.get("load_seconds") for j in jobs]
        pandas_s = [p.get("seconds") for p in peers]
        per10 = 1e7 / n
        figs = {}
        figs["load_vs_pandas"] = _fig(load, pandas_s, "seconds", others, goal="<= 1" if label == last else None,
                                      met=(lambda x: x <= 1.0) if label == last else None)
        figs["load_per_10M"] = _fig([x * per10 if x is not None else None for x in load],
                                    [LOAD_PER_10M_GOAL] * len(load), "seconds per 10 M ratings (limit: the goal)",
                                    others, goal="<= 1", met=lambda x: x <= 1.0)
        entry["pandas_seconds_per_10M"] = [s * per10 if s is not None else None for s in pandas_s]
        rate = [j.get("ratings_per_second") for j in jobs]
        if base is not None:
            base_rates = [j["ratings_per_second"] for j in base["runs"]["job"] if j and j.get("ratings_per_second")]
            base_rate = median(base_rates or [0.0])
            goal = label == last and label != first
            figs["rate_vs_smallest"] = _fig(rate, [base_rate or None] * len(rate), "ratings/s", others,
                                            goal=">= 1" if goal else None, met=(lambda x: x >= 1.0) if goal else None)
        figs["test_rmse"] = _fig([j.get("test_rmse") for j in jobs], [entry["oracle_test_rmse"]] * len(jobs),
                                 "test RMSE (limit: Bayes predictor)", [0.0] * len(jobs))
        bounds = [_rss_bound(n, j) for j in jobs]
        figs["peak_rss"] = _fig([j.get("peak_rss_bytes") for j in jobs], bounds,
                                "bytes (limit: issue 10 bound per worker)", [0.0] * len(jobs), goal="<= 1",
                                met=lambda x: x <= 1.0)
        entry["figures"] = figs
        entry["rss_bound_bytes"] = bounds[0] if bounds else None
        for key, fig in figs.items():
            if fig is not None:
                result["figures"][f"mf_{label}_{key}"] = fig


def _rss_bound(n: int, job: dict) -> float | None:
    """Issue 10, item 4: 2 x its share of the ratings as 16-byte triples, plus the tables it maps."""
    if not job.get("users") or not job.get("items"):
        return None
    tables = (job["users"] + job["items"]) * (HYPER["k"] + 1) * 4 + 256 * 2 * 8
    return 2 * 16 * n / 2 + tables


# ---------------------------------------------------------------------------------------------- LR


def _lr(workdir: Path, params: dict, direct: bool, has_sklearn: bool, result: dict) -> None:
    n, bits = params["lr_rows"], params["lr_bits"]
    t0 = time.perf_counter()
    data = scale_data.hashed_lr(n, bits=bits, seed=LR_HYPER["seed"])
    say(f"scale: LR {_size(n)} rows, 2^{bits} features: data ready in {time.perf_counter() - t0:.1f} s")
    timeout = 900.0 + 300.0 * n / 1e6
    runs: dict = {"job": [], "sklearn": [], "job_others": [], "sklearn_others": []}

    def job():
        out = workdir / "scale-lr"
        cfg = {"nworker": 2, "nserver": 1, "input": str(data.train), "test_input": str(data.test),
               "output": str(out), "rounds": params["lr_rounds"], "staleness": 0, "log_every": 1000, **LR_HYPER}
        m, wall = run_job(cfg, REPO / "algs" / "lr.py", workdir, "scale-lr", timeout=timeout, direct=direct,
                          retries=0)
        rounds = m.get("iterations") or m.get("rounds") or params["lr_rounds"]
        return {**{k: m.get(k) for k in ("load_seconds", "seconds", "test_logloss", "train_logloss", "test_accuracy",
                                         "iterations", "evaluations", "n_features", "train_rows", "peak_rss_bytes")},
                "seconds_per_round": m["seconds"] / rounds if rounds else None, "wall_seconds": round(wall, 2)}

    def sklearn():
        return _peer([sys.executable, "-c", _SVMLIGHT, str(data.train), str(2**bits)],
                     f"load_svmlight_file of {data.train}", timeout)

    sides = {"job": job, **({"sklearn": sklearn} if has_sklearn else {})}
    for r in range(params["repeats"]):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            try:
                value, others = _timed(params, sides[name])
            except BenchError as exc:
                result["errors"].append(f"LR {name}: {exc}")
                say(f"scale: LR {name} failed: {exc}")
                value, others = None, 0.0
            runs[name].append(value)
            runs[f"{name}_others"].append(others)
        say(f"scale: LR repeat {r + 1}: " + "  ".join(f"{s} {json.dumps(runs[s][-1])}" for s in sides))
    jobs = [j or {} for j in runs["job"]]
    peers = [p or {} for p in runs["sklearn"] or [{}] * len(jobs)]
    others = [max(a, b) for a, b in zip(runs["job_others"], runs["sklearn_others"] or runs["job_others"])]
    figs = {"load_vs_sklearn": _fig([j.get("load_seconds") for j in jobs], [p.get("seconds") for p in peers],
                                    "seconds", others),
            "seconds_per_round": _fig([j.get("seconds_per_round") for j in jobs], [1.0] * len(jobs),
                                      "seconds per round (no limit)", others),
            "test_logloss": _fig([j.get("test_logloss") for j in jobs],
                                 [data.meta["test"]["oracle_logloss"]] * len(jobs),
                                 "test log-loss (limit: the true model)", [0.0] * len(jobs))}
    result["lr"] = {"rows": n, "bits": bits, "nonzeros": data.meta["train"]["nonzeros"],
                    "file_bytes": data.meta["train"]["bytes"],
                    "oracle_test_logloss": data.meta["test"]["oracle_logloss"],
                    "hyper": LR_HYPER, "runs": runs, "figures": figs}
    for key, fig in figs.items():
        if fig is not None:
            result["figures"][f"lr_{key}"] = fig


# ---------------------------------------------------------------------------------------------- word count


def _text(workdir: Path, quick: bool) -> tuple[Path | None, str]:
    """The word count input (a folder or a file) and where it came from; (None, why) if there is none."""
    tree, how = scale_data.linux_text(install=not quick)
    if tree is not None:
        return (tree / "lib" if quick else tree), how + (" (lib/ only)" if quick else "")
    if not quick:
        return None, how
    path = scale_data.synthetic_text(workdir / "scale-text" / "synthetic.txt", 4_000_000)
    return path, f"a made-up 4 MB text ({how})"


def _concat(files: list[Path], workdir: Path, quick: bool) -> Path:
    """The files concatenated, a newline after any that lacks one (the ``tr`` peer's input; cached)."""
    key = hashlib.sha1("\0".join(f"{f}:{f.stat().st_size}" for f in files).encode()).hexdigest()[:10]
    path = (workdir if quick else scale_data.cache_dir() / "text") / f"concat-{key}.txt"
    if path.exists():
        return path
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as out:
        for f in files:
            data = f.read_bytes()
            out.write(data)
            if data and not data.endswith(b"\n"):
                out.write(b"\n")
    os.replace(tmp, path)
    return path


def _read_counts(path: Path, uniq: bool = False) -> dict[str, int]:
    """``word<TAB>count`` lines, or ``uniq -c`` lines (``count word``, the empty word dropped)."""
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if uniq:
                c, _, w = line.lstrip().partition(" ")
            else:
                w, _, c = line.partition("\t")
            if w:
                counts[w] = counts.get(w, 0) + int(c)
    return counts


def _differences(a: dict, b: dict, shown: int = 5) -> dict:
    keys = set(a) | set(b)
    diff = sorted(k for k in keys if a.get(k) != b.get(k))
    return {"words_differing": len(diff), "examples": [[k, a.get(k), b.get(k)] for k in diff[:shown]]}


def _wordcount(workdir: Path, params: dict, quick: bool, direct: bool, result: dict) -> None:
    from parasol_hybrid.data import expand_inputs

    spec, how = _text(workdir, quick)
    if spec is None:
        result["wordcount"] = {"skipped": how}
        say(f"scale: word count skipped: {how}")
        return
    files = expand_inputs(str(spec))
    total = sum(f.stat().st_size for f in files)
    say(f"scale: word count on {spec}: {len(files):,} files, {total / 1e9:.2f} GB ({how})")
    concat = _concat(files, workdir, quick)
    listing = workdir / "scale-wc-files.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    timeout = 900.0 + 3.0 * total / 1e6
    runs: dict = {s: [] for s in ("job", "counter", "tr")}
    runs.update({f"{s}_others": [] for s in ("job", "counter", "tr")})
    outs = {"job": workdir / "scale-wc" / "topk.tsv", "counter": workdir / "scale-wc-counter.tsv",
            "tr": workdir / "scale-wc-tr.txt"}

    def job():
        cfg = {"nworker": 2, "nserver": 1, "input": str(spec), "output": str(outs["job"].parent), "topk": 0,
               "log_every": 1000, "seed": 0}
        m, wall = run_job(cfg, REPO / "algs" / "wordcount.py", workdir, "scale-wc", timeout=timeout, direct=direct,
                          retries=0)
        return {**{k: m.get(k) for k in ("seconds", "load_seconds", "total_words", "distinct_words",
                                         "peak_rss_bytes")}, "wall_seconds": round(wall, 2)}

    def counter():
        return _peer([sys.executable, "-c", _COUNTER, str(listing), str(outs["counter"])], "collections.Counter",
                     timeout)

    def tr():
        env = {**_env(), "LC_ALL": "C"}
        t0 = time.perf_counter()
        _peer(["bash", "-c", _TR, "tr", str(concat), str(outs["tr"])], "tr | sort | uniq -c", timeout, env=env)
        return {"seconds": time.perf_counter() - t0}

    sides = {"job": job, "counter": counter, "tr": tr}
    equal: dict = {}
    for r in range(params["repeats"]):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            try:
                value, others = _timed(params, sides[name])
            except BenchError as exc:
                result["errors"].append(f"word count {name}: {exc}")
                say(f"scale: word count {name} failed: {exc}")
                value, others = None, 0.0
            runs[name].append(value)
            runs[f"{name}_others"].append(others)
        say(f"scale: word count repeat {r + 1}: " + "  ".join(f"{s} {json.dumps(runs[s][-1])}" for s in sides))
        if r == 0 and all(runs[s][-1] is not None for s in sides):
            ours = _read_counts(outs["job"])
            equal = {"vs_counter": _differences(ours, _read_counts(outs["counter"])),
                     "vs_tr": _differences(ours, _read_counts(outs["tr"], uniq=True)),
                     "distinct_words": len(ours), "total_words": sum(ours.values())}
            equal["equal"] = not equal["vs_counter"]["words_differing"] and not equal["vs_tr"]["words_differing"]
    jobs = [j or {} for j in runs["job"]]
    secs = {s: [(v or {}).get("seconds") for v in runs[s]] for s in sides}
    others = {s: [max(a, b) for a, b in zip(runs["job_others"], runs[f"{s}_others"])] for s in ("counter", "tr")}
    faster = [min((x for x in (c, t) if x is not None), default=None) for c, t in zip(secs["counter"], secs["tr"])]
    figs = {"vs_counter": _fig(secs["job"], secs["counter"], "seconds", others["counter"]),
            "vs_tr": _fig(secs["job"], secs["tr"], "seconds", others["tr"]),
            "vs_faster_peer": _fig(secs["job"], faster, "seconds",
                                   [max(a, b) for a, b in zip(others["counter"], others["tr"])], goal="<= 1",
                                   met=lambda x: x <= 1.0)}
    result["wordcount"] = {"input": str(spec), "source": how, "files": len(files), "bytes": total,
                           "tr_input": str(concat), "runs": runs, "equal": equal, "figures": figs,
                           "job_wall_seconds": [j.get("wall_seconds") for j in jobs]}
    for key, fig in figs.items():
        if fig is not None:
            result["figures"][f"wordcount_{key}"] = fig
    if equal and not equal["equal"]:
        result["errors"].append(f"word count results differ: {json.dumps(equal)}")


# ---------------------------------------------------------------------------------------------- run / rows


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    """Run the benchmark; returns ``{"params": ..., "figures": {name: figure}, "mf": ..., ...}``."""
    params = _params(quick, repeats, quiet_wait)
    has_pandas, has_sklearn = _has("pandas"), _has("sklearn")
    result: dict = {"params": {k: (",".join(_size(n) for n in v) if k == "sizes" else
                                   ",".join(v) if k == "parts" else v) for k, v in params.items()},
                    "figures": {}, "mf": {}, "errors": []}
    result["params"].update(HYPER, nworker=2, nserver=1, cache=str(scale_data.cache_dir()))
    missing = [name for name, ok in (("pandas", has_pandas), ("scikit-learn", has_sklearn)) if not ok]
    if missing:
        msg = f"{', '.join(missing)} missing: its peer rows are skipped (pip install '.[bench]')"
        result["errors"].append(msg)
        say(f"scale: {msg}")
    if "mf" in params["parts"]:
        _mf(workdir, params, direct, has_pandas, result)
    if "lr" in params["parts"]:
        _lr(workdir, params, direct, has_sklearn, result)
    if "wordcount" in params["parts"]:
        _wordcount(workdir, params, quick, direct, result)
    if not result["figures"]:
        raise BenchError("no figure: " + "; ".join(result["errors"] or ["nothing ran"]))
    result["notes"] = {
        "data": "scale_data: Netflix-shaped ratings (duplicate pairs allowed), hashed libsvm set, Linux sources; "
                "fixed seeds, cached",
        "mf_load": "metrics.json load_seconds (slowest worker in load() + vocabulary()) vs pandas.read_csv "
                   "in a fresh process",
        "rss_bound": "2 x 16 B x ratings / 2 workers + (users + items) x (k + 1) x 4 B; the job's figure is the "
                     "largest peak RSS of any rank",
        "wordcount": "job seconds (load + count + merge, start-up excluded) vs Counter (reading included) and "
                     "tr | sort | uniq -c on the files concatenated beforehand",
        "repeats": "each side once per repeat, order reversed every other repeat; ratio = median over quiet "
                   "repeats (else all)"}
    return result


def _num(x, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def _row(label: str, fig: dict | None, fmt: str, scale: float = 1.0, missing: str = "n/a") -> list[str]:
    if fig is None:
        return [label, missing, "", "", "", "", ""]
    load = f"{median(fig['others_cores']):.2f} ({fig['quiet_repeats']}/{fig['repeats']})"
    return [label, _num(fig["api"] / scale, fmt), _num(fig["limit"] / scale, fmt), f"{fig['ratio']:.3f}",
            fig["goal"] or "(info)", verdict(fig, fig["met"]), load]


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, ours, peer / limit, ratio, goal, verdict, load of other processes."""
    out = []
    sizes = [s for s in result["params"]["sizes"].split(",") if s in result["mf"]]
    for label in sizes:
        figs = result["mf"][label].get("figures", {})
        out.append(_row(f"MF {label}: load s vs pandas.read_csv", figs.get("load_vs_pandas"), ".2f",
                        missing="n/a (no load_seconds or no pandas)"))
        out.append(_row(f"MF {label}: load s per 10M ratings vs {LOAD_PER_10M_GOAL:g} s", figs.get("load_per_10M"),
                        ".2f"))
        if label != sizes[0]:
            out.append(_row(f"MF {label}: training ratings/s vs {sizes[0]}", figs.get("rate_vs_smallest"), ",.0f"))
        else:
            fig = figs.get("rate_vs_smallest")
            out.append([f"MF {label}: training ratings/s", _num(fig and fig["api"], ",.0f"), "", "", "(info)", "", ""])
        out.append(_row(f"MF {label}: test RMSE vs Bayes predictor", figs.get("test_rmse"), ".4f"))
        out.append(_row(f"MF {label}: peak RSS MB vs issue-10 bound", figs.get("peak_rss"), ",.0f", scale=2**20))
    lr = result.get("lr")
    if lr:
        figs = lr["figures"]
        tag = f"LR {_size(lr['rows'])} x 2^{lr['bits']}"
        out.append(_row(f"{tag}: load s vs load_svmlight_file", figs.get("load_vs_sklearn"), ".2f"))
        fig = figs.get("seconds_per_round")
        out.append([f"{tag}: s per round ({lr['hyper']['method']})", _num(fig and fig["api"], ".3f"), "", "",
                    "(info)", "", ""])
        out.append(_row(f"{tag}: test log-loss vs true model", figs.get("test_logloss"), ".4f"))
    wc = result.get("wordcount")
    if wc and "skipped" in wc:
        out.append([f"word count: SKIPPED ({wc['skipped']})", "", "", "", "", "", ""])
    elif wc:
        figs = wc["figures"]
        tag = f"word count {wc['bytes'] / 1e9:.2f} GB"
        out.append(_row(f"{tag}: s vs collections.Counter", figs.get("vs_counter"), ".2f"))
        out.append(_row(f"{tag}: s vs tr|sort|uniq -c", figs.get("vs_tr"), ".2f"))
        out.append(_row(f"{tag}: s vs the faster peer", figs.get("vs_faster_peer"), ".2f"))
        eq = wc.get("equal") or {}
        out.append([f"{tag}: results equal (Counter, tr)", str(eq.get("equal", "n/a")),
                    f"{eq.get('distinct_words', 0):,} words", "", "equal", "met" if eq.get("equal") else "MISSED", ""])
    for err in result.get("errors", []):
        out.append([f"ERROR {err}", "", "", "", "", "", ""])
    return out
