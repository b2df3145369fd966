"""parasol_hybrid: a parameter server for machine learning in Python.

Workers and servers on a node share parameter shards in POSIX shared memory,
updated in place by numba kernels; an algorithm is a :class:`paralg` subclass
that pulls parameters before learning, pushes updates after, and calls
:meth:`paralg.clock` once per iteration. See the README.
"""

from .config import Config, Option, load_config
from .errors import ConfigError, InputError, JobError, ParasolError, RuleError, TableError
from .paralg import paralg
from .runner import run
from .tables.rules import get_rule, rule_names, update_rule
from .tables.sparse import SparseTable, hash_strings
from .tables.table import Table

__version__ = "0.1.0"

__all__ = [
    "paralg",
    "run",
    "Table",
    "SparseTable",
    "hash_strings",
    "update_rule",
    "get_rule",
    "rule_names",
    "Config",
    "Option",
    "load_config",
    "ParasolError",
    "ConfigError",
    "InputError",
    "TableError",
    "RuleError",
    "JobError",
    "__version__",
]
