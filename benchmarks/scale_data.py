"""Big inputs of the ``scale`` benchmark, generated fast with a fixed seed and cached (never committed).

Files live under :func:`cache_dir` (``$PARASOL_BENCH_CACHE``, else
``$XDG_CACHE_HOME/parasol_hybrid/bench``, else ``~/.cache/parasol_hybrid/bench``)
and are reused when a file with the same parameters (and generator
version) is already there: each data file has a ``.json`` sidecar, written
last, with its parameters and figures of the data (sizes, the oracle's test
error).

- :func:`netflix`: Netflix-shaped ratings, ``user item rating`` lines
  (spaces, integer ids 1..480,189 and 1..17,770 as Netflix's), ratings 1..5
  from ``clip(round(mu + bu + bi + p.q (rank 8) + N(0, 0.7^2)), 1, 5)``.
  Users' activity is log-normal (sigma 1.25: mean / median ~2.2, Netflix's
  209 / 96); items' popularity a power law ``(rank + 500)^-2`` over
  shuffled ranks (top item ~0.2 % of the ratings, median item ~0.1 x the
  mean, as Netflix's). Pairs are drawn independently, so a ``(user, item)``
  pair **may repeat** (as a re-rating would); the test file is drawn the
  same way (1 % of the ratings, at least 2,000, at most 100,000), so a test
  pair may also be in the training file. The sidecar of the test file holds
  the RMSE of the Bayes predictor ``E[rating | model]`` on it.
- :func:`hashed_lr`: a hashed sparse set in libsvm format
  (``label idx:1 idx:1 ...``, labels 0/1, zero-based indices, sorted and
  distinct within a row), ``10 + Poisson(10)`` draws a row (distinct: ~20
  non-zeros), feature ranks from a shifted power law ``(rank + 100)^-1.05``
  over ``2^bits`` features, mapped to indices by an odd multiplier
  (a bijection, so popular features are spread over the index space).
  Labels are ``Bernoulli(sigmoid(b + x.w))`` for a known sparse ``w``: the
  2^16 most popular features have ``N(0, 0.43^2)`` weights, all others 0.
  The first row holds feature ``2^bits - 1`` so a reader that sizes the
  model by the largest index sees every feature. The test sidecar holds
  the true model's log-loss on the test rows.
- :func:`linux_text`: the Linux kernel sources from Debian's
  ``linux-source`` package (``apt-get install linux-source``), extracted
  into the cache (1.3 GB of text in 78 k files for 6.1).

Generation is vectorised numpy in blocks (10 M ratings, 500 k libsvm rows),
the lines written by numba kernels into a byte buffer (no per-line Python).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from .common import say

__all__ = ["NETFLIX", "GENERATOR_VERSION", "DataFiles", "cache_dir", "netflix", "hashed_lr", "linux_text",
           "synthetic_text", "format_ratings", "format_libsvm", "netflix_block", "lr_block"]

GENERATOR_VERSION = 1
NETFLIX = {"users": 480_189, "items": 17_770}
RATING_BLOCK = 10_000_000
LR_BLOCK = 500_000
LR_MAX_DRAWS = 48  # per row: 10 + Poisson(10) draws, at most this many
LR_TRUE_NONZEROS = 2**16


@dataclass
class DataFiles:
    """A generated training file, its test file, and what their sidecars say."""

    train: Path
    test: Path
    meta: dict


def cache_dir() -> Path:
    """Where generated and extracted data are kept between runs (created if needed)."""
    root = os.environ.get("PARASOL_BENCH_CACHE")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "parasol_hybrid" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(stem: str, params: dict, write) -> tuple[Path, dict]:
    """``<cache>/<stem>-<digest>.txt`` for ``params``: reused if its sidecar exists, else made by
    ``write(open binary file) -> dict`` (written to a temporary name, then renamed; the sidecar last)."""
    key = json.dumps({"version": GENERATOR_VERSION, **params}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    path = cache_dir() / f"{stem}-{digest}.txt"
    side = path.with_suffix(".json")
    if path.exists() and side.exists():
        return path, json.loads(side.read_text())
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    t0 = time.perf_counter()
    try:
        with open(tmp, "wb") as f:
            info = write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {"params": json.loads(key), "bytes": path.stat().st_size,
            "generate_seconds": round(time.perf_counter() - t0, 2), **info}
    side.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    say(f"scale: wrote {path} ({meta['bytes'] / 1e6:,.0f} MB in {meta['generate_seconds']:.1f} s)")
    return path, meta


# ------------------------------------------------------------------------------------------ formatting


@njit(cache=True, nogil=True, inline="always")
def _put_uint(out, pos, x):
    """Write the decimal digits of ``x >= 0`` at ``out[pos:]``; returns the position after them."""
    if x == 0:
        out[pos] = 48
        return pos + 1
    n = 0
    y = x
    while y > 0:
        n += 1
        y //= 10
    end = pos + n
    while x > 0:
        end -= 1
        out[end] = 48 + x % 10
        x //= 10
    return pos + n


@njit(cache=True, nogil=True)
def format_ratings(users, items, ratings, out):
    """Write ``user item rating\\n`` lines (non-negative integers) into ``out``; returns the bytes used."""
    pos = 0
    for t in range(users.shape[0]):
        pos = _put_uint(out, pos, users[t])
        out[pos] = 32
        pos = _put_uint(out, pos + 1, items[t])
        out[pos] = 32
        pos = _put_uint(out, pos + 1, ratings[t])
        out[pos] = 10
        pos += 1
    return pos


@njit(cache=True, nogil=True)
def format_libsvm(labels, idx, counts, out):
    """Write ``label i:1 i:1 ...\\n`` lines into ``out``; row ``r`` has the distinct values of the sorted
    ``idx[r, :counts[r]]``. Returns the bytes used."""
    pos = 0
    for r in range(idx.shape[0]):
        pos = _put_uint(out, pos, labels[r])
        prev = -1
        for j in range(counts[r]):
            v = idx[r, j]
            if v == prev:
                continue
            prev = v
            out[pos] = 32
            pos = _put_uint(out, pos + 1, v)
            out[pos] = 58
            out[pos + 1] = 49
            pos += 2
        out[pos] = 10
        pos += 1
    return pos


def _write_bytes(f, buf: np.ndarray, n: int) -> None:
    f.write(memoryview(buf)[:n])


# ------------------------------------------------------------------------------------------ ratings


@njit(cache=True, nogil=True)
def alias_table(weights):
    """Walker's alias table (Vose's construction) of the distribution ``weights``: (prob, alias)."""
    n = weights.shape[0]
    scaled = weights * (n / weights.sum())
    prob = np.ones(n)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = 0
    nl = 0
    for j in range(n):
        if scaled[j] < 1.0:
            small[ns] = j
            ns += 1
        else:
            large[nl] = j
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        g = large[nl - 1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        if scaled[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    return prob, alias


def alias_draw(prob: np.ndarray, alias: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws (int32) from the distribution of an :func:`alias_table`."""
    j = rng.integers(0, len(prob), n, dtype=np.int32)
    return np.where(rng.random(n) < prob[j], j, alias[j])


@njit(cache=True, nogil=True)
def _scores(u, i, mu, bu, bi, P, Q):
    """``mu + bu[u] + bi[i] + P[u].Q[i]`` for every draw."""
    out = np.empty(u.shape[0])
    k = P.shape[1]
    for t in range(u.shape[0]):
        a = u[t]
        b = i[t]
        s = mu + bu[a] + bi[b]
        for j in range(k):
            s += P[a, j] * Q[b, j]
        out[t] = s
    return out


class _RatingModel:
    """The fixed low-rank model every Netflix-shaped file is drawn from (same for every size)."""

    def __init__(self, users: int, items: int, seed: int, rank: int = 8):
        rng = np.random.default_rng([seed, 0])
        self.user_prob, self.user_alias = alias_table(rng.lognormal(0.0, 1.25, users))
        self.item_prob, self.item_alias = alias_table(rng.permutation((np.arange(items) + 1.0 + 500.0) ** -2.0))
        self.mu = 3.6
        self.bu = rng.normal(0.0, 0.4, users)
        self.bi = rng.normal(0.0, 0.5, items)
        scale = (0.6**2 / rank) ** 0.25  # p.q has std ~0.6
        self.P = rng.normal(0.0, scale, (users, rank))
        self.Q = rng.normal(0.0, scale, (items, rank))
        self.noise = 0.7


def netflix_block(model: _RatingModel, n: int, rng: np.random.Generator):
    """``n`` draws: (0-based users int32, items int32, ratings int8, noise-free scores float64)."""
    u = alias_draw(model.user_prob, model.user_alias, n, rng)
    i = alias_draw(model.item_prob, model.item_alias, n, rng)
    clean = _scores(u, i, model.mu, model.bu, model.bi, model.P, model.Q)
    r = np.clip(np.rint(clean + rng.normal(0.0, model.noise, n)), 1, 5).astype(np.int8)
    return u, i, r, clean


def _bayes_prediction(clean: np.ndarray, noise: float) -> np.ndarray:
    """E[clip(round(clean + N(0, noise^2)), 1, 5)]: the best prediction in squared error."""
    from scipy.special import ndtr

    cut = [ndtr((k + 0.5 - clean) / noise) for k in range(1, 5)]  # P(rating <= k)
    prob = [cut[0]] + [cut[k] - cut[k - 1] for k in range(1, 4)] + [1.0 - cut[3]]
    return sum((k + 1) * p for k, p in enumerate(prob))


def _write_ratings(model, n: int, seed_key: list[int], with_oracle: bool):
    def write(f) -> dict:
        buf = np.empty(min(n, RATING_BLOCK) * 16, dtype=np.uint8)  # 6 + 1 + 5 + 1 + 1 + 1 digits at most
        sse = 0.0
        for b, lo in enumerate(range(0, n, RATING_BLOCK)):
            m = min(RATING_BLOCK, n - lo)
            u, i, r, clean = netflix_block(model, m, np.random.default_rng([*seed_key, b]))
            if with_oracle:
                sse += float(np.sum((r - _bayes_prediction(clean, model.noise)) ** 2))
            _write_bytes(f, buf, format_ratings(u + 1, i + 1, r, buf))
        return {"ratings": n, **({"oracle_rmse": (sse / max(n, 1)) ** 0.5} if with_oracle else {})}
    return write


def netflix(n: int, seed: int = 0) -> DataFiles:
    """Netflix-shaped ``n`` training ratings and their test ratings (see the module docstring)."""
    model_params = {"users": NETFLIX["users"], "items": NETFLIX["items"], "rank": 8, "seed": seed}
    n_test = int(min(max(n // 100, 2000), 100_000))
    model = None

    def lazy_model():
        nonlocal model
        if model is None:
            model = _RatingModel(NETFLIX["users"], NETFLIX["items"], seed)
        return model

    def write_train(f):
        return _write_ratings(lazy_model(), n, [seed, 1, n], False)(f)

    def write_test(f):
        return _write_ratings(lazy_model(), n_test, [seed, 2, n], True)(f)

    train, tmeta = _cached(f"netflix-{_size(n)}-train", {**model_params, "kind": "train", "ratings": n}, write_train)
    test, smeta = _cached(f"netflix-{_size(n)}-test", {**model_params, "kind": "test", "ratings": n_test,
                                                       "for": n}, write_test)
    return DataFiles(train, test, {"train": tmeta, "test": smeta, "duplicates": "allowed (independent draws)",
                                   **model_params})


def _size(n: int) -> str:
    """``1M``, ``10M``, ``200k``, ``1234``."""
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


# ------------------------------------------------------------------------------------------ LR


class _LRModel:
    """Feature popularity, the rank -> index map and the known sparse weights (by rank)."""

    def __init__(self, bits: int, seed: int):
        self.bits = bits
        self.R = 2**bits
        self.a, self.off = 1.05, 100.0
        self.mult = 0x9E3779B1 & (self.R - 1) | 1  # odd: rank -> rank * mult mod 2^bits is a bijection
        rng = np.random.default_rng([seed, 10])
        self.w_by_rank = rng.normal(0.0, 0.43, min(LR_TRUE_NONZEROS, self.R))
        self.bias = -0.3

    def weights(self) -> np.ndarray:
        """The true weights by feature index (2^bits float64)."""
        w = np.zeros(self.R)
        k = len(self.w_by_rank)
        w[(np.arange(k, dtype=np.int64) * self.mult) & (self.R - 1)] = self.w_by_rank
        return w


@njit(cache=True, nogil=True)
def _lr_rows(uniform, counts, a, off, R, mult, w_by_rank, bias, first_rank, idx):
    """Per row ``r``: ``counts[r]`` feature ranks by the inverse CDF of ``(rank + off)^-a`` on [0, R) from
    ``uniform[r]``, mapped to indices ``rank * mult mod R`` and sorted into ``idx[r, :counts[r]]`` (row 0's
    first draw is ``first_rank`` instead when that is >= 0). Returns (margins ``bias + sum of w_by_rank`` over the row's
    distinct ranks, distinct indices in all)."""
    c0 = off ** (1.0 - a)
    cR = (R + off) ** (1.0 - a)
    inv = 1.0 / (1.0 - a)
    K = w_by_rank.shape[0]
    margins = np.empty(uniform.shape[0])
    ranks = np.empty(uniform.shape[1], np.int64)
    nnz = 0
    for r in range(uniform.shape[0]):
        n = counts[r]
        for j in range(n):
            rank = int((c0 - uniform[r, j] * (c0 - cR)) ** inv - off)
            rank = min(max(rank, 0), R - 1)
            if r == 0 and j == 0 and first_rank >= 0:
                rank = first_rank
            idx[r, j] = (rank * mult) & (R - 1)
            ranks[j] = rank
        row = idx[r, :n]
        order = np.argsort(row)
        m = bias
        prev = -1
        for j in range(n):
            v = row[order[j]]
            if v == prev:
                continue
            prev = v
            nnz += 1
            rank = ranks[order[j]]
            if 0 <= rank < K:
                m += w_by_rank[rank]
        margins[r] = m
        row[:] = np.sort(row)
    return margins, nnz


def lr_block(model: _LRModel, n: int, rng: np.random.Generator, first: bool):
    """``n`` rows: (labels int8, indices int64 (n, LR_MAX_DRAWS) sorted in each row's first ``counts``,
    counts, true probabilities, distinct non-zeros in all)."""
    counts = np.minimum(10 + rng.poisson(10.0, n), LR_MAX_DRAWS).astype(np.int64)
    uniform = rng.random((n, LR_MAX_DRAWS))
    idx = np.empty((n, LR_MAX_DRAWS), dtype=np.int64)
    last = ((model.R - 1) * pow(model.mult, -1, model.R)) % model.R  # the rank of index R - 1
    margin, nnz = _lr_rows(uniform, counts, model.a, model.off, model.R, model.mult, model.w_by_rank,
                           model.bias, last if first else -1, idx)
    p = 1.0 / (1.0 + np.exp(-margin))
    labels = (rng.random(n) < p).astype(np.int8)
    return labels, idx, counts, p, nnz


def _write_lr(model: _LRModel, n: int, seed_key: list[int], with_oracle: bool):
    def write(f) -> dict:
        buf = np.empty(min(n, LR_BLOCK) * (2 + LR_MAX_DRAWS * (len(str(model.R)) + 3)), dtype=np.uint8)
        loss, nnz = 0.0, 0
        for b, lo in enumerate(range(0, n, LR_BLOCK)):
            m = min(LR_BLOCK, n - lo)
            labels, idx, counts, p, kept = lr_block(model, m, np.random.default_rng([*seed_key, b]), b == 0)
            if with_oracle:
                q = np.clip(np.where(labels == 1, p, 1.0 - p), 1e-15, 1.0)
                loss -= float(np.log(q).sum())
            nnz += kept
            _write_bytes(f, buf, format_libsvm(labels, idx, counts, buf))
        return {"rows": n, "nonzeros": nnz, **({"oracle_logloss": loss / max(n, 1)} if with_oracle else {})}
    return write


def hashed_lr(rows: int, bits: int = 24, seed: int = 0) -> DataFiles:
    """A hashed sparse libsvm set of ``rows`` training rows over ``2^bits`` features, and its test rows."""
    params = {"bits": bits, "seed": seed, "true_nonzeros": min(LR_TRUE_NONZEROS, 2**bits)}
    n_test = int(min(max(rows // 100, 2000), 100_000))
    model = None

    def lazy_model():
        nonlocal model
        if model is None:
            model = _LRModel(bits, seed)
        return model

    train, tmeta = _cached(f"lr-{bits}b-{_size(rows)}-train", {**params, "kind": "train", "rows": rows},
                           lambda f: _write_lr(lazy_model(), rows, [seed, 11, rows], False)(f))
    test, smeta = _cached(f"lr-{bits}b-{_size(rows)}-test", {**params, "kind": "test", "rows": n_test, "for": rows},
                          lambda f: _write_lr(lazy_model(), n_test, [seed, 12, rows], True)(f))
    return DataFiles(train, test, {"train": tmeta, "test": smeta, **params})


# ------------------------------------------------------------------------------------------ text


def linux_text(install: bool = True, src: Path = Path("/usr/src")) -> tuple[Path | None, str]:
    """The extracted Linux sources (path, how it was found) or (None, why not).

    Looks for ``<cache>/text/linux-source-*`` (extracted before), else for
    ``<src>/linux-source-*.tar.*`` (the package puts it in ``/usr/src``);
    with ``install`` and neither there, runs ``apt-get update`` and ``apt-get install -y linux-source``. The
    tarball is extracted to a temporary folder, then renamed.
    """
    root = cache_dir() / "text"
    done = sorted(root.glob("linux-source-*.done"))
    if done:
        tree = done[-1].with_suffix("")
        if tree.is_dir():
            return tree, f"extracted before in {tree}"
    tarballs = sorted(src.glob("linux-source-*.tar.*"))
    if not tarballs:
        if not install:
            return None, f"no {src}/linux-source-*.tar.* (not installing)"
        if shutil.which("apt-get") is None:
            return None, "no apt-get on this machine to install Debian's linux-source"
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "linux-source"]):
            say(f"scale: running {' '.join(argv)} (for the word count text)")
            try:
                done_ = subprocess.run(argv, capture_output=True, text=True, timeout=1800,
                                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"{' '.join(argv)} failed: {exc}"
            if done_.returncode != 0:
                tail = (done_.stderr or done_.stdout).strip().splitlines()[-3:]
                return None, f"{' '.join(argv)} failed (exit {done_.returncode}): {' / '.join(tail)}"
        tarballs = sorted(src.glob("linux-source-*.tar.*"))
        if not tarballs:
            return None, f"apt-get install linux-source left no {src}/linux-source-*.tar.*"
    tarball = tarballs[-1]
    name = tarball.name.split(".tar")[0]
    tmp = root / f"tmp-extract-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    say(f"scale: extracting {tarball} into {root} (a few minutes)")
    t0 = time.perf_counter()
    try:
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="data")
        inner = tmp / name if (tmp / name).is_dir() else tmp
        tree = root / name
        shutil.rmtree(tree, ignore_errors=True)
        os.replace(inner, tree)
    except (OSError, tarfile.TarError) as exc:
        return None, f"extracting {tarball} failed: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (root / f"{name}.done").write_text(f"{tarball}\n")
    return tree, f"extracted {tarball} in {time.perf_counter() - t0:.0f} s"


def synthetic_text(path: Path, n_bytes: int, seed: int = 0) -> Path:
    """A text of about ``n_bytes`` of Zipf-distributed made-up words with punctuation (for --quick)."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", dtype=np.uint8)
    vocab = ["".join(chr(c) for c in rng.choice(letters, rng.integers(1, 10))) for _ in range(5000)]
    n_words = n_bytes // 7
    ranks = np.minimum(rng.zipf(1.3, n_words) - 1, len(vocab) - 1)
    seps = np.array([" ", " ", " ", ", ", ".\n", "(", ") ", "\t", " = ", "\n"])[rng.integers(0, 10, n_words)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{vocab[r]}{s}" for r, s in zip(ranks.tolist(), seps.tolist())))
    return path
