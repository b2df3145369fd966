"""What a table declaration asks of a node's servers: a checked spec, and a new shard (or cache of a
remote shard) filled from a checkpoint when the job resumes.

Both the server (its own shards) and the node agent (its caches of other
nodes' shards) create shards here, so neither needs the other for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import checkpoint
from ..tables.shard import Shard
from ..tables.spec import TableSpec

__all__ = ["RequestError", "check_spec", "folder_inside", "new_shard", "restore"]


class RequestError(ValueError):
    """A request that names something that does not exist or does not fit."""


def check_spec(raw, nserver: int) -> TableSpec:
    """A table spec from a request, validated as a declaration would be and fitting a job of ``nserver``
    servers; a RequestError says what is wrong."""
    if not isinstance(raw, dict):
        raise RequestError("spec must be an object")
    try:
        spec = TableSpec(**raw)
        again = TableSpec.build(spec.index, spec.name, (spec.rows, spec.dim), spec.dtype, spec.init, spec.a,
                                spec.b, spec.seed, spec.rule, spec.exact, spec.nshards, dict(spec.hyper))
    except (TypeError, ValueError) as exc:
        raise RequestError(f"bad spec: {exc}") from None
    if json.loads(json.dumps(again.as_dict())) != json.loads(json.dumps(raw)):
        raise RequestError("spec fields do not validate (types or derived fields differ)")
    if spec.nshards != nserver:
        raise RequestError(f"spec has {spec.nshards} shards, the job has {nserver} servers")
    if not isinstance(spec.index, int) or spec.index < 0:
        raise RequestError(f"bad table index {spec.index!r}")
    return again


def folder_inside(path, root: Path, what: str) -> Path:
    """``path`` if it is a folder inside ``root`` (or ``root`` itself), else a RequestError."""
    if not isinstance(path, str):
        raise RequestError(f"{what} folder must be a string")
    p, r = Path(path).resolve(), Path(root).resolve()
    if p != r and r not in p.parents:
        raise RequestError(f"{what} folder {p} is outside {r}")
    if not p.is_dir():
        raise RequestError(f"{what} folder {p} does not exist")
    return p


def new_shard(job_id: str, spec: TableSpec, shard: int, resume: Path | None = None, cache: bool = False) -> Shard:
    """Create shard ``shard`` of a table (``cache``: this node's cache of another node's shard), filled from
    the checkpoint folder ``resume`` when given; on a failure nothing is left behind."""
    sh = Shard.create(job_id, spec, shard, cache=cache)
    try:
        if resume is not None:
            restore(sh, resume)
    except BaseException:
        sh.unlink()
        sh.close()
        raise
    return sh


def restore(sh: Shard, folder: Path) -> None:
    """Overwrite a freshly created shard (or cache) with its values and state from a checkpoint.

    The checkpoint may have been saved with another number of shards: the rows
    of this shard are gathered from the saved ones (see :func:`checkpoint.gather_shard`).
    """
    folder = Path(folder)
    try:
        tables = json.loads((folder / checkpoint.MANIFEST).read_text())["tables"]
        saved = int(tables[sh.spec.index]["nshards"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise checkpoint.CheckpointError(f"checkpoint {folder}: no shard count for table {sh.spec.name!r} "
                                         f"in its {checkpoint.MANIFEST}: {exc}") from None
    data, state = checkpoint.gather_shard(folder, sh.spec, sh.shard, saved)
    if data.shape != sh.array.shape or state.shape != sh.state.array.shape:
        raise checkpoint.CheckpointError(
            f"checkpoint {folder}: table {sh.spec.name!r} shard {sh.shard} has shape {data.shape}, "
            f"the job's shard is {sh.array.shape}")
    sh.array[...] = data
    sh.state.array[...] = state
