"""Job entry of the ``bigtables`` benchmark: a dense table of 2**27 float32 rows and a sparse table of 10**8 keys.

Run by ``scripts/bench bigtables`` as a real job (2 workers, 1 server)::

    python -m parasol_hybrid --config CFG python benchmarks/bigtables_job.py

Phases, each timed on every worker between two ``sync()`` (so a phase's seconds are the slowest worker's):

* ``declare_dense``: ``table("hashed", (dense_rows, 1), "float32")`` (zeros);
* ``declare_sparse``: ``sparse_table("sp", capacity, dim=1, dtype="int64")``;
* ``dense_push``: worker ``w`` pushes every row ``k`` with ``k % nworker == w`` once (a sweep of the whole
  table, in batches of ``batch``), then ``dense_updates`` random rows of its own (repeats, small integer
  deltas: float32 sums stay exact);
* ``sparse_fill``: worker ``w`` inserts its share of ``fill`` distinct keys ``KEY0 + i * STRIDE``
  (``KEY0 = 2**31 - 5``, ``STRIDE = 10007``: the keys span [2**31 - 5, ~2**40]), row ``i % 7 + 1``;
* ``sparse_update``: ``sparse_updates`` pushes of +1 to keys ``KEY0 + i * STRIDE`` with ``i`` drawn at random
  from ``[0, fill)`` (repeats);
* ``pull``: ``pulls`` random keys of each table (and, sparse, as many keys never pushed, which read 0);
* ``check`` (the master): ``pull_all`` of both tables against numpy (``np.bincount`` of every worker's
  regenerated pushes): every dense row and every sparse key and row.

Writes ``<output>/bigtables.json``: the phases' seconds, keys pushed and pulled, /dev/shm bytes in use
(``statvfs``, before and after each phase) and every worker's peak RSS (``getrusage``).
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from parasol_hybrid import Option, paralg, run

KEY0 = 2**31 - 5
STRIDE = 10007


def _positive(v):
    return None if v > 0 else "must be positive"


def shm_used() -> int:
    """Bytes in use in /dev/shm (every process's, this job's included)."""
    st = os.statvfs("/dev/shm")
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def peak_rss() -> int:
    """This process's peak resident set, bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def dense_draws(seed: int, worker: int, nworker: int, rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random rows of ``worker``'s residue class and their float32 integer deltas in [-3, 3]."""
    rng = np.random.default_rng([seed, 1, worker])
    mine = (rows - worker + nworker - 1) // nworker
    keys = rng.integers(0, mine, n, dtype=np.int64) * nworker + worker
    return keys, rng.integers(-3, 4, n).astype(np.float32)


def sparse_draws(seed: int, worker: int, fill: int, n: int) -> np.ndarray:
    """``n`` key indices ``i`` in ``[0, fill)`` that ``worker`` adds 1 to."""
    return np.random.default_rng([seed, 2, worker]).integers(0, fill, n, dtype=np.int64)


def fill_range(worker: int, nworker: int, fill: int) -> range:
    return range(worker * fill // nworker, (worker + 1) * fill // nworker)


class BigTablesJob(paralg):
    options = {
        "dense_rows": Option(int, 2**27, "rows of the dense float32 table", check=_positive),
        "capacity": Option(int, 10**8, "capacity of the sparse table (keys)", check=_positive),
        "fill": Option(int, 10**8, "distinct keys inserted into the sparse table", check=_positive),
        "dense_updates": Option(int, 2_000_000, "random dense pushes per worker after the sweep", check=_positive),
        "sparse_updates": Option(int, 2_000_000, "random sparse pushes per worker after the fill", check=_positive),
        "pulls": Option(int, 1_000_000, "random keys pulled per worker and table", check=_positive),
        "batch": Option(int, 1 << 20, "keys per push or pull call", check=_positive),
        "check": Option(bool, True, "check both tables against numpy (the master)"),
    }

    def _phase(self, name: str, fn) -> None:
        self.sync()
        before = shm_used()
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        self.sync()
        every = self.allgather(seconds)
        self.phases[name] = {"seconds": max(every), "worker_seconds": every, "shm_before": before,
                             "shm_after": shm_used(), **(out or {})}
        self.log(f"bigtables: {name}: {max(every):.2f} s, /dev/shm {shm_used() / 2**30:.2f} GiB in use")

    def solve(self) -> None:
        cfg, w, W = self.cfg, self.worker_id, self.nworker
        B = cfg.batch
        self.phases: dict[str, dict] = {}
        start_shm = shm_used()
        tables = {}

        def declare_dense():
            tables["dense"] = self.table("hashed", (cfg.dense_rows, 1), "float32")
            return {"bytes": cfg.dense_rows * 4}

        def declare_sparse():
            tables["sparse"] = self.sparse_table("sp", capacity=cfg.capacity, dim=1, dtype="int64")
            sp = tables["sparse"]
            return {"slots": sp.values.rows, "bytes": sp.values.rows * 16}

        self._phase("declare_dense", declare_dense)
        self._phase("declare_sparse", declare_sparse)
        dense, sp = tables["dense"], tables["sparse"]

        def dense_push():
            n = 0
            mine = np.arange(w, cfg.dense_rows, W, dtype=np.int64)
            ones = np.ones((B, 1), dtype=np.float32)
            for lo in range(0, len(mine), B):
                keys = mine[lo:lo + B]
                dense.push(keys, ones[:len(keys)])
                n += len(keys)
            del mine
            keys, deltas = dense_draws(cfg.seed, w, W, cfg.dense_rows, cfg.dense_updates)
            for lo in range(0, len(keys), B):
                dense.push(keys[lo:lo + B], deltas[lo:lo + B].reshape(-1, 1))
                n += len(keys[lo:lo + B])
            return {"keys_per_worker": n}

        def sparse_fill():
            r = fill_range(w, W, cfg.fill)
            n = 0
            for lo in range(r.start, r.stop, B):
                i = np.arange(lo, min(lo + B, r.stop), dtype=np.int64)
                sp.push(KEY0 + i * STRIDE, (i % 7 + 1).reshape(-1, 1))
                n += len(i)
            return {"keys_per_worker": n}

        def sparse_update():
            i = sparse_draws(cfg.seed, w, cfg.fill, cfg.sparse_updates)
            ones = np.ones((B, 1), dtype=np.int64)
            for lo in range(0, len(i), B):
                part = i[lo:lo + B]
                sp.push(KEY0 + part * STRIDE, ones[:len(part)])
            return {"keys_per_worker": int(len(i))}

        bad = {}

        def pull():
            rng = np.random.default_rng([cfg.seed, 3, w])
            dk = rng.integers(0, cfg.dense_rows, cfg.pulls, dtype=np.int64)
            si = rng.integers(0, cfg.fill, cfg.pulls, dtype=np.int64)
            sk = KEY0 + si * STRIDE
            absent = sk[: cfg.pulls // 2] + 1  # between two keys: never pushed
            t0 = time.perf_counter()
            dv = np.concatenate([dense.pull(dk[lo:lo + B]) for lo in range(0, len(dk), B)])
            t1 = time.perf_counter()
            sv = np.concatenate([sp.pull(sk[lo:lo + B]) for lo in range(0, len(sk), B)])
            av = np.concatenate([sp.pull(absent[lo:lo + B]) for lo in range(0, len(absent), B)])
            t2 = time.perf_counter()
            bad["absent_nonzero"] = int(np.count_nonzero(av))
            self._pulled = (dk, dv[:, 0], si, sv[:, 0])
            return {"dense_keys_per_worker": len(dk), "dense_seconds": t1 - t0,
                    "sparse_keys_per_worker": len(sk) + len(absent), "sparse_seconds": t2 - t1}

        self._phase("dense_push", dense_push)
        self._phase("sparse_fill", sparse_fill)
        self._phase("sparse_update", sparse_update)
        self._phase("pull", pull)

        def check():
            if not self.is_master:
                return {}
            res = {}
            t0 = time.perf_counter()
            got = dense.pull_all()[:, 0]
            want = np.ones(cfg.dense_rows, dtype=np.float64)
            for v in range(W):
                keys, deltas = dense_draws(cfg.seed, v, W, cfg.dense_rows, cfg.dense_updates)
                want += np.bincount(keys, weights=deltas, minlength=cfg.dense_rows)
                del keys, deltas
            res["dense_rows_wrong"] = int(np.count_nonzero(got != want))
            dk, dv, si, sv = self._pulled
            res["dense_pulls_wrong"] = int(np.count_nonzero(dv != want[dk]))
            del got, want
            res["dense_seconds"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            keys, values = sp.pull_all()
            res["sparse_pull_all_seconds"] = time.perf_counter() - t0
            res["sparse_keys"] = int(len(keys))
            i = np.arange(cfg.fill, dtype=np.int64)
            res["sparse_keys_wrong"] = (int(len(keys) != cfg.fill)
                                        or int(np.count_nonzero(keys != KEY0 + i * STRIDE)))
            want = i % 7 + 1
            del i
            for v in range(W):
                want += np.bincount(sparse_draws(cfg.seed, v, cfg.fill, cfg.sparse_updates), minlength=cfg.fill)
            res["sparse_rows_wrong"] = int(len(keys) != cfg.fill) or int(np.count_nonzero(values[:, 0] != want))
            res["sparse_pulls_wrong"] = int(np.count_nonzero(sv != want[si]))
            res["sparse_absent_nonzero"] = bad["absent_nonzero"]
            res["keys_at_or_above_2_31"] = int(np.count_nonzero(keys >= 2**31))
            res["max_key"] = int(keys.max()) if len(keys) else -1
            res["sparse_seconds"] = time.perf_counter() - t0 - res["sparse_pull_all_seconds"]
            return res

        if cfg.check:
            self._phase("check", check)
        absent = self.allgather(bad["absent_nonzero"])
        rss = self.allgather(peak_rss())
        self.write_json("bigtables.json", {
            "phases": self.phases, "peak_rss_bytes": rss, "absent_nonzero": absent, "nworker": W,
            "nserver": self.nserver, "shm_at_start": start_shm, "shm_at_end": shm_used(),
            "dense_rows": cfg.dense_rows, "capacity": cfg.capacity, "fill": cfg.fill, "batch": B,
            "dense_updates": cfg.dense_updates, "sparse_updates": cfg.sparse_updates, "pulls": cfg.pulls})
        self.sync()


if __name__ == "__main__":
    run(BigTablesJob)
