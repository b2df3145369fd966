"""Job entry of the ``pushpull`` benchmark: API pull/push against the bare kernel, in one worker.

Run by ``scripts/bench pushpull`` as a real job (1 worker, 1 server)::

    python -m parasol_hybrid --config CFG python benchmarks/pushpull_job.py

The worker declares a ``rows × dim`` float32 table (rule ``add``) and, in the
same process, a plain numpy array of the same shape (page-aligned, as the
table's shared segments are). It then times, in
alternation, ``batches`` calls of

* API:   ``self.pull(t, keys, out=buf)`` / ``self.push(t, keys, deltas)``
* limit: ``kernels.gather((plain,), rows, keys, buf)`` /
  ``kernels.scatter_add((plain,), rows, keys, deltas)``

for every key order in ``orders`` (``unsorted``: each batch as drawn,
``sorted``: each batch sorted). Each batch is the next of a pool of ``pool``
batches of ``batch`` random keys (drawn with replacement) made before timing.
One sample of a side is ``chunks`` runs of batches alternating with the other
side's runs (so both see the same background load); there are ``repeats``
samples. Then the same with 1-key batches, which shows the API's fixed cost
per call. Before timing, both sides touch every row once (pull and push of all
rows), so the page faults of a first touch are not timed.

Writes ``<output>/pushpull.json``: batches/s samples per (op, order, side).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpuload import CpuMeter, wait_quiet  # noqa: E402  (benchmarks/ is not a package the job can rely on)

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.tables.kernels import gather, scatter_add

ORDERS = ("unsorted", "sorted")


def aligned_empty(shape, dtype, align: int = 4096) -> np.ndarray:
    """An uninitialised C array starting on an ``align``-byte boundary, like a shared segment.

    (``np.empty`` of a large array starts 16 bytes into a page, so 128-byte
    rows would straddle cache lines and make the limit slower than it is.)
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def _positive(v):
    return None if v > 0 else "must be positive"


def _non_negative(v):
    return None if v >= 0 else "must be >= 0"


def _orders(v):
    bad = [x for x in v if x not in ORDERS]
    return f"has unknown orders {bad} (known: {list(ORDERS)})" if bad or not v else None


class PushPull(paralg):
    """Times API pull/push of random rows against the same kernels on a plain array."""

    options = {
        "rows": Option(int, 1_000_000, "table rows", check=_positive),
        "dim": Option(int, 32, "table columns (float32)", check=_positive),
        "batch": Option(int, 1000, "keys per pull/push", check=_positive),
        "pool": Option(int, 256, "pregenerated key batches, used in turn", check=_positive),
        "repeats": Option(int, 7, "timings per side", check=_positive),
        "sample_seconds": Option(float, 0.2, "target length of one timing", check=_positive),
        "quiet_wait": Option(float, 0.0, "before each sample, wait up to this long for other processes "
                                         "to leave the cores alone", check=_non_negative),
        "chunks": Option(int, 10, "alternating runs per side in one timing", check=_positive),
        "orders": Option(list, list(ORDERS), "key orders to time", check=_orders),
    }

    def solve(self) -> None:
        cfg = self.cfg
        if self.nworker != 1:
            raise RuntimeError(f"pushpull_job needs exactly 1 worker, got nworker={self.nworker}")
        rows, dim, batch = cfg.rows, cfg.dim, cfg.batch
        t = self.table("bench", (rows, dim), "float32", "zeros", rule="add")
        plain = aligned_empty((rows, dim), np.float32)
        plain[...] = 0.0  # first touch here, not while timing
        limit = (plain,)

        rng = np.random.default_rng(cfg.seed)
        pools = {"unsorted": rng.integers(0, rows, size=(cfg.pool, batch), dtype=np.int64)}
        pools["sorted"] = np.sort(pools["unsorted"], axis=1)
        deltas = (rng.standard_normal((batch, dim)) * 1e-3).astype(np.float32)
        buf = np.empty((batch, dim), dtype=np.float32)
        self._touch(t, limit, rows, batch, dim)

        # both sides go through a closure like these, so only the API's own cost differs
        def api_pull(keys):
            self.pull(t, keys, out=buf)

        def api_push(keys):
            self.push(t, keys, deltas)

        def lim_pull(keys):
            gather(limit, rows, keys, buf)

        def lim_push(keys):
            scatter_add(limit, rows, keys, deltas)

        buf1, deltas1 = buf[:1], deltas[:1]

        def api_pull1(keys):
            self.pull(t, keys, out=buf1)

        def api_push1(keys):
            self.push(t, keys, deltas1)

        def lim_pull1(keys):
            gather(limit, rows, keys, buf1)

        def lim_push1(keys):
            scatter_add(limit, rows, keys, deltas1)

        results = {}
        for order in cfg.orders:
            pool = pools[order]
            for op, api, lim in (("pull", api_pull, lim_pull), ("push", api_push, lim_push)):
                chunk = self._calibrate(lim, pool, cfg.sample_seconds / cfg.chunks)
                results[f"{op}_{order}"] = self._samples(f"{op} {order}", api, lim, pool, chunk)
        one = pools["unsorted"][:, :1].copy()
        one_key = {op: self._samples(f"{op} 1-key", api, lim, one, 2000)
                   for op, api, lim in (("pull", api_pull1, lim_pull1), ("push", api_push1, lim_push1))}
        self.write_json("pushpull.json", {
            "rows": rows, "dim": dim, "batch": batch, "pool": cfg.pool, "repeats": cfg.repeats,
            "chunks": cfg.chunks, "nshards": t.nshards, "results": results, "one_key": one_key,
        })

    def _samples(self, label: str, api, lim, pool, chunk: int) -> dict:
        """``repeats`` paired samples of ``api`` and ``lim``, with the load of other processes during each."""
        cfg = self.cfg
        res = {"api": [], "limit": [], "others": [], "batches_per_sample": chunk * cfg.chunks}
        for r in range(cfg.repeats):
            wait_quiet(cfg.quiet_wait)
            with CpuMeter() as meter:
                a, b = self._paired(api, lim, pool, chunk, cfg.chunks)
            res["api"].append(a)
            res["limit"].append(b)
            res["others"].append(round(meter.others + meter.steal, 3))
            print(f"{label} repeat {r + 1}/{cfg.repeats}: api {a:,.0f}/s  limit {b:,.0f}/s  "
                  f"others {res['others'][-1]:.2f} cores", file=sys.stderr, flush=True)
        return res

    def _touch(self, t, limit, rows, batch, dim) -> None:
        """Pull and push (zeros) every row once on both sides: compiles the kernels, maps every page."""
        zeros = np.zeros((batch, dim), dtype=np.float32)
        out = np.empty((batch, dim), dtype=np.float32)
        for start in range(0, rows, batch):
            keys = np.arange(start, min(start + batch, rows), dtype=np.int64)
            n = len(keys)
            self.pull(t, keys, out=out[:n])
            self.push(t, keys, zeros[:n])
            gather(limit, rows, keys, out[:n])
            scatter_add(limit, rows, keys, zeros[:n])

    @staticmethod
    def _elapsed(fn, pool, n: int) -> float:
        """Seconds taken by ``n`` calls of ``fn`` on the pool's batches in turn."""
        npool = len(pool)
        t0 = time.perf_counter()
        for b in range(n):
            fn(pool[b % npool])
        return time.perf_counter() - t0

    @classmethod
    def _paired(cls, api, lim, pool, chunk: int, chunks: int) -> tuple[float, float]:
        """Batches/s of ``api`` and ``lim``, timed in ``chunks`` alternating runs of ``chunk`` batches.

        Alternating in short runs makes both sides see the same background load."""
        spent = [0.0, 0.0]
        for c in range(chunks):
            for side in ((0, 1) if c % 2 == 0 else (1, 0)):
                spent[side] += cls._elapsed((api, lim)[side], pool, chunk)
        return chunk * chunks / spent[0], chunk * chunks / spent[1]

    @classmethod
    def _calibrate(cls, fn, pool, seconds: float) -> int:
        """How many batches of ``fn`` take about ``seconds`` (at least 20)."""
        per_batch = min(cls._elapsed(fn, pool, 50), cls._elapsed(fn, pool, 50)) / 50
        return max(20, int(seconds / per_batch))


if __name__ == "__main__":
    run(PushPull)
