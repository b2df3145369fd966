"""Importing the entry script in the launcher, without MPI, to read its algorithm's config keys.

The config is validated before anything starts, with the algorithm's own keys
when the entry script defines a ``paralg`` subclass.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..config import Option
from ..errors import JobError

__all__ = ["mpi_not_initialized", "algorithm_options"]


@contextlib.contextmanager
def mpi_not_initialized():
    """While importing code in the launcher, keep ``from mpi4py import MPI`` from calling MPI_Init."""
    try:
        import mpi4py
    except ImportError:
        yield
        return
    if "mpi4py.MPI" in sys.modules:
        yield
        return
    saved = mpi4py.rc.initialize
    mpi4py.rc.initialize = False
    try:
        yield
    finally:
        mpi4py.rc.initialize = saved


def _import_entry(entry: Path) -> tuple[ModuleType, type | None]:
    """Run ``entry`` as a fresh module (its folder first on ``sys.path``, as ``python entry`` would have it).

    Also returns the class handed to ``run()`` when the script calls it at
    module level: the import stops there, before anything would start.
    """
    from ..runner import IMPORTING_ENTRY, RunWithoutMPI

    path = entry.resolve()
    name = f"_parasol_entry_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise JobError(f"cannot import entry script {entry}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    sys.path.insert(0, directory)
    sys.modules[name] = module
    ran = None
    importing = IMPORTING_ENTRY.set(True)
    try:
        with mpi_not_initialized():
            spec.loader.exec_module(module)
    except RunWithoutMPI as stop:
        ran = stop.alg_cls
    except (Exception, SystemExit) as exc:
        raise JobError(f"cannot import entry script {entry}: {type(exc).__name__}: {exc}") from exc
    finally:
        IMPORTING_ENTRY.reset(importing)
        sys.modules.pop(name, None)
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)
    return module, ran


def algorithm_options(entry: Path) -> dict[str, Option]:
    """The config keys declared by the ``paralg`` subclasses of ``entry`` (``{}`` if none).

    The file is imported only when its text mentions ``paralg`` or
    ``parasol_hybrid``, so a plain MPI script is never run in the launcher.
    """
    if not entry.is_file():
        raise JobError(f"entry script {entry} does not exist")
    try:
        with mpi_not_initialized():
            from ..algorithm import paralg
    except ImportError:
        return {}
    source = entry.read_text(errors="replace")
    if "paralg" not in source and "parasol_hybrid" not in source:
        return {}
    module, ran = _import_entry(entry)
    options: dict[str, Option] = {}
    for obj in [*vars(module).values(), ran]:
        if isinstance(obj, type) and issubclass(obj, paralg) and obj is not paralg:
            options.update(getattr(obj, "options", None) or {})
    return options
