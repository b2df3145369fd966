"""``scripts/bench [--json] [--quick] [names...]``: run benchmarks, print a table (or JSON).

Every figure is a ratio of two rates measured side by side in this one run
(interleaved repeats, medians), so it can be compared across runs on a noisy
machine even when the absolute rates cannot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from . import algorithms, crossnode, mf_bench, mf_nodes, peers, pushpull, shutdown, staleness
from . import scale
from . import bigtables
from .common import QUIET_CORES, BenchError, say

__all__ = ["main", "BENCHMARKS"]

BENCHMARKS = {"pushpull": pushpull, "mf": mf_bench, "crossnode": crossnode, "mfnodes": mf_nodes,
              "algorithms": algorithms, "staleness": staleness, "peers": peers, "shutdown": shutdown}
BENCHMARKS["scale"] = scale  # big inputs (MF 1M-100M ratings, LR 10M rows, word count 1.3 GB)
BENCHMARKS["bigtables"] = bigtables  # a 2**27-row dense table and a 10**8-key sparse table
HEADER = ["benchmark", "figure", "api / job", "limit", "ratio", "goal", "", "others (quiet)"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/bench", description="Benchmarks of parasol_hybrid against the bare numba limit.",
        epilog=f"benchmarks: {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of the table")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke test)")
    p.add_argument("--repeats", type=int, default=None, help="override the number of interleaved repeats")
    p.add_argument("--quiet-wait", type=float, default=None, metavar="SECONDS",
                   help="before each sample, wait up to this long for other processes to leave the cores "
                        "alone (default: 3 for pushpull, 20 for mf, 0 with --quick)")
    p.add_argument("--direct", action="store_true",
                   help="start jobs with the venv's mpiexec instead of the launcher (python -m parasol_hybrid)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs, data)")
    return p


def _meta(args, names: list[str], argv: list[str]) -> dict:
    import numba
    import numpy

    return {"benchmarks": names, "command": shlex.join(["scripts/bench", *argv]), "quick": args.quick, "repeats_override": args.repeats,
            "launcher": "mpiexec" if args.direct else "python -m parasol_hybrid",
            "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
            "numba": numba.__version__, "host": platform.node(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "statistic": "median of interleaved repeats"}


def format_table(report: dict) -> str:
    """The human-readable table of every figure in ``report``."""
    body = []
    for name in report["meta"]["benchmarks"]:
        result = report.get(name)
        if result is None:
            continue
        for row in BENCHMARKS[name].rows(result):
            body.append([name, *row])
    widths = [max(len(str(r[c])) for r in [HEADER, *body]) for c in range(len(HEADER))]
    right = {2, 3, 4, 7}

    def line(r):
        return "  ".join(str(v).rjust(w) if c in right else str(v).ljust(w)
                         for c, (v, w) in enumerate(zip(r, widths))).rstrip()

    meta = report["meta"]
    lines = [f"parasol_hybrid bench: {meta['command']}  ({meta['cpus']} cpus, {meta['date']})",
             line(HEADER), line(["-" * w for w in widths])]
    lines += [line(r) for r in body]
    lines.append(textwrap.fill(
        f"ratio: median over the quiet repeats of the per-repeat ratio (all repeats if none was quiet). "
        f"others (quiet): median cores used by other processes while sampling (repeats with at most "
        f"{QUIET_CORES} such cores / all). '?': no quiet repeat, so the verdict says little.", 110))
    for name in meta["benchmarks"]:
        result = report.get(name)
        if result:
            params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
            lines.append(textwrap.fill(f"{name}: {params}", 110, subsequent_indent="    "))
    for err in report.get("errors", []):
        lines.append(f"ERROR {err}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        _parser().error(f"unknown benchmark(s) {unknown} (known: {list(BENCHMARKS)})")
    if args.repeats is not None and args.repeats < 1:
        _parser().error(f"--repeats must be at least 1, got {args.repeats}")
    if args.quiet_wait is not None and args.quiet_wait < 0:
        _parser().error(f"--quiet-wait must be at least 0, got {args.quiet_wait:g}")
    report: dict = {"meta": _meta(args, names, argv)}
    workdir = Path(tempfile.mkdtemp(prefix="parasol-bench-"))
    ok = True
    try:
        for name in names:
            t0 = time.perf_counter()
            try:
                report[name] = BENCHMARKS[name].run(workdir, args.quick, args.repeats, args.direct,
                                                    quiet_wait=args.quiet_wait)
            except BenchError as exc:
                ok = False
                report.setdefault("errors", []).append(f"{name}: {exc}")
                say(f"{name} failed: {exc}")
                continue
            say(f"{name} done in {time.perf_counter() - t0:.0f} s")
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_table(report))
    sys.stdout.flush()
    return 0 if ok else 1
