"""The ``run_parasol`` command line: parse it, check the job's config, print (``--dry-run``) or run the job.

The config is validated before anything starts (with the algorithm's own keys
when the entry script defines a ``paralg`` subclass); an error exits with 2.
A job that fails ends with one line naming the rank whose failure started the
end; a job stopped by a signal exits with 128 + that signal.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile

from .. import config
from ..errors import JobError, ParasolError
from ..tables import segment
from .cleanup import cleanup_command, sweep_dead_jobs, sweep_job
from .command import build_argv, entry_script, find_mpiexec, rank_env
from .entry import algorithm_options
from .output import PROG, emit
from .supervisor import Job

__all__ = ["parser", "main"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``run_parasol``."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Start a parasol_hybrid job: nworker + nserver ranks under mpiexec.",
        usage=f"{PROG} --config CFG [options] python ENTRY.py [args...]\n       {PROG} --cleanup")
    p.add_argument("--config", help="the job's JSON config file")
    p.add_argument("--cleanup", action="store_true",
                   help="remove shared-memory segments of jobs whose creator process is dead, then exit")
    p.add_argument("--dry-run", action="store_true", help="print the mpiexec command instead of running it")
    p.add_argument("--mpiexec", metavar="PATH", help="the mpiexec to use (default: the one next to python)")
    p.add_argument("--grace", type=float, default=5.0, metavar="SECONDS",
                   help="after Ctrl-C/SIGTERM, how long ranks may take to stop before SIGKILL (default 5)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (no progress lines either)")
    p.add_argument("--log-json", metavar="FILE",
                   help="append one JSON object per round (worker 0's progress) to FILE")
    p.add_argument("--resume", metavar="DIR",
                   help="resume from the last complete checkpoint in DIR (sets PARASOL_RESUME for the ranks)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command each rank runs")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``run_parasol`` command; returns its exit code."""
    p = parser()
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.cleanup:
        if command or args.config:
            p.error("--cleanup takes no config and no command")
        return cleanup_command()
    if not args.config:
        p.error("--config is required")
    if not command:
        p.error("no command given (e.g. python ENTRY.py)")
    if args.grace < 0:
        p.error(f"--grace must be at least 0, got {args.grace:g}")

    def say(msg: str) -> None:
        if not args.quiet:
            emit(f"{PROG}: {msg}")

    if not _export_flags(args):
        return 2
    try:
        entry = entry_script(command)
        cfg = config.load_config(args.config, algorithm_options(entry) if entry else None)
        run_argv = build_argv(cfg, command, find_mpiexec(args.mpiexec))
    except ParasolError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        _print_dry_run(run_argv)
        return 0
    return _run(cfg, run_argv, args.grace, say)


def _export_flags(args: argparse.Namespace) -> bool:
    """Pass the flags the ranks read on through our environment; False (after saying why) if one is wrong."""
    if args.log_json:
        os.environ["PARASOL_LOG_JSON"] = os.path.abspath(args.log_json)
    if args.quiet:
        os.environ["PARASOL_QUIET"] = "1"
    if sys.stdout.isatty():
        os.environ["PARASOL_TTY"] = "1"
    if args.resume:
        if not os.path.isdir(args.resume):
            print(f"{PROG}: error: --resume {args.resume}: no such folder", file=sys.stderr)
            return False
        os.environ["PARASOL_RESUME"] = os.path.abspath(args.resume)
    return True


def _print_dry_run(run_argv: list[str]) -> None:
    """``--dry-run``: the mpiexec command, then one line per PARASOL_* environment variable that is set."""
    print(shlex.join(run_argv))
    for name, value, meaning in config.environment_overrides():
        print(f"environment: {name}={value}  ({meaning})")


def _run(cfg: config.Config, run_argv: list[str], grace: float, say) -> int:
    """Run the job; sweep what it leaves, however it ends; returns the exit code."""
    sweep_dead_jobs(say)
    job_id = segment.new_job_id()
    job_dir = tempfile.mkdtemp(prefix=f"parasol-job-{job_id}-")
    env = rank_env(cfg.path, job_id, job_dir)
    say(f"job {job_id}: {shlex.join(run_argv)}")
    job = Job(run_argv, env, job_id, grace, say)
    try:
        rc = job.run()
        why = job.describe_failure() if rc != 0 and job.signum is None else None
        if why is not None:
            emit(f"{PROG}: job {job_id} failed (exit {rc}): {why}")
        return rc
    except JobError as exc:
        emit(f"{PROG}: error: {exc}")
        return 2
    finally:
        sweep_job(job_id, job_dir, say)
