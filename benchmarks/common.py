"""What every benchmark shares: interleaved timing, medians, and running a real job.

The machine is noisy (±30 % from run to run), so a figure is never one
timing: each side of a comparison is timed in alternation within one run
(:func:`interleave`) and the median of the repeats is reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

__all__ = ["REPO", "BENCH_DIR", "BenchError", "say", "median", "interleave", "run_job", "figure"]


class BenchError(RuntimeError):
    """A benchmark could not produce its figures (a job failed, output missing)."""


def say(message: str) -> None:
    """Progress on stderr (stdout is kept for the table or the JSON)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def median(values) -> float:
    return float(statistics.median(values))


def interleave(sides: dict[str, Callable[[], float]], repeats: int, label: str = "") -> dict[str, list[float]]:
    """Call each side once per repeat, in turn (order reversed every other repeat).

    Every side returns one sample (a rate); the result maps side → samples.
    """
    names = list(sides)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(float(sides[name]()))
        if label:
            say(f"{label} repeat {r + 1}/{repeats}: "
                + "  ".join(f"{n} {samples[n][-1]:,.4g}" for n in names))
    return samples


def figure(api: list[float], limit: list[float], unit: str, goal: str | None = None) -> dict:
    """The JSON record of one comparison of paired samples (``api[r]`` and ``limit[r]`` timed together).

    ``api`` and ``limit`` are the medians of the samples; ``ratio`` is the
    median of the per-repeat ratios ``api[r] / limit[r]``.
    """
    ratios = [a / b for a, b in zip(api, limit) if b]
    return {"unit": unit, "api": median(api), "limit": median(limit),
            "ratio": median(ratios) if ratios else 0.0, "goal": goal,
            "api_samples": api, "limit_samples": limit, "ratios": ratios}


def run_job(config: dict, entry: Path, workdir: Path, name: str, timeout: float = 900.0,
            direct: bool = False) -> tuple[dict, float]:
    """Run ``entry`` as a job with ``config`` and return (``<output>/<result file>`` as a dict, wall seconds).

    The job is started with the launcher (``python -m parasol_hybrid``), or
    with the venv's ``mpiexec`` when ``direct``. ``config["output"]`` must be
    set; the result is read from ``<output>/<config['_result']>``
    (default ``metrics.json``).
    """
    result_file = config.pop("_result", "metrics.json")
    cfg_path = workdir / f"{name}.json"
    cfg_path.write_text(json.dumps(config, indent=2) + "\n")
    out_file = Path(config["output"]) / result_file
    if out_file.exists():
        out_file.unlink()
    nranks = int(config["nworker"]) + int(config["nserver"])
    if direct:
        mpiexec = str(Path(sys.executable).parent / "mpiexec")
        argv = [mpiexec, "-n", str(nranks), sys.executable, str(entry), "--config", str(cfg_path)]
    else:
        argv = [sys.executable, "-m", "parasol_hybrid", "--quiet", "--config", str(cfg_path),
                "python", str(entry)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    log = workdir / f"{name}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            proc = subprocess.run(argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=timeout, start_new_session=not direct)
        except subprocess.TimeoutExpired:
            raise BenchError(f"job {name} timed out after {timeout:g} s; log: {log}") from None
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out_file.exists():
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise BenchError(f"job {name} failed (exit {proc.returncode}, {out_file.name} "
                         f"{'written' if out_file.exists() else 'missing'}):\n{tail}")
    return json.loads(out_file.read_text()), wall
