"""What every benchmark shares: interleaved timing, medians, and running a real job.

The machine is noisy (±30 % from run to run), so a figure is never one
timing: each side of a comparison is timed in alternation within one run
(:func:`interleave`) and the median of the repeats is reported.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .cpuload import QUIET_CORES, CpuMeter, wait_quiet

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

__all__ = ["REPO", "BENCH_DIR", "QUIET_CORES", "BenchError", "say", "median", "wait_quiet", "interleave",
           "run_job", "figure", "verdict"]


class BenchError(RuntimeError):
    """A benchmark could not produce its figures (a job failed, output missing)."""


def say(message: str) -> None:
    """Progress on stderr (stdout is kept for the table or the JSON)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def median(values) -> float:
    return float(statistics.median(values))


def interleave(sides: dict[str, Callable[[], float]], repeats: int, label: str = "", quiet_wait: float = 0.0
               ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Call each side once per repeat, in turn (order reversed every other repeat).

    Every side returns one sample (a rate). Before each call, wait up to
    ``quiet_wait`` s for the machine to be quiet (:func:`wait_quiet`). Returns
    (side → samples, side → cores used by other processes while each sample
    was taken).
    """
    names = list(sides)
    samples: dict[str, list[float]] = {n: [] for n in names}
    others: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            if quiet_wait > 0:
                wait_quiet(max_wait=quiet_wait)
            with CpuMeter() as meter:
                samples[name].append(float(sides[name]()))
            others[name].append(round(meter.others + meter.steal, 3))
        if label:
            say(f"{label} repeat {r + 1}/{repeats}: "
                + "  ".join(f"{n} {samples[n][-1]:,.4g}/s (others {others[n][-1]:.2f} cores)" for n in names))
    return samples, others


def figure(api: list[float], limit: list[float], unit: str, goal: str | None = None,
           others: list[float] | None = None, quiet: float = QUIET_CORES) -> dict:
    """The JSON record of one comparison of paired samples (``api[r]`` and ``limit[r]`` timed together).

    ``others[r]`` is how many cores other processes used during repeat ``r``.
    ``ratio`` is the median of the per-repeat ratios ``api[r] / limit[r]``
    over the quiet repeats (others <= ``quiet``) if there are any, else over
    all (``quiet_repeats`` is then 0 and the figure says little); ``api`` and
    ``limit`` are the medians of the samples of the same repeats.
    """
    others = list(others) if others is not None else [0.0] * len(api)
    reps = [r for r in range(len(api)) if limit[r] > 0]
    calm = [r for r in reps if others[r] <= quiet]
    use = calm or reps
    return {"unit": unit, "goal": goal,
            "api": median([api[r] for r in use]), "limit": median([limit[r] for r in use]),
            "ratio": median([api[r] / limit[r] for r in use]) if use else 0.0,
            "ratio_all_repeats": median([api[r] / limit[r] for r in reps]) if reps else 0.0,
            "quiet_repeats": len(calm), "repeats": len(api), "quiet_threshold_cores": quiet,
            "api_samples": api, "limit_samples": limit, "others_cores": others}


def verdict(fig: dict, met: bool | None) -> str:
    """``met`` / ``MISSED`` (``?`` added when no repeat was quiet), or empty when there is no goal."""
    if met is None:
        return ""
    return ("met" if met else "MISSED") + ("" if fig["quiet_repeats"] else "?")


def run_job(config: dict, entry: Path, workdir: Path, name: str, timeout: float = 900.0,
            direct: bool = False, retries: int = 1) -> tuple[dict, float]:
    """Run ``entry`` as a job with ``config`` and return (``<output>/<result file>`` as a dict, wall seconds).

    The job is started with the launcher (``python -m parasol_hybrid``), or
    with the venv's ``mpiexec`` when ``direct``. ``config["output"]`` must be
    set; the result is read from ``<output>/<config['_result']>``
    (default ``metrics.json``). A failed job is run again ``retries`` times.
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
    for attempt in range(1 + retries):
        t0 = time.perf_counter()
        with open(log, "w") as f:
            code = _run(argv, env, f, timeout)
        wall = time.perf_counter() - t0
        if code == 0 and out_file.exists():
            return json.loads(out_file.read_text()), wall
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        problem = (f"job {name} failed (exit {code}, {out_file.name} "
                   f"{'written' if out_file.exists() else 'missing'}); log {log}:\n{tail}")
        if attempt < retries:
            say(problem + "\nretrying once (the checkout may have been mid-edit)")
            time.sleep(2.0)
    raise BenchError(problem)


def _run(argv: list[str], env: dict, log, timeout: float) -> int | str:
    """Run ``argv`` (in its own session) to the end; on timeout or Ctrl-C stop it (SIGINT, then SIGKILL)."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return f"timeout after {timeout:g} s"
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGINT ``proc`` (the launcher or mpiexec then ends the job's ranks); SIGKILL its session after ``grace``."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
