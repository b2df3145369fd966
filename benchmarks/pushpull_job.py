"""Job entry of the ``pushpull`` benchmark: API pull/push against the bare kernel, in one worker.

Run by ``scripts/bench pushpull`` as a real job (1 worker, 1 server)::

    python -m parasol_hybrid --config CFG python benchmarks/pushpull_job.py

The worker declares a ``rows × dim`` float32 table (rule ``add``) and, in the
same process, a plain numpy array of the same shape (page-aligned, as the
table's shared segments are). numpy advises the kernel to back large arrays
with transparent huge pages, which /dev/shm segments do not get here, so a
second plain array in 4 KiB pages (``limit_4k``) shows how much of the gap is
page size rather than the API's code. It then times, in
alternation, ``batches`` calls of

* API:   ``self.pull(t, keys, out=buf)`` / ``self.push(t, keys, deltas)``
* limit: ``kernels.gather((plain,), rows, keys, buf)`` /
  ``bare_scatter_add((plain,), rows, keys, deltas)`` (and the same on ``limit_4k``): the
  scatter-add loop with the key check only, so the push figures include the cost of the
  API's refusal of NaN/±Inf deltas (checked in ``kernels.scatter_add``'s first pass)

for every key order in ``orders`` (``unsorted``: each batch as drawn,
``sorted``: each batch sorted). Each batch is the next of a pool of ``pool``
batches of ``batch`` random keys (drawn with replacement) made before timing.
One sample of a side is ``chunks`` runs of batches taking turns with the
other sides' runs (so all see the same background load); there are
``repeats`` samples. Then the same with 1-key batches, which shows the API's fixed cost
per call. Before timing, both sides touch every row once (pull and push of all
rows), so the page faults of a first touch are not timed.

Writes ``<output>/pushpull.json``: batches/s samples per (op, order, side).
"""

from __future__ import annotations

import mmap
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpuload import CpuMeter, wait_quiet  # noqa: E402  (benchmarks/ is not a package the job can rely on)

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.tables.kernels import check_keys, gather

ORDERS = ("unsorted", "sorted")


@njit(cache=True, nogil=True)
def bare_scatter_add(shards, rows, keys, deltas):
    """``kernels.scatter_add`` without the value check: keys checked, then ``row keys[i] += deltas[i]``."""
    bad = check_keys(keys, rows)
    if bad >= 0:
        return bad
    S = len(shards)
    d = deltas.shape[1]
    for i in range(keys.shape[0]):
        k = keys[i]
        sh = shards[k % S]
        r = k // S
        for j in range(d):
            sh[r, j] += deltas[i, j]
    return -1
SIDES = ("api", "limit", "limit_4k")


def aligned_empty(shape, dtype, align: int = 4096) -> np.ndarray:
    """``np.empty`` (so numpy's usual huge-page advice applies), but starting on an ``align``-byte boundary.

    (``np.empty`` of a large array starts 16 bytes into a page, so 128-byte
    rows would straddle cache lines and make the limit slower than it is.)
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def small_page_empty(shape, dtype) -> np.ndarray:
    """A page-aligned private array that may not use transparent huge pages (4 KiB pages, like /dev/shm)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    mm = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        mm.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(mm, dtype=dtype).reshape(shape)


def anon_huge_kib() -> int:
    """This process's anonymous memory in transparent huge pages (KiB), from /proc/self/smaps_rollup."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


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
        huge_before = anon_huge_kib()
        plain = aligned_empty((rows, dim), np.float32)
        plain[...] = 0.0  # first touch here, not while timing
        huge_kib = anon_huge_kib() - huge_before
        limit = (plain,)
        small = small_page_empty((rows, dim), np.float32)
        small[...] = 0.0
        limit4k = (small,)

        rng = np.random.default_rng(cfg.seed)
        pools = {"unsorted": rng.integers(0, rows, size=(cfg.pool, batch), dtype=np.int64)}
        pools["sorted"] = np.sort(pools["unsorted"], axis=1)
        deltas = (rng.standard_normal((batch, dim)) * 1e-3).astype(np.float32)
        buf = np.empty((batch, dim), dtype=np.float32)
        self._touch(t, (limit, limit4k), rows, batch, dim)

        # every side goes through a closure like these, so only the API's own cost differs
        def api_pull(keys):
            self.pull(t, keys, out=buf)

        def api_push(keys):
            self.push(t, keys, deltas)

        def lim_pull(keys):
            gather(limit, rows, keys, buf)

        def lim_push(keys):
            bare_scatter_add(limit, rows, keys, deltas)

        def lim4k_pull(keys):
            gather(limit4k, rows, keys, buf)

        def lim4k_push(keys):
            bare_scatter_add(limit4k, rows, keys, deltas)

        buf1, deltas1 = buf[:1], deltas[:1]

        def api_pull1(keys):
            self.pull(t, keys, out=buf1)

        def api_push1(keys):
            self.push(t, keys, deltas1)

        def lim_pull1(keys):
            gather(limit, rows, keys, buf1)

        def lim_push1(keys):
            bare_scatter_add(limit, rows, keys, deltas1)

        results = {}
        for order in cfg.orders:
            pool = pools[order]
            for op, sides in (("pull", (api_pull, lim_pull, lim4k_pull)), ("push", (api_push, lim_push, lim4k_push))):
                chunk = self._calibrate(sides[1], pool, cfg.sample_seconds / cfg.chunks)
                results[f"{op}_{order}"] = self._samples(f"{op} {order}", sides, pool, chunk)
        one = pools["unsorted"][:, :1].copy()
        one_key = {op: self._samples(f"{op} 1-key", sides, one, 2000)
                   for op, sides in (("pull", (api_pull1, lim_pull1)), ("push", (api_push1, lim_push1)))}
        self.write_json("pushpull.json", {
            "rows": rows, "dim": dim, "batch": batch, "pool": cfg.pool, "repeats": cfg.repeats,
            "chunks": cfg.chunks, "nshards": t.nshards, "results": results, "one_key": one_key,
            "limit_huge_pages_kib": huge_kib,
        })

    def _samples(self, label: str, sides, pool, chunk: int) -> dict:
        """``repeats`` samples of every side (api, limit[, limit_4k]) timed together, and the others' load."""
        cfg = self.cfg
        names = SIDES[:len(sides)]
        res = {**{n: [] for n in names}, "others": [], "batches_per_sample": chunk * cfg.chunks}
        for r in range(cfg.repeats):
            wait_quiet(cfg.quiet_wait)
            with CpuMeter() as meter:
                rates = self._together(sides, pool, chunk, cfg.chunks)
            for n, rate in zip(names, rates):
                res[n].append(rate)
            res["others"].append(round(meter.others + meter.steal, 3))
            print(f"{label} repeat {r + 1}/{cfg.repeats}: "
                  + "  ".join(f"{n} {x:,.0f}/s" for n, x in zip(names, rates))
                  + f"  others {res['others'][-1]:.2f} cores", file=sys.stderr, flush=True)
        return res

    def _touch(self, t, limits, rows, batch, dim) -> None:
        """Pull and push (zeros) every row once on every side: compiles the kernels, maps every page."""
        zeros = np.zeros((batch, dim), dtype=np.float32)
        out = np.empty((batch, dim), dtype=np.float32)
        for start in range(0, rows, batch):
            keys = np.arange(start, min(start + batch, rows), dtype=np.int64)
            n = len(keys)
            self.pull(t, keys, out=out[:n])
            self.push(t, keys, zeros[:n])
            for limit in limits:
                gather(limit, rows, keys, out[:n])
                bare_scatter_add(limit, rows, keys, zeros[:n])

    @staticmethod
    def _elapsed(fn, pool, n: int) -> float:
        """Seconds taken by ``n`` calls of ``fn`` on the pool's batches in turn."""
        npool = len(pool)
        t0 = time.perf_counter()
        for b in range(n):
            fn(pool[b % npool])
        return time.perf_counter() - t0

    @classmethod
    def _together(cls, sides, pool, chunk: int, chunks: int) -> list[float]:
        """Batches/s of each side, timed in ``chunks`` rounds of ``chunk`` batches per side, in turn.

        Taking turns in short runs makes every side see the same background
        load; the order is reversed every other round."""
        spent = [0.0] * len(sides)
        order = list(range(len(sides)))
        for c in range(chunks):
            for s in (order if c % 2 == 0 else order[::-1]):
                spent[s] += cls._elapsed(sides[s], pool, chunk)
        return [chunk * chunks / t for t in spent]

    @classmethod
    def _calibrate(cls, fn, pool, seconds: float) -> int:
        """How many batches of ``fn`` take about ``seconds`` (at least 20)."""
        per_batch = min(cls._elapsed(fn, pool, 50), cls._elapsed(fn, pool, 50)) / 50
        return max(20, int(seconds / per_batch))


if __name__ == "__main__":
    run(PushPull)
