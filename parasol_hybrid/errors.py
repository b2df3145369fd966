"""The exceptions parasol_hybrid raises.

Every error the library raises on purpose is a :class:`ParasolError`; the
subclasses say which part of a job was wrong, and every message names the
offending thing (a config key, a file and line, a table, a key).
"""

from __future__ import annotations

__all__ = [
    "ParasolError",
    "ConfigError",
    "InputError",
    "TableError",
    "RuleError",
    "JobError",
    "CheckpointError",
    "CollectiveError",
]


class ParasolError(Exception):
    """Base class of every error raised by parasol_hybrid."""


class ConfigError(ParasolError):
    """A config file or key is missing, unknown, or has a wrong type or value."""


class InputError(ParasolError):
    """An input file is missing or has a malformed line (the message names file and line)."""


class TableError(ParasolError):
    """A table was declared or used wrongly: unknown name, key out of range, wrong dtype or shape."""


class RuleError(ParasolError):
    """An update rule is unknown or was registered twice."""


class JobError(ParasolError):
    """The job as a whole failed: a rank died or the launcher could not start it."""


class CheckpointError(ParasolError):
    """A checkpoint is missing, incomplete, damaged, or does not match the job."""


class CollectiveError(JobError):
    """The workers called collectives (``table``, ``sync``, ``allreduce``...) in a different order or number;
    the message names the call of each worker."""
