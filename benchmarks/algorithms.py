"""The ``algorithms`` benchmark: every algorithm against its reference, on the same data, side by side.

Each ``benchmarks/alg_<name>.py`` runs its job (2 workers, 1 server, through
the launcher) and the reference (scikit-learn, scipy or numpy) on the same
data and returns rows of ``ours_seconds``, ``ref_seconds``, ``ours_quality``,
``ref_quality``, ``metric`` and ``reference``. Job seconds are the job's own
``seconds`` (its training), not the start-up of MPI and Python.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .common import BenchError, say

__all__ = ["run", "rows", "MODULES"]

MODULES = ("als", "mf_batch", "svd", "lda", "lasso", "lr", "pagerank", "kmeans")


def run(workdir: Path, quick: bool, repeats: int | None, direct: bool, quiet_wait: float | None = None) -> dict:
    results, errors = [], []
    for name in MODULES:
        say(f"algorithms: {name}")
        try:
            mod = importlib.import_module(f"benchmarks.alg_{name}")
            results += mod.bench(quick=quick)
        except Exception as exc:  # noqa: BLE001 - one algorithm failing must not hide the others
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            say(f"algorithms: {name} failed: {exc}")
    if not results:
        raise BenchError("; ".join(errors) or "no algorithm ran")
    return {"params": {"modules": ",".join(MODULES), "quick": quick}, "rows": results, "errors": errors}


def _q(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def rows(result: dict) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        ratio = r["ref_seconds"] / r["ours_seconds"] if r.get("ours_seconds") else 0.0
        out.append([f"{r['bench']}: {r.get('metric', '')} ours {_q(r.get('ours_quality'))} vs "
                    f"{_q(r.get('ref_quality'))} ({r.get('reference', '')})",
                    f"{r['ours_seconds']:.3f} s", f"{r['ref_seconds']:.3f} s", f"{ratio:.2f}", "", "", "-"])
    for err in result.get("errors", []):
        out.append([f"ERROR {err}", "", "", "", "", "", ""])
    return out
