"""The ``bigtables`` benchmark: a dense table of 2**27 float32 rows and a sparse table of 10**8 keys.

Starts one real job (2 workers, 1 server) running ``bigtables_job.py`` (see that file for the phases):
both tables are declared, the dense one is swept and updated, the sparse one filled with 10**8 distinct
keys in [2**31 - 5, ~2**40] and updated, both pulled, and the master checks every row against numpy.
Figures: seconds of each phase, keys/s of the pushes and pulls (both workers together), /dev/shm bytes
in use, peak RSS of the workers (``getrusage``; shared pages a worker touched count in its RSS) and of
the job's largest process, and the number of wrong values (must be 0).

It has no peer to compare with: it says whether tables this big work on the machine, and how long they
take. ``--quick`` runs it on 2**20 rows and 10**6 keys.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from .common import BENCH_DIR, run_job, say

__all__ = ["run", "rows"]

FULL = {"dense_rows": 2**27, "capacity": 10**8, "fill": 10**8, "dense_updates": 2_000_000,
        "sparse_updates": 2_000_000, "pulls": 1_000_000, "batch": 1 << 20}
QUICK = {"dense_rows": 2**20, "capacity": 10**6, "fill": 10**6, "dense_updates": 200_000,
         "sparse_updates": 200_000, "pulls": 100_000, "batch": 1 << 16}
WRONG = ("dense_rows_wrong", "dense_pulls_wrong", "sparse_keys_wrong", "sparse_rows_wrong", "sparse_pulls_wrong",
         "sparse_absent_nonzero")


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None,
        seed: int = 0) -> dict:
    """Run the job once (``repeats`` and ``quiet_wait`` do not apply); returns ``{"params", "figures"}``."""
    params = dict(QUICK if quick else FULL)
    out = workdir / "bigtables-out"
    config = {"nworker": 2, "nserver": 1, "output": str(out), "seed": seed, "_result": "bigtables.json",
              "peer_timeout": 600.0, **params}
    load = os.getloadavg()
    say(f"bigtables: one job, dense {params['dense_rows']:,} × 1 float32, sparse capacity {params['capacity']:,} "
        f"(fill {params['fill']:,}), load average {load[0]:.2f}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    data, wall = run_job(config, BENCH_DIR / "bigtables_job.py", workdir, "bigtables", timeout=1800.0,
                         direct=direct, retries=0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ph = data["phases"]
    W = data["nworker"]

    def rate(phase: str, key: str = "keys_per_worker", seconds: str = "seconds") -> float:
        return ph[phase][key] * W / ph[phase][seconds] if ph[phase][seconds] > 0 else 0.0

    check = ph.get("check", {})
    figures = {
        "declare_dense_seconds": ph["declare_dense"]["seconds"],
        "declare_sparse_seconds": ph["declare_sparse"]["seconds"],
        "dense_push_keys_per_second": rate("dense_push"),
        "sparse_fill_keys_per_second": rate("sparse_fill"),
        "sparse_update_keys_per_second": rate("sparse_update"),
        "dense_pull_keys_per_second": rate("pull", "dense_keys_per_worker", "dense_seconds"),
        "sparse_pull_keys_per_second": rate("pull", "sparse_keys_per_worker", "sparse_seconds"),
        "dense_push_seconds": ph["dense_push"]["seconds"],
        "sparse_fill_seconds": ph["sparse_fill"]["seconds"],
        "sparse_update_seconds": ph["sparse_update"]["seconds"],
        "check_seconds": check.get("seconds"),
        "sparse_pull_all_seconds": check.get("sparse_pull_all_seconds"),
        "shm_declared_bytes": ph["declare_dense"]["bytes"] + ph["declare_sparse"]["bytes"],
        "shm_after_declare_bytes": ph["declare_sparse"]["shm_after"] - data["shm_at_start"],
        "shm_peak_bytes": max(p["shm_after"] for p in ph.values()) - data["shm_at_start"],
        "worker_peak_rss_bytes": data["peak_rss_bytes"],
        "largest_process_rss_bytes": after * 1024 if after > before else None,
        "wrong_values": sum(int(check.get(k, 0)) for k in WRONG) if check else None,
        "keys_at_or_above_2_31": check.get("keys_at_or_above_2_31"),
        "max_key": check.get("max_key"),
        "job_seconds": wall,
    }
    params.update(nworker=W, nserver=data["nserver"], slots=ph["declare_sparse"]["slots"],
                  load_average_at_start=round(load[0], 2), job_seconds=round(wall, 1))
    return {"params": params, "figures": figures, "phases": ph, "check": check}


def _gib(b) -> str:
    return "?" if b is None else f"{b / 2**30:.2f} GiB"


def rows(result: dict) -> list[list[str]]:
    """Table rows: figure, value, '', '', goal, verdict, ''."""
    f, p = result["figures"], result["params"]
    wrong = f["wrong_values"]
    out = [
        [f"declare dense {p['dense_rows']:,} × 1 float32, s", f"{f['declare_dense_seconds']:.2f}", "", "", "", "", ""],
        [f"declare sparse capacity {p['capacity']:,} ({p['slots']:,} slots), s",
         f"{f['declare_sparse_seconds']:.2f}", "", "", "", "", ""],
        ["dense pushes, keys/s (sweep + random)", f"{f['dense_push_keys_per_second']:,.0f}", "", "", "", "", ""],
        [f"sparse inserts of {p['fill']:,} new keys, keys/s", f"{f['sparse_fill_keys_per_second']:,.0f}",
         "", "", "", "", ""],
        ["sparse pushes to present keys, keys/s", f"{f['sparse_update_keys_per_second']:,.0f}", "", "", "", "", ""],
        ["dense pulls, keys/s", f"{f['dense_pull_keys_per_second']:,.0f}", "", "", "", "", ""],
        ["sparse pulls, keys/s", f"{f['sparse_pull_keys_per_second']:,.0f}", "", "", "", "", ""],
        ["/dev/shm in use after declaring (declared)", f"{_gib(f['shm_after_declare_bytes'])} "
         f"({_gib(f['shm_declared_bytes'])})", "", "", "", "", ""],
        ["/dev/shm in use, peak", _gib(f["shm_peak_bytes"]), "", "", "", "", ""],
        ["peak RSS per worker", " / ".join(_gib(b) for b in f["worker_peak_rss_bytes"]), "", "", "", "", ""],
        ["largest process of the job, RSS", _gib(f["largest_process_rss_bytes"]), "", "", "", "", ""],
        ["wrong values against numpy", "?" if wrong is None else str(wrong), "", "", "0",
         "" if wrong is None else ("met" if wrong == 0 else "MISSED"), ""],
        ["job wall time, s", f"{f['job_seconds']:.1f}", "", "", "", "", ""],
    ]
    return out
