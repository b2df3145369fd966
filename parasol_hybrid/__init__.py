"""parasol_hybrid: a parameter server for machine learning in Python.

Workers and servers on a node share parameter shards in POSIX shared memory,
updated in place by numba kernels; an algorithm is a :class:`paralg` subclass
that pulls parameters before learning, pushes updates after, and calls
:meth:`paralg.clock` once per iteration. See the README.

The names that need MPI or numba (``paralg``, ``run``, tables and rules) are
imported on first use, so that ``run_parasol`` itself never initialises MPI.
"""

from importlib import import_module

from .config import Config, Option, load_config
from .errors import CheckpointError, CollectiveError, ConfigError, InputError, JobError, ParasolError, RuleError, TableError

__version__ = "0.1.0"

_LAZY = {
    "paralg": ".algorithm",
    "run": ".runner",
    "Table": ".tables.table",
    "SparseTable": ".tables.sparse",
    "hash_strings": ".tables.sparse",
    "update_rule": ".tables.rules",
    "get_rule": ".tables.rules",
    "rule_names": ".tables.rules",
    "striped_row": ".tables.striped",
    "shard_of": ".tables.striped",
    "local_row": ".tables.striped",
    "shard_keys": ".tables.striped",
}

__all__ = [
    "paralg",
    "run",
    "Table",
    "SparseTable",
    "hash_strings",
    "update_rule",
    "get_rule",
    "rule_names",
    "striped_row",
    "shard_of",
    "local_row",
    "shard_keys",
    "Config",
    "Option",
    "load_config",
    "ParasolError",
    "ConfigError",
    "InputError",
    "TableError",
    "RuleError",
    "JobError",
    "CheckpointError",
    "CollectiveError",
    "__version__",
]


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'parasol_hybrid' has no attribute {name!r}") from None
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
