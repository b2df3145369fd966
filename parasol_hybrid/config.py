"""The job config: a JSON object of typed, validated keys.

Usage::

    cfg = load_config("mf.json", options=MF.options)
    cfg.nworker, cfg["rounds"], cfg.get("lr", 0.1), cfg.staleness  # -1 means ASP

Every key is declared by an :class:`Option` (its type, default and rule).
:data:`CORE_OPTIONS` are the keys every job has; an algorithm adds its own.
Unknown keys, wrong types and bad values are :class:`ConfigError`\\ s whose
message names the file and the key. Keys starting with ``_`` and the keys
``comment`` and ``description`` are ignored, so a config can carry comments.

Every environment variable the library reads is declared in :data:`ENVIRONMENT` and read through
:func:`environment_value`; the ones that override a config key (``PARASOL_SIMULATE_NODES``,
``PARASOL_RESUME``, ``PARASOL_INTERFACE``) are applied here, by :func:`load_config`.
:func:`environment_overrides` lists the ones that are set (``run_parasol --dry-run`` prints them).
"""

from __future__ import annotations

import copy
import difflib
import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ._layout import assign_roles, simulated_nodes
from ._straggler import check_straggler, straggler_worker_problem
from .errors import ConfigError

__all__ = ["REQUIRED", "Option", "CORE_OPTIONS", "Config", "load_config", "at_least", "positive", "non_negative",
           "str_or_str_list", "ENVIRONMENT", "environment_value", "environment_overrides"]

ENV_SIMULATE_NODES = "PARASOL_SIMULATE_NODES"
ENV_RESUME = "PARASOL_RESUME"
ENV_INTERFACE = "PARASOL_INTERFACE"
ENV_LOG_JSON = "PARASOL_LOG_JSON"
ENV_QUIET = "PARASOL_QUIET"
ENV_TTY = "PARASOL_TTY"
ENV_TRACE_LOAD = "PARASOL_TRACE_LOAD"
ENV_JOB_ID = "PARASOL_JOB_ID"
ENV_JOB_DIR = "PARASOL_JOB_DIR"
ENV_CONFIG = "PARASOL_CONFIG"
ENV_LAUNCHER_PID = "PARASOL_LAUNCHER_PID"
ENV_LAUNCHER_ID = "PARASOL_LAUNCHER_ID"

#: Every environment variable the library reads: name -> meaning. An empty value counts as not set.
#: "internal:" marks what ``run_parasol`` hands its ranks (set by the launcher, not by users).
ENVIRONMENT: dict[str, str] = {
    ENV_SIMULATE_NODES: "overrides the config key 'simulate_nodes'",
    ENV_RESUME: "overrides the config key 'resume' (run_parasol --resume sets it)",
    ENV_INTERFACE: "overrides the config key 'interface'",
    ENV_LOG_JSON: "worker 0 appends one JSON object per progress() line to this file (run_parasol --log-json)",
    ENV_QUIET: "any value: no progress lines (run_parasol --quiet)",
    ENV_TTY: "any value: progress lines start with a bar (run_parasol, when its output is a terminal)",
    ENV_TRACE_LOAD: "'1': a partitioned load prints the seconds of each of its phases (stderr)",
    ENV_JOB_ID: "internal: the job id, from run_parasol to its ranks",
    ENV_JOB_DIR: "internal: the job folder the ranks register in and record failures to",
    ENV_CONFIG: "internal: the config file a rank loads when started without --config",
    ENV_LAUNCHER_PID: "internal: the launcher's pid, which a rank watches",
    ENV_LAUNCHER_ID: "internal: the launcher's host, pid namespace and start time, to tell its pid from a reused one",
}
_IGNORED = ("comment", "description")


def environment_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the declared environment variable ``name`` (in ``environ``, default ``os.environ``),
    or None if it is unset or empty. An undeclared name is a KeyError: declare it in :data:`ENVIRONMENT`."""
    if name not in ENVIRONMENT:
        raise KeyError(f"environment variable {name!r} is not declared in parasol_hybrid.config.ENVIRONMENT")
    value = (os.environ if environ is None else environ).get(name)
    return value or None


def environment_overrides(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """``(name, value, meaning)`` of every declared variable that is set (in :data:`ENVIRONMENT` order)."""
    found = ((name, environment_value(name, environ), meaning) for name, meaning in ENVIRONMENT.items())
    return [(name, value, meaning) for name, value, meaning in found if value is not None]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of an :class:`Option` that must be given."""


@dataclass(frozen=True)
class Option:
    """One config key: its type, default and rule.

    ``type`` is int, float, str, bool, list, dict or a tuple of them. An int
    is never a bool; a float option also takes an int (stored as float).
    ``check(value)`` returns None if the value is fine, else the rule it
    breaks, phrased to follow the key ("must be at least 1"). ``None`` (JSON
    null) is accepted only with ``nullable=True``.
    """

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    choices: tuple | None = None
    nullable: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def at_least(low: int | float) -> Callable[[Any], str | None]:
    """A check: the value must be >= ``low``."""
    def check(value):
        return None if value >= low else f"must be at least {low}"
    return check


def positive(value) -> str | None:
    """A check: the value must be > 0."""
    return None if value > 0 else "must be positive"


def non_negative(value) -> str | None:
    """A check: the value must be >= 0."""
    return None if value >= 0 else "must be >= 0"


def str_or_str_list(value) -> str | None:
    """A check for path keys: a string or a non-empty list of strings."""
    if isinstance(value, list) and (not value or not all(isinstance(v, str) for v in value)):
        return "must be a string or a non-empty list of strings"
    return None


CORE_OPTIONS: dict[str, Option] = {
    "nworker": Option(int, REQUIRED, "number of worker processes", at_least(1)),
    "nserver": Option(int, REQUIRED, "number of server processes", at_least(1)),
    "input": Option((str, list), None, "training input: a file, a directory or a glob, or a list of them",
                    str_or_str_list, nullable=True),
    "test_input": Option((str, list), None, "test input, as for 'input'", str_or_str_list, nullable=True),
    "output": Option(str, "output", "directory the job writes its results to"),
    "rounds": Option(int, 10, "number of passes over the input", at_least(0)),
    "staleness": Option(int, 0, "how many clocks a worker may run ahead (0: BSP, -1 or null: ASP)",
                        at_least(-1), nullable=True),
    "limit_s": Option(int, None, "the original parasol's name for 'staleness'", at_least(-1), nullable=True),
    "seed": Option(int, 0, "random seed"),
    "on_bad_line": Option(str, "error", "what to do with a malformed input line", choices=("error", "skip")),
    "simulate_nodes": Option(int, 1, f"split the local ranks into this many simulated nodes "
                                     f"(env {ENV_SIMULATE_NODES} overrides)", at_least(1)),
    "log_every": Option(int, 1, "log progress every this many rounds", at_least(1)),
    "straggler": Option(dict, None, "slow one worker down on purpose, for benchmarks and tests: "
                        '{"worker": W, "slowdown": F} makes every iteration of worker W take F times as long',
                        check_straggler, nullable=True),
    "checkpoint_every": Option(int, 0, "save every table every this many clocks (0: never)", at_least(0)),
    "checkpoint_dir": Option(str, None, "where checkpoints go (default: <output>/checkpoints)", nullable=True),
    "resume": Option(str, None, f"a checkpoint folder to resume from (env {ENV_RESUME} overrides)",
                     nullable=True),
    "interface": Option(str, "auto", "address or interface name the cross-node sockets bind to "
                        f"('auto': loopback when the whole job runs on one host; env {ENV_INTERFACE} overrides)"),
    "peer_timeout": Option(float, 60.0, "seconds a rank waits for a peer (a reply, a node's clock, "
                           "a full send queue) before the job ends with an error naming both; must exceed "
                           "the longest single server task (creating or saving a big table)", positive),
    "load_exchange": Option(str, "mpi", "how load(pattern='fmap'|'smap'|'fsmap') moves triples between the "
                            "workers of a node: 'mpi' (MPI_Alltoallv, which MPICH carries through its shared "
                            "memory) or 'shm' (the job's own POSIX segments); between nodes always MPI",
                            choices=("mpi", "shm")),
}

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
               list: "a list", dict: "an object"}


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def _fits(value, t: type) -> bool:
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, t)


def check_value(key: str, value: Any, opt: Option) -> Any:
    """Return ``value`` converted for ``opt`` (int to float), or raise ConfigError naming ``key``."""
    types = opt.type if isinstance(opt.type, tuple) else (opt.type,)
    if value is None:
        if opt.nullable:
            return None
        raise ConfigError(f"config key {key!r} must be {_type_name(types)}, got null")
    if not any(_fits(value, t) for t in types):
        raise ConfigError(f"config key {key!r} must be {_type_name(types)}, "
                          f"got {value!r} ({type(value).__name__})")
    if float in types and int not in types and not isinstance(value, float):
        value = float(value)
    if opt.choices is not None and value not in opt.choices:
        valid = ", ".join(repr(c) for c in opt.choices)
        raise ConfigError(f"config key {key!r} must be one of {valid}, got {value!r}")
    if opt.check is not None:
        problem = opt.check(value)
        if problem:
            raise ConfigError(f"config key {key!r} {problem}, got {value!r}")
    return value


class Config(Mapping):
    """A validated job config: a read-only mapping with attribute access.

    ``cfg.rounds`` and ``cfg["rounds"]`` are the same; ``cfg.path`` is the
    absolute path of the file it came from (None for a dict);
    ``cfg.as_dict()`` is a deep copy of the values.
    """

    __slots__ = ("_values", "path")

    def __init__(self, values: dict[str, Any], path: Path | None = None):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "path", path)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r} (keys: {', '.join(sorted(self._values))})") from None

    def __setattr__(self, key, value):
        raise AttributeError("a Config is read-only; build a new one with load_config()")

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"Config({self._values!r}{where})"

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._values)


def _read_json(path: Path, shown: str) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {shown} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {shown}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{shown}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _unknown_key(key: str, options: dict[str, Option]) -> ConfigError:
    valid = sorted(options)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(valid)}")


def _check_paths(key: str, value: str | list[str]) -> None:
    for p in [value] if isinstance(value, str) else value:
        if os.path.exists(p):
            continue
        if any(os.path.exists(m) for m in glob.glob(p, recursive=True)):
            continue
        what = "matches no file" if glob.has_magic(p) else "does not exist"
        raise ConfigError(f"config key {key!r}: input path {p!r} {what} (relative to {os.getcwd()})")


def _fold_staleness(raw: dict[str, Any], values: dict[str, Any]) -> None:
    """Merge the alias ``limit_s`` into ``staleness`` and normalise null to -1."""
    alias = values.pop("limit_s", None)
    norm = lambda v: -1 if v is None else v  # noqa: E731
    if "limit_s" in raw:
        if "staleness" in raw and norm(raw["staleness"]) != norm(alias):
            raise ConfigError(f"config keys 'staleness' ({raw['staleness']!r}) and 'limit_s' ({alias!r}) "
                              f"disagree; 'limit_s' is an alias of 'staleness': give one of them")
        values["staleness"] = alias
    values["staleness"] = norm(values.get("staleness"))


def load_config(source: str | os.PathLike | dict, options: dict[str, Option] | None = None,
                check_files: bool = True) -> Config:
    """Load and validate a config from a JSON file path or a dict.

    ``options`` are an algorithm's extra keys, merged over :data:`CORE_OPTIONS`.
    With ``check_files``, ``input`` and ``test_input`` must name an existing
    file, directory or a glob that matches something. Raises ConfigError.
    """
    if isinstance(source, Mapping):
        raw, path, shown = dict(source), None, None
    else:
        shown = os.fspath(source)
        path = Path(os.path.abspath(shown))
        raw = _read_json(path, shown)
        if not isinstance(raw, dict):
            raise ConfigError(f"{shown}: the config must be a JSON object, got {type(raw).__name__}")
    try:
        return Config(_validate(raw, {**CORE_OPTIONS, **(options or {})}, check_files), path)
    except ConfigError as exc:
        if shown is None:
            raise
        raise ConfigError(f"{shown}: {exc}") from None


def _validate(raw: dict[str, Any], options: dict[str, Option], check_files: bool) -> dict[str, Any]:
    raw = {k: v for k, v in raw.items() if not (k.startswith("_") or k in _IGNORED)}
    for key in raw:
        if key not in options:
            raise _unknown_key(key, options)
    env = environment_value(ENV_SIMULATE_NODES)
    if env is not None and env.strip() != "" and "simulate_nodes" in options:
        try:
            nodes = int(env)
        except ValueError:
            raise ConfigError(f"environment variable {ENV_SIMULATE_NODES} must be an integer, got {env!r}") from None
        try:
            raw["simulate_nodes"] = check_value("simulate_nodes", nodes, options["simulate_nodes"])
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from environment variable {ENV_SIMULATE_NODES})") from None
    values: dict[str, Any] = {}
    for key, opt in options.items():
        if key in raw:
            values[key] = check_value(key, raw[key], opt)
        elif opt.required:
            hint = f" ({opt.help})" if opt.help else ""
            raise ConfigError(f"missing required config key {key!r}{hint}")
        else:
            values[key] = copy.deepcopy(opt.default)
    for key, name in (("resume", ENV_RESUME), ("interface", ENV_INTERFACE)):
        override = environment_value(name)
        if override is not None and key in options:
            values[key] = override
    if "staleness" in options:
        _fold_staleness(raw, values)
    if "nworker" in values:
        problem = straggler_worker_problem(values.get("straggler"), values["nworker"])
        if problem:
            raise ConfigError(problem)
    nodes = values.get("simulate_nodes", 1)
    if nodes > 1 and "nworker" in values and "nserver" in values:  # every simulated node needs both roles
        size = values["nworker"] + values["nserver"]
        if nodes > size:
            raise ConfigError(f"config key 'simulate_nodes' ({nodes}) is more than the job's ranks ({size})")
        assign_roles(simulated_nodes(size, nodes), values["nworker"], values["nserver"])
    if check_files:
        for key in ("input", "test_input"):
            if values.get(key) is not None:
                _check_paths(key, values[key])
    return values
